"""OAuth 2.0 tokens per realm, through intuit-oauth's ``AuthClient``.

Access tokens live an hour and refresh tokens rotate: every refresh may hand back a new refresh
token, and the old one stops working soon after, so the new one is saved before anything else.
``TokenStore`` is where they are kept (the state DB, encrypted; or memory).

Several runs may find a realm's access token expired at once, in threads or in processes. Each
refresh runs inside ``TokenStore.refreshing``, which lets one of them at a time in (the state DB
locks the realm's token row) and re-reads the stored tokens there; ``decide_refresh`` then says
whether to refresh at Intuit or to take what another run stored meanwhile. So a realm's tokens
are refreshed once per expiry, and no run ever refreshes with, or stores, a spent refresh token.

A refresh token dies at the earlier of its rolling expiry (``x_refresh_token_expires_in``, 100
days from its last rotation) and Intuit's hard maximum (``x_refresh_token_hard_expires_in``,
sent when asked for); both are recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
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
    """One realm's tokens. The token values never appear in ``repr``.

    ``refresh_expires_at`` is the refresh token's rolling expiry, ``refresh_hard_expires_at``
    Intuit's hard maximum for it (None when the token endpoint did not say).
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None = None
    refresh_hard_expires_at: datetime | None = None

    def access_expired(self, now: datetime) -> bool:
        return now + EXPIRY_MARGIN >= self.access_expires_at


class RefreshDecision(StrEnum):
    REFRESH = "refresh"  # ask Intuit for new tokens
    USE_STORED = "use_stored"  # another run refreshed since the caller looked: take its tokens


def decide_refresh(stored: TokenSet, seen_access_token: str, now: datetime) -> RefreshDecision:
    """What to do with a realm's tokens, re-read once its refresh is serialized, when the
    caller found ``seen_access_token`` expired or rejected by QBO.

    Stored tokens with another access token, still valid, were stored by a run that refreshed
    meanwhile: refreshing again would spend the refresh token it just got, so they are taken as
    they are. Otherwise (the same token, none, or one expired too) the tokens are refreshed.
    """
    if (stored.access_token and stored.access_token != seen_access_token
            and not stored.access_expired(now)):
        return RefreshDecision.USE_STORED
    return RefreshDecision.REFRESH


def keep_known_hard_expiry(fresh: TokenSet, previous: TokenSet) -> TokenSet:
    """The hard maximum belongs to the consent, not to one refresh token: an answer that does
    not repeat it leaves the one known before."""
    if fresh.refresh_hard_expires_at is not None or previous.refresh_hard_expires_at is None:
        return fresh
    return replace(fresh, refresh_hard_expires_at=previous.refresh_hard_expires_at)


