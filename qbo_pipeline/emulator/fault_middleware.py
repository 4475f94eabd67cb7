"""Fault injection on the wire: ASGI middleware that answers as QBO and the network fail.

Before each accounting or token request it asks the emulator's ``FaultInjector`` (``faults.py``)
whether to fail it. What each fault looks like on the wire follows what QBO's clients have seen:

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
"""

from __future__ import annotations

import logging
import time

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qbo_pipeline.emulator.exceptions import InternalServerError, ThrottleExceeded
from qbo_pipeline.emulator.faults import FaultKind, FaultTarget
from qbo_pipeline.emulator.guard import fault_response
from qbo_pipeline.emulator.limits import in_flight_until, sleep_until
from qbo_pipeline.emulator.oauth.paths import TOKEN_PATH
from qbo_pipeline.emulator.service import Emulator

log = logging.getLogger(__name__)

ACCOUNTING_PREFIX = "/v3/company/"

SERVICE_UNAVAILABLE_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "</body>\r\n</html>\r\n"
)



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
            await fault_response(InternalServerError(
                "An internal error occurred (injected by the emulator's fault switches)."),
            )(scope, receive, send)
        elif kind is FaultKind.SERVICE_UNAVAILABLE:
            await HTMLResponse(SERVICE_UNAVAILABLE_PAGE, status_code=503,
                               headers={"connection": "close"})(scope, receive, send)
        elif kind is FaultKind.THROTTLE:
            await fault_response(ThrottleExceeded())(scope, receive, send)
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
