"""The client-side limiter keeps a realm under QBO's requests-per-minute and in-flight caps."""

from __future__ import annotations

import threading
import time

from qbo_pipeline.qbo.limits import RealmRateLimiter


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_requests_over_the_window_wait_for_the_oldest_to_age_out() -> None:
    fake = FakeTime()
    limiter = RealmRateLimiter(requests_per_window=3, window_seconds=60.0, clock=fake.clock,
                               sleep=fake.sleep)
    sent_at = []
    for _ in range(7):
        with limiter.slot():
            sent_at.append(fake.now)
        fake.now += 1.0
    assert sent_at == [0.0, 1.0, 2.0, 60.0, 61.0, 62.0, 120.0]
    for index in range(3, len(sent_at)):
        assert sent_at[index] - sent_at[index - 3] >= 60.0


def test_at_most_max_concurrent_requests_are_in_flight() -> None:
    limiter = RealmRateLimiter(requests_per_window=1000, max_concurrent=3)
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def request() -> None:
        nonlocal in_flight, peak
        with limiter.slot():
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3


def test_batch_requests_have_their_own_smaller_window() -> None:
    fake = FakeTime()
    limiter = RealmRateLimiter(requests_per_window=100, batches_per_window=2,
                               window_seconds=10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        with limiter.slot(batch=True):
            pass
    with limiter.slot():
        pass
    assert fake.now == 10.0  # the third batch waited for the window; plain requests did not


def test_window_counts_from_when_a_request_finished() -> None:
    fake = FakeTime()
    limiter = RealmRateLimiter(requests_per_window=1, window_seconds=10.0, clock=fake.clock,
                               sleep=fake.sleep)
    with limiter.slot():
        fake.now = 25.0  # a slow answer: QBO may have counted it late
    with limiter.slot():
        started = fake.now
    assert started == 35.0


def test_ten_requests_a_second_at_most() -> None:
    """QBO's per-second limit (10 requests a second per company and app): the eleventh waits
    for the first to be a second old, so the client never earns a 429 for it."""
    fake = FakeTime()
    limiter = RealmRateLimiter(requests_per_window=500, window_seconds=60.0, clock=fake.clock,
                               sleep=fake.sleep, requests_per_second=10)
    sent_at = []
    for _ in range(25):
        with limiter.slot():
            sent_at.append(fake.now)
    assert sent_at == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
