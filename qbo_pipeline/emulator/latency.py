"""How long QBO takes to answer, per kind of request: the emulator answers in about a
millisecond where QBO takes tens to thousands, so benchmarks and tests that ask for it get QBO's
pace (issue 12: "QBO is not 1.5 ms away").

Each kind of accounting request (``read``, ``query``, ``cdc``, ``write``, ``batch``) waits a
fixed number of seconds, or a draw from a uniform range (``{"low": 0.5, "high": 2.0}``) or a
normal distribution cut at zero (``{"mean": 1.0, "sd": 0.3}``), seeded for repeatable runs.
The wait happens while the request holds its place among the realm's 10 in flight, as a slow
QBO answer does. Settable at start-up (``LatencySettings`` in the emulator's config, the CLI's
``--latency``) and at run time through ``/admin/latency``; zero, the default, adds nothing.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RequestKind(StrEnum):
    READ = "read"  # GET /{entity}/{id}
    QUERY = "query"
    CDC = "cdc"
    WRITE = "write"  # POST /{entity}: create, update, void, delete
    BATCH = "batch"


@dataclass(frozen=True)
class Delay:
    """A fixed wait, or a uniform range, or a normal distribution cut at zero, in seconds."""

    fixed: float = 0.0
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    sd: float | None = None

    @classmethod
    def parse(cls, kind: str, value: Any) -> Delay:
        """From a number of seconds or ``{"low", "high"}`` or ``{"mean", "sd"}``."""
        if isinstance(value, Delay):
            return value
        if _is_seconds(value):
            return cls(fixed=float(value))
        if isinstance(value, Mapping) and set(value) == {"low", "high"}:
            low, high = value["low"], value["high"]
            if _is_seconds(low) and _is_seconds(high) and low <= high:
                return cls(low=float(low), high=float(high))
        if isinstance(value, Mapping) and set(value) == {"mean", "sd"}:
            mean, sd = value["mean"], value["sd"]
            if _is_seconds(mean) and _is_seconds(sd):
                return cls(mean=float(mean), sd=float(sd))
        raise ValueError(f"latency of {kind} must be seconds (>= 0), {{\"low\": a, \"high\": b}} "
                         f"with 0 <= a <= b, or {{\"mean\": m, \"sd\": s}}; got {value!r}")

    def draw(self, rng: random.Random) -> float:
        if self.low is not None and self.high is not None:
            return rng.uniform(self.low, self.high)
        if self.mean is not None and self.sd is not None:
            return max(0.0, rng.gauss(self.mean, self.sd))
        return self.fixed

    def describe(self) -> float | dict[str, float]:
        if self.low is not None and self.high is not None:
            return {"low": self.low, "high": self.high}
        if self.mean is not None and self.sd is not None:
            return {"mean": self.mean, "sd": self.sd}
        return self.fixed


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class LatencySettings:
    """The delay of each request kind; kinds not named answer at once."""

    delays: Mapping[RequestKind, Delay] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], seed: int | None = None) -> LatencySettings:
        """``{"batch": 2.0, "query": {"low": 0.2, "high": 0.6}}``; ``"all"`` sets every kind
        not named otherwise. Unknown kinds are refused, naming the known ones."""
        known = {kind.value for kind in RequestKind}
        unknown = sorted(set(values) - known - {"all"})
        if unknown:
            raise ValueError(f"unknown request kind(s) {', '.join(unknown)} for latency; "
                             f"known: all, {', '.join(sorted(known))}")
        every = values.get("all", 0.0)
        return cls({kind: Delay.parse(kind.value, values.get(kind.value, every))
                    for kind in RequestKind}, seed)

    def describe(self) -> dict[str, Any]:
        return {"delays": {kind.value: self.delays.get(kind, Delay()).describe()
                           for kind in RequestKind}, "seed": self.seed}


class Latency:
    """Draws each request's delay; settings may change from any thread (the admin endpoint)."""

    def __init__(self, settings: LatencySettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._rng = random.Random(settings.seed)

    @property
    def settings(self) -> LatencySettings:
        return self._settings

    def configure(self, values: Mapping[str, Any]) -> LatencySettings:
        """Replace the delays (``seed`` too, when given): what is not named answers at once."""
        delays = {name: value for name, value in values.items() if name != "seed"}
        with self._lock:
            seed = values.get("seed", self._settings.seed)
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ValueError(f"latency seed must be a whole number or null, got {seed!r}")
            self._settings = LatencySettings.from_dict(delays, seed)
            self._rng = random.Random(seed)
            return self._settings

    def delay(self, kind: RequestKind) -> float:
        with self._lock:
            return self._settings.delays.get(kind, Delay()).draw(self._rng)
