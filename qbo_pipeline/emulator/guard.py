"""QBO's fault wire format, and the guard in front of every accounting endpoint.

How a fault goes on the wire (JSON, or XML for throttling, with QBO's HTTP status) is needed by
the app's exception handler, the fault injection middleware and the accounting routes' guard;
it lives here, importing none of the emulator's HTTP layers, so that none of them has to import
another to answer a fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_pipeline.emulator.exceptions import QBOFault, ThrottleExceeded
from qbo_pipeline.emulator.latency import RequestKind
from qbo_pipeline.emulator.service import Emulator

RealmHandler = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def fault_response(fault: QBOFault) -> Response:
    """QBO answers throttling in XML whatever the Accept header says; everything else in JSON."""
    if isinstance(fault, ThrottleExceeded):
        return Response(fault.to_xml_body(), status_code=fault.http_status,
                        media_type="application/xml")
    return JSONResponse(fault.to_json_body(), status_code=fault.http_status)


async def handle_fault(request: Request, exc: Exception) -> Response:
    """The app's exception handler: a fault raised by any handler becomes QBO's answer."""
    assert isinstance(exc, QBOFault)
    return fault_response(exc)


def guarded(emulator: Emulator, handler: RealmHandler, kind: RequestKind) -> Endpoint:
    """Wrap an accounting handler in QBO's checks: token for the realm, then rate limits; then
    QBO's pace for that kind of request (``latency.py``), holding the place in flight."""

    async def endpoint(request: Request) -> Response:
        realm_id = request.path_params["realm_id"]
        emulator.oauth.authenticate(request.headers.get("authorization"), realm_id)
        async with emulator.limiter.admit(realm_id, batch=kind is RequestKind.BATCH):
            delay = emulator.latency.delay(kind)
            if delay > 0:
                await asyncio.sleep(delay)
            return await handler(request, realm_id)

    return endpoint
