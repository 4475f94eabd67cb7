"""Dagster resources: where the source DB, the state DB and QBO are. Configuration only.

Each resource carries settings and hands out the adapters of the packages it configures
(an engine, a session factory, a QBO client); what happens with them lives in those packages.
Defaults come from environment variables, falling back to a local setup: SQLite files under
`.qbo_pipeline/` and the bundled QBO emulator on 127.0.0.1:8765. Secrets (the QBO client
secret) are read through `dagster.EnvVar`, so Dagster stores the variable's name, never its value.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from dagster import ConfigurableResource, EnvVar
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.qbo import LockedTokenSet, OAuthTokenProvider, QBOClient, QBOSettings, TokenSet
from qbo_pipeline.source import create_source_engine
from qbo_pipeline.state import (
    LockedTokens,
    StateTokenStore,
    StoredTokens,
    cipher_for,
    create_state_engine,
    init_state_db,
    state_sessions,
)

LOCAL_FOLDER = ".qbo_pipeline"
SOURCE_URL_VARIABLE = "QBO_SOURCE_URL"
STATE_URL_VARIABLE = "QBO_STATE_URL"
QBO_BASE_URL_VARIABLE = "QBO_BASE_URL"
QBO_ENVIRONMENT_VARIABLE = "QBO_ENVIRONMENT"
QBO_CLIENT_ID_VARIABLE = "QBO_CLIENT_ID"
QBO_CLIENT_SECRET_VARIABLE = "QBO_CLIENT_SECRET"
QBO_REDIRECT_URI_VARIABLE = "QBO_REDIRECT_URI"

DEFAULT_SOURCE_URL = f"sqlite:///{LOCAL_FOLDER}/source.sqlite"
DEFAULT_STATE_URL = f"sqlite:///{LOCAL_FOLDER}/state.sqlite"
# The local emulator's published development app (`qbo-pipeline emulator`): not a secret.
EMULATOR_URL = "http://127.0.0.1:8765"
EMULATOR_CLIENT_ID = "qbo-emulator-client"
EMULATOR_CLIENT_SECRET = "qbo-emulator-secret"
EMULATOR_REDIRECT_URI = "http://localhost:8000/callback"
DISCOVERY_PATH = "/.well-known/openid_configuration"


class SourceDatabase(ConfigurableResource):
    """The business application's database (any SQLAlchemy URL)."""

    url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SourceDatabase:
        environ = os.environ if environ is None else environ
        return cls(url=environ.get(SOURCE_URL_VARIABLE, DEFAULT_SOURCE_URL))

    def engine(self) -> Engine:
        return _source_engine(self.url)


class StateDatabase(ConfigurableResource):
    """The pipeline's own memory (links, snapshots, quarantine, cursors, tokens)."""

    url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StateDatabase:
        environ = os.environ if environ is None else environ
        return cls(url=environ.get(STATE_URL_VARIABLE, DEFAULT_STATE_URL))

    def sessions(self) -> sessionmaker[Session]:
        """A session factory over a state DB whose tables exist."""
        return _state_sessions(self.url)


