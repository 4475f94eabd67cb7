"""A run of its own (a spawned process) that needs a realm's access token: the pipeline's
token provider on the shared state DB, against the emulator over HTTP.

Kept apart from the test module so that a spawned process imports only what a run imports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from qbo_pipeline.defs.resources import StateTokens
from qbo_pipeline.qbo import OAuthTokenProvider, QBOClient, QBOSettings
from qbo_pipeline.state import (
    SecretCipher,
    StateTokenStore,
    create_state_engine,
    state_sessions,
)


@dataclass(frozen=True)
class RunSetup:
    """What a spawned run is told (picklable): where the state DB and QBO are."""

    state_url: str
    schema: str | None
    secret_key: str
    settings: QBOSettings
    realm_id: str


def digest(token: str) -> str:
    """What a run reports of a token: enough to compare, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def run_needing_a_token(setup: RunSetup, start: Any, results: Any) -> None:
    """Wait for the other runs, then get an access token as a sync does (the stored one is
    expired, so it is refreshed) and use it against QBO. Reports the token's digest and the
    company's name, or the error."""
    engine = create_state_engine(setup.state_url, schema=setup.schema)
    try:
        sessions = state_sessions(engine)
        store = StateTokens(StateTokenStore(sessions, SecretCipher([setup.secret_key])))
        provider = OAuthTokenProvider(setup.settings, store)
        client = QBOClient(setup.settings, setup.realm_id, provider)
        start.wait(timeout=60)
        try:
            token = provider.access_token(setup.realm_id)
            company = client.read("CompanyInfo", setup.realm_id)
            results.put(("ok", digest(token), str(company.get("CompanyName"))))
        except Exception as error:  # reported to the test, which fails with it
            results.put(("error", type(error).__name__, str(error)))
        finally:
            client.close()
    finally:
        engine.dispose()
