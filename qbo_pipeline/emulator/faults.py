"""Fault injection's switches: which accounting requests fail, and how, decided request by request.

Two kinds of switch, both settable at start-up (``FaultSettings`` in the emulator's config) and at
run time through ``/admin/faults``:

- shares (0..1) of accounting requests answered with each fault, drawn from a seeded random;
- scheduled faults, "the next N requests of realm R fail with X", so that tests are not flaky.

No HTTP here: ``fault_middleware.py`` asks ``FaultInjector.choose`` before each request and puts
the chosen fault on the wire (what each kind looks like is described there).

Faults apply to the accounting API (``/v3/company/...``) only, and, when scheduled with the
``token`` target, to the OAuth token endpoint; never to ``/admin``.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    THROTTLE = "throttle"
    SLOW = "slow"
    DROPPED_CONNECTION = "dropped_connection"
    EXPIRED_TOKEN = "expired_token"


class FaultTarget(StrEnum):
    ACCOUNTING = "accounting"  # /v3/company/{realm_id}/...
    TOKEN = "token"  # the OAuth token endpoint (code exchange and refresh)


# The token endpoint is not QBO's API: no realm, no QBO throttle body, no access token to expire.
TOKEN_FAULTS = frozenset({FaultKind.SERVER_ERROR, FaultKind.SERVICE_UNAVAILABLE, FaultKind.SLOW,
                          FaultKind.DROPPED_CONNECTION})


@dataclass(frozen=True)
class FaultSettings:
    """Shares (0..1, summing to at most 1) of accounting requests answered with each fault."""

    server_error: float = 0.0
    service_unavailable: float = 0.0
    throttle: float = 0.0
    slow: float = 0.0
    dropped_connection: float = 0.0
    expired_token: float = 0.0
    slow_seconds: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for kind in FaultKind:
            _require_number(f"fault share {kind.value}", getattr(self, kind.value), 0.0, 1.0)
        total = sum(self.shares().values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault shares add up to {total:g}; they must add up to at most 1")
        _require_number("fault setting slow_seconds", self.slow_seconds, 0.0, None)
        if self.seed is not None and (isinstance(self.seed, bool) or
                                      not isinstance(self.seed, int)):
            raise ValueError(f"fault setting seed must be a whole number or null, "
                             f"got {self.seed!r}")

    def shares(self) -> dict[FaultKind, float]:
        return {kind: float(getattr(self, kind.value)) for kind in FaultKind}

    def updated(self, changes: dict[str, Any]) -> FaultSettings:
        """A copy with ``changes`` applied; unknown names are refused, naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScheduledFault:
    """"The next ``remaining`` requests (of ``realm_id``, or of any realm) fail with ``kind``"."""

    kind: FaultKind
    remaining: int
    realm_id: str | None = None
    target: FaultTarget = FaultTarget.ACCOUNTING

    def __post_init__(self) -> None:
        if isinstance(self.remaining, bool) or not isinstance(self.remaining, int) \
                or self.remaining < 1:
            raise ValueError(f"a scheduled fault's count must be a whole number >= 1, "
                             f"got {self.remaining!r}")
        if self.target is FaultTarget.TOKEN:
            if self.kind not in TOKEN_FAULTS:
                allowed = ", ".join(sorted(kind.value for kind in TOKEN_FAULTS))
                raise ValueError(f"fault kind {self.kind.value} cannot target the token "
                                 f"endpoint; use one of {allowed}")
            if self.realm_id is not None:
                raise ValueError("a token endpoint fault cannot name a realm_id: token "
                                 "requests do not carry one")

    def matches(self, target: FaultTarget, realm_id: str | None) -> bool:
        return self.target is target and self.realm_id in (None, realm_id)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "remaining": self.remaining, "realm_id": self.realm_id,
                "target": self.target.value}


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject. Thread-safe."""

    def __init__(self, settings: FaultSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random.Random(settings.seed)
        self._scheduled: list[ScheduledFault] = []
        self._injected: Counter[str] = Counter()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, **changes: Any) -> FaultSettings:
        """Change shares, ``slow_seconds`` or ``seed`` at run time; a new seed restarts the draw."""
        with self._lock:
            self._settings = self._settings.updated(changes)
            if "seed" in changes:
                self._random = random.Random(self._settings.seed)
            return self._settings

    def schedule(self, kind: FaultKind | str, count: int = 1, realm_id: str | None = None,
                 target: FaultTarget | str = FaultTarget.ACCOUNTING) -> ScheduledFault:
        """The next ``count`` matching requests fail with ``kind``, before any random draw."""
        scheduled = ScheduledFault(_parse_enum(FaultKind, kind, "fault kind"), count, realm_id,
                                   _parse_enum(FaultTarget, target, "fault target"))
        with self._lock:
            self._scheduled.append(scheduled)
        return scheduled

    def clear(self) -> None:
        """Every share back to 0 and every scheduled fault dropped (seed and delay kept)."""
        with self._lock:
            self._settings = self._settings.updated({kind.value: 0.0 for kind in FaultKind})
            self._scheduled.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"settings": self._settings.to_dict(),
                    "scheduled": [scheduled.to_dict() for scheduled in self._scheduled],
                    "injected": dict(self._injected)}

    def choose(self, target: FaultTarget, realm_id: str | None) -> FaultKind | None:
        """The fault for this request: a scheduled one first, else a draw by the shares."""
        with self._lock:
            kind = self._take_scheduled(target, realm_id)
            if kind is None and target is FaultTarget.ACCOUNTING:
                kind = self._draw()
            if kind is not None:
                self._injected[kind.value] += 1
            return kind

    def _take_scheduled(self, target: FaultTarget, realm_id: str | None) -> FaultKind | None:
        for scheduled in self._scheduled:
            if scheduled.matches(target, realm_id):
                scheduled.remaining -= 1
                if scheduled.remaining == 0:
                    self._scheduled.remove(scheduled)
                return scheduled.kind
        return None

    def _draw(self) -> FaultKind | None:
        shares = self._settings.shares()
        if not any(shares.values()):
            return None  # no draw, so a seeded sequence starts when faults are switched on
        point = self._random.random()
        for kind, share in shares.items():
            if point < share:
                return kind
            point -= share
        return None


def _require_number(name: str, value: Any, low: float, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")


def _parse_enum(enum: type[Any], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"unknown {what} {value!r}; use one of {allowed}") from None
