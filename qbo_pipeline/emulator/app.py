"""The emulator's HTTP application: each service's routes behind fault injection and one handler.

Every accounting endpoint passes the same guard as on QBO (``guard.py``): a valid Bearer token
for the realm, then the realm's rate limits. Faults raised anywhere become QBO's exact error
bodies through the exception handler.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from qbo_pipeline.emulator.accounting.urls import accounting_routes
from qbo_pipeline.emulator.admin.urls import admin_routes
from qbo_pipeline.emulator.exceptions import QBOFault
from qbo_pipeline.emulator.fault_middleware import FaultInjectionMiddleware
from qbo_pipeline.emulator.guard import handle_fault
from qbo_pipeline.emulator.oauth.urls import oauth_routes
from qbo_pipeline.emulator.service import Emulator


def create_app(emulator: Emulator) -> Starlette:
    app = Starlette(
        routes=[*oauth_routes(emulator), *admin_routes(emulator), *accounting_routes(emulator)],
        middleware=[Middleware(FaultInjectionMiddleware, emulator=emulator)],
        exception_handlers={QBOFault: handle_fault},
    )
    app.state.emulator = emulator
    return app
