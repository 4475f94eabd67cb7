"""A client-side limiter so we never exceed QBO's per-realm limits: 500 requests a minute, 40
batch requests a minute, 10 in flight.

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
    """At most ``limit`` admissions in any ``window_seconds``."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._admitted: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        """Seconds until one more admission fits (0 when it fits now)."""
        while self._admitted and self._admitted[0] <= now - self.window_seconds:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            return 0.0
        return self._admitted[0] + self.window_seconds - now

    def admit(self, now: float) -> None:
        self._admitted.append(now)


class RealmRateLimiter:
    """Admits a request when the realm's windows have room and fewer than ``max_concurrent``
    requests are in flight; otherwise the calling thread waits."""

    def __init__(self, requests_per_window: int = 500, max_concurrent: int = 10,
                 window_seconds: float = 60.0, batches_per_window: int = 40,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._requests = SlidingWindow(requests_per_window, window_seconds)
        self._batches = SlidingWindow(batches_per_window, window_seconds)
        self._in_flight = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    @contextmanager
    def slot(self, batch: bool = False) -> Iterator[None]:
        with self._in_flight:
            self._wait_for_room(batch)
            yield

    def _wait_for_room(self, batch: bool) -> None:
        windows = [self._requests, self._batches] if batch else [self._requests]
        while True:
            with self._lock:
                now = self._clock()
                wait = max(window.wait_needed(now) for window in windows)
                if wait <= 0:
                    for window in windows:
                        window.admit(now)
                    return
            self._sleep(max(wait, 0.001))


_shared: dict[tuple[str, str], RealmRateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(api_url: str, realm_id: str, requests_per_window: int, max_concurrent: int,
                   window_seconds: float, batches_per_window: int) -> RealmRateLimiter:
    """The process-wide limiter of one realm (created with these limits on first use)."""
    with _shared_lock:
        key = (api_url, realm_id)
        if key not in _shared:
            _shared[key] = RealmRateLimiter(requests_per_window, max_concurrent, window_seconds,
                                            batches_per_window)
        return _shared[key]
