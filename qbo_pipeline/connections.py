"""Connecting a QBO company: the OAuth authorization-code flow, tokens stored encrypted.

How the consent redirect comes back is a `Consent`: the emulator's development app consents at
once (`immediate_consent`); with a redirect URI on this machine a person consents in a browser
and a local server receives the redirect (`browser_consent`); with any other redirect URI the
person pastes the address the browser ended on (`pasted_consent`). The redirect's parsing and
checks are QBO protocol (`qbo.parse_consent_redirect`); this module stores the outcome.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from dagster import DagsterInstance

from qbo_pipeline.defs.partitions import REALM_DIMENSION
from qbo_pipeline.defs.resources import QBOConnection, StateDatabase, StateTokens
from qbo_pipeline.defs.runner import SyncResources
from qbo_pipeline.qbo import (
    CallbackAddress,
    ConsentError,
    OAuthTokenProvider,
    local_callback,
    parse_consent_redirect,
)
from qbo_pipeline.qbo.callback import ConsentReceiver, Finish
from qbo_pipeline.qbo.errors import AuthError, QBOError
from qbo_pipeline.state import (
    StateTokenStore,
    cipher_for,
    disconnect_realm,
    get_realm,
    last_sync_finished,
    list_realms,
    realm_history,
    token_expiry,
    upsert_realm,
)
from qbo_pipeline.state.repository import StateError
from qbo_pipeline.sync.connection_health import (
    ConnectionHealth,
    refresh_token_end,
    stored_connection_health,
)

AskRedirect = Callable[[str], str]
"""Given the consent address, returns the address QBO redirected to after consent."""
Show = Callable[[str], None]
"""Puts the consent address before the person (opens a browser on it, or prints it)."""
Consent = Callable[[str, Finish], str]
"""Has the consent address (its first argument) consented to, and hands the redirect that
comes back to `Finish`; returns the realm id `Finish` connected."""

CONSENT_TIMEOUT_SECONDS = 30  # the emulator's immediate answer


def token_provider(qbo: QBOConnection, state_db: StateDatabase) -> OAuthTokenProvider:
    """The provider that stores a realm's tokens, encrypted, in the state DB."""
    sessions = state_db.sessions()
    store = StateTokens(StateTokenStore(sessions, cipher_for(sessions)))
    return OAuthTokenProvider(qbo.settings(), store)


def connect_company(resources: SyncResources, realm_id: str | None = None,
                    consent: Consent | None = None) -> str:
    """Consent, swap the code for tokens and register the realm; returns its id.

    `consent` defaults to the emulator's immediate one. `realm_id` asks the emulator for that
    company back (after a restart); real QBO ignores it.
    """
    state = secrets.token_urlsafe(16)  # the CSRF guard: only its own redirect completes this
    url = token_provider(resources.qbo, resources.state_db).authorization_url(state)
    if realm_id:
        url += "&" + urlencode({"realm_id": realm_id})

    def finish(redirect_url: str) -> str:
        return complete_connection(resources.qbo, resources.state_db, redirect_url, state)

    chosen = consent or immediate_consent(resources.qbo.redirect_uri)
    return chosen(url, finish)


def consent_for(qbo: QBOConnection, show: Show, ask_redirect: AskRedirect,
                timeout_seconds: float) -> Consent:
    """How `qbo-pipeline connect` gets consent with this configuration (see the module)."""
    if qbo.emulator_app():
        return immediate_consent(qbo.redirect_uri)
    address = local_callback(qbo.redirect_uri)
    if address is None:
        return pasted_consent(ask_redirect)
    return browser_consent(address, show, timeout_seconds)


def immediate_consent(redirect_uri: str) -> Consent:
    """The emulator's consent: it redirects at once, so the redirect is read, not followed."""
    def consent(url: str, finish: Finish) -> str:
        answer = requests.get(url, allow_redirects=False, timeout=CONSENT_TIMEOUT_SECONDS)
        location = answer.headers.get("Location", "")
        if not location.startswith(redirect_uri):
            raise ConsentError("QBO asks a person to consent: run `qbo-pipeline connect` in a "
                               "terminal, with the QBO app's QBO_CLIENT_ID and QBO_REDIRECT_URI")
        return finish(location)
    return consent


def browser_consent(address: CallbackAddress, show: Show, timeout_seconds: float) -> Consent:
    """A person consents in a browser; a server on 127.0.0.1 receives the redirect, or
    `ConsentError` says nobody consented within `timeout_seconds`."""
    def consent(url: str, finish: Finish) -> str:
        with ConsentReceiver(address, finish) as receiver:
            show(url)  # once listening, so that even an instant redirect finds the server
            return receiver.wait(timeout_seconds)
    return consent


def pasted_consent(ask_redirect: AskRedirect) -> Consent:
    """The redirect URI is not on this machine: the person pastes where the browser ended."""
    def consent(url: str, finish: Finish) -> str:
        return finish(ask_redirect(url))
    return consent


