"""The control plane's handlers under ``/admin`` (JSON, no token), routed in ``urls.py``.

Not part of QBO: it resets, seeds and dumps companies, switches faults, limits and webhooks at
run time, plays "a bookkeeper edits this record in QBO now" to create concurrent edits, and
backdates a record's last change (what a window of recent changes reads).
Errors are JSON ``{"error": {"status": ..., "message": ...}}``; a QBO rule the backend refuses
adds QBO's own fault body under ``"fault"``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_pipeline.emulator.exceptions import QBOFault
from qbo_pipeline.emulator.oauth.models import new_realm_id
from qbo_pipeline.emulator.service import Emulator

AdminHandler = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class AdminError(Exception):
    """A refused admin request: the HTTP status and a message saying how to fix it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error_response(status: int, message: str, fault: QBOFault | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if fault is not None:
        body["fault"] = fault.to_json_body()
    return JSONResponse(body, status_code=status)


def admin_endpoint(handler: AdminHandler, status: int = 200) -> Endpoint:
    """Run ``handler`` and answer its result as JSON; turn every refusal into a JSON error."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request), status_code=status)
        except AdminError as error:
            return _error_response(error.status, error.message)
        except QBOFault as fault:
            return _error_response(fault.http_status, str(fault), fault)
        except ValueError as error:  # settings validation names the field and the allowed values
            return _error_response(400, str(error))

    return endpoint


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise AdminError(400, f"{request.method} {request.url.path}: the body is not valid "
                              f"JSON ({error}); send a JSON object") from None
    if not isinstance(body, dict):
        raise AdminError(400, f"{request.method} {request.url.path}: the body must be a JSON "
                              f"object, got {type(body).__name__}")
    return body


class RealmAdmin:
    """Companies: list, create, reset, seed, dump, and a bookkeeper's edit."""

    def __init__(self, emulator: Emulator) -> None:
        self.backend = emulator.backend

    async def list(self, request: Request) -> dict[str, Any]:
        return {"realms": sorted(await run_in_threadpool(self.backend.realm_ids))}

    async def create(self, request: Request) -> dict[str, Any]:
        """A new company, as if just connected; ``realm_id`` may be chosen (idempotent)."""
        realm_id = (await _json_object(request)).get("realm_id") or new_realm_id()
        if not isinstance(realm_id, str) or not realm_id.isdigit():
            raise AdminError(400, f"realm_id must be a string of digits like QBO's company ids, "
                                  f"got {realm_id!r}")
        await run_in_threadpool(self.backend.ensure_realm, realm_id)
        return {"realm_id": realm_id}

    async def reset(self, request: Request) -> dict[str, Any]:
        realm_id = await self._known_realm(request)
        await run_in_threadpool(self.backend.reset_realm, realm_id)
        return {"realm_id": realm_id, "reset": True}

    async def seed(self, request: Request) -> dict[str, Any]:
        realm_id = await self._known_realm(request)
        objects = await _json_object(request)
        for entity, records in objects.items():
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise AdminError(400, f"seed body: {entity} must be a list of JSON objects, "
                                      f'e.g. {{"Customer": [{{"DisplayName": "Acme"}}]}}')
        created = await run_in_threadpool(self.backend.seed_realm, realm_id, objects)
        return {"realm_id": realm_id, "created": created}

    async def dump(self, request: Request) -> dict[str, Any]:
        realm_id = await self._known_realm(request)
        return {"realm_id": realm_id, "objects": await run_in_threadpool(self.backend.dump_realm,
                                                                          realm_id)}

    async def company_state(self, request: Request) -> dict[str, Any]:
        """Change what only QBO's screens change: ``SubscriptionStatus`` (a canceled or
        expired company answers writes with 6190), ``Plan`` (Simple Start, Essentials or
        Plus: a write of what the plan lacks answers 5020) and ``BookCloseDate``
        (transactions dated on or before it answer 6200; null reopens the books)."""
        realm_id = await self._known_realm(request)
        changes = await _json_object(request)
        if not changes:
            raise AdminError(400, 'send {"SubscriptionStatus": "CANCELED"}, {"Plan": '
                                  '"Simple Start"} and/or {"BookCloseDate": "2026-01-31"} '
                                  '(null reopens the books)')
        state = await run_in_threadpool(self.backend.set_company_state, realm_id, changes)
        return {"realm_id": realm_id, **state}

    async def bookkeeper_edit(self, request: Request) -> dict[str, Any]:
        """Apply ``changes`` as a person editing the record in QBO right now would."""
        realm_id = await self._known_realm(request)
        entity = request.path_params["entity"]
        entity_id = request.path_params["entity_id"]
        changes = await _json_object(request)
        if not changes:
            raise AdminError(400, f"edit of {entity} {entity_id}: send the changed fields as a "
                                  f'JSON object, e.g. {{"CompanyName": "New name"}}')
        edited = await run_in_threadpool(self.backend.bookkeeper_edit, realm_id, entity,
                                         entity_id, changes)
        return {entity: edited}

    async def backdate(self, request: Request) -> dict[str, Any]:
        """Make a record look last changed at ``LastUpdatedTime`` (an ISO time in the past)."""
        realm_id = await self._known_realm(request)
        entity = request.path_params["entity"]
        entity_id = request.path_params["entity_id"]
        body = await _json_object(request)
        when = _past_time(body.get("LastUpdatedTime"))
        if when is None:
            raise AdminError(400, f"backdate of {entity} {entity_id}: send "
                                  '{"LastUpdatedTime": "2026-03-01T09:00:00Z"}, a time in the past')
        record = await run_in_threadpool(self.backend.backdate, realm_id, entity, entity_id,
                                         when)
        return {entity: record}

    async def _known_realm(self, request: Request) -> str:
        realm_id: str = request.path_params["realm_id"]
        if not await run_in_threadpool(self.backend.realm_exists, realm_id):
            raise AdminError(404, f"unknown realm {realm_id}: connect it through OAuth or "
                                  f"create it with POST /admin/realms")
        return realm_id


class SwitchAdmin:
    """Run-time switches: fault injection, rate limits, webhooks."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def get_faults(self, request: Request) -> dict[str, Any]:
        return self.emulator.faults.describe()

    async def put_faults(self, request: Request) -> dict[str, Any]:
        """Change any of the shares, ``slow_seconds`` or ``seed``; the rest stay."""
        self.emulator.faults.configure(**await _json_object(request))
        return self.emulator.faults.describe()

    async def clear_faults(self, request: Request) -> dict[str, Any]:
        self.emulator.faults.clear()
        return self.emulator.faults.describe()

    async def schedule_fault(self, request: Request) -> dict[str, Any]:
        """``{"kind": ..., "count": N, "realm_id": R?, "target": "accounting"|"token"?}``."""
        body = await _json_object(request)
        unknown = sorted(set(body) - {"kind", "count", "realm_id", "target"})
        if unknown or "kind" not in body:
            raise AdminError(400, "a scheduled fault is {\"kind\": ..., \"count\": N, "
                                  "\"realm_id\": optional, \"target\": \"accounting\" or "
                                  f"\"token\"}}; got fields {sorted(body)}")
        scheduled = self.emulator.faults.schedule(
            body["kind"], body.get("count", 1), body.get("realm_id"),
            body.get("target", "accounting"))
        return scheduled.to_dict()

    async def get_limits(self, request: Request) -> dict[str, Any]:
        limiter = self.emulator.limiter
        return {"settings": limiter.settings.to_dict(), "usage": limiter.usage()}

    async def put_limits(self, request: Request) -> dict[str, Any]:
        self.emulator.limiter.configure(**await _json_object(request))
        return await self.get_limits(request)

    async def get_latency(self, request: Request) -> dict[str, Any]:
        return self.emulator.latency.settings.describe()

    async def put_latency(self, request: Request) -> dict[str, Any]:
        """``{"batch": 2.0, "query": {"low": 0.2, "high": 0.6}, "seed": 1}``: replaces the
        delays; kinds not named answer at once."""
        self.emulator.latency.configure(await _json_object(request))
        return await self.get_latency(request)

    async def get_webhooks(self, request: Request) -> dict[str, Any]:
        return self.emulator.webhooks.describe()

    async def put_webhooks(self, request: Request) -> dict[str, Any]:
        self.emulator.webhooks.configure(**await _json_object(request))
        return self.emulator.webhooks.describe()


def _past_time(value: Any) -> datetime | None:
    """An ISO time (with a zone, or UTC) that is not in the future; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return moment if moment <= datetime.now(UTC) else None
