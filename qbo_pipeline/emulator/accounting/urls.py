"""The Accounting API's routes: QBO's paths under ``/v3/company/{realm_id}``, each guarded."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from qbo_pipeline.emulator.accounting.responses import AccountingAPI
from qbo_pipeline.emulator.guard import guarded
from qbo_pipeline.emulator.latency import RequestKind
from qbo_pipeline.emulator.service import Emulator


def accounting_routes(emulator: Emulator) -> list[BaseRoute]:
    api = AccountingAPI(emulator.backend)
    company = "/v3/company/{realm_id}"
    return [
        Route(f"{company}/query", guarded(emulator, api.query, RequestKind.QUERY),
              methods=["GET", "POST"]),
        Route(f"{company}/cdc", guarded(emulator, api.cdc, RequestKind.CDC), methods=["GET"]),
        Route(f"{company}/batch", guarded(emulator, api.batch, RequestKind.BATCH),
              methods=["POST"]),
        Route(f"{company}/{{entity}}", guarded(emulator, api.write, RequestKind.WRITE),
              methods=["POST"]),
        Route(f"{company}/{{entity}}/{{entity_id}}", guarded(emulator, api.read, RequestKind.READ),
              methods=["GET"]),
    ]
