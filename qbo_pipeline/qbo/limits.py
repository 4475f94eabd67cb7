"""A client-side limiter so we never exceed QBO's per-realm limits: 500 requests a minute, 10 a
second, 40 batch requests a minute, 10 in flight.

No well-kept library covers sliding-minute caps plus a concurrency cap for plain threads (the
candidates are asyncio-only or fixed-window), so this is a small sliding-window log plus a
semaphore. One limiter per (API, realm) is shared by every client in the process, since QBO
counts per company and app, not per connection.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class SlidingWindow:
    """At most ``limit`` requests in any ``window_seconds``, counted from when each request
    *finished*: QBO counts a request when it arrives, which is after we send it, so counting from
    our send time could let a slow first request and a fast later one land in one QBO window."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._pending = 0
        self._finished: deque[float] = deque()

    def wait_needed(self, now: float) -> float | None:
        """Seconds until one more request fits: 0 now, None when only in-flight ones block."""
        while self._finished and self._finished[0] <= now - self.window_seconds:
            self._finished.popleft()
        if self._pending + len(self._finished) < self.limit:
            return 0.0
        if not self._finished:
            return None
        return self._finished[0] + self.window_seconds - now

    def admit(self) -> None:
        self._pending += 1

    def finish(self, now: float) -> None:
        self._pending -= 1
        self._finished.append(now)


# How often to look again when the window is full of requests still in flight.
IN_FLIGHT_POLL_SECONDS = 0.01


class RealmRateLimiter:
    """Admits a request when the realm's windows have room and fewer than ``max_concurrent``
    requests are in flight; otherwise the calling thread waits."""

    def __init__(self, requests_per_window: int = 500, max_concurrent: int = 10,
                 window_seconds: float = 60.0, batches_per_window: int = 40,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 requests_per_second: int = 10) -> None:
        self._requests = SlidingWindow(requests_per_window, window_seconds)
        # QBO's second, shrunk with its minute when a test or benchmark shrinks time.
        self._second = SlidingWindow(requests_per_second, window_seconds / 60)
        self._batches = SlidingWindow(batches_per_window, window_seconds)
        self._in_flight = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    @contextmanager
    def slot(self, batch: bool = False) -> Iterator[None]:
        windows = [self._requests, self._second, *([self._batches] if batch else [])]
        with self._in_flight:
            self._wait_for_room(windows)
            try:
                yield
            finally:
                with self._lock:
                    now = self._clock()
                    for window in windows:
                        window.finish(now)

    def _wait_for_room(self, windows: list[SlidingWindow]) -> None:
        while True:
            with self._lock:
                waits = [window.wait_needed(self._clock()) for window in windows]
                if all(wait == 0 for wait in waits):
                    for window in windows:
                        window.admit()
                    return
            known = [wait for wait in waits if wait]
            self._sleep(max(known) if known else IN_FLIGHT_POLL_SECONDS)


_shared: dict[tuple[str, str], RealmRateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(api_url: str, realm_id: str, requests_per_window: int, max_concurrent: int,
                   window_seconds: float, batches_per_window: int,
                   requests_per_second: int = 10) -> RealmRateLimiter:
    """The process-wide limiter of one realm (created with these limits on first use)."""
    with _shared_lock:
        key = (api_url, realm_id)
        if key not in _shared:
            _shared[key] = RealmRateLimiter(requests_per_window, max_concurrent, window_seconds,
                                            batches_per_window,
                                            requests_per_second=requests_per_second)
        return _shared[key]
