"""OAuth 2.0 tokens per realm, through intuit-oauth's ``AuthClient``.

Access tokens live an hour and refresh tokens rotate: every refresh may hand back a new refresh
token, and the old one stops working soon after, so the new one is saved before anything else.
``TokenStore`` is where they are kept (the state DB later; memory now).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from qbo_pipeline.qbo.errors import ConnectionExpiredError, TokenEndpointError
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.transport import mount_retries, retrying_cut_bodies

# Refresh a little before expiry so a token never dies between the check and the request.
EXPIRY_MARGIN = timedelta(seconds=60)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TokenSet:
    """One realm's tokens. The token values never appear in ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None = None

    def access_expired(self, now: datetime) -> bool:
        return now + EXPIRY_MARGIN >= self.access_expires_at


class TokenStore(Protocol):
    """Persistence of tokens per realm (the state DB implements this, encrypted at rest)."""

    def load(self, realm_id: str) -> TokenSet | None: ...

    def save(self, realm_id: str, tokens: TokenSet) -> None: ...


class InMemoryTokenStore:
    """A ``TokenStore`` for tests and one-off runs: tokens vanish with the process."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenSet] = {}
        self._lock = threading.Lock()

    def load(self, realm_id: str) -> TokenSet | None:
        with self._lock:
            return self._tokens.get(realm_id)

    def save(self, realm_id: str, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens[realm_id] = tokens


class AccessTokenSource(Protocol):
    """What ``QBOClient`` needs: a current access token, and a fresh one when QBO refuses it."""

    def access_token(self, realm_id: str) -> str: ...

    def refresh_access_token(self, realm_id: str, rejected_token: str) -> str: ...


def _error_code(error: AuthClientError) -> str:
    """The OAuth ``error`` field of a token endpoint answer (never the body: it may hold tokens)."""
    try:
        body: Any = json.loads(error.content or b"{}")
    except ValueError:
        return "unreadable response"
    return str(body.get("error", "no error code")) if isinstance(body, dict) else "no error code"


class OAuthTokenProvider:
    """Gets, refreshes and rotates tokens for any number of realms of one QBO app."""

    def __init__(self, settings: QBOSettings, store: TokenStore,
                 clock: Clock = _utc_now) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._auth_client: AuthClient | None = None
        self._client_lock = threading.Lock()
        self._realm_locks: dict[str, threading.Lock] = {}

    def _client(self) -> AuthClient:
        # AuthClient fetches the discovery document when built: build it once, on first use.
        if self._auth_client is None:
            client = AuthClient(
                client_id=self.settings.client_id,
                client_secret=self.settings.client_secret.get_secret_value(),
                redirect_uri=self.settings.redirect_uri,
                environment=self.settings.environment,
            )
            # AuthClient is a requests session: a 5xx or a dropped connection of the token
            # endpoint is retried with backoff as QBO's API calls are, not failing the run.
            mount_retries(client, self.settings)
            self._auth_client = client
        return self._auth_client

    def _realm_lock(self, realm_id: str) -> threading.Lock:
        with self._client_lock:
            return self._realm_locks.setdefault(realm_id, threading.Lock())

    def authorization_url(self, state: str, scopes: Sequence[Scopes] = (Scopes.ACCOUNTING,)
                          ) -> str:
        """Where to send a person to connect a QBO company (the consent screen)."""
        with self._client_lock:
            return str(self._client().get_authorization_url(list(scopes), state_token=state))

    def exchange_code(self, realm_id: str, code: str) -> TokenSet:
        """Swap the authorization code from the redirect for tokens, and store them."""
        with self._client_lock:
            client = self._client()
            try:
                retrying_cut_bodies(client.get_bearer_token, self.settings)(
                    code, realm_id=realm_id)
            except AuthClientError as error:
                raise self._token_error(realm_id, error, "authorization_code_refused") from None
            except requests.RequestException as error:
                raise self._unreachable(realm_id, error) from None
            tokens = self._tokens_from(client)
        self.store.save(realm_id, tokens)
        return tokens

    def revoke(self, realm_id: str) -> None:
        """Revoke the realm's refresh token at Intuit's revoke endpoint: it and the access
        tokens it gave stop working. The stored tokens are left to the caller to forget."""
        tokens = self._stored(realm_id)
        with self._client_lock:
            client = self._client()
            try:
                retrying_cut_bodies(client.revoke, self.settings)(token=tokens.refresh_token)
            except AuthClientError as error:
                raise self._token_error(realm_id, error) from None
            except requests.RequestException as error:
                raise self._unreachable(realm_id, error) from None

    def access_token(self, realm_id: str) -> str:
        tokens = self._stored(realm_id)
        if tokens.access_expired(self._clock()):
            return self.refresh_access_token(realm_id, tokens.access_token)
        return tokens.access_token

    def refresh_access_token(self, realm_id: str, rejected_token: str) -> str:
        """Refresh once per rejected token, however many threads saw it rejected."""
        with self._realm_lock(realm_id):
            tokens = self._stored(realm_id)
            if tokens.access_token != rejected_token:
                return tokens.access_token  # another thread refreshed meanwhile
            fresh = self._refresh(realm_id, tokens)
            self.store.save(realm_id, fresh)
            return fresh.access_token

    def _refresh(self, realm_id: str, tokens: TokenSet) -> TokenSet:
        with self._client_lock:
            client = self._client()
            try:
                retrying_cut_bodies(client.refresh, self.settings)(
                    refresh_token=tokens.refresh_token)
            except AuthClientError as error:
                raise self._token_error(realm_id, error) from None
            except requests.RequestException as error:
                raise self._unreachable(realm_id, error) from None
            return self._tokens_from(client)

    def _stored(self, realm_id: str) -> TokenSet:
        tokens = self.store.load(realm_id)
        if tokens is None:
            raise ConnectionExpiredError(realm_id, "no tokens stored: never connected, or "
                                                   "disconnected", "no_connection")
        return tokens

    def _tokens_from(self, client: AuthClient) -> TokenSet:
        now = self._clock()
        refresh_life = client.x_refresh_token_expires_in
        return TokenSet(
            access_token=str(client.access_token),
            refresh_token=str(client.refresh_token),
            access_expires_at=now + timedelta(seconds=int(client.expires_in or 0)),
            refresh_expires_at=now + timedelta(seconds=int(refresh_life))
            if refresh_life else None,
        )

    @staticmethod
    def _token_error(realm_id: str, error: AuthClientError,
                     refused_grant: str = "token_refresh_failed") -> Exception:
        """``refused_grant``: the catalog entry of an ``invalid_grant`` here (a refresh token,
        or a code being exchanged)."""
        code = _error_code(error)
        if code == "invalid_grant":
            return ConnectionExpiredError(realm_id, code, refused_grant)
        return TokenEndpointError(realm_id, error.status_code, code)

    def _unreachable(self, realm_id: str, error: requests.RequestException) -> Exception:
        # The exception's text may carry the request (and so a token): only its type is told.
        return TokenEndpointError(realm_id, None, f"unreachable after {self.settings.max_retries}"
                                                  f" retries: {type(error).__name__}")
