"""Clients of the emulator, built the way the pipeline builds them: settings, tokens, client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.qbo.client import QBOClient
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.tokens import InMemoryTokenStore, OAuthTokenProvider, TokenSet
from qbo_pipeline_tests.conftest import OAUTH, REDIRECT_URI, ConnectedRealm


def emulator_settings(base_url: str, **overrides: Any) -> QBOSettings:
    """Real defaults, but waits short enough that a test of retries takes well under a second."""
    fast: dict[str, Any] = {"backoff_seconds": 0.01, "throttle_backoff_seconds": 0.05,
                            "timeout_seconds": 5.0}
    return QBOSettings.for_emulator(base_url, OAUTH.client_id, OAUTH.client_secret,
                                    REDIRECT_URI, **{**fast, **overrides})


@dataclass
class ClientUnderTest:
    client: QBOClient
    tokens: OAuthTokenProvider
    store: InMemoryTokenStore
    realm: ConnectedRealm

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.realm.base_url}/admin/{path}", json=body,
                                    timeout=10)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def schedule_fault(self, kind: str, count: int = 1) -> None:
        self.admin("POST", "faults/scheduled",
                   {"kind": kind, "count": count, "realm_id": self.realm.realm_id})

    def injected(self) -> dict[str, int]:
        counts: dict[str, int] = self.admin("GET", "faults")["injected"]
        return counts


def client_for(realm: ConnectedRealm, **overrides: Any) -> ClientUnderTest:
    settings = emulator_settings(realm.base_url, **overrides)
    store = InMemoryTokenStore()
    store.save(realm.realm_id, TokenSet(realm.access_token, realm.refresh_token,
                                        datetime.now(UTC) + timedelta(hours=1)))
    tokens = OAuthTokenProvider(settings, store)
    return ClientUnderTest(QBOClient(settings, realm.realm_id, tokens), tokens, store, realm)


@pytest.fixture
def qbo(realm: ConnectedRealm) -> Iterator[ClientUnderTest]:
    under_test = client_for(realm)
    yield under_test
    under_test.client.close()


@pytest.fixture
def own_server() -> Iterator[EmulatorServer]:
    """An emulator of this test's own, for switches that apply to every realm (limits)."""
    with EmulatorServer() as server:
        yield server
