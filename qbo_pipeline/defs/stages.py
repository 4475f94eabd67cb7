"""The I/O around the pure core, one function per asset: read, hold back, fetch, plan, write.

Every decision (how a row maps, whether it is valid, what changed, what to write) is the sync
core's; these functions only fetch its inputs from the source DB, the state DB and QBO, and
store what it decided. Each returns the value its asset passes on, with the running counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.defs.partitions import sync_start_date
from qbo_pipeline.qbo import BatchOperation, BatchResult, QBOClient, QBOError, StaleObjectError
from qbo_pipeline.source import read_business_window, read_changed, read_children
from qbo_pipeline.specs import QBO_ENTITIES, EntityKind, EntitySpec, SpecSet
from qbo_pipeline.state import (
    LinkUpdate,
    QuarantineEntry,
    WriteIntent,
    WriteLogRecord,
    WriteOutcome,
    complete_write,
    get_cursor,
    get_links,
    get_realm,
    get_snapshots,
    open_conflicts,
    pending_writes,
    quarantine_rows,
    record_write_intent,
    release_quarantine,
    save_snapshots,
    set_cursor,
    upsert_links,
)
from qbo_pipeline.sync import (
    Plan,
    RecordState,
    ResolveLookup,
    ResolveRef,
    StaleResolution,
    ValidationResult,
    Write,
    WriteKind,
    map_frame,
    payload_hash,
    plan_changes,
    resolve_stale,
    select_frame,
    validate_frame,
)
from qbo_pipeline.sync.mapping import DELETED, PAYLOAD, SOURCE_KEY, UPDATED_AT

# `skipped`: read but out of scope (dated before the sync start date, or left out by a spec
# setting such as approved-only time), so that read = skipped + valid + quarantined.
COUNT_NAMES = ("read", "skipped", "valid", "quarantined", "created", "updated", "unchanged",
               "conflicts", "failed")
PAGE_SIZE = 1000
BATCH_SIZE = 30  # QBO's limit of items per batch request
BID_LENGTH = 10
# Rows stamped in the last moments may belong to transactions still committing: read up to a
# little before now, and the next run starts exactly there.
CHANGE_WINDOW_LAG = timedelta(seconds=5)
# The entities the ChangeDataCapture endpoint answers for; the others are read by a query on
# MetaData.LastUpdatedTime.
CDC_ENTITIES = frozenset({"Customer", "Vendor", "Employee", "Item", "Account", "Class", "Term",
                          "TaxCode", "Invoice", "CreditMemo", "Payment", "Purchase", "Bill",
                          "Deposit"})
CDC_MAX_OBJECTS = 1000  # QBO's cap on the objects of one CDC answer
CDC_REACH = timedelta(days=29)  # CDC looks back 30 days; keep a day's margin
SNAPSHOT_OVERLAP = timedelta(minutes=5)  # clocks differ: re-fetch a little; newer never loses
RECORD_TAG = "qbo/record"


@dataclass(frozen=True)
class SyncScope:
    """Which rows a run covers: changes since the cursor, or one day's business dates."""

    realm_id: str
    incremental: bool
    day: date
    until: datetime
    record_key: str | None = None  # one source record only: a per-record sync


@dataclass(frozen=True)
class Stage:
    """What one asset hands the next: the rows in play, the scope and the counts so far."""

    scope: SyncScope
    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    window_end: datetime | None = None  # read by change window up to here: the next cursor

    def counted(self, **counts: int) -> dict[str, int]:
        merged = {name: self.counts.get(name, 0) for name in COUNT_NAMES}
        merged.update(counts)
        return merged


@dataclass(frozen=True)
class PlanStage:
    """The plan of one spec's writes, and the source payloads it was made from."""

    scope: SyncScope
    plan: Plan
    sources: dict[str, dict[str, Any]]
    counts: dict[str, int]
    window_end: datetime | None = None