class QBOConnection(ConfigurableResource):
    """The QBO app's settings; each realm's tokens come from the state DB, encrypted."""

    base_url: str
    environment: str
    client_id: str
    # An `EnvVar` (Dagster keeps its name, reads the value when a run starts), or None for the
    # emulator's development app: a value given here would be stored in every run's snapshot.
    client_secret: str | None = None
    redirect_uri: str
    max_retries: int = 5
    backoff_seconds: float = 0.5
    throttle_backoff_seconds: float = 5.0
    # Batches of one spec in flight at once (1 to 10, QBO's cap on requests at once).
    write_concurrency: int = 4
    # QBO's minute, for the client's pacing: 60 s; a time-scaled benchmark shrinks it with the
    # emulator's (`RateLimitSettings.window_seconds`).
    rate_window_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QBOConnection:
        """Real QBO when the variables say so; else the local emulator's development app."""
        environ = os.environ if environ is None else environ
        base_url = environ.get(QBO_BASE_URL_VARIABLE, EMULATOR_URL).rstrip("/")
        secret = EnvVar(QBO_CLIENT_SECRET_VARIABLE) \
            if environ.get(QBO_CLIENT_SECRET_VARIABLE) else None
        return cls(
            base_url=base_url,
            environment=environ.get(QBO_ENVIRONMENT_VARIABLE, base_url + DISCOVERY_PATH),
            client_id=environ.get(QBO_CLIENT_ID_VARIABLE, EMULATOR_CLIENT_ID),
            client_secret=secret,
            redirect_uri=environ.get(QBO_REDIRECT_URI_VARIABLE, EMULATOR_REDIRECT_URI),
        )

    def settings(self) -> QBOSettings:
        return QBOSettings.model_validate({
            "base_url": self.base_url, "environment": self.environment,
            "client_id": self.client_id, "client_secret": self._client_secret(),
            "redirect_uri": self.redirect_uri, "max_retries": self.max_retries,
            "backoff_seconds": self.backoff_seconds,
            "throttle_backoff_seconds": self.throttle_backoff_seconds,
            "write_concurrency": self.write_concurrency,
            "rate_window_seconds": self.rate_window_seconds,
        })

    def emulator_app(self) -> bool:
        """Whether this is the bundled emulator's development app, whose OAuth server consents
        at once for its one user (no person, no browser)."""
        return self.client_id == EMULATOR_CLIENT_ID

    def _client_secret(self) -> str:
        secret = self.client_secret
        if isinstance(secret, EnvVar):
            # Outside a run (connect, disconnect, connections, the review page) Dagster has
            # not resolved the variable: the field still holds its name, not the secret.
            secret = secret.get_value()
        if secret:
            return secret
        if self.emulator_app():
            return EMULATOR_CLIENT_SECRET  # published with the emulator: not a secret
        raise ValueError(f"no client secret for the QBO app {self.client_id}: set "
                         f"{QBO_CLIENT_SECRET_VARIABLE} to the app's client secret (Intuit's "
                         f"developer portal, Keys & credentials)")

    def client(self, realm_id: str, sessions: sessionmaker[Session]) -> QBOClient:
        """A client of one realm whose tokens live (encrypted) in the state DB."""
        settings = self.settings()
        store = StateTokens(StateTokenStore(sessions, cipher_for(sessions)))
        return QBOClient(settings, realm_id, OAuthTokenProvider(settings, store))


# One engine (and its connection pool) per URL and process, shared by the steps of a run.
@functools.cache
def _source_engine(url: str) -> Engine:
    return create_source_engine(url)


@functools.cache
def _state_sessions(url: str) -> sessionmaker[Session]:
    engine = create_state_engine(url)
    init_state_db(engine)
    return state_sessions(engine)


class StateTokens:
    """The state DB's token store, in the shape the QBO client's token provider expects."""

    def __init__(self, store: StateTokenStore) -> None:
        self._store = store

    def load(self, realm_id: str) -> TokenSet | None:
        return _token_set(self._store.load(realm_id))

    def save(self, realm_id: str, tokens: TokenSet) -> None:
        self._store.save(realm_id, _stored_tokens(tokens))

    @contextlib.contextmanager
    def refreshing(self, realm_id: str) -> Iterator[LockedTokenSet]:
        """The realm's token row locked in the state DB (see `StateTokenStore.refreshing`):
        runs in other processes wait here while one refreshes."""
        with self._store.refreshing(realm_id) as locked:
            yield _LockedStateTokens(locked)


class _LockedStateTokens:
    def __init__(self, locked: LockedTokens) -> None:
        self._locked = locked

    def load(self) -> TokenSet | None:
        return _token_set(self._locked.load())

    def save(self, tokens: TokenSet) -> None:
        self._locked.save(_stored_tokens(tokens))


def _token_set(stored: StoredTokens | None) -> TokenSet | None:
    if stored is None:
        return None
    # No stored access token counts as an expired one: the provider refreshes it.
    expires = stored.access_token_expires_at or datetime.min.replace(tzinfo=UTC)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return TokenSet(stored.access_token or "", stored.refresh_token, expires,
                    stored.refresh_token_expires_at, stored.refresh_token_hard_expires_at)


def _stored_tokens(tokens: TokenSet) -> StoredTokens:
    return StoredTokens(
        refresh_token=tokens.refresh_token, access_token=tokens.access_token,
        access_token_expires_at=tokens.access_expires_at,
        refresh_token_expires_at=tokens.refresh_expires_at,
        refresh_token_hard_expires_at=tokens.refresh_hard_expires_at)
