"""The control plane's routes: each ``/admin`` path to its handler, answered as JSON."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from qbo_pipeline.emulator.admin.responses import RealmAdmin, SwitchAdmin, admin_endpoint
from qbo_pipeline.emulator.service import Emulator


def admin_routes(emulator: Emulator) -> list[BaseRoute]:
    realms = RealmAdmin(emulator)
    switches = SwitchAdmin(emulator)
    return [
        Route("/admin/realms", admin_endpoint(realms.list), methods=["GET"]),
        Route("/admin/realms", admin_endpoint(realms.create, 201), methods=["POST"]),
        Route("/admin/realms/{realm_id}/reset", admin_endpoint(realms.reset), methods=["POST"]),
        Route("/admin/realms/{realm_id}/seed", admin_endpoint(realms.seed), methods=["POST"]),
        Route("/admin/realms/{realm_id}/company", admin_endpoint(realms.company_state),
              methods=["PUT"]),
        Route("/admin/realms/{realm_id}/dump", admin_endpoint(realms.dump), methods=["GET"]),
        Route("/admin/realms/{realm_id}/{entity}/{entity_id}/edit",
              admin_endpoint(realms.bookkeeper_edit), methods=["POST"]),
        Route("/admin/realms/{realm_id}/{entity}/{entity_id}/backdate",
              admin_endpoint(realms.backdate), methods=["POST"]),
        Route("/admin/faults", admin_endpoint(switches.get_faults), methods=["GET"]),
        Route("/admin/faults", admin_endpoint(switches.put_faults), methods=["PUT"]),
        Route("/admin/faults", admin_endpoint(switches.clear_faults), methods=["DELETE"]),
        Route("/admin/faults/scheduled", admin_endpoint(switches.schedule_fault, 201),
              methods=["POST"]),
        Route("/admin/limits", admin_endpoint(switches.get_limits), methods=["GET"]),
        Route("/admin/limits", admin_endpoint(switches.put_limits), methods=["PUT"]),
        Route("/admin/latency", admin_endpoint(switches.get_latency), methods=["GET"]),
        Route("/admin/latency", admin_endpoint(switches.put_latency), methods=["PUT"]),
        Route("/admin/webhooks", admin_endpoint(switches.get_webhooks), methods=["GET"]),
        Route("/admin/webhooks", admin_endpoint(switches.put_webhooks), methods=["PUT"]),
    ]
