"""QBO's rate limits per realm, with time shrunk so the tests run in seconds.

Intuit's "API call limits and throttles": 500 requests per minute per realm ID (batch requests
included), 40 batch requests per minute, and no more than 10 requests to a realm in flight at
once; over any of them, HTTP 429 with the ThrottleExceeded fault (code 3001), sent as XML.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import pytest
import requests

from qbo_pipeline.emulator.exceptions import ThrottleExceeded
from qbo_pipeline.emulator.limits import RateLimiter, RateLimitSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline_tests.conftest import ConnectedRealm, connect_realm

QBO_NS = {"qbo": "http://schema.intuit.com/finance/v3"}
# A long "minute" keeps the counting tests independent of the machine's speed; the test of the
# window moving on shrinks it for itself.
SMALL_LIMITS = RateLimitSettings(requests_per_minute=5, concurrent_per_realm=2,
                                 batch_per_minute=2, window_seconds=30.0)
SHORT_WINDOW = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(limits=SMALL_LIMITS)) as running:
        yield running


def list_customers(company: ConnectedRealm) -> requests.Response:
    return company.get("query", params={"query": "SELECT * FROM Customer"})


def batch_query(company: ConnectedRealm) -> requests.Response:
    return company.post("batch", {"BatchItemRequest": [
        {"bId": "1", "Query": "SELECT * FROM Customer"}]})


def throttle_code(answer: requests.Response) -> str | None:
    assert answer.status_code == 429, answer.text
    assert "xml" in answer.headers["content-type"]
    error = ElementTree.fromstring(answer.content).find("qbo:Fault/qbo:Error", QBO_NS)
    return None if error is None else error.get("code")


def test_requests_over_the_per_minute_limit_get_429(company: ConnectedRealm) -> None:
    """500 requests per minute per realm (here 5 per shrunk minute); the next is refused with
    QBO's XML ThrottleExceeded fault, code 3001, and no Retry-After header (QBO sends none)."""
    assert [list_customers(company).status_code for _ in range(5)] == [200] * 5
    refused = list_customers(company)
    assert throttle_code(refused) == "3001"
    assert "retry-after" not in {name.lower() for name in refused.headers}


def test_the_limit_frees_up_after_the_window(server: EmulatorServer,
                                             company: ConnectedRealm) -> None:
    """QBO's advice after a 429 is to wait out the minute; then requests are served again."""
    limits_url = f"{server.base_url}/admin/limits"
    requests.put(limits_url, json={"window_seconds": SHORT_WINDOW}, timeout=5).raise_for_status()
    try:
        statuses = [list_customers(company).status_code for _ in range(6)]
        assert 429 in statuses
        time.sleep(SHORT_WINDOW + 0.1)
        assert list_customers(company).status_code == 200
    finally:
        requests.put(limits_url, json={"window_seconds": SMALL_LIMITS.window_seconds},
                     timeout=5).raise_for_status()


def test_limits_are_per_realm(server: EmulatorServer, company: ConnectedRealm) -> None:
    """The limits are "per realm ID and app": one busy company does not throttle another."""
    for _ in range(6):
        list_customers(company)
    assert list_customers(company).status_code == 429
    assert list_customers(connect_realm(server.base_url)).status_code == 200


def test_batch_requests_have_their_own_lower_limit(company: ConnectedRealm) -> None:
    """40 batch requests per minute per realm (here 2), whatever is left of the 500."""
    assert [batch_query(company).status_code for _ in range(2)] == [200, 200]
    assert throttle_code(batch_query(company)) == "3001"
    assert list_customers(company).status_code == 200  # plain requests are still under 5


def test_batch_requests_count_towards_the_per_minute_limit(company: ConnectedRealm) -> None:
    """QBO: "throttled at 500 requests per minute per realmId, including batch requests"."""
    statuses = [batch_query(company).status_code for _ in range(2)]
    statuses += [list_customers(company).status_code for _ in range(4)]
    assert statuses == [200] * 5 + [429]