def scope_for(realm_id: str, day: date, incremental: bool, now: datetime | None = None,
              lag: timedelta = CHANGE_WINDOW_LAG) -> SyncScope:
    """The run's scope; its change window ends `lag` before `now` (the clock unless given)."""
    return SyncScope(realm_id, incremental, day, (now or datetime.now(UTC)) - lag)


def record_key_for(spec_name: str, tags: Mapping[str, str]) -> str | None:
    """The one source key a run syncs of this spec (tag `qbo/record` = `<spec>/<key>`)."""
    name, _, key = tags.get(RECORD_TAG, "").partition("/")
    return key if name == spec_name and key else None


# --- source/<spec> ---------------------------------------------------------------------------


def read_source(spec: EntitySpec, specs: SpecSet, engine: Engine,
                sessions: sessionmaker[Session], client: QBOClient, scope: SyncScope) -> Stage:
    """The rows in scope, filtered by the realm's settings and start date, mapped.

    A day's backfill reads the transactions dated that day; names-list records (customers,
    employees) are read by change window in every run, so the transactions' references find
    them in QBO whatever day they were created.
    """
    with sessions.begin() as session:
        realm = get_realm(session, scope.realm_id)
        cursor = get_cursor(session, scope.realm_id, spec.name)
        since = cursor.change_window_end if cursor is not None else None
        start = (realm.sync_start_date if realm is not None else None) or sync_start_date()
        overrides = (realm.settings or {}).get(spec.name, {}) if realm is not None else {}
    by_change_window = scope.incremental or not _is_transaction(spec)
    pages = (_read_record(spec, engine, scope.record_key) if scope.record_key is not None
             else _read_pages(spec, engine, scope, since, by_change_window))
    rows = [row for page in pages for row in page]
    frame = pd.DataFrame(rows, columns=None if rows else spec.source.columns)
    read = len(frame)
    if not frame.empty:
        frame = select_frame(spec, _on_or_after(spec, frame, start), overrides)
    mapped = map_frame(spec, frame, _children(spec, engine, frame),
                       _ref_resolver(spec, specs, sessions, scope.realm_id),
                       _lookup_resolver(client))
    # A one-record read leaves the cursor alone: the window's other changes are still due.
    window_end = scope.until if by_change_window and scope.record_key is None else None
    return Stage(scope, mapped, {"read": read, "skipped": read - len(frame)}, window_end)


def _read_record(spec: EntitySpec, engine: Engine, key: str) -> Iterator[list[dict[str, Any]]]:
    """The one row with this key, whatever its date or the cursor (text comparison, since
    source keys are strings whatever the column's type)."""
    source = spec.source
    table = source.table or source.query
    assert table is not None
    where = f"CAST({source.primary_key} AS VARCHAR(255)) = :record_key"
    if source.filter:
        where = f"({source.filter}) AND {where}"
    return read_changed(engine, table, primary_key=source.primary_key, page_size=PAGE_SIZE,
                        updated_at=source.updated_at, since=None,
                        until=datetime.now(UTC) + CHANGE_WINDOW_LAG, where=where,
                        params={"record_key": key}, soft_delete=source.deleted)


def _read_pages(spec: EntitySpec, engine: Engine, scope: SyncScope, since: datetime | None,
                by_change_window: bool) -> Iterator[list[dict[str, Any]]]:
    source = spec.source
    table = source.table or source.query
    assert table is not None
    common: dict[str, Any] = {"primary_key": source.primary_key, "page_size": PAGE_SIZE,
                              "where": source.filter, "soft_delete": source.deleted}
    if by_change_window:
        return read_changed(engine, table, updated_at=source.updated_at, since=since,
                            until=scope.until, **common)
    return read_business_window(engine, table, business_date=source.business_date,
                                start=scope.day, end=scope.day + timedelta(days=1), **common)


def _on_or_after(spec: EntitySpec, frame: pd.DataFrame, start: date | None) -> pd.DataFrame:
    """Transactions dated before the sync start date are never pushed; names lists are all
    synced, since the transactions in range refer to them."""
    if start is None or frame.empty or not _is_transaction(spec):
        return frame
    dated = pd.to_datetime(frame[spec.source.business_date]).dt.date
    return frame[dated >= start]


