"""Fault injection, observed by a ``requests`` client as a sync would observe it.

Each fault is what a QBO client meets in production: QBO's 500 fault body, the HTML 503 page of
QBO's load balancer, the XML 429 ThrottleExceeded fault, a request slower than the client's
timeout, a connection dropped mid-response, an access token that expires mid-sync. The tests use
an emulator of their own, so no switch leaks into the shared one.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
import requests

from qbo_pipeline.emulator.faults import FaultInjector, FaultKind, FaultSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline_tests.conftest import OAUTH, ConnectedRealm, connect_realm

QBO_NS = {"qbo": "http://schema.intuit.com/finance/v3"}
SLOW_SECONDS = 1.0
CLIENT_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(faults=FaultSettings(slow_seconds=SLOW_SECONDS))) as running:
        yield running


@pytest.fixture(autouse=True)
def faults_cleared(server: EmulatorServer) -> Iterator[None]:
    yield
    requests.delete(f"{server.base_url}/admin/faults", timeout=5).raise_for_status()


def schedule(server: EmulatorServer, kind: str, count: int = 1, realm_id: str | None = None,
             target: str = "accounting") -> None:
    answer = requests.post(f"{server.base_url}/admin/faults/scheduled", timeout=5,
                           json={"kind": kind, "count": count, "realm_id": realm_id,
                                 "target": target})
    assert answer.status_code == 201, answer.text


def list_customers(company: ConnectedRealm, where: str = "") -> requests.Response:
    return company.get("query", params={"query": f"SELECT * FROM Customer {where}".strip()})


def test_server_error_answers_qbo_json_fault(server: EmulatorServer,
                                             company: ConnectedRealm) -> None:
    """QBO answers an internal failure with HTTP 500 and its JSON Fault body (SystemFault)."""
    schedule(server, "server_error", realm_id=company.realm_id)
    failed = list_customers(company)
    assert failed.status_code == 500
    error = failed.json()["Fault"]["Error"][0]
    assert failed.json()["Fault"]["type"] == "SystemFault"
    assert error["code"] == "10000"
    assert list_customers(company).status_code == 200  # only the next request was scheduled


def test_service_unavailable_is_an_html_page(server: EmulatorServer,
                                             company: ConnectedRealm) -> None:
    """When QBO is down its load balancer answers 503 with an HTML page, not a JSON fault."""
    schedule(server, "service_unavailable", realm_id=company.realm_id)
    failed = list_customers(company)
    assert failed.status_code == 503
    assert failed.headers["content-type"].startswith("text/html")
    assert "503 Service Temporarily Unavailable" in failed.text
    with pytest.raises(ValueError):
        failed.json()


def test_throttle_answers_xml_even_to_a_json_client(server: EmulatorServer,
                                                    company: ConnectedRealm) -> None:
    """QBO's 429 carries the ThrottleExceeded fault, code 3001, as XML even with Accept JSON."""
    schedule(server, "throttle", realm_id=company.realm_id)
    failed = list_customers(company)
    assert failed.status_code == 429
    assert "xml" in failed.headers["content-type"]
    error = ElementTree.fromstring(failed.content).find("qbo:Fault/qbo:Error", QBO_NS)
    assert error is not None and error.get("code") == "3001"
    assert "retry-after" not in {name.lower() for name in failed.headers}


def test_slow_response_outlasts_the_client_timeout(server: EmulatorServer,
                                                   company: ConnectedRealm) -> None:
    """A QBO request can take long (QBO times out at 120 s); the client's own timeout fires."""
    schedule(server, "slow", realm_id=company.realm_id)
    with pytest.raises(requests.exceptions.ReadTimeout):
        company.session.get(company.url("query"), headers=company.headers(),
                            params={"query": "SELECT * FROM Customer"}, timeout=CLIENT_TIMEOUT)
    assert list_customers(company).status_code == 200


def test_dropped_connection_after_the_write_happened(server: EmulatorServer,
                                                     company: ConnectedRealm) -> None:
    """A connection lost mid-response leaves the client unsure whether QBO saved the write:
    QBO's answer to that is ``requestid``; here the create did happen."""
    schedule(server, "dropped_connection", realm_id=company.realm_id)
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)):
        company.post("customer", {"DisplayName": "Dropped Reply Ltd"})
    found = list_customers(company, "WHERE DisplayName = 'Dropped Reply Ltd'")
    assert found.status_code == 200
    assert len(found.json()["QueryResponse"]["Customer"]) == 1