def test_more_than_the_concurrent_limit_in_flight_gets_429(server: EmulatorServer,
                                                           company: ConnectedRealm) -> None:
    """"More than 10 concurrent ... API requests to the same realmId will get a 429" (here 2):
    two slowed requests hold both places, a third is refused at once, then all is well."""
    answer = requests.post(f"{server.base_url}/admin/faults/scheduled", timeout=5,
                           json={"kind": "slow", "count": 2, "realm_id": company.realm_id})
    assert answer.status_code == 201
    requests.put(f"{server.base_url}/admin/faults", json={"slow_seconds": 1.0}, timeout=5)
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = [pool.submit(list_customers, connect_realm_copy(company)) for _ in range(2)]
        wait_until_in_flight(server, company.realm_id, 2)
        started = time.monotonic()
        refused = list_customers(company)
        assert time.monotonic() - started < 0.5
        assert throttle_code(refused) == "3001"
        assert [future.result().status_code for future in slow] == [200, 200]
    assert list_customers(company).status_code == 200  # places are free again


def connect_realm_copy(company: ConnectedRealm) -> ConnectedRealm:
    """The same realm and token on a session of its own (a session is not for many threads)."""
    return ConnectedRealm(company.base_url, company.realm_id, company.access_token,
                          company.refresh_token, requests.Session())


def wait_until_in_flight(server: EmulatorServer, realm_id: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        usage = requests.get(f"{server.base_url}/admin/limits", timeout=5).json()["usage"]
        if usage.get(realm_id, {}).get("in_flight") == count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} requests of realm {realm_id} never were in flight together")


def test_limits_switched_off_let_everything_through() -> None:
    """The emulator's limits are on by default, like QBO's, and can be switched off."""
    config = EmulatorConfig(limits=RateLimitSettings(enabled=False, requests_per_minute=1))
    with EmulatorServer(config) as running:
        company = connect_realm(running.base_url)
        assert [list_customers(company).status_code for _ in range(3)] == [200] * 3


def test_limiter_counts_in_a_sliding_window() -> None:
    """A refused request does not count, and each admitted one leaves the window a minute later
    (a fake clock stands in for time)."""
    now = [0.0]
    limiter = RateLimiter(RateLimitSettings(requests_per_minute=2, window_seconds=60),
                          clock=lambda: now[0])

    async def admit() -> None:
        async with limiter.admit("9130", batch=False):
            pass

    asyncio.run(admit())
    now[0] = 30.0
    asyncio.run(admit())
    with pytest.raises(ThrottleExceeded, match="2 requests per minute"):
        asyncio.run(admit())
    now[0] = 60.5  # the first request left the window; the refused one never entered it
    asyncio.run(admit())
    assert limiter.usage()["9130"] == {"requests_in_window": 2, "requests_in_last_second": 1,
                                       "batches_in_window": 0, "in_flight": 0,
                                       "peak_in_flight": 1}


def test_ten_requests_a_second_then_429_until_the_second_moves_on() -> None:
    """Intuit's per-second limit, 10 requests a second per company and app, beside the minute's
    500: the eleventh within a second is 429 ThrottleExceeded; the second scales with the
    minute when a test shrinks time (here a 60 s minute, so a 1 s second)."""
    now = [0.0]
    limiter = RateLimiter(RateLimitSettings(requests_per_second=10), clock=lambda: now[0])

    async def admit() -> None:
        async with limiter.admit("9130", batch=False):
            pass

    for tick in range(10):
        now[0] = tick * 0.05
        asyncio.run(admit())
    with pytest.raises(ThrottleExceeded, match="10 requests per second"):
        asyncio.run(admit())
    now[0] = 1.01  # the first of the ten left the last second
    asyncio.run(admit())
    assert limiter.usage()["9130"]["requests_in_last_second"] == 10


def test_the_per_second_limit_is_off_unless_set() -> None:
    """Off by default (tests talk to the emulator without a client that paces itself); the
    `qbo-pipeline emulator` command sets QBO's 10."""
    limiter = RateLimiter(RateLimitSettings(), clock=lambda: 0.0)

    async def admit() -> None:
        async with limiter.admit("9130", batch=False):
            pass

    for _ in range(30):
        asyncio.run(admit())
    with pytest.raises(ValueError, match="requests_per_second must be a whole number >= 1"):
        RateLimitSettings(requests_per_second=0)


def test_settings_refuse_nonsense() -> None:
    """Limits are whole numbers of requests and a positive window; mistakes say which field."""
    with pytest.raises(ValueError, match="concurrent_per_realm must be a whole number >= 1"):
        RateLimitSettings(concurrent_per_realm=0)
    with pytest.raises(ValueError, match="window_seconds must be > 0"):
        RateLimitSettings(window_seconds=0)
    with pytest.raises(ValueError, match="unknown rate limit setting"):
        RateLimitSettings().updated({"requests_per_hour": 5})