def _is_transaction(spec: EntitySpec) -> bool:
    return QBO_ENTITIES[spec.qbo_entity].kind is EntityKind.TRANSACTION


def _children(spec: EntitySpec, engine: Engine, frame: pd.DataFrame) -> pd.DataFrame | None:
    lines = spec.lines
    if lines is None:
        return None
    ids = frame[spec.source.primary_key].tolist()
    by_parent = read_children(engine, lines.table, lines.parent_key, ids, lines.order_by)
    rows = [row for children in by_parent.values() for row in children]
    return pd.DataFrame(rows, columns=None if rows else [lines.parent_key, lines.order_by])


def _ref_resolver(spec: EntitySpec, specs: SpecSet, sessions: sessionmaker[Session],
                  realm_id: str) -> ResolveRef:
    targets = set(spec.references().values())
    with sessions.begin() as session:
        linked = {(name, key): link.qbo_id for name in targets
                  for key, link in get_links(session, realm_id, name).items()
                  if not link.delete_applied}

    def resolve(spec_name: str, source_key: str) -> str | None:
        return linked.get((spec_name, source_key))

    return resolve


def _lookup_resolver(client: QBOClient) -> ResolveLookup:
    found: dict[tuple[str, str, str], str | None] = {}

    def resolve(entity: str, by: str, value: str) -> str | None:
        if (entity, by, value) not in found:
            quoted = value.replace("\\", "\\\\").replace("'", "\\'")
            rows = list(client.query(f"SELECT * FROM {entity} WHERE {by} = '{quoted}'"))
            found[(entity, by, value)] = str(rows[0]["Id"]) if len(rows) == 1 else None
        return found[(entity, by, value)]

    return resolve


# --- validated/<spec> ------------------------------------------------------------------------


def validate_and_quarantine(spec: EntitySpec, stage: Stage,
                            sessions: sessionmaker[Session]) -> tuple[Stage, ValidationResult]:
    """Valid rows go on; the others are held in the state DB with their reasons."""
    result = validate_frame(spec, stage.frame)
    updated = dict(zip(stage.frame[SOURCE_KEY], stage.frame[UPDATED_AT], strict=True))
    payloads = dict(zip(stage.frame[SOURCE_KEY], stage.frame[PAYLOAD], strict=True))
    entries = [QuarantineEntry(row.source_key, row.reasons, payloads.get(row.source_key),
                               _as_datetime(updated.get(row.source_key)))
               for row in result.quarantined]
    with sessions.begin() as session:
        quarantine_rows(session, stage.scope.realm_id, spec.name, entries)
        release_quarantine(session, stage.scope.realm_id, spec.name,
                           result.valid[SOURCE_KEY].tolist())
    active = int((~result.valid[DELETED].astype(bool)).sum())
    counts = stage.counted(valid=active, quarantined=len(result.quarantined))
    return Stage(stage.scope, result.valid, counts, stage.window_end), result


