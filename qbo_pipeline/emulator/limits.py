"""QBO's per-realm rate limits: requests per minute and per second, requests in flight, batch
requests per minute.

Intuit documents, per realm ID and app: 500 requests per minute (batch requests included), 10
requests per second, at most 10 requests in flight at once ("more than 10 concurrent ...
requests to the same realmId will get a 429"), and 40 batch requests per minute. Over any of
them QBO answers HTTP 429 with the ThrottleExceeded fault (code 3001) and no Retry-After header;
its docs say to wait 60 seconds.

The limiter counts requests in a sliding window of ``window_seconds`` (60 on QBO; a test or a
benchmark may shrink time), and the second as a sixtieth of it. A refused request is not
counted, so a client that waits recovers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qbo_pipeline.emulator.exceptions import ThrottleExceeded

THROTTLE_DETAIL = ThrottleExceeded.DETAIL

# A slow QBO keeps the request in flight, holding one of the realm's concurrent slots. Fault
# injection sets this deadline (time.monotonic()) so that the admitted request is held until then.
in_flight_until: ContextVar[float | None] = ContextVar("in_flight_until", default=None)


@dataclass(frozen=True)
class RateLimitSettings:
    """QBO's documented limits per realm; ``window_seconds`` is the length of QBO's minute."""

    enabled: bool = True
    requests_per_minute: int = 500
    # Intuit's newer limit, 10 a second: off unless set (`qbo-pipeline emulator` sets it), since
    # tests that call the emulator directly, without the pipeline's client and its pacing,
    # send requests faster than that.
    requests_per_second: int | None = None
    concurrent_per_realm: int = 10
    batch_per_minute: int = 40
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "requests_per_second", "concurrent_per_realm",
                     "batch_per_minute"):
            value = getattr(self, name)
            if name == "requests_per_second" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"rate limit setting {name} must be a whole number >= 1, "
                                 f"got {value!r}")
        if isinstance(self.window_seconds, bool) or not isinstance(self.window_seconds,
                                                                   int | float):
            raise ValueError(f"rate limit setting window_seconds must be a number of seconds, "
                             f"got {self.window_seconds!r}")
        if self.window_seconds <= 0:
            raise ValueError(f"rate limit setting window_seconds must be > 0, "
                             f"got {self.window_seconds!r}")
        if not isinstance(self.enabled, bool):
            raise ValueError(f"rate limit setting enabled must be true or false, "
                             f"got {self.enabled!r}")

    def updated(self, changes: dict[str, Any]) -> RateLimitSettings:
        """A copy with ``changes`` applied; unknown names are refused, naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown rate limit setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _RealmUsage:
    """What one realm has used: admission times in the window, and requests in flight."""

    requests: deque[float] = field(default_factory=deque)
    last_second: deque[float] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    peak_in_flight: int = 0  # the most at once since the counts were last reset


class RateLimiter:
    """Admits or throttles each accounting request of a realm, as QBO does.

    ``admit`` is used from the event loop; settings may change from any thread (the admin
    endpoint), so the counters sit behind one lock held only for a few arithmetic steps.
    """

    def __init__(self, settings: RateLimitSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[str, _RealmUsage] = {}

    @property
    def settings(self) -> RateLimitSettings:
        return self._settings

    def configure(self, **changes: Any) -> RateLimitSettings:
        """Change settings at run time; counts already made stay, judged by the new limits."""
        with self._lock:
            self._settings = self._settings.updated(changes)
            return self._settings

    def reset(self, realm_id: str | None = None) -> None:
        """Forget the counts of one realm, or of all (requests in flight stay counted)."""
        with self._lock:
            for realm, usage in self._usage.items():
                if realm_id is None or realm == realm_id:
                    usage.requests.clear()
                    usage.last_second.clear()
                    usage.batches.clear()
                    usage.peak_in_flight = usage.in_flight

    def usage(self) -> dict[str, dict[str, int]]:
        """Per realm: requests and batch requests in the current window, requests in flight."""
        with self._lock:
            now = self._clock()
            report = {}
            for realm, usage in self._usage.items():
                self._forget_old(usage, now)
                report[realm] = {"requests_in_window": len(usage.requests),
                                 "requests_in_last_second": len(usage.last_second),
                                 "batches_in_window": len(usage.batches),
                                 "in_flight": usage.in_flight,
                                 "peak_in_flight": usage.peak_in_flight}
            return report

    @asynccontextmanager
    async def admit(self, realm_id: str, batch: bool = False) -> AsyncIterator[None]:
        """Hold a place for one request of ``realm_id`` or raise ThrottleExceeded (HTTP 429)."""
        self._take_place(realm_id, batch)
        try:
            await sleep_until(in_flight_until.get())
            yield
        finally:
            self._release_place(realm_id)

    def _take_place(self, realm_id: str, batch: bool) -> None:
        with self._lock:
            usage = self._usage.setdefault(realm_id, _RealmUsage())
            settings = self._settings
            if settings.enabled:
                now = self._clock()
                self._forget_old(usage, now)
                _refuse_if_over(usage, settings, batch)
                usage.requests.append(now)
                usage.last_second.append(now)
                if batch:
                    usage.batches.append(now)
            usage.in_flight += 1
            usage.peak_in_flight = max(usage.peak_in_flight, usage.in_flight)

    def _release_place(self, realm_id: str) -> None:
        with self._lock:
            self._usage[realm_id].in_flight -= 1

    def _forget_old(self, usage: _RealmUsage, now: float) -> None:
        minute = self._settings.window_seconds
        for admitted, window in ((usage.requests, minute), (usage.batches, minute),
                                 (usage.last_second, minute / 60)):
            while admitted and admitted[0] <= now - window:
                admitted.popleft()


def _refuse_if_over(usage: _RealmUsage, settings: RateLimitSettings, batch: bool) -> None:
    # The detail names the limit hit, so a person reading a log knows which one; the code,
    # message and status are QBO's own.
    if usage.in_flight >= settings.concurrent_per_realm:
        raise ThrottleExceeded(f"{THROTTLE_DETAIL} (more than "
                               f"{settings.concurrent_per_realm} concurrent requests)")
    if len(usage.requests) >= settings.requests_per_minute:
        raise ThrottleExceeded(f"{THROTTLE_DETAIL} (more than "
                               f"{settings.requests_per_minute} requests per minute)")
    per_second = settings.requests_per_second
    if per_second is not None and len(usage.last_second) >= per_second:
        raise ThrottleExceeded(f"{THROTTLE_DETAIL} (more than "
                               f"{per_second} requests per second)")
    if batch and len(usage.batches) >= settings.batch_per_minute:
        raise ThrottleExceeded(f"{THROTTLE_DETAIL} (more than "
                               f"{settings.batch_per_minute} batch requests per minute)")


async def sleep_until(deadline: float | None) -> None:
    """Sleep until ``deadline`` (a ``time.monotonic()`` value); at once if None or past."""
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
