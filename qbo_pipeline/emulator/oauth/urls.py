"""The OAuth 2.0 / OpenID routes: Intuit's paths (``paths.py``) to ``OAuthResponses``."""

from __future__ import annotations

from starlette.routing import Route

from qbo_pipeline.emulator.oauth.paths import (
    AUTHORIZATION_PATH,
    DISCOVERY_PATHS,
    JWKS_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)
from qbo_pipeline.emulator.oauth.responses import OAuthResponses, answering_oauth_errors
from qbo_pipeline.emulator.service import Emulator


def oauth_routes(emulator: Emulator) -> list[Route]:
    responses = OAuthResponses(emulator.oauth)
    discovery_routes = [Route(path + slash, responses.discovery, methods=["GET"])
                        for path in DISCOVERY_PATHS for slash in ("", "/")]
    return [
        Route(AUTHORIZATION_PATH, responses.authorize, methods=["GET"]),
        Route(TOKEN_PATH, answering_oauth_errors(responses.token), methods=["POST"]),
        Route(REVOCATION_PATH, answering_oauth_errors(responses.revoke), methods=["POST"]),
        Route(USERINFO_PATH, answering_oauth_errors(responses.userinfo), methods=["GET"]),
        Route(JWKS_PATH, responses.jwks, methods=["GET"]),
        *discovery_routes,
    ]