class LockedTokenSet(Protocol):
    """A realm's stored tokens while its refresh is serialized (``TokenStore.refreshing``)."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class TokenStore(Protocol):
    """Persistence of tokens per realm (the state DB implements this, encrypted at rest)."""

    def load(self, realm_id: str) -> TokenSet | None: ...

    def save(self, realm_id: str, tokens: TokenSet) -> None: ...

    def refreshing(self, realm_id: str) -> AbstractContextManager[LockedTokenSet]:
        """The realm's tokens, held against every other refresh of the realm (in any thread,
        and for a shared store in any process) until the block ends; what the block saves is
        stored when it ends, before the next refresh is let in."""
        ...


class InMemoryTokenStore:
    """A ``TokenStore`` for tests and one-off runs: tokens vanish with the process."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenSet] = {}
        self._lock = threading.Lock()
        self._realm_locks: dict[str, threading.Lock] = {}

    def load(self, realm_id: str) -> TokenSet | None:
        with self._lock:
            return self._tokens.get(realm_id)

    def save(self, realm_id: str, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens[realm_id] = tokens

    @contextmanager
    def refreshing(self, realm_id: str) -> Iterator[LockedTokenSet]:
        with self._lock:
            realm_lock = self._realm_locks.setdefault(realm_id, threading.Lock())
        with realm_lock:
            yield _InMemoryLockedTokens(self, realm_id)


@dataclass(frozen=True)
class _InMemoryLockedTokens:
    store: InMemoryTokenStore
    realm_id: str

    def load(self) -> TokenSet | None:
        return self.store.load(self.realm_id)

    def save(self, tokens: TokenSet) -> None:
        self.store.save(self.realm_id, tokens)


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

    def _client(self) -> AuthClient:
        # AuthClient fetches the discovery document when built: build it once, on first use.
        if self._auth_client is None:
            client = AuthClient(
                client_id=self.settings.client_id,
                client_secret=self.settings.client_secret.get_secret_value(),
                redirect_uri=self.settings.redirect_uri,
                environment=self.settings.environment,
            )
            # Intuit reports a refresh token's hard maximum lifetime only when asked to.
            client.include_refresh_token_hard_expires_in = True
            # AuthClient is a requests session: a 5xx or a dropped connection of the token
            # endpoint is retried with backoff as QBO's API calls are, not failing the run.
            mount_retries(client, self.settings)
            self._auth_client = client
        return self._auth_client

    def authorization_url(self, state: str, scopes: Sequence[Scopes] = (Scopes.ACCOUNTING,)
                          ) -> str:
        """Where to send a person to connect a QBO company (the consent screen)."""
        with self._client_lock:
            return str(self._client().get_authorization_url(list(scopes), state_token=state))

    def exchange_code(self, realm_id: str, code: str) -> TokenSet:
        """Swap the authorization code from the redirect for tokens, and store them."""
        with self._client_lock:
            client = self._client()
            self._call_token_endpoint(client, realm_id, lambda: client.get_bearer_token(
                code, realm_id=realm_id), refused_grant="authorization_code_refused")
            tokens = self._tokens_from(client)
        self.store.save(realm_id, tokens)
        return tokens

    def revoke(self, realm_id: str) -> None:
        """Revoke the realm's refresh token at Intuit's revoke endpoint: it and the access
        tokens it gave stop working. The stored tokens are left to the caller to forget."""
        tokens = self._stored(realm_id)
        with self._client_lock:
            client = self._client()
            self._call_token_endpoint(client, realm_id, lambda: client.revoke(
                token=tokens.refresh_token))

    def access_token(self, realm_id: str) -> str:
        tokens = self._stored(realm_id)
        if tokens.access_expired(self._clock()):
            return self.refresh_access_token(realm_id, tokens.access_token)
        return tokens.access_token

    def refresh_access_token(self, realm_id: str, rejected_token: str) -> str:
        """Refresh once per rejected token, however many threads or processes saw it rejected:
        the first one in refreshes, the others take what it stored."""
        with self.store.refreshing(realm_id) as locked:
            tokens = locked.load()
            if tokens is None:
                raise ConnectionExpiredError(realm_id, "no tokens stored: never connected")
            decision = decide_refresh(tokens, rejected_token, self._clock())
            if decision is RefreshDecision.USE_STORED:
                return tokens.access_token
            fresh = keep_known_hard_expiry(self._refresh(realm_id, tokens), tokens)
            # Stored before the realm is let go: no other refresh can start from the refresh
            # token this one just spent.
            locked.save(fresh)
            return fresh.access_token

    def _refresh(self, realm_id: str, tokens: TokenSet) -> TokenSet:
        with self._client_lock:
            client = self._client()
            self._call_token_endpoint(client, realm_id, lambda: client.refresh(
                refresh_token=tokens.refresh_token))
            return self._tokens_from(client)

    def _call_token_endpoint(self, client: AuthClient, realm_id: str, call: Callable[[], Any],
                             refused_grant: str = "token_refresh_failed") -> None:
        """Call Intuit's token or revoke endpoint with retries; its failures become our errors,
        which never carry the request (it holds tokens). ``refused_grant``: the catalog entry
        of an ``invalid_grant``."""
        # AuthClient keeps every field of the last answer, whichever realm it was for: an
        # expiry this answer leaves out must not be another answer's.
        client.x_refresh_token_expires_in = None
        client.x_refresh_token_hard_expires_in = None
        try:
            retrying_cut_bodies(call, self.settings)()
        except AuthClientError as error:
            raise self._token_error(realm_id, error, refused_grant) from None
        except requests.RequestException as error:
            raise self._unreachable(realm_id, error) from None

    def _stored(self, realm_id: str) -> TokenSet:
        tokens = self.store.load(realm_id)
        if tokens is None:
            raise ConnectionExpiredError(realm_id, "no tokens stored: never connected, or "
                                                   "disconnected", "no_connection")
        return tokens

    def _tokens_from(self, client: AuthClient) -> TokenSet:
        now = self._clock()
        return TokenSet(
            access_token=str(client.access_token),
            refresh_token=str(client.refresh_token),
            access_expires_at=now + timedelta(seconds=int(client.expires_in or 0)),
            refresh_expires_at=_after(now, client.x_refresh_token_expires_in),
            refresh_hard_expires_at=_after(now, client.x_refresh_token_hard_expires_in),
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


def _after(now: datetime, seconds: Any) -> datetime | None:
    """`now` plus a lifetime the token endpoint gave in seconds (None when it gave none)."""
    return now + timedelta(seconds=int(seconds)) if seconds else None
