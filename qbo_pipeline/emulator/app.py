"""The emulator's HTTP application: routes from each part, QBO's fault wire format, the guard.

Every accounting endpoint passes the same guard as on QBO: a valid Bearer token for the realm,
then the realm's rate limits. Faults raised anywhere become QBO's exact error bodies here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_pipeline.emulator.admin_responses import admin_routes
from qbo_pipeline.emulator.exceptions import QBOFault, ThrottleExceeded
from qbo_pipeline.emulator.faults import FaultInjectionMiddleware
from qbo_pipeline.emulator.oauth_responses import oauth_routes
from qbo_pipeline.emulator.responses import accounting_routes
from qbo_pipeline.emulator.service import Emulator

RealmHandler = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def fault_response(fault: QBOFault) -> Response:
    """QBO answers throttling in XML whatever the Accept header says; everything else in JSON."""
    if isinstance(fault, ThrottleExceeded):
        return Response(fault.to_xml_body(), status_code=fault.http_status,
                        media_type="application/xml")
    return JSONResponse(fault.to_json_body(), status_code=fault.http_status)


async def _handle_fault(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QBOFault)
    return fault_response(exc)


def guarded(emulator: Emulator, handler: RealmHandler, *, batch: bool = False) -> Endpoint:
    """Wrap an accounting handler in QBO's checks: token for the realm, then rate limits."""

    async def endpoint(request: Request) -> Response:
        realm_id = request.path_params["realm_id"]
        emulator.oauth.authenticate(request.headers.get("authorization"), realm_id)
        async with emulator.limiter.admit(realm_id, batch=batch):
            return await handler(request, realm_id)

    return endpoint


def create_app(emulator: Emulator) -> Starlette:
    app = Starlette(
        routes=[*oauth_routes(emulator), *admin_routes(emulator), *accounting_routes(emulator)],
        middleware=[Middleware(FaultInjectionMiddleware, emulator=emulator)],
        exception_handlers={QBOFault: _handle_fault},
    )
    app.state.emulator = emulator
    return app
