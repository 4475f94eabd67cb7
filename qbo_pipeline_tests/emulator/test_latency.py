"""QBO's pace on the emulator (issue 12: "a configurable answer latency per request kind (a
fixed delay or a distribution), so that benchmarks and tests can run at QBO's real pace").
Over real HTTP: the delay is the server's, taken while the request holds its place in flight."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from qbo_pipeline.emulator.latency import Delay, LatencySettings, RequestKind
from qbo_pipeline.emulator.limits import RateLimitSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline_tests.conftest import ConnectedRealm, connect_realm

QUERY = {"query": "SELECT * FROM Item"}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    # Two in flight at most, so that a held place shows as a 429 for a third.
    config = EmulatorConfig(latency=LatencySettings.from_dict({"query": 0.4}),
                            limits=RateLimitSettings(concurrent_per_realm=2))
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def company(server: EmulatorServer) -> ConnectedRealm:
    return connect_realm(server.base_url)


def timed(call: Callable[[], requests.Response]) -> float:
    started = time.perf_counter()
    answer = call()
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def test_a_kind_answers_after_its_delay_and_the_others_at_once(company: ConnectedRealm) -> None:
    assert timed(lambda: company.get("query", params=QUERY)) >= 0.4
    assert timed(lambda: company.get("companyinfo/" + company.realm_id)) < 0.3


def test_a_slow_answer_holds_its_place_in_flight(company: ConnectedRealm) -> None:
    """As on QBO, where a slow answer keeps its slot among the 10 allowed at once."""
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: company.get("query", params=QUERY).status_code,
                                range(3)))
    assert sorted(answers) == [200, 200, 429]


def test_latency_is_set_and_read_at_run_time(server: EmulatorServer,
                                             company: ConnectedRealm) -> None:
    admin = f"{server.base_url}/admin/latency"
    try:
        changed = requests.put(admin, json={"read": {"low": 0.2, "high": 0.3}, "seed": 3},
                               timeout=5)
        assert changed.status_code == 200, changed.text
        assert changed.json()["delays"]["read"] == {"low": 0.2, "high": 0.3}
        assert changed.json()["delays"]["query"] == 0.0  # replaced whole: not named, no delay
        took = timed(lambda: company.get("companyinfo/" + company.realm_id))
        assert 0.2 <= took < 0.6
        refused = requests.put(admin, json={"writes": 1}, timeout=5)
        assert refused.status_code == 400 and "unknown request kind(s) writes" in refused.text
        refused = requests.put(admin, json={"batch": {"low": 2, "high": 1}}, timeout=5)
        assert refused.status_code == 400 and "latency of batch" in refused.text
    finally:
        requests.put(admin, json={"query": 0.4}, timeout=5)


def test_distributions_draw_within_their_bounds_and_repeat_with_a_seed() -> None:
    uniform = Delay.parse("batch", {"low": 1.5, "high": 2.5})
    draws = [uniform.draw(random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1 and 1.5 <= draws[0] <= 2.5
    normal = Delay.parse("batch", {"mean": 0.05, "sd": 1.0})
    assert min(normal.draw(random.Random(seed)) for seed in range(200)) == 0.0  # cut at zero
    every = LatencySettings.from_dict({"all": 1.0, "cdc": 0.0})
    assert every.delays[RequestKind.BATCH].fixed == 1.0 and every.delays[RequestKind.CDC].fixed == 0
