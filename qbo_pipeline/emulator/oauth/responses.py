"""Intuit's OAuth 2.0 / OpenID Connect endpoints over HTTP, in front of ``OAuthServer``.

The paths are Intuit's own (``paths.py``: their hosts folded into the emulator's base URL), and the
discovery document advertises them with the base URL the request came in on, so an OAuth client
pointed at ``<base>/.well-known/openid_configuration`` (e.g. intuit-oauth's ``AuthClient`` with
that URL as its ``environment``) finds everything else by itself.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from qbo_pipeline.emulator.exceptions import InvalidOAuthRequest, OAuthError, UnsupportedGrantType
from qbo_pipeline.emulator.oauth.models import SUPPORTED_SCOPES, OAuthServer
from qbo_pipeline.emulator.oauth.paths import (
    AUTHORIZATION_PATH,
    ISSUER_PATH,
    JWKS_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)

HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1

Endpoint = Callable[[Request], Awaitable[Response]]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def discovery_document(base: str) -> dict[str, Any]:
    """Intuit's discovery document, every URL on this server."""
    return {
        "issuer": base + ISSUER_PATH,
        "authorization_endpoint": base + AUTHORIZATION_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "userinfo_endpoint": base + USERINFO_PATH,
        "revocation_endpoint": base + REVOCATION_PATH,
        "jwks_uri": base + JWKS_PATH,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": sorted(SUPPORTED_SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub", "auth_time"],
    }


def oauth_error_response(error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.http_status == 401:
        scheme = "Bearer" if error.error == "invalid_token" else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} realm="qbo-emulator", error="{error.error}"'
    return JSONResponse(error.to_json_body(), status_code=error.http_status, headers=headers)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an HTTP Basic Authorization header, if well formed."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if colon else None


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (parsed here: no multipart package needed)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


async def token_or_form_fields(request: Request) -> dict[str, str]:
    """The revoke body: JSON ``{"token": ...}`` as Intuit documents, or a form as RFC 7009 does."""
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as exc:
            raise InvalidOAuthRequest(f"the body is not valid JSON ({exc.msg}); send "
                                      '{"token": "<refresh or access token>"}.') from exc
        return {key: str(value) for key, value in body.items()} if isinstance(body, dict) else {}
    return await form_fields(request)


def required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise InvalidOAuthRequest(f"the request body lacks the required parameter {name!r}.")
    return value


def answering_oauth_errors(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except OAuthError as error:
            return oauth_error_response(error)

    return endpoint


class OAuthResponses:
    """Intuit's OAuth endpoints in front of ``OAuthServer``; ``urls.py`` routes them."""

    def __init__(self, oauth: OAuthServer) -> None:
        self.oauth = oauth

    def authorize(self, request: Request) -> Response:
        # Sync on purpose: connecting a new company writes the backend; Starlette runs sync
        # endpoints in its thread pool, off the event loop.
        try:
            location = self.oauth.authorize(dict(request.query_params))
        except OAuthError as error:
            return oauth_error_response(error)
        return RedirectResponse(location, status_code=302)

    async def token(self, request: Request) -> Response:
        client_id = self.oauth.check_client(basic_credentials(request))
        fields = await form_fields(request)
        wants_hard_expiry = request.headers.get(HARD_EXPIRY_HEADER, "").lower() == "true"
        grant_type = required(fields, "grant_type")
        if grant_type == "authorization_code":
            body = self.oauth.exchange_code(client_id, required(fields, "code"),
                                            required(fields, "redirect_uri"),
                                            issuer=base_url(request) + ISSUER_PATH,
                                            report_hard_expiry=wants_hard_expiry)
        elif grant_type == "refresh_token":
            body = self.oauth.refresh(client_id, required(fields, "refresh_token"),
                                      report_hard_expiry=wants_hard_expiry)
        else:
            raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported; use "
                                       "authorization_code or refresh_token.")
        return JSONResponse(body, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        client_id = self.oauth.check_client(basic_credentials(request))
        self.oauth.revoke(client_id, required(await token_or_form_fields(request), "token"))
        return Response(status_code=200, headers=NO_STORE)

    async def userinfo(self, request: Request) -> Response:
        return JSONResponse(self.oauth.userinfo(request.headers.get("authorization")))

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(discovery_document(base_url(request)))

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.oauth.jwks())