def test_expired_token_needs_a_refresh(server: EmulatorServer, company: ConnectedRealm) -> None:
    """An expired access token gets QBO's 401 (code 3200, lowercase ``fault``) until the client
    refreshes it at the token endpoint; the refresh token stays valid."""
    schedule(server, "expired_token", realm_id=company.realm_id)
    refused = list_customers(company)
    assert refused.status_code == 401
    assert refused.json()["fault"]["error"][0]["code"] == "3200"
    assert list_customers(company).status_code == 401  # expired for good, not for one request
    company.access_token = refresh(server, company.refresh_token)
    assert list_customers(company).status_code == 200


def refresh(server: EmulatorServer, refresh_token: str) -> str:
    answer = requests.post(f"{server.base_url}/oauth2/v1/tokens/bearer", timeout=5,
                           data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                           auth=(OAUTH.client_id, OAUTH.client_secret),
                           headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_token_endpoint_fault_then_recovery(server: EmulatorServer,
                                            company: ConnectedRealm) -> None:
    """Intuit's token endpoint can be down like any service: the refresh is retried and works."""
    schedule(server, "service_unavailable", target="token")
    failed = requests.post(f"{server.base_url}/oauth2/v1/tokens/bearer", timeout=5,
                           data={"grant_type": "refresh_token",
                                 "refresh_token": company.refresh_token},
                           auth=(OAUTH.client_id, OAUTH.client_secret))
    assert failed.status_code == 503
    assert refresh(server, company.refresh_token)


def test_scheduled_fault_hits_only_its_realm(server: EmulatorServer,
                                             company: ConnectedRealm) -> None:
    """QBO's failures are per company as often as not; a switch for one realm spares others."""
    other = connect_realm(server.base_url)
    schedule(server, "server_error", count=2, realm_id=company.realm_id)
    assert list_customers(other).status_code == 200
    assert [list_customers(company).status_code for _ in range(3)] == [500, 500, 200]


def test_shares_with_a_seed_repeat_exactly(server: EmulatorServer,
                                           company: ConnectedRealm) -> None:
    """A share of QBO requests fail at random; a seed makes a run repeatable."""

    def statuses() -> list[int]:
        answer = requests.put(f"{server.base_url}/admin/faults", timeout=5,
                              json={"server_error": 0.3, "throttle": 0.2, "seed": 11})
        assert answer.status_code == 200, answer.text
        return [list_customers(company).status_code for _ in range(30)]

    first = statuses()
    assert statuses() == first
    assert {200, 429, 500} <= set(first)


def test_faults_set_at_start_up_apply_to_every_request() -> None:
    """Start-up switches (``FaultSettings`` in the config) act from the first request on."""
    with EmulatorServer(EmulatorConfig(faults=FaultSettings(service_unavailable=1.0))) as running:
        company = connect_realm(running.base_url)
        assert list_customers(company).status_code == 503


def test_admin_and_oauth_are_never_faulted(server: EmulatorServer) -> None:
    """Faults are for the QBO API only: the control plane and the consent flow keep working."""
    answer = requests.put(f"{server.base_url}/admin/faults", json={"server_error": 1.0},
                          timeout=5)
    assert answer.status_code == 200
    assert requests.get(f"{server.base_url}/admin/faults", timeout=5).status_code == 200
    company = connect_realm(server.base_url)  # consent and code exchange both still work
    assert list_customers(company).status_code == 500


def test_settings_refuse_impossible_shares() -> None:
    """Shares are fractions of requests: each within 0..1 and together at most 1."""
    with pytest.raises(ValueError, match="server_error must be between 0 and 1"):
        FaultSettings(server_error=1.5)
    with pytest.raises(ValueError, match="add up to 1.2"):
        FaultSettings(server_error=0.6, throttle=0.6)
    with pytest.raises(ValueError, match="cannot target the token endpoint"):
        FaultInjector(FaultSettings()).schedule(FaultKind.EXPIRED_TOKEN, target="token")
