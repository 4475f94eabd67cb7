"""Intuit's OAuth 2.0 / OpenID paths, each of Intuit's hosts folded into the emulator's base URL.

Apart from the routes because the discovery document (``responses.py``) advertises them and the
fault injection middleware recognizes the token endpoint by its path.
"""

from __future__ import annotations

AUTHORIZATION_PATH = "/connect/oauth2"  # appcenter.intuit.com/connect/oauth2
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # oauth.platform.intuit.com/oauth2/v1/tokens/bearer
REVOCATION_PATH = "/v2/oauth2/tokens/revoke"  # developer.api.intuit.com/v2/oauth2/tokens/revoke
ISSUER_PATH = "/op/v1"  # oauth.platform.intuit.com/op/v1
JWKS_PATH = "/op/v1/jwks"
USERINFO_PATH = "/v1/openid_connect/userinfo"  # accounts.platform.intuit.com/v1/...
DISCOVERY_PATHS = (
    "/.well-known/openid_configuration",
    "/.well-known/openid_sandbox_configuration",
)
