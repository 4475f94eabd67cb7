"""The Accounting API's HTTP layer: QBO's wire format in front of ``QBOBackend``.

Handlers for QBO's paths (routed in ``urls.py``, all under ``/v3/company/{realm_id}``):

- ``POST /{entity}``: create; update when the body has an ``Id`` (``?operation=update`` is
  optional); ``?operation=delete`` and ``?operation=void``;
- ``GET /{entity}/{id}``: read (``GET /companyinfo/{realm_id}`` reads the company);
- ``GET /query?query=...`` or ``POST /query`` with the query as an ``application/text`` body;
- ``GET /cdc?entities=A,B&changedSince=...``;
- ``POST /batch`` with ``{"BatchItemRequest": [...]}``.

``?requestid=`` makes a write or a batch idempotent; ``?minorversion=`` is accepted and
ignored. Backend work runs in the thread pool so the event loop stays free.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_pipeline.emulator.accounting.entities import is_blank, spec_for
from qbo_pipeline.emulator.accounting.models import COMPANY_TIMEZONE, QBOBackend
from qbo_pipeline.emulator.exceptions import (
    BatchRequestInvalid,
    BatchTooLarge,
    InvalidRequest,
    QBOFault,
    RequestIdTooLong,
    RequiredParameterMissing,
    qbo_time,
)

MAX_REQUEST_ID = 50
MAX_BATCH_REQUEST_ID = 36
MAX_BATCH_ID_WITH_REQUEST_ID = 10
MAX_BATCH_ITEMS = 30
BATCH_OPERATIONS = ("create", "update", "delete", "void")
_BATCH_ITEM_KEYS = frozenset({"bId", "operation", "optionsData"})

JSONObject = dict[str, Any]


def response_time() -> str:
    """QBO stamps responses in the company's time zone, to the millisecond."""
    return qbo_time(datetime.now(COMPANY_TIMEZONE))


def qbo_json(body: JSONObject, status_code: int = 200) -> JSONResponse:
    # QBO tags every response with a transaction id that support can trace.
    return JSONResponse(body, status_code=status_code, headers={"intuit_tid": str(uuid.uuid4())})


class AccountingAPI:
    """Request handlers; each takes (request, realm_id) as ``guard.guarded`` expects."""

    def __init__(self, backend: QBOBackend) -> None:
        self.backend = backend

    # ---------------------------------------------------------------- single objects

    async def read(self, request: Request, realm_id: str) -> Response:
        entity = _entity_name(request.path_params["entity"])
        entity_id = request.path_params["entity_id"]
        record = await run_in_threadpool(self.backend.read, realm_id, entity, entity_id)
        return qbo_json({entity: record, "time": response_time()})

    async def write(self, request: Request, realm_id: str) -> Response:
        entity = _entity_name(request.path_params["entity"])
        operation = request.query_params.get("operation", "").lower()
        request_id = _request_id(request, MAX_REQUEST_ID)
        body = await _json_body(request)

        def answer() -> tuple[int, JSONObject]:
            try:
                record = self._apply(realm_id, entity, operation, body)
            except QBOFault as fault:
                return fault.http_status, fault.to_json_body()
            return 200, {entity: record, "time": response_time()}

        status, payload = await run_in_threadpool(self._once, realm_id, request_id, answer)
        return qbo_json(payload, status)

    def _apply(self, realm_id: str, entity: str, operation: str, body: Any) -> JSONObject:
        if not isinstance(body, dict):
            raise InvalidRequest(f"The request body must be a JSON object holding the {entity}")
        if operation in ("", "create", "update"):
            if operation == "update" or (operation == "" and "Id" in body):
                return self.backend.update(realm_id, entity, body)
            return self.backend.create(realm_id, entity, body)
        if operation == "delete":
            return self.backend.delete(realm_id, entity, body)
        if operation == "void":
            return self.backend.void(realm_id, entity, body)
        raise InvalidRequest(
            f"operation={operation!r} is not supported; use update, delete or void "
            "(or none to create)", "operation")

    def _once(self, realm_id: str, request_id: str | None,
              answer: Any) -> tuple[int, JSONObject]:
        if request_id is None:
            result: tuple[int, JSONObject] = answer()
            return result
        return self.backend.idempotent(realm_id, request_id, answer)

    # ---------------------------------------------------------------- query and CDC

    async def query(self, request: Request, realm_id: str) -> Response:
        if request.method == "POST":
            text = (await request.body()).decode("utf-8")
        else:
            text = request.query_params.get("query", "")
        if not text.strip():
            raise RequiredParameterMissing("query")
        found = await run_in_threadpool(self.backend.query, realm_id, text)
        return qbo_json({"QueryResponse": found, "time": response_time()})

    async def cdc(self, request: Request, realm_id: str) -> Response:
        entities = [name for name in request.query_params.get("entities", "").split(",")
                    if name.strip()]
        changed_since = _parse_changed_since(request.query_params.get("changedSince"))
        found = await run_in_threadpool(self.backend.cdc, realm_id, entities, changed_since)
        return qbo_json({"CDCResponse": [found], "time": response_time()})

    # ---------------------------------------------------------------- batch

    async def batch(self, request: Request, realm_id: str) -> Response:
        request_id = _request_id(request, MAX_BATCH_REQUEST_ID)
        body = await _json_body(request)
        items = _batch_items(body, with_request_id=request_id is not None)

        def answer() -> tuple[int, JSONObject]:
            results = [self._batch_item(realm_id, item) for item in items]
            return 200, {"BatchItemResponse": results, "time": response_time()}

        status, payload = await run_in_threadpool(self._once, realm_id, request_id, answer)
        return qbo_json(payload, status)

    def _batch_item(self, realm_id: str, item: JSONObject) -> JSONObject:
        batch_id = item["bId"]
        try:
            if "Query" in item:
                return {"bId": batch_id,
                        "QueryResponse": self.backend.query(realm_id, str(item["Query"]))}
            entity, body = _batch_entity(item)
            operation = str(item.get("operation", "")).lower()
            if operation not in BATCH_OPERATIONS:
                raise InvalidRequest(
                    f"bId {batch_id}: operation {item.get('operation')!r} must be one of "
                    + ", ".join(BATCH_OPERATIONS), "operation")
            return {"bId": batch_id, entity: self._apply(realm_id, entity, operation, body)}
        except QBOFault as fault:
            return {"bId": batch_id, "Fault": fault.fault_body()}


