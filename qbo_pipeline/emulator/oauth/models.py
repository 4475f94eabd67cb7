"""OAuth 2.0 and OpenID Connect as Intuit's OAuth server keeps them: settings, token state, rules.

No HTTP here (``responses.py`` is the wire layer). The rules follow Intuit's developer docs
("Set up OAuth 2.0", "Refresh tokens" in the Authorization FAQ, the help article "Validity of
Refresh Token", "OpenID Connect"):

- Consent is one grant: a company (realm) connected to the app with some scopes. Its tokens hang
  off it; revoking any of its tokens disconnects the whole grant.
- Authorization codes are single use, short-lived and bound to the redirect URI they were sent to.
- Access tokens live 3600 s. Refresh tokens live "100 days" (8726400 s on the wire) from
  issue; a refresh within 24 h of the refresh token's issue returns the same refresh token (its
  ``x_refresh_token_expires_in`` counting down), a later one returns a new refresh token with a
  fresh lifetime and the old one is spent (``invalid_grant``). Setting
  ``refresh_token_rotation_seconds=0`` rotates on every refresh instead.
- Every refresh token also has a hard limit of five years from consent, reported as
  ``x_refresh_token_hard_expires_in`` to clients that ask for it.

Tokens are random opaque strings; only their SHA-256 digests are kept, so state never holds a
usable token, and no message ever repeats one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from qbo_pipeline.emulator.exceptions import (
    AuthenticationFailed,
    AuthorizationFailed,
    InsufficientScope,
    InvalidClient,
    InvalidGrant,
    InvalidOAuthRequest,
    InvalidScope,
    InvalidToken,
    UnsupportedResponseType,
)

try:  # id_tokens need RSA signatures; without `cryptography` the emulator issues none.
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    CAN_SIGN_ID_TOKENS = True
except ImportError:  # pragma: no cover - depends on the installed extras
    CAN_SIGN_ID_TOKENS = False

Clock = Callable[[], datetime]

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
PAYMENT_SCOPE = "com.intuit.quickbooks.payment"
COMPANY_SCOPES = frozenset({ACCOUNTING_SCOPE, PAYMENT_SCOPE})
OPENID_SCOPES = frozenset({"openid", "profile", "email", "phone", "address"})
SUPPORTED_SCOPES = COMPANY_SCOPES | OPENID_SCOPES

DAY = 86400
REALM_ID_PATTERN = re.compile(r"^[0-9]{1,20}$")

# The one person who "consents" in the emulator; the UserInfo endpoint answers with these claims.
EMULATED_USER: dict[str, Any] = {
    "email": "bookkeeper@example.com",
    "emailVerified": True,
    "givenName": "Emulated",
    "familyName": "Bookkeeper",
    "phoneNumber": "+1 5555550100",
    "phoneNumberVerified": False,
    "address": {"streetAddress": "2700 Coast Ave", "locality": "Mountain View",
                "region": "CA", "postalCode": "94043", "country": "US"},
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OAuthSettings:
    """The app registered with the emulator's OAuth server, and the token lifetimes."""

    client_id: str = "qbo-emulator-client"
    client_secret: str = field(default="qbo-emulator-secret", repr=False)
    redirect_uris: tuple[str, ...] = (
        "http://localhost:8000/callback",
        "http://127.0.0.1:8000/callback",
        "https://developer.intuit.com/v2/OAuth2Playground/RedirectUrl",
    )
    access_token_lifetime_seconds: int = 3600
    # Intuit documents "100 days"; its token responses say x_refresh_token_expires_in 8726400
    # (101 days), the figure clients actually see, so the emulator uses it.
    refresh_token_lifetime_seconds: int = 8726400
    refresh_token_rotation_seconds: int = DAY  # Intuit: a new refresh token every 24 hours
    refresh_token_hard_lifetime_seconds: int = 5 * 365 * DAY
    authorization_code_lifetime_seconds: int = 300
    clock: Clock = field(default=utc_now, repr=False, compare=False)


@dataclass
class _Grant:
    """One consent: the app connected to a company (or an OpenID identity) with some scopes."""

    client_id: str
    realm_id: str | None
    scopes: frozenset[str]
    consented_at: datetime
    hard_expires_at: datetime
    refresh_digest: str = ""
    refresh_issued_at: datetime = field(default_factory=utc_now)
    refresh_expires_at: datetime = field(default_factory=utc_now)
    revoked: bool = False


@dataclass
class _AccessToken:
    grant: _Grant
    expires_at: datetime


@dataclass
class _AuthorizationCode:
    grant: _Grant
    redirect_uri: str
    expires_at: datetime
    used: bool = False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(0, int((moment - now).total_seconds()))


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