def complete_connection(qbo: QBOConnection, state_db: StateDatabase, redirect_url: str,
                        expected_state: str, sync_start: date | None = None) -> str:
    """Finish connecting from the consent screen's redirect: swap its code for tokens (stored
    encrypted) and register the realm. Returns the realm id."""
    consent = parse_consent_redirect(redirect_url, expected_state)
    token_provider(qbo, state_db).exchange_code(consent.realm_id, consent.code)
    with state_db.sessions().begin() as session:
        upsert_realm(session, consent.realm_id, sync_start_date=sync_start)
    return consent.realm_id


# --- disconnecting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Disconnected:
    """What `disconnect_company` did: whether Intuit revoked the tokens, and what is kept."""

    realm_id: str
    revoke_problem: str | None
    kept: dict[str, int]


def disconnect_company(resources: SyncResources, realm_id: str,
                       instance: DagsterInstance | None = None) -> Disconnected:
    """Revoke the company's tokens at Intuit, forget them, and drop its `realm` partition.

    Its links, conflicts, quarantine and run history stay, so that a reconnect goes on where
    it stopped. A revoke Intuit does not confirm is reported, not fatal: the tokens are
    forgotten here either way, and can also be revoked in QBO's app settings.
    """
    with resources.state_db.sessions().begin() as session:
        realm = get_realm(session, realm_id)
        if realm is None or realm.disconnected_at is not None:
            known = ", ".join(r.realm_id for r in list_realms(session)) or "none"
            raise StateError(f"company {realm_id} is not connected (connected: {known})")
    problem: str | None = None
    try:
        token_provider(resources.qbo, resources.state_db).revoke(realm_id)
    except AuthError as error:  # a refused or expired grant too
        problem = str(error)
    with resources.state_db.sessions().begin() as session:
        disconnect_realm(session, realm_id)
        kept = realm_history(session, realm_id)
    if instance is not None and instance.has_dynamic_partition(REALM_DIMENSION, realm_id):
        instance.delete_dynamic_partition(REALM_DIMENSION, realm_id)
    return Disconnected(realm_id, problem, kept)


# --- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionView:
    """One company as `qbo-pipeline connections` shows it."""

    realm_id: str
    company_name: str | None
    connected_at: datetime
    disconnected_at: datetime | None
    last_sync: datetime | None
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None  # rolling: pushed back by each rotation
    refresh_token_hard_expires_at: datetime | None  # Intuit's maximum; None when unknown
    health: ConnectionHealth

    @property
    def refresh_token_ends_at(self) -> datetime | None:
        """When the refresh token stops working: the earlier of its two expiries."""
        return refresh_token_end(self.refresh_token_expires_at,
                                 self.refresh_token_hard_expires_at)

    def to_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()
        return {"realm_id": self.realm_id, "company_name": self.company_name,
                "status": str(self.health.level), "message": self.health.message,
                "refresh_token_days_left": self.health.days_left,
                "connected_at": when(self.connected_at),
                "disconnected_at": when(self.disconnected_at), "last_sync": when(self.last_sync),
                "access_token_expires_at": when(self.access_token_expires_at),
                "refresh_token_expires_at": when(self.refresh_token_expires_at),
                "refresh_token_hard_expires_at": when(self.refresh_token_hard_expires_at),
                "refresh_token_ends_at": when(self.refresh_token_ends_at)}


def list_connections(resources: SyncResources, *,
                     now: datetime | None = None) -> list[ConnectionView]:
    """Every company the state DB knows, connected or not, each that can sync with its name
    from QBO's CompanyInfo (a company QBO refuses shows the reason instead)."""
    moment = now or datetime.now(UTC)
    with resources.state_db.sessions().begin() as session:
        rows = [(realm, token_expiry(session, realm.realm_id),
                 last_sync_finished(session, realm.realm_id))
                for realm in list_realms(session, include_disconnected=True)]
    views = []
    for realm, expiry, last_sync in rows:
        health = stored_connection_health(realm.realm_id, expiry, moment,
                                          connected=realm.disconnected_at is None)
        refresh_expiry = expiry.refresh_token_expires_at if expiry else None
        hard_expiry = expiry.refresh_token_hard_expires_at if expiry else None
        name = _company_name(resources, realm.realm_id) if health.syncs else None
        views.append(ConnectionView(
            realm.realm_id, name, realm.connected_at, realm.disconnected_at, last_sync,
            expiry.access_token_expires_at if expiry else None, refresh_expiry, hard_expiry,
            health))
    return views


def _company_name(resources: SyncResources, realm_id: str) -> str:
    client = resources.qbo.client(realm_id, resources.state_db.sessions())
    try:
        info = client.read("CompanyInfo", realm_id)
    except QBOError as error:  # authorization failures included
        return f"(QBO refused: {error})"
    finally:
        client.close()
    return str(info.get("CompanyName") or "(no name in QBO)")