# -------------------------------------------------------------------- request parsing


def _entity_name(path_segment: str) -> str:
    spec = spec_for(path_segment)
    if spec is None:
        raise InvalidRequest(f"Unsupported entity in the path: {path_segment!r}", "entity")
    return spec.name


def _request_id(request: Request, limit: int) -> str | None:
    request_id = request.query_params.get("requestid")
    if request_id is None or request_id == "":
        return None
    if len(request_id) > limit:
        raise RequestIdTooLong(limit, request_id)
    return request_id


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error


def _parse_changed_since(text: str | None) -> datetime:
    if not text:
        raise RequiredParameterMissing("changedSince")
    try:
        if len(text) == 10:  # a date alone means the start of that day in the company's zone
            return datetime.combine(datetime.fromisoformat(text).date(), time(),
                                    tzinfo=COMPANY_TIMEZONE)
        moment = datetime.fromisoformat(text.replace(" ", "+"))  # '+' decoded as a space
    except ValueError as error:
        raise InvalidRequest(
            f"changedSince {text!r} is not an ISO 8601 date-time such as "
            "2026-01-31T09:00:00-08:00", "changedSince") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=COMPANY_TIMEZONE)


def _batch_items(body: Any, *, with_request_id: bool) -> list[JSONObject]:
    """The BatchItemRequest list, checked as a whole before any item runs."""
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise BatchRequestInvalid("The batch body must be {\"BatchItemRequest\": [...]} with at "
                                  "least one item", "BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        raise BatchTooLarge(len(items))
    seen: set[str] = set()
    for position, item in enumerate(items, start=1):
        batch_id = item.get("bId") if isinstance(item, dict) else None
        if is_blank(batch_id):
            raise BatchRequestInvalid(f"BatchItemRequest[{position}] has no bId", "bId")
        batch_id = str(batch_id)
        if batch_id in seen:
            raise BatchRequestInvalid(f"bId {batch_id!r} is used twice; bIds must be unique",
                                      "bId")
        if with_request_id and len(batch_id) > MAX_BATCH_ID_WITH_REQUEST_ID:
            raise BatchRequestInvalid(
                f"bId {batch_id!r} is longer than {MAX_BATCH_ID_WITH_REQUEST_ID} characters, "
                "the limit when the batch carries a requestid", "bId")
        seen.add(batch_id)
    return [{**item, "bId": str(item["bId"])} for item in items]


def _batch_entity(item: JSONObject) -> tuple[str, Any]:
    payload = [key for key in item if key not in _BATCH_ITEM_KEYS]
    if len(payload) != 1:
        raise InvalidRequest(
            f"bId {item['bId']}: an item holds exactly one entity object (or a Query); "
            f"found {payload or 'none'}", "BatchItemRequest")
    return _entity_name(payload[0]), item[payload[0]]
