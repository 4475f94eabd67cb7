"""The QBO accounting API client for one realm (company).

Retries, in two layers of well-kept libraries:

- urllib3's ``Retry`` on the session's adapter (``transport.py``, which the token endpoint's
  client mounts too): refused or dropped connections before an answer, read timeouts and 5xx,
  for GET and POST, with exponential backoff and jitter.
- ``backoff`` (already installed with Dagster; tenacity is not) around each attempt, for what
  urllib3 cannot see: a 429 (QBO sends no Retry-After, so exponential backoff with jitter from
  ``throttle_backoff_seconds``, or Retry-After when a proxy sends one), and a connection cut in
  the middle of the body, which urllib3 has already handed over as a response.

Retrying a POST is safe only because every POST we send carries a ``requestid`` in its URL: a
retry re-sends the same URL, and QBO answers a repeated ``requestid`` with the first answer
instead of writing twice. ``_send`` refuses a POST without one. An expired access token (401)
is refreshed once and the request re-sent, with the same ``requestid``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import backoff
import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from qbo_pipeline.qbo.changes import (
    CDC_LOOKBACK,
    CDC_MAX_OBJECTS,
    CHANGE_OVERLAP,
    as_aware,
    changes_query,
    reads_by_cdc,
)
from qbo_pipeline.qbo.errors import (
    FaultDetail,
    QBOError,
    QBOServiceError,
    RequestContext,
    ValidationError,
    error_from_fault_body,
    error_from_response,
)
from qbo_pipeline.qbo.limits import RealmRateLimiter, shared_limiter
from qbo_pipeline.qbo.queries import find_by_query
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.tokens import AccessTokenSource
from qbo_pipeline.qbo.transport import build_session, retrying_cut_bodies

logger = logging.getLogger(__name__)

WRITE_REQUEST_ID_LIMIT = 50
BATCH_REQUEST_ID_LIMIT = 36
BATCH_ITEM_LIMIT = 30  # QBO's limit of items per batch request
BATCH_ITEM_ID_LIMIT = 10  # QBO's limit on a bId when the batch carries a requestid
QUERY_PAGE_LIMIT = 1000
THROTTLED_STATUS = 429
THROTTLE_WAIT_CAP_SECONDS = 60.0

BatchOperationName = Literal["create", "update", "delete", "void", "query"]


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # absent, or an HTTP date (not sent by QBO): fall back to backoff


def throttle_waits(base_seconds: float, cap_seconds: float = THROTTLE_WAIT_CAP_SECONDS
                   ) -> Generator[float, requests.Response | None, None]:
    """Waits after successive 429s (a ``backoff`` wait generator fed each response):
    Retry-After when sent, else ``base * 2**n`` capped, with "equal jitter" (half fixed, half
    random) so that throttled workers do not come back in step."""
    attempt = 0
    response = yield 0.0  # backoff primes the generator before the first wait
    while True:
        retry_after = _retry_after_seconds(response)
        if retry_after is None:
            ceiling = min(cap_seconds, base_seconds * 2 ** attempt)
            retry_after = ceiling / 2 + random.uniform(0, ceiling / 2)
        attempt += 1
        response = yield retry_after


@dataclass(frozen=True)
class BatchOperation:
    """One ``BatchItemRequest``. ``bid`` must identify the change (not only the record): it
    is what the batch ``requestid`` is derived from, so a retried batch is recognised by QBO."""

    bid: str
    operation: BatchOperationName
    entity: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    query: str = ""

    def to_item(self) -> dict[str, Any]:
        if self.operation == "query":
            return {"bId": self.bid, "Query": self.query}
        return {"bId": self.bid, "operation": self.operation, self.entity: self.body}


@dataclass(frozen=True)
class BatchResult:
    """The answer to one batch item: the object written (or the query response), or an error."""

    bid: str
    entity: str
    record: dict[str, Any] | None = None
    error: QBOError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def batch_item_id(request_id: str) -> str:
    """The bId of a change's batch item: the first 10 characters of its request id, dashes
    dropped (a uuid's first 10 hex digits).

    QBO allows only 10 characters per bId in a batch sent with a requestid. The bId must still
    name the change, not only the record: the batch requestid is derived from the bIds, so the
    same changes retried get the same requestid, and QBO answers with what it did the first
    time instead of writing twice."""
    bid = request_id.replace("-", "")[:BATCH_ITEM_ID_LIMIT]
    if not bid:
        raise ValueError(f"batch: request id {request_id!r} leaves no characters for a bId")
    return bid


def batch_request_id(operations: Sequence[BatchOperation]) -> str:
    """A requestid (<= 36 chars) that is the same whenever the same items are sent again."""
    digest = hashlib.sha256()
    for operation in operations:
        digest.update(f"{operation.bid}\x1f{operation.operation}\x1f{operation.entity}\x1e"
                      .encode())
    return digest.hexdigest()[:BATCH_REQUEST_ID_LIMIT]


def _check_request_id(request_id: str, limit: int, context: RequestContext) -> None:
    if not request_id or len(request_id) > limit:
        raise ValueError(f"{context.describe()}: requestid must be 1 to {limit} characters, "
                         f"got {len(request_id)}; derive a shorter one (e.g. a hash)")


def _timed_out(error: requests.RequestException) -> bool:
    """Whether no answer came in time (rather than no connection at all). Once urllib3's
    retries are spent, requests hands a read timeout over as a ``ConnectionError`` wrapping
    urllib3's ``MaxRetryError``, whose ``reason`` tells."""
    wrapped = error.args[0] if error.args else None
    reason = getattr(wrapped, "reason", None)
    # urllib3's NewConnectionError (refused, no route, no DNS) is a ConnectTimeoutError for
    # backwards compatibility, yet nothing timed out: the connection could not be made.
    if isinstance(reason, NewConnectionError):
        return False
    return isinstance(error, requests.exceptions.Timeout) or isinstance(
        reason, ReadTimeoutError | ConnectTimeoutError)


def record_name(body: dict[str, Any]) -> str:
    """What a person calls the record: its DisplayName, Name or DocNumber, when it has one
    (an Id alone does not tell a bookkeeper which customer failed)."""
    for field_name in ("DisplayName", "Name", "DocNumber"):
        value = body.get(field_name)
        if isinstance(value, str) and value:
            return value
    return ""


def _entity_path(entity: str) -> str:
    return entity.lower()


def _query_rows(query_response: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for value in query_response.values():
        if isinstance(value, list):
            rows.extend(value)
    return rows


class QBOClient:
    """Reads and writes one QBO company. Thread-safe; share one per realm."""

    def __init__(self, settings: QBOSettings, realm_id: str, token_source: AccessTokenSource,
                 session: requests.Session | None = None,
                 limiter: RealmRateLimiter | None = None) -> None:
        self.settings = settings
        self.realm_id = realm_id
        self._tokens = token_source
        self._session = session or build_session(settings)
        self._limiter = limiter or shared_limiter(
            settings.base_url, realm_id, settings.requests_per_minute,
            settings.concurrent_requests, settings.rate_window_seconds,
            settings.batches_per_minute, settings.requests_per_second)
        self._attempt_with_retries = self._retrying(self._attempt)

    def close(self) -> None:
        self._session.close()

    # --- single records -------------------------------------------------------------------

    def create(self, entity: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        context = RequestContext("create", entity, name=record_name(body))
        answer = self._write(_entity_path(entity), body, request_id, context)
        return self._record(answer, entity, context)

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        context = RequestContext("read", entity, entity_id)
        answer = self._send("GET", f"{_entity_path(entity)}/{entity_id}", context)
        return self._record(answer, entity, context)

    def update(self, entity: str, body: dict[str, Any], request_id: str,
               sparse: bool = True) -> dict[str, Any]:
        """Update with the SyncToken in ``body``; a stale one raises ``StaleObjectError``."""
        context = RequestContext("update", entity, str(body.get("Id", "")), record_name(body))
        if not body.get("Id") or body.get("SyncToken") is None:
            raise ValueError(f"{context.describe()}: an update needs the record's Id and "
                             f"SyncToken (read the record first)")
        answer = self._write(_entity_path(entity), {**body, "sparse": sparse}, request_id,
                             context)
        return self._record(answer, entity, context)

    def void(self, entity: str, entity_id: str, sync_token: str,
             request_id: str) -> dict[str, Any]:
        """Void a transaction (invoices are voided, never deleted)."""
        context = RequestContext("void", entity, entity_id)
        answer = self._write(_entity_path(entity), {"Id": entity_id, "SyncToken": sync_token},
                             request_id, context, operation="void")
        return self._record(answer, entity, context)

    def delete(self, entity: str, entity_id: str, sync_token: str,
               request_id: str) -> dict[str, Any]:
        context = RequestContext("delete", entity, entity_id)
        answer = self._write(_entity_path(entity), {"Id": entity_id, "SyncToken": sync_token},
                             request_id, context, operation="delete")
        return self._record(answer, entity, context)

    # --- reading many -----------------------------------------------------------------------

    def query(self, text: str, page_size: int = QUERY_PAGE_LIMIT) -> Iterator[dict[str, Any]]:
        """Every row of a query, fetched page by page (STARTPOSITION/MAXRESULTS are added
        here). Add ``ORDERBY Id`` (or another stable order) when rows may change meanwhile."""
        context = RequestContext("query")
        if not 1 <= page_size <= QUERY_PAGE_LIMIT:
            raise ValueError(f"query page_size must be 1..{QUERY_PAGE_LIMIT}, got {page_size}")
        if any(word in text.upper() for word in ("STARTPOSITION", "MAXRESULTS")):
            raise ValueError(f"query {text!r}: leave out STARTPOSITION/MAXRESULTS; the client "
                             f"pages through every row itself")
        start = 1
        while True:
            paged = f"{text} STARTPOSITION {start} MAXRESULTS {page_size}"
            answer = self._send("GET", "query", context, params={"query": paged})
            rows = _query_rows(answer.get("QueryResponse", {}))
            yield from rows
            if len(rows) < page_size:
                return
            start += page_size

    def count(self, text: str) -> int:
        """The ``totalCount`` of a ``SELECT COUNT(*) FROM ...`` query."""
        answer = self._send("GET", "query", RequestContext("count"), params={"query": text})
        return int(answer.get("QueryResponse", {}).get("totalCount", 0))

    def changed_since(self, entity: str, since: datetime | None,
                      now: datetime | None = None,
                      condition: str | None = None) -> list[dict[str, Any]]:
        """The records of ``entity`` changed since ``since`` (a naive moment is taken as UTC),
        or all of them when ``since`` is None; inactive names-list records included.

        CDC when it serves the entity and ``since`` is within its reach of ``now`` (the clock
        unless given): deleted records then come back as CDC sends them, with ``"status":
        "Deleted"``. Otherwise, or when CDC's answer is full (it drops what is beyond 1000
        objects), a query on ``MetaData.LastUpdatedTime``, which reports no deletions. Either
        way a few minutes before ``since`` are fetched again (see ``qbo.changes``). A
        ``condition`` (QBO query text such as ``Type = 'Service'``) can only be asked of a
        query, so it always reads by query."""
        since = as_aware(since)
        if condition is None and since is not None and reads_by_cdc(
                entity, since, as_aware(now) or datetime.now(UTC)):
            changed = self.cdc([entity], since - CHANGE_OVERLAP).get(entity, [])
            if len(changed) < CDC_MAX_OBJECTS:
                return changed
        return list(self.query(changes_query(entity, since, condition)))

    def find_by(self, entity: str, field: str, value: str) -> list[dict[str, Any]]:
        """The active records of ``entity`` whose ``field`` equals ``value`` (any text: it is
        quoted and escaped here)."""
        return list(self.query(find_by_query(entity, field, value)))

    def cdc(self, entities: Sequence[str], changed_since: datetime
            ) -> dict[str, list[dict[str, Any]]]:
        """Records of ``entities`` changed since a moment within the last 30 days (deleted ones
        come back with ``status: "Deleted"``). At most 1000 objects in all, the rest dropped
        silently: ``changed_since`` falls back to a query then."""
        context = RequestContext("change data capture", ",".join(entities))
        if changed_since.tzinfo is None:
            raise ValueError(f"{context.describe()}: changed_since must carry a time zone")
        if changed_since < datetime.now(UTC) - CDC_LOOKBACK:
            raise ValueError(f"{context.describe()}: changed_since {changed_since.isoformat()} "
                             f"is more than {CDC_LOOKBACK.days} days ago; query by "
                             f"MetaData.LastUpdatedTime")
        params = {"entities": ",".join(entities),
                  "changedSince": changed_since.isoformat(timespec="seconds")}
        answer = self._send("GET", "cdc", context, params=params)
        changed: dict[str, list[dict[str, Any]]] = {entity: [] for entity in entities}
        for cdc_response in answer.get("CDCResponse", []):
            for query_response in cdc_response.get("QueryResponse", []):
                for entity, rows in query_response.items():
                    if isinstance(rows, list):
                        changed.setdefault(entity, []).extend(rows)
        return changed

    # --- batch ------------------------------------------------------------------------------

    def batch(self, operations: Sequence[BatchOperation]) -> list[BatchResult]:
        """Send operations 30 per request (QBO's limit), each request with a requestid derived
        from its items, and return one result per operation in the order given."""
        bids = [operation.bid for operation in operations]
        if len(set(bids)) != len(bids):
            raise ValueError("batch: every operation needs a distinct bid")
        results: list[BatchResult] = []
        for start in range(0, len(operations), BATCH_ITEM_LIMIT):
            results.extend(self._batch_chunk(operations[start:start + BATCH_ITEM_LIMIT]))
        return results

    def _batch_chunk(self, chunk: Sequence[BatchOperation]) -> list[BatchResult]:
        context = RequestContext("batch", f"of {len(chunk)} items")
        body = {"BatchItemRequest": [operation.to_item() for operation in chunk]}
        answer = self._send("POST", "batch", context, body=body,
                            params={"requestid": batch_request_id(chunk)})
        by_bid = {item.get("bId"): item for item in answer.get("BatchItemResponse", [])}
        return [self._batch_result(operation, by_bid.get(operation.bid))
                for operation in chunk]

    def _batch_result(self, operation: BatchOperation, item: dict[str, Any] | None
                      ) -> BatchResult:
        entity_id = str(operation.body.get("Id", ""))
        context = RequestContext(f"batch {operation.operation} (bId {operation.bid})",
                                 operation.entity, entity_id, record_name(operation.body),
                                 self.realm_id)
        if item is None:
            missing = FaultDetail("", "the batch response has no item for this bId")
            return BatchResult(operation.bid, operation.entity,
                               error=QBOServiceError(context, (missing,)))
        if "Fault" in item:
            return BatchResult(operation.bid, operation.entity,
                               error=error_from_fault_body(context, item["Fault"]))
        if operation.operation == "query":
            return BatchResult(operation.bid, operation.entity, record=item.get("QueryResponse"))
        return BatchResult(operation.bid, operation.entity, record=item.get(operation.entity))

    # --- HTTP -------------------------------------------------------------------------------

    def _write(self, path: str, body: dict[str, Any], request_id: str, context: RequestContext,
               operation: str | None = None) -> dict[str, Any]:
        _check_request_id(request_id, WRITE_REQUEST_ID_LIMIT, context)
        params = {"requestid": request_id}
        if operation:
            params["operation"] = operation
        return self._send("POST", path, context, params=params, body=body)

    @staticmethod
    def _record(answer: dict[str, Any], entity: str, context: RequestContext) -> dict[str, Any]:
        record = answer.get(entity)
        if not isinstance(record, dict):
            missing = FaultDetail("", f"the response has no {entity} object")
            raise QBOServiceError(context, (missing,))
        return record

    def _send(self, method: str, path: str, context: RequestContext,
              params: dict[str, str] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        params = {**(params or {}), "minorversion": str(self.settings.minorversion)}
        if method == "POST" and "requestid" not in params:
            raise ValueError(f"{context.describe()}: POST without a requestid cannot be "
                             f"retried safely")
        url = f"{self.settings.company_url(self.realm_id)}/{path}"
        context = replace(context, realm_id=self.realm_id)
        try:
            response = self._attempt_with_retries(method, url, params, body, path == "batch")
        except requests.exceptions.InvalidJSONError:
            # Nothing was sent: the body holds a value JSON cannot carry (NaN, infinity).
            reason = FaultDetail("", "the request holds a value JSON cannot carry (NaN or "
                                     "infinity); the record's source value must be corrected")
            raise ValidationError(context, (reason,)) from None
        except requests.RequestException as error:
            raise self._unreachable(context, error) from None
        return self._parse(response, context)

    def _unreachable(self, context: RequestContext,
                     error: requests.RequestException) -> QBOServiceError:
        """No answer after the retries. Only the exception's type is told: its text may
        carry the request, headers and all."""
        reason = FaultDetail("", f"no answer from {self.settings.base_url} after "
                                 f"{self.settings.max_retries} retries "
                                 f"({type(error).__name__})")
        return QBOServiceError(context, (reason,),
                               catalog_key="network_timeout" if _timed_out(error)
                               else "network_unreachable")

    def _retrying(self, attempt: Callable[..., requests.Response]
                  ) -> Callable[..., requests.Response]:
        on_throttle = backoff.on_predicate(
            throttle_waits, lambda response: response.status_code == THROTTLED_STATUS,
            max_tries=self.settings.max_retries + 1, jitter=None,
            base_seconds=self.settings.throttle_backoff_seconds)
        return on_throttle(retrying_cut_bodies(attempt, self.settings))

    def _attempt(self, method: str, url: str, params: dict[str, str],
                 body: dict[str, Any] | None, batch: bool) -> requests.Response:
        """One request through the realm's limiter; a refused access token is refreshed once."""
        with self._limiter.slot(batch=batch):
            token = self._tokens.access_token(self.realm_id)
            response = self._exchange(method, url, params, body, token)
            if response.status_code == 401:
                token = self._tokens.refresh_access_token(self.realm_id, token)
                response = self._exchange(method, url, params, body, token)
        return response

    def _exchange(self, method: str, url: str, params: dict[str, str],
                  body: dict[str, Any] | None, token: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        response = self._session.request(method, url, params=params, json=body,
                                         headers=headers, timeout=self.settings.timeout_seconds)
        logger.debug("QBO %s %s -> %s", method, url.rsplit("/v3/", 1)[-1],
                     response.status_code)
        return response

    @staticmethod
    def _parse(response: requests.Response, context: RequestContext) -> dict[str, Any]:
        tid = response.headers.get("intuit_tid")
        if response.status_code >= 400:
            raise error_from_response(context, response.status_code, response.text, tid)
        try:
            answer = response.json()
        except ValueError:
            raise error_from_response(context, response.status_code, response.text,
                                      tid) from None
        if not isinstance(answer, dict):
            raise error_from_response(context, response.status_code, response.text, tid)
        if "Fault" in answer:
            raise error_from_response(context, response.status_code, response.text, tid)
        return answer
