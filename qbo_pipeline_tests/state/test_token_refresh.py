"""Two runs (two processes) refreshing one realm's tokens at once, on the shared state DB,
against the emulator over HTTP: the realm's refresh is serialized in the state DB, so Intuit is
asked once, both runs end with the same working access token and the newest refresh token is
the one stored.

The emulator rotates the refresh token on every refresh here (Intuit may rotate on any of them)
and holds the token endpoint's answer in flight, so a second refresh started from the stored
refresh token while the first is under way would get `invalid_grant`, and a second refresh
after it would show as a second slowed answer.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from qbo_pipeline.defs.resources import StateTokens
from qbo_pipeline.emulator.faults import FaultSettings
from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.qbo import OAuthTokenProvider, TokenSet
from qbo_pipeline.qbo.errors import ConnectionExpiredError
from qbo_pipeline.state import (
    SecretCipher,
    StateTokenStore,
    create_state_engine,
    init_state_db,
    state_sessions,
)
from qbo_pipeline_tests.conftest import connect_realm
from qbo_pipeline_tests.postgres import POSTGRES_URL, temporary_schema
from qbo_pipeline_tests.qbo.conftest import emulator_settings
from qbo_pipeline_tests.state.refresh_worker import RunSetup, digest, run_needing_a_token

RUNS = 2
SLOW_SECONDS = 1.5  # the first refresh's answer is held this long: the others arrive meanwhile


@pytest.fixture(scope="module")
def rotating_emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(oauth=OAuthSettings(refresh_token_rotation_seconds=0),
                            faults=FaultSettings(slow_seconds=SLOW_SECONDS))
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest,
                   tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A state DB URL and schema the runs share, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'state.db'}", None
        return
    with temporary_schema("qbo_refresh_test") as schema:
        yield POSTGRES_URL, schema


def admin(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{server.base_url}/admin/{path}", json=body,
                                timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_two_processes_refreshing_at_once_keep_the_newest_refresh_token(
        rotating_emulator: EmulatorServer, state_location: tuple[str, str | None]) -> None:
    state_url, schema = state_location
    engine = create_state_engine(state_url, schema=schema)
    init_state_db(engine)
    key = Fernet.generate_key().decode()
    store = StateTokens(StateTokenStore(state_sessions(engine), SecretCipher([key])))
    realm = connect_realm(rotating_emulator.base_url)
    # The runs find the access token expired: each would refresh it.
    store.save(realm.realm_id, TokenSet(realm.access_token, realm.refresh_token,
                                        datetime.now(UTC) - timedelta(minutes=5)))
    settings = emulator_settings(rotating_emulator.base_url)
    # Every token request of the next RUNS is held in flight: a second refresh would count.
    admin(rotating_emulator, "POST", "faults/scheduled",
          {"kind": "slow", "count": RUNS, "target": "token"})
    slowed_before = slowed(rotating_emulator)

    outcomes = run_at_once(RunSetup(state_url, schema, key, settings, realm.realm_id))

    token_requests = slowed(rotating_emulator) - slowed_before
    admin(rotating_emulator, "DELETE", "faults")

    assert [outcome[0] for outcome in outcomes] == ["ok"] * RUNS, outcomes
    stored = store.load(realm.realm_id)
    assert stored is not None
    # One refresh: every run uses the access token it gave, which QBO accepted.
    assert {outcome[1] for outcome in outcomes} == {digest(stored.access_token)}
    assert token_requests == 1
    # The stored refresh token is the newest: it refreshes, and the one it replaced is spent.
    assert stored.refresh_token != realm.refresh_token
    provider = OAuthTokenProvider(settings, store)
    assert provider.refresh_access_token(realm.realm_id, stored.access_token)
    store.save(realm.realm_id, TokenSet("spent", realm.refresh_token, datetime.now(UTC)))
    with pytest.raises(ConnectionExpiredError):
        provider.refresh_access_token(realm.realm_id, "spent")
    engine.dispose()
    realm.session.close()


def slowed(server: EmulatorServer) -> int:
    """How many requests the emulator has held in flight so far (it counts every fault)."""
    return int(admin(server, "GET", "faults")["injected"].get("slow", 0))


def run_at_once(setup: RunSetup) -> list[tuple[str, str, str]]:
    """Start RUNS processes that wait for each other, then all need the realm's token."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(RUNS)
    results = context.Queue()
    processes = [context.Process(target=run_needing_a_token, args=(setup, start, results))
                 for _ in range(RUNS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return outcomes