def new_realm_id() -> str:
    """A fresh company id shaped like QBO's (``123146...``, 15 digits)."""
    return f"123146{secrets.randbelow(10**9):09d}"


class _SigningKey:
    """The RSA key id_tokens are signed with (RS256); generated at start-up, published as JWKS."""

    def __init__(self) -> None:
        self.kid = f"emu-{uuid.uuid4().hex[:12]}"
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public = dict(RSAAlgorithm.to_jwk(self._private.public_key(), as_dict=True))
        public.pop("key_ops", None)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})


class OAuthServer:
    """Intuit's OAuth 2.0 server in memory: consent, code and refresh grants, revoke, checks."""

    def __init__(self, settings: OAuthSettings, on_connect: Callable[[str], None]) -> None:
        self.settings = settings
        self._on_connect = on_connect
        self._lock = threading.Lock()
        self._codes: dict[str, _AuthorizationCode] = {}
        self._grants_by_refresh: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._user_sub = str(uuid.uuid4())
        self._signing_key = _SigningKey() if CAN_SIGN_ID_TOKENS else None

    def now(self) -> datetime:
        return self.settings.clock()

    # --- client authentication --------------------------------------------------------------

    def check_client(self, credentials: tuple[str, str] | None) -> str:
        """The client id, if ``(client_id, client_secret)`` are the registered app's."""
        if credentials is None:
            raise InvalidClient("Send the app's credentials with HTTP Basic authentication: "
                                "Authorization: Basic base64(client_id:client_secret).")
        client_id, secret = credentials
        same_id = hmac.compare_digest(client_id.encode(), self.settings.client_id.encode())
        same_secret = hmac.compare_digest(secret.encode(), self.settings.client_secret.encode())
        if not (same_id and same_secret):
            raise InvalidClient("Unknown client id or wrong client secret; use the keys the "
                                "emulator was started with (OAuthSettings).")
        return client_id

    # --- authorization endpoint -------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> str:
        """Consent at once; the URL to redirect the browser to (with a code or an error).

        Raises InvalidOAuthRequest when the client or redirect URI is unknown: per RFC 6749
        4.1.2.1 the browser must then not be sent anywhere.
        """
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id != self.settings.client_id:
            raise InvalidOAuthRequest(f"client_id {client_id!r} is not a registered app; use "
                                      f"{self.settings.client_id!r}.")
        if redirect_uri not in self.settings.redirect_uris:
            raise InvalidOAuthRequest(
                f"redirect_uri {redirect_uri!r} is not registered for this app; use one of "
                f"{', '.join(self.settings.redirect_uris)}.")
        state = params.get("state", "")
        try:
            scopes, realm_id = self._consent_terms(params)
        except (InvalidOAuthRequest, InvalidScope, UnsupportedResponseType) as refused:
            error = {"error": refused.error, "error_description": refused.description}
            return _with_query(redirect_uri, {**error, **({"state": state} if state else {})})
        if realm_id is not None:
            self._on_connect(realm_id)
        code = self._issue_code(client_id, redirect_uri, scopes, realm_id)
        answer = {"code": code, "state": state}
        return _with_query(redirect_uri, {**answer, **({"realmId": realm_id} if realm_id else {})})

    def _consent_terms(self, params: Mapping[str, str]) -> tuple[frozenset[str], str | None]:
        if params.get("response_type") != "code":
            raise UnsupportedResponseType("response_type must be 'code'.")
        if not params.get("state"):
            raise InvalidOAuthRequest("state is required: send an unguessable value and check "
                                      "it on the redirect.")
        scopes = frozenset(params.get("scope", "").split())
        unknown = sorted(scopes - SUPPORTED_SCOPES)
        if unknown or not scopes & (COMPANY_SCOPES | {"openid"}):
            problem = f"unknown scope(s) {' '.join(unknown)}" if unknown else "no access scope"
            raise InvalidScope(f"{problem}: ask for {ACCOUNTING_SCOPE} and/or openid "
                               f"(supported: {' '.join(sorted(SUPPORTED_SCOPES))}).")
        if not scopes & COMPANY_SCOPES:
            return scopes, None  # OpenID only: no company is connected, no realmId returned
        asked = params.get("realm_id")  # the emulator's extension: reconnect this company
        if asked is not None and not REALM_ID_PATTERN.match(asked):
            raise InvalidOAuthRequest(f"realm_id {asked!r} must be a QBO company id (digits).")
        return scopes, asked or new_realm_id()

    def _issue_code(self, client_id: str, redirect_uri: str, scopes: frozenset[str],
                    realm_id: str | None) -> str:
        now = self.now()
        hard_limit = timedelta(seconds=self.settings.refresh_token_hard_lifetime_seconds)
        grant = _Grant(client_id, realm_id, scopes, consented_at=now,
                       hard_expires_at=now + hard_limit)
        code = secrets.token_urlsafe(32)
        lifetime = timedelta(seconds=self.settings.authorization_code_lifetime_seconds)
        with self._lock:
            self._codes[_digest(code)] = _AuthorizationCode(grant, redirect_uri, now + lifetime)
        return code

    # --- token endpoint ---------------------------------------------------------------------

    def exchange_code(self, client_id: str, code: str, redirect_uri: str, *, issuer: str,
                      report_hard_expiry: bool = False) -> dict[str, Any]:
        """grant_type=authorization_code: the first tokens of a consent (code is then spent)."""
        now = self.now()
        with self._lock:
            issued = self._codes.get(_digest(code))
            if issued is None or issued.grant.client_id != client_id:
                raise InvalidGrant("The authorization code is not one this server issued to "
                                   "this client; start again at the authorization endpoint.")
            if issued.used:
                raise InvalidGrant("The authorization code was already used; codes are single "
                                   "use. Start again at the authorization endpoint.")
            if now >= issued.expires_at:
                raise InvalidGrant("The authorization code expired; exchange it within "
                                   f"{self.settings.authorization_code_lifetime_seconds} s.")
            if redirect_uri != issued.redirect_uri:
                raise InvalidGrant("redirect_uri differs from the one the code was sent to; "
                                   "send the same redirect_uri as in the authorization request.")
            issued.used = True
            grant = issued.grant
            refresh_token = self._rotate_refresh_token(grant, now)
            body = self._token_body(grant, refresh_token, now, report_hard_expiry)
        if "openid" in grant.scopes and self._signing_key is not None:
            body["id_token"] = self._id_token(grant, issuer, now)
        return body

    def refresh(self, client_id: str, refresh_token: str, *,
                report_hard_expiry: bool = False) -> dict[str, Any]:
        """grant_type=refresh_token: a new access token; a new refresh token once a day."""
        now = self.now()
        with self._lock:
            grant = self._grants_by_refresh.get(_digest(refresh_token))
            if grant is None or grant.client_id != client_id:
                raise InvalidGrant("Incorrect or invalid refresh token: it was never issued to "
                                   "this client or a newer refresh token replaced it. Always "
                                   "keep the latest refresh token the token endpoint returns.")
            if grant.revoked:
                raise InvalidGrant("The refresh token was revoked (the app was disconnected); "
                                   "reconnect the company at the authorization endpoint.")
            if now >= grant.refresh_expires_at:
                raise InvalidGrant(f"The refresh token expired at "
                                   f"{grant.refresh_expires_at.isoformat()}; reconnect the "
                                   "company at the authorization endpoint.")
            rotation = timedelta(seconds=self.settings.refresh_token_rotation_seconds)
            if now - grant.refresh_issued_at >= rotation:
                refresh_token = self._rotate_refresh_token(grant, now)
            return self._token_body(grant, refresh_token, now, report_hard_expiry)

    def _rotate_refresh_token(self, grant: _Grant, now: datetime) -> str:
        """Give the grant a new refresh token; the previous one is spent at once."""
        self._grants_by_refresh.pop(grant.refresh_digest, None)
        token = secrets.token_urlsafe(40)
        lifetime = timedelta(seconds=self.settings.refresh_token_lifetime_seconds)
        grant.refresh_digest = _digest(token)
        grant.refresh_issued_at = now
        grant.refresh_expires_at = min(now + lifetime, grant.hard_expires_at)
        self._grants_by_refresh[grant.refresh_digest] = grant
        return token

    def _token_body(self, grant: _Grant, refresh_token: str, now: datetime,
                    report_hard_expiry: bool) -> dict[str, Any]:
        lifetime = self.settings.access_token_lifetime_seconds
        access_token = secrets.token_urlsafe(48)
        self._forget_stale_access_tokens(now)
        self._access_tokens[_digest(access_token)] = _AccessToken(
            grant, now + timedelta(seconds=lifetime))
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access_token,
            "expires_in": lifetime,
            "refresh_token": refresh_token,
            "x_refresh_token_expires_in": _seconds_until(grant.refresh_expires_at, now),
        }
        if report_hard_expiry:
            body["x_refresh_token_hard_expires_in"] = _seconds_until(grant.hard_expires_at, now)
        return body

    def _forget_stale_access_tokens(self, now: datetime) -> None:
        # Expired tokens are kept a day so a late caller hears "expired", not "unknown".
        horizon = now - timedelta(days=1)
        stale = [key for key, token in self._access_tokens.items() if token.expires_at < horizon]
        for key in stale:
            del self._access_tokens[key]

    def _id_token(self, grant: _Grant, issuer: str, now: datetime) -> str:
        assert self._signing_key is not None
        claims: dict[str, Any] = {
            "sub": self._user_sub,
            "aud": [grant.client_id],
            "iss": issuer,
            "auth_time": int(grant.consented_at.timestamp()),
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self.settings.access_token_lifetime_seconds,
        }
        if grant.realm_id:
            claims["realmid"] = grant.realm_id
        return self._signing_key.sign(claims)

    def jwks(self) -> dict[str, Any]:
        """The public keys id_tokens are signed with, as a JWK Set."""
        return {"keys": [self._signing_key.jwk()] if self._signing_key else []}

    # --- revoke endpoint --------------------------------------------------------------------

    def revoke(self, client_id: str, token: str) -> None:
        """Disconnect the grant the access or refresh token belongs to (all its tokens).

        An unknown token is not an error (RFC 7009 2.2): the result the caller wants holds.
        """
        key = _digest(token)
        with self._lock:
            grant = self._grants_by_refresh.get(key)
            if grant is None and key in self._access_tokens:
                grant = self._access_tokens[key].grant
            if grant is not None and grant.client_id == client_id:
                grant.revoked = True

    # --- protected resources ----------------------------------------------------------------

    def authenticate(self, authorization_header: str | None, realm_id: str) -> None:
        """QBO's check on every accounting request: a live Bearer token for this company."""
        token, problem = self._live_access_token(authorization_header)
        if token is None:
            raise AuthenticationFailed(problem)
        grant = token.grant
        if grant.realm_id != realm_id:
            raise AuthorizationFailed(f"The access token was issued for company "
                                      f"{grant.realm_id or '(none: OpenID only)'}, not for "
                                      f"company {realm_id}; connect that company to get one.")
        if ACCOUNTING_SCOPE not in grant.scopes:
            raise AuthorizationFailed(f"The access token lacks the {ACCOUNTING_SCOPE} scope; "
                                      "reconnect asking for it.")

    def userinfo(self, authorization_header: str | None) -> dict[str, Any]:
        """OpenID Connect UserInfo: the consenting user's claims the token's scopes allow."""
        token, problem = self._live_access_token(authorization_header)
        if token is None:
            raise InvalidToken(problem)
        scopes = token.grant.scopes
        if "openid" not in scopes:
            raise InsufficientScope("UserInfo needs a token granted with the openid scope.")
        claims: dict[str, Any] = {"sub": self._user_sub}
        if "email" in scopes:
            claims |= {key: EMULATED_USER[key] for key in ("email", "emailVerified")}
        if "profile" in scopes:
            claims |= {key: EMULATED_USER[key] for key in ("givenName", "familyName")}
        if "phone" in scopes:
            claims |= {key: EMULATED_USER[key] for key in ("phoneNumber", "phoneNumberVerified")}
        if "address" in scopes:
            claims["address"] = dict(EMULATED_USER["address"])
        return claims

    def _live_access_token(self, authorization_header: str | None,
                           ) -> tuple[_AccessToken | None, str]:
        """The access token behind the header, or None and why (never repeating the token)."""
        scheme, _, value = (authorization_header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, ("Authorization header missing or not a Bearer token; send "
                          "'Authorization: Bearer <access token>'.")
        now = self.now()
        with self._lock:
            token = self._access_tokens.get(_digest(value.strip()))
        if token is None:
            return None, ("Token invalid: the access token was not issued by this server (or "
                          "is long expired); get one from the token endpoint.")
        if token.grant.revoked:
            return None, ("Token revoked: the app was disconnected from the company; "
                          "reconnect at the authorization endpoint.")
        if now >= token.expires_at:
            return None, (f"Token expired: the access token expired at "
                          f"{token.expires_at.isoformat(timespec='seconds')}; get a new one "
                          "from the token endpoint with grant_type=refresh_token.")
        return token, ""

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        """Expire every live access token of the company (of all companies if None).

        Refresh tokens stay valid, so a client recovers the way it must on QBO: by refreshing.
        Returns how many tokens were expired.
        """
        now = self.now()
        expired = 0
        with self._lock:
            for token in self._access_tokens.values():
                if token.expires_at > now and realm_id in (None, token.grant.realm_id):
                    token.expires_at = now
                    expired += 1
        return expired
