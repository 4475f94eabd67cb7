"""Faults on the wire: throttling, 5xx, dropped connections. No write happens twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.qbo.errors import ThrottledError
from qbo_pipeline_tests.conftest import connect_realm
from qbo_pipeline_tests.qbo.conftest import ClientUnderTest, client_for
from qbo_pipeline_tests.qbo.test_client import customer


def test_throttled_request_waits_and_succeeds(qbo: ClientUnderTest) -> None:
    qbo.schedule_fault("throttle", count=2)
    assert list(qbo.client.query("select * from Term"))
    assert qbo.injected()["throttle"] >= 2


def test_throttle_past_the_retries_raises_throttled_error(qbo: ClientUnderTest) -> None:
    quick = client_for(qbo.realm, max_retries=1)
    quick.schedule_fault("throttle", count=2)
    with pytest.raises(ThrottledError, match="3001"):
        quick.client.read("Customer", "1")


def test_server_errors_and_html_503_are_retried(qbo: ClientUnderTest) -> None:
    qbo.schedule_fault("server_error")
    qbo.schedule_fault("service_unavailable")
    assert list(qbo.client.query("select * from Term"))


def test_dropped_connection_on_create_does_not_duplicate(qbo: ClientUnderTest) -> None:
    qbo.schedule_fault("dropped_connection")
    created = qbo.client.create("Customer", customer("Dropped Co"), "create-dropped-co")
    assert created["DisplayName"] == "Dropped Co"
    assert qbo.injected()["dropped_connection"] >= 1
    assert qbo.client.count("select count(*) from Customer where DisplayName = "
                            "'Dropped Co'") == 1


@pytest.fixture
def tight_server(own_server: EmulatorServer) -> Iterator[EmulatorServer]:
    response = requests.put(f"{own_server.base_url}/admin/limits",
                            json={"requests_per_minute": 5, "window_seconds": 0.5}, timeout=10)
    assert response.status_code == 200, response.text
    yield own_server


def test_client_limiter_keeps_under_qbo_limits(tight_server: EmulatorServer) -> None:
    realm = connect_realm(tight_server.base_url)
    # Without retries, any 429 would raise: the client's own limiter must prevent them.
    polite = client_for(realm, max_retries=0, requests_per_minute=5, rate_window_seconds=0.5)
    for _ in range(12):
        assert list(polite.client.query("select * from Term"))


def test_emulator_limits_bite_a_client_that_ignores_them(tight_server: EmulatorServer) -> None:
    realm = connect_realm(tight_server.base_url)
    rude = client_for(realm, max_retries=0)
    with pytest.raises(ThrottledError, match="requests per minute"):
        for _ in range(12):
            list(rude.client.query("select * from Term"))
