"""Fault injection: accounting requests fail the ways QBO and the network between fail.

Two kinds of switch, both settable at start-up (``FaultSettings`` in the emulator's config) and at
run time through ``/admin/faults``:

- shares (0..1) of accounting requests answered with each fault, drawn from a seeded random;
- scheduled faults, "the next N requests of realm R fail with X", so that tests are not flaky.

What each fault looks like on the wire follows what QBO's clients have seen:

- ``server_error``: HTTP 500 with QBO's JSON fault body;
- ``service_unavailable``: HTTP 503 with an HTML page, as QBO's load balancer sends when the
  service is down (not JSON: a client must not assume a fault body);
- ``throttle``: HTTP 429 with the XML ThrottleExceeded fault (code 3001);
- ``slow``: the request is processed but held in flight ``slow_seconds`` (QBO times requests
  out at 120 s; set this past the client's timeout);
- ``dropped_connection``: the request is processed, then the connection closes in the middle of
  the response, so the client cannot know whether its write happened (what ``requestid`` is for);
- ``expired_token``: the realm's access tokens expire now, so this request answers 401 until the
  client refreshes, as when a token runs out mid-sync.

Faults apply to the accounting API (``/v3/company/...``) only, and, when scheduled with the
``token`` target, to the OAuth token endpoint; never to ``/admin``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qbo_pipeline.emulator.exceptions import InternalServerError, QBOFault, ThrottleExceeded
from qbo_pipeline.emulator.limits import in_flight_until, sleep_until
from qbo_pipeline.emulator.oauth_responses import TOKEN_PATH

if TYPE_CHECKING:
    from qbo_pipeline.emulator.service import Emulator

log = logging.getLogger(__name__)

ACCOUNTING_PREFIX = "/v3/company/"

SERVICE_UNAVAILABLE_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "</body>\r\n</html>\r\n"
)


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


class FaultInjectionMiddleware:
    """ASGI middleware in front of every route; only accounting and token requests are touched."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target, realm_id = _classify(scope)
        kind = None if target is None else self.emulator.faults.choose(target, realm_id)
        if kind is None:
            await self.app(scope, receive, send)
            return
        log.info("fault injection: %s for %s %s", kind.value, scope["method"], scope["path"])
        await self._inject(kind, realm_id, scope, receive, send)

    async def _inject(self, kind: FaultKind, realm_id: str | None, scope: Scope,
                      receive: Receive, send: Send) -> None:
        if kind is FaultKind.SERVER_ERROR:
            await _qbo_fault_response(InternalServerError(
                "An internal error occurred (injected by the emulator's fault switches)."),
            )(scope, receive, send)
        elif kind is FaultKind.SERVICE_UNAVAILABLE:
            await HTMLResponse(SERVICE_UNAVAILABLE_PAGE, status_code=503,
                               headers={"connection": "close"})(scope, receive, send)
        elif kind is FaultKind.THROTTLE:
            await _qbo_fault_response(ThrottleExceeded())(scope, receive, send)
        elif kind is FaultKind.SLOW:
            await self._answer_slowly(scope, receive, send)
        elif kind is FaultKind.DROPPED_CONNECTION:
            await self._answer_then_drop(scope, receive, send)
        else:  # EXPIRED_TOKEN: the token runs out now; the normal auth check answers 401
            self.emulator.oauth.expire_access_tokens(realm_id)
            await self.app(scope, receive, send)

    async def _answer_slowly(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.emulator.faults.settings.slow_seconds
        # The rate limiter holds the admitted request in flight until the deadline (a slow QBO
        # request takes one of the realm's concurrent slots); the response start waits too, for
        # routes that pass no limiter.
        context_token = in_flight_until.set(deadline)

        async def send_after_deadline(message: Message) -> None:
            if message["type"] == "http.response.start":
                await sleep_until(deadline)
            await send(message)

        try:
            await self.app(scope, receive, send_after_deadline)
        finally:
            in_flight_until.reset(context_token)

    async def _answer_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)  # the request is processed in full
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        promised = max(len(body), 2)
        headers = [(name, value) for name, value in start.get("headers", [])
                   if name.lower() != b"content-length"]
        headers.append((b"content-length", str(promised).encode()))
        await send({"type": "http.response.start", "status": start["status"],
                    "headers": headers})
        await send({"type": "http.response.body", "body": body[: promised // 2],
                    "more_body": True})
        # Returning with the body unfinished makes the server close the connection: the client
        # reads fewer bytes than Content-Length promised.


def _classify(scope: Scope) -> tuple[FaultTarget | None, str | None]:
    if scope["type"] != "http":
        return None, None
    path: str = scope["path"]
    if path.startswith(ACCOUNTING_PREFIX):
        realm_id = path[len(ACCOUNTING_PREFIX):].split("/", 1)[0]
        return (FaultTarget.ACCOUNTING, realm_id) if realm_id else (None, None)
    if path.rstrip("/") == TOKEN_PATH:
        return FaultTarget.TOKEN, None
    return None, None


def _qbo_fault_response(fault: QBOFault) -> Response:
    # Imported here: app.py imports this module, and owns how faults go on the wire.
    from qbo_pipeline.emulator.app import fault_response

    return fault_response(fault)


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
