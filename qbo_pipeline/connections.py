"""Connecting a QBO company: the OAuth authorization-code flow, tokens stored encrypted.

Against the local emulator consent is immediate; against QBO a person consents in a browser
and the address QBO redirected to is handed back (`ask_redirect`). The redirect's parsing and
checks are QBO protocol (`qbo.parse_consent_redirect`); this module stores the outcome.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date
from urllib.parse import urlencode

import requests

from qbo_pipeline.defs.resources import QBOConnection, StateDatabase, StateTokens
from qbo_pipeline.defs.runner import SyncResources
from qbo_pipeline.qbo import OAuthTokenProvider, parse_consent_redirect
from qbo_pipeline.state import StateTokenStore, cipher_for, upsert_realm

AskRedirect = Callable[[str], str]
"""Given the consent address, returns the address QBO redirected to after consent."""

CONSENT_TIMEOUT_SECONDS = 30


def token_provider(qbo: QBOConnection, state_db: StateDatabase) -> OAuthTokenProvider:
    """The provider that stores a realm's tokens, encrypted, in the state DB."""
    sessions = state_db.sessions()
    store = StateTokens(StateTokenStore(sessions, cipher_for(sessions)))
    return OAuthTokenProvider(qbo.settings(), store)


def connect_company(resources: SyncResources, realm_id: str | None = None,
                    ask_redirect: AskRedirect | None = None) -> str:
    """Consent, swap the code for tokens and register the realm; returns its id.

    `realm_id` asks the emulator for that company back (after a restart); real QBO ignores it.
    """
    state = secrets.token_urlsafe(16)
    url = token_provider(resources.qbo, resources.state_db).authorization_url(state)
    if realm_id:
        url += "&" + urlencode({"realm_id": realm_id})
    consent = requests.get(url, allow_redirects=False, timeout=CONSENT_TIMEOUT_SECONDS)
    location = consent.headers.get("Location", "")
    if not location.startswith(resources.qbo.redirect_uri):
        if ask_redirect is None:
            raise ConnectionError("QBO asks a person to consent: open the consent address "
                                  "in a browser (run `qbo-pipeline connect` in a terminal)")
        location = ask_redirect(url)
    return complete_connection(resources.qbo, resources.state_db, location, state)


def complete_connection(qbo: QBOConnection, state_db: StateDatabase, redirect_url: str,
                        expected_state: str, sync_start: date | None = None) -> str:
    """Finish connecting from the consent screen's redirect: swap its code for tokens (stored
    encrypted) and register the realm. Returns the realm id."""
    consent = parse_consent_redirect(redirect_url, expected_state)
    token_provider(qbo, state_db).exchange_code(consent.realm_id, consent.code)
    with state_db.sessions().begin() as session:
        upsert_realm(session, consent.realm_id, sync_start_date=sync_start)
    return consent.realm_id