def _as_datetime(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    moment: datetime = pd.Timestamp(value).to_pydatetime()
    return moment


# --- qbo_snapshot/<spec> ---------------------------------------------------------------------


def refresh_snapshots(spec: EntitySpec, client: QBOClient, sessions: sessionmaker[Session],
                      realm_id: str) -> list[dict[str, Any]]:
    """Fetch the QBO records changed since the last fetch (CDC within its reach, else a query
    by LastUpdatedTime, else everything) into the state DB; returns them."""
    started = datetime.now(UTC)
    with sessions.begin() as session:
        cursor = get_cursor(session, realm_id, spec.name)
        last = cursor.snapshot_cursor if cursor is not None else None
    records = _changed_in_qbo(spec.qbo_entity, client, last, started)
    with sessions.begin() as session:
        save_snapshots(session, realm_id, spec.qbo_entity, records)
        set_cursor(session, realm_id, spec.name, snapshot_cursor=started)
    return records


def _changed_in_qbo(entity: str, client: QBOClient, last: datetime | None,
                    now: datetime) -> list[dict[str, Any]]:
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if last is not None and now - last < CDC_REACH and entity in CDC_ENTITIES:
        changed: list[dict[str, Any]] = client.cdc([entity], last - SNAPSHOT_OVERLAP).get(
            entity, [])
        if len(changed) < CDC_MAX_OBJECTS:
            return changed
        # CDC answers at most 1000 objects and drops the rest: page through them by query.
    # Inactive names-list records stay in: a linked record may have been made inactive.
    active = " WHERE Active IN (true, false)" if _is_names_list(entity) else ""
    if last is None:
        return list(client.query(f"SELECT * FROM {entity}{active} ORDERBY Id"))
    moment = (last - SNAPSHOT_OVERLAP).isoformat(timespec="seconds")
    joiner = " AND" if active else " WHERE"
    return list(client.query(f"SELECT * FROM {entity}{active}{joiner} "
                             f"MetaData.LastUpdatedTime > '{moment}' ORDERBY Id"))


def _is_names_list(entity: str) -> bool:
    return QBO_ENTITIES[entity].kind is EntityKind.NAMES_LIST


# --- diff/<spec> -----------------------------------------------------------------------------


def plan_spec(spec: EntitySpec, specs: SpecSet, stage: Stage, client: QBOClient,
              sessions: sessionmaker[Session]) -> PlanStage:
    """Gather source, base and QBO state of every row in play; the core plans the writes."""
    realm_id = stage.scope.realm_id
    sources = {row[SOURCE_KEY]: (None if row[DELETED] else dict(row[PAYLOAD]))
               for row in stage.frame.to_dict("records")}
    with sessions.begin() as session:
        links = get_links(session, realm_id, spec.name, list(sources))
        snapshots = get_snapshots(session, realm_id, spec.qbo_entity,
                                  [link.qbo_id for link in links.values()])
        qbo = {qbo_id: s.payload for qbo_id, s in snapshots.items() if not s.deleted}
        missing = [link.qbo_id for link in links.values() if link.qbo_id not in snapshots]
        qbo.update(_read_missing(spec.qbo_entity, client, sessions, realm_id, missing))
        candidates = _unlinked(spec, specs, session, realm_id) \
            if len(links) < len(sources) else []
    states = [RecordState(key, source,
                          links[key].base_payload if key in links else None,
                          qbo.get(links[key].qbo_id) if key in links else None,
                          links[key].delete_applied if key in links else False)
              for key, source in sources.items()]
    plan = plan_changes(spec, realm_id, states, candidates)
    kept = {key: source for key, source in sources.items() if source is not None}
    return PlanStage(stage.scope, plan, kept, stage.counted(
        unchanged=len(plan.unchanged), conflicts=len(plan.conflicts)), stage.window_end)


def _read_missing(entity: str, client: QBOClient, sessions: sessionmaker[Session],
                  realm_id: str, qbo_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A linked record never fetched must be read, or it would look new and be created again."""
    records = [client.read(entity, qbo_id) for qbo_id in qbo_ids]
    if records:
        with sessions.begin() as session:
            save_snapshots(session, realm_id, entity, records)
    return {str(record["Id"]): record for record in records}


def _unlinked(spec: EntitySpec, specs: SpecSet, session: Session,
              realm_id: str) -> list[Mapping[str, Any]]:
    """QBO records of the spec's entity that no spec links yet: candidates to match."""
    linked = {link.qbo_id for other in specs.in_dependency_order()
              if other.qbo_entity == spec.qbo_entity
              for link in get_links(session, realm_id, other.name).values()}
    return [s.payload for qbo_id, s in get_snapshots(session, realm_id, spec.qbo_entity).items()
            if qbo_id not in linked and not s.deleted]


# --- synced/<spec> ---------------------------------------------------------------------------

_OPERATIONS: dict[WriteKind, Any] = {
    WriteKind.CREATE: "create", WriteKind.UPDATE: "update", WriteKind.INACTIVATE: "update",
    WriteKind.VOID: "void", WriteKind.DELETE: "delete",
}


@dataclass
class WriteTally:
    created: int = 0
    updated: int = 0
    failed: int = 0
    conflicts: int = 0  # found by re-diffing writes refused as stale
    errors: list[str] = field(default_factory=list)


def execute_plan(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                 sessions: sessionmaker[Session]) -> tuple[dict[str, int], list[str]]:
    """Record conflicts and matches, then write in batches of 30: each batch's intents are
    committed before it is sent, and its answers and links in one transaction after."""
    plan, realm_id = stage.plan, stage.scope.realm_id
    with sessions.begin() as session:
        open_conflicts(session, realm_id, spec.name, plan.conflicts)
        upsert_links(session, realm_id, spec.name, [
            _link(spec, link.source_key, link.qbo_id, link.sync_token,
                  stage.sources.get(link.source_key) if link.source_key in plan.unchanged
                  else None)
            for link in plan.links])
        pending = pending_writes(session, realm_id, spec.name)
    tally = WriteTally(failed=len(plan.blocked), errors=[b.reason for b in plan.blocked])
    refused: list[Write] = []
    for batch in in_batches(plan.writes(), pending):
        _write_batch(spec, stage, client, sessions, batch, tally, refused)
    _heal_stale(spec, stage, client, sessions, refused, tally)
    if stage.window_end is not None and tally.failed == len(plan.blocked):
        # Only a window whose writes all went through is done; else the next run re-reads it.
        with sessions.begin() as session:
            set_cursor(session, realm_id, spec.name, change_window_end=stage.window_end)
    counts = {**stage.counts, "created": tally.created, "updated": tally.updated,
              "failed": tally.failed,
              "conflicts": stage.counts.get("conflicts", 0) + tally.conflicts}
    return counts, tally.errors


def in_batches(writes: Sequence[Write], pending: Sequence[WriteLogRecord]) -> list[list[Write]]:
    """Batches of at most 30 writes. A batch a run sent but never recorded the answer of (the
    run died) goes out again first, with the same items in the same order: its requestid is
    then the same, and QBO answers with what it did the first time instead of doing it again."""
    planned = {write.request_id: write for write in writes}
    sent_together: dict[datetime, list[str]] = {}
    for logged in pending:
        sent_together.setdefault(logged.created_at, []).append(logged.request_id)
    batches: list[list[Write]] = []
    for request_ids in sent_together.values():
        if all(request_id in planned for request_id in request_ids):
            batches.extend(_split([planned.pop(request_id) for request_id in request_ids]))
    return batches + _split(list(planned.values()))


def _split(writes: list[Write]) -> list[list[Write]]:
    return [writes[start:start + BATCH_SIZE] for start in range(0, len(writes), BATCH_SIZE)]


def _write_batch(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                 sessions: sessionmaker[Session], writes: Sequence[Write],
                 tally: WriteTally, refused: list[Write] | None = None) -> None:
    """Send one batch; with `refused`, writes QBO refuses as stale are put there to heal
    instead of counting as failed."""
    realm_id = stage.scope.realm_id
    with sessions.begin() as session:
        record_write_intent(session, realm_id, spec.name, [
            WriteIntent(w.source_key, w.request_id, w.kind.value, w.qbo_id) for w in writes])
        previous = get_links(session, realm_id, spec.name, [w.source_key for w in writes])
    results = client.batch([BatchOperation(_bid(w), _OPERATIONS[w.kind], spec.qbo_entity,
                                           w.payload) for w in writes])
    links, written = [], []
    for write, result in zip(writes, results, strict=True):
        if refused is not None and isinstance(result.error, StaleObjectError):
            refused.append(write)
            continue
        if not _tallied(write, result, tally):
            continue
        assert result.record is not None
        written.append(result.record)
        link = previous.get(write.source_key)
        base = stage.sources.get(write.source_key) if write.kind in (
            WriteKind.CREATE, WriteKind.UPDATE) else (link.base_payload if link else None)
        links.append(replace(_link(spec, write.source_key, str(result.record["Id"]),
                                   _token(result.record), base),
                             delete_applied=write.kind not in (WriteKind.CREATE,
                                                               WriteKind.UPDATE)))
    with sessions.begin() as session:
        complete_write(session, realm_id, [_outcome(w, r) for w, r in zip(writes, results,
                                                                           strict=True)])
        upsert_links(session, realm_id, spec.name, links)
        save_snapshots(session, realm_id, spec.qbo_entity, written)


def _heal_stale(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                sessions: sessionmaker[Session], refused: Sequence[Write],
                tally: WriteTally) -> None:
    """Writes refused for a stale SyncToken (someone saved the record in QBO after the
    snapshot): re-read each record, let the core re-diff it, record the conflicts and send
    the retries once. A retry refused again counts as failed; the next run re-reads it."""
    if not refused:
        return
    realm_id = stage.scope.realm_id
    resolutions = [r for r in (_re_diff(spec, stage, client, sessions, w, tally)
                               for w in refused) if r is not None]
    conflicts = [r.conflict for r in resolutions if r.conflict is not None]
    with sessions.begin() as session:
        open_conflicts(session, realm_id, spec.name, conflicts)
    already = {conflict.source_key for conflict in stage.plan.conflicts}
    tally.conflicts += sum(1 for c in conflicts if c.source_key not in already)
    retries = [r.retry for r in resolutions if r.retry is not None]
    for batch in _split(retries):
        _write_batch(spec, stage, client, sessions, batch, tally)


def _re_diff(spec: EntitySpec, stage: PlanStage, client: QBOClient,
             sessions: sessionmaker[Session], refused: Write,
             tally: WriteTally) -> StaleResolution | None:
    realm_id, key = stage.scope.realm_id, refused.source_key
    assert refused.qbo_id is not None, f"a {refused.kind.value} without a QBO Id was refused"
    try:
        fresh = client.read(spec.qbo_entity, refused.qbo_id)
    except QBOError as error:
        tally.failed += 1
        tally.errors.append(f"{refused.kind.value} of {key}: refused as stale, and the "
                            f"re-read failed: {error}")
        return None
    with sessions.begin() as session:
        save_snapshots(session, realm_id, spec.qbo_entity, [fresh])
        link = get_links(session, realm_id, spec.name, [key]).get(key)
    state = RecordState(key, stage.sources.get(key), link.base_payload if link else None,
                        fresh, link.delete_applied if link else False)
    return resolve_stale(spec, realm_id, state)


def _bid(write: Write) -> str:
    """QBO allows 10 characters per bId in a batch with a requestid; the request id's first
    hex digits still name the change, so a retried batch gets the same requestid."""
    return write.request_id.replace("-", "")[:BID_LENGTH]


def _tallied(write: Write, result: BatchResult, tally: WriteTally) -> bool:
    if not result.ok or result.record is None:
        tally.failed += 1
        tally.errors.append(f"{write.kind.value} of {write.source_key}: {result.error}")
        return False
    if write.kind is WriteKind.CREATE:
        tally.created += 1
    else:
        tally.updated += 1
    return True


def _outcome(write: Write, result: BatchResult) -> WriteOutcome:
    qbo_id = str(result.record["Id"]) if result.record and "Id" in result.record else None
    return WriteOutcome(write.request_id, result.ok, qbo_id,
                        None if result.error is None else str(result.error))


def _link(spec: EntitySpec, source_key: str, qbo_id: str, sync_token: str | None,
          base: Mapping[str, Any] | None) -> LinkUpdate:
    return LinkUpdate(source_key, spec.qbo_entity, qbo_id, sync_token,
                      None if base is None else dict(base),
                      None if base is None else payload_hash(base))


def _token(record: Mapping[str, Any]) -> str | None:
    token = record.get("SyncToken")
    return None if token is None else str(token)
