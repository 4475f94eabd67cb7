"""The push steps, one function per asset: read, hold back, fetch, plan, write.

Each function fetches the sync core's inputs from the source DB, the state DB and QBO, calls
the core, and stores what the core decided; none decides anything itself (the run's scope,
the start-date rule, the cursor rule, replay order, the new base: all in `sync/`; QBO's limits
and "changes since": in `qbo/`). Each returns the value its asset passes on, with the counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.qbo import (
    BATCH_ITEM_LIMIT,
    BatchOperation,
    BatchResult,
    QBOClient,
    QBOError,
    QBOServiceError,
    StaleObjectError,
    ThrottledError,
    batch_item_id,
    refused_for_good,
)
from qbo_pipeline.source import read, read_keys, read_lines
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import (
    ConflictSighting,
    DecidedConflict,
    LinkUpdate,
    QuarantineEntry,
    WriteIntent,
    WriteOutcome,
    clear_rows_due,
    complete_write,
    decisions_to_apply,
    get_cursor,
    get_links,
    get_realm,
    get_snapshots,
    held_rows,
    last_synced,
    links_by_qbo_id,
    open_conflicts,
    pending_writes,
    quarantine_rows,
    record_sightings,
    record_write_intent,
    refused_request_ids,
    release_quarantine,
    rows_due,
    save_snapshots,
    set_cursor,
    supersede_writes,
    unanswered_batches,
    upsert_links,
)
from qbo_pipeline.steps.common import (
    DECISION_OF,
    Fetched,
    PlanStage,
    Stage,
    SyncScope,
    linked_qbo_ids,
    ref_entities,
    source_key_resolver,
)
from qbo_pipeline.sync import (
    Conflict,
    RecordState,
    ResolveLookup,
    ResolveRef,
    StaleResolution,
    ValidationResult,
    Write,
    WriteKind,
    map_frame,
    plan_changes,
    resolve_stale,
    select_frame,
    validate_frame,
)
from qbo_pipeline.sync.batches import (
    PendingWrite,
    as_new_attempts,
    batches_to_recover,
    in_batches,
    split,
    superseded_writes,
)
from qbo_pipeline.sync.cursor import RowProgress, next_cursor, window_rows
from qbo_pipeline.sync.diff import qbo_updated_at
from qbo_pipeline.sync.events import qbo_read_since
from qbo_pipeline.sync.mapping import DELETED, PAYLOAD, SOURCE_KEY
from qbo_pipeline.sync.pull import pull_query
from qbo_pipeline.sync.resolutions import DecidedField, decided_fields
from qbo_pipeline.sync.results import (
    Answer,
    Fate,
    LinkChange,
    Refusal,
    Tally,
    link_after,
    link_for,
    qbo_operation,
    recovered_base,
)
from qbo_pipeline.sync.scope import (
    HeldRow,
    ReadMode,
    brings_in_qbo_changes,
    business_days,
    due_again,
    is_transaction,
    on_or_after_start,
    read_scope,
    references_of,
    sync_start,
)
from qbo_pipeline.sync.settings import effective, row_filters
from qbo_pipeline.sync.values import source_key_of, to_moment

# --- <spec>/source ---------------------------------------------------------------------------


def read_source(spec: EntitySpec, specs: SpecSet, engine: Engine,
                sessions: sessionmaker[Session], client: QBOClient, scope: SyncScope,
                default_start: date) -> Stage:
    """The rows in scope (and the held rows due again), filtered by the company's settings
    and start date, mapped to QBO payloads (by `spec` as the company has it: see
    `sync.settings.for_company`)."""
    realm_id = scope.realm_id
    with sessions.begin() as session:
        realm = get_realm(session, realm_id)
        cursor = get_cursor(session, realm_id, spec.name)
        held = held_rows(session, realm_id, spec.name)
        synced = last_synced(session, realm_id, {t for row in held for t in row.refers_to})
        asked = rows_due(session, realm_id, spec.name)
    start = sync_start(realm.sync_start_date if realm is not None else None, default_start)
    overrides = row_filters(spec, effective(specs.settings,
                                            realm.settings if realm is not None else None))
    window = read_scope(spec, incremental=scope.incremental, dates=scope.dates,
                        until=scope.until,
                        cursor=cursor.change_window_end if cursor is not None else None,
                        record_key=scope.record_key, importing=scope.importing)
    # Held rows due again, and the rows a person asked to read again (a conflict decided, a
    # record unlinked or relinked).
    due = [] if window.mode is ReadMode.RECORD else list(dict.fromkeys([*due_again(
        [HeldRow(row.source_key, row.held_at, row.refers_to,
                 unstamped=row.source_updated_at is None) for row in held], synced), *asked]))
    rows = read(engine, spec, window, also_keys=due)
    frame = _source_frame(rows, spec.source.columns)
    key_column, stamp_column = spec.source.primary_key, spec.source.updated_at
    keys = [source_key_of(value) for value in frame[key_column]] if rows else []
    stamps = {key: moment for key, value in zip(keys, frame[stamp_column] if rows else [],
                                                strict=True)
              if (moment := to_moment(value)) is not None}
    references = {key: references_of(spec, row) for key, row in zip(keys, rows, strict=True)}
    in_scope = _in_scope(spec, frame, start, overrides)
    mapped = map_rows(spec, engine, sessions, client, realm_id, in_scope)
    raw = dict(zip(keys, rows, strict=True)) if spec.pulls else {}
    days = business_days(keys, frame[spec.source.business_date]) \
        if rows and is_transaction(spec) and spec.source.business_date else {}
    return Stage(scope, mapped, {"read": len(frame), "skipped": len(frame) - len(in_scope)},
                 window, stamps, references, raw, days)


def _source_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows as read, in a frame of Python objects: pandas would turn a None among numbers or
    text into NaN, and a value into something else than the source holds."""
    return pd.DataFrame(rows, columns=None if rows else list(columns), dtype=object)


def map_rows(spec: EntitySpec, engine: Engine, sessions: sessionmaker[Session],
             client: QBOClient, realm_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Source rows mapped to QBO payloads, references resolved through the links."""
    return map_frame(spec, frame, _lines(spec, engine, frame),
                     _ref_resolver(spec, sessions, realm_id), _lookup_resolver(client))


def _in_scope(spec: EntitySpec, frame: pd.DataFrame, start: date,
              overrides: Mapping[str, bool]) -> pd.DataFrame:
    if frame.empty:
        return frame
    dated = spec.source.business_date
    started = frame if dated is None else frame[on_or_after_start(spec, frame[dated], start)]
    return select_frame(spec, started, overrides)


def _lines(spec: EntitySpec, engine: Engine, frame: pd.DataFrame) -> pd.DataFrame | None:
    if spec.lines is None:
        return None
    rows = read_lines(engine, spec, frame[spec.source.primary_key].tolist())
    return _source_frame(rows, [spec.lines.parent_key, spec.lines.order_by])


def _ref_resolver(spec: EntitySpec, sessions: sessionmaker[Session],
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
            records = client.find_by(entity, by, value)
            found[(entity, by, value)] = str(records[0]["Id"]) if len(records) == 1 else None
        return found[(entity, by, value)]

    return resolve


# --- <spec>/validated ------------------------------------------------------------------------


def validate_and_quarantine(spec: EntitySpec, stage: Stage,
                            sessions: sessionmaker[Session]
                            ) -> tuple[Stage, ValidationResult]:
    """Valid rows go on; the others are held in the state DB with their reasons and the
    records they refer to (so that they are tried again when one of those syncs). A held row
    that passes now is released here only if the change window holds it; one read again by
    key is released by `execute_plan` once its outcome is recorded."""
    result = validate_frame(spec, stage.frame)
    payloads = dict(zip(stage.frame[SOURCE_KEY], stage.frame[PAYLOAD], strict=True))
    entries = [QuarantineEntry(row.source_key, row.reasons, payloads.get(row.source_key),
                               stage.stamps.get(row.source_key),
                               stage.references.get(row.source_key, ()))
               for row in result.held_by_key()]
    with sessions.begin() as session:
        quarantine_rows(session, stage.scope.realm_id, spec.name, entries)
        window = window_rows(stage.read, stage.stamps)
        release_quarantine(session, stage.scope.realm_id, spec.name,
                           [key for key in result.valid[SOURCE_KEY] if key in window])
    # Deleted rows are valid too: their delete (void, inactivation) is synced like a change.
    counts = stage.counted(valid=len(result.valid), quarantined=len(result.quarantined))
    return replace(stage, frame=result.valid, counts=counts), result


# --- <spec>/qbo_snapshot ---------------------------------------------------------------------


def refresh_snapshots(spec: EntitySpec, client: QBOClient, sessions: sessionmaker[Session],
                      scope: SyncScope, now: datetime) -> Fetched:
    """Fetch the QBO records changed since the last fetch into the state DB. A spec that
    pulls reads what its pull section says (`sync.pull.pull_query`) and moves the cursor only
    once the records are applied; a push-only spec moves it now (the snapshots are stored)."""
    realm_id = scope.realm_id
    with sessions.begin() as session:
        cursor = get_cursor(session, realm_id, spec.name)
        last = qbo_read_since(cursor.snapshot_cursor if cursor is not None else None,
                              scope.qbo_reread_since)
    if spec.pulls:
        query = pull_query(spec, now, last)
        records = client.changed_since(query.qbo_entity, query.since, now, query.filter)
    else:
        records = client.changed_since(spec.qbo_entity, last, now)
    with sessions.begin() as session:
        save_snapshots(session, realm_id, spec.qbo_entity, records)
        if not spec.pulls:
            set_cursor(session, realm_id, spec.name, snapshot_cursor=now)
    return Fetched(scope, records, now)


# --- <spec>/diff -----------------------------------------------------------------------------


def plan_spec(spec: EntitySpec, specs: SpecSet, stage: Stage, client: QBOClient,
              sessions: sessionmaker[Session], engine: Engine, fetched: Fetched,
              now: datetime) -> PlanStage:
    """Gather source, base and QBO state of every row in play; the core plans the writes.

    For a spec that also pulls, the rows in play include those whose QBO record changed
    (read by key, although they did not change in the source), and QBO records no row is
    linked to yet (imported under `target: upsert`)."""
    realm_id = stage.scope.realm_id
    frame, rows, stamps = stage.frame, dict(stage.rows), dict(stage.stamps)
    qbo_changes = brings_in_qbo_changes(spec, stage.read)
    if qbo_changes:
        changed = _rows_changed_in_qbo(spec, engine, sessions, client, realm_id, fetched,
                                       set(frame[SOURCE_KEY]))
        frame = pd.concat([frame, changed.frame], ignore_index=True)
        rows.update(changed.rows)
        stamps.update(changed.stamps)
    sources = {row[SOURCE_KEY]: (None if row[DELETED] else dict(row[PAYLOAD]))
               for row in frame.to_dict("records")}
    with sessions.begin() as session:
        links = get_links(session, realm_id, spec.name, list(sources))
        snapshots = get_snapshots(session, realm_id, spec.qbo_entity,
                                  [link.qbo_id for link in links.values()])
        # A spec that pulls sees a QBO delete as CDC reports it; a push-only one as gone.
        qbo = {qbo_id: s.payload for qbo_id, s in snapshots.items()
               if spec.pulls or not s.deleted}
        missing = [link.qbo_id for link in links.values() if link.qbo_id not in snapshots]
        qbo.update(_read_missing(spec.qbo_entity, client, sessions, realm_id, missing))
        candidates = unlinked_qbo_records(spec, specs, session, realm_id) \
            if len(links) < len(sources) or spec.pulls else []
        decided = {d.source_key: d for d in decisions_to_apply(session, realm_id, spec.name)
                   if d.source_key in sources}
    states = [RecordState(key, source,
                          links[key].base_payload if key in links else None,
                          qbo.get(links[key].qbo_id) if key in links else None,
                          links[key].delete_applied if key in links else False,
                          source_updated_at=stamps.get(key), source_row=rows.get(key),
                          decided=_decided_fields(decided.get(key)))
              for key, source in sources.items()]
    if spec.pulls:
        if qbo_changes:
            states.extend(_new_in_qbo(spec, sessions, realm_id, fetched))
        plan = plan_changes(spec, realm_id, states, candidates, now=now,
                            resolve_source_key=source_key_resolver(spec, specs, sessions,
                                                                   realm_id),
                            ref_entities=ref_entities(specs))
    else:
        plan = plan_changes(spec, realm_id, states, candidates)
    kept = {key: source for key, source in sources.items() if source is not None}
    # The push side counts the rows its window read; those brought in by a change in QBO are
    # the pull side's (<spec>/applied), so that read = skipped + valid + quarantined holds.
    window = set(stage.frame[SOURCE_KEY])
    return PlanStage(stage.scope, plan, kept, stage.counted(
        unchanged=sum(1 for key in plan.qbo_unchanged if key in window),
        conflicts=sum(1 for conflict in plan.conflicts if conflict.source_key in window)),
        stage, fetched, tuple((d.conflict_id, d.source_key) for d in decided.values()
                              if d.pending), stamps)


def _decided_fields(decided: DecidedConflict | None) -> dict[str, DecidedField] | None:
    return None if decided is None else decided_fields(DECISION_OF[decided.decision],
                                                       decided.fields)


@dataclass(frozen=True)
class _ChangedRows:
    frame: pd.DataFrame
    rows: dict[str, dict[str, Any]]
    stamps: dict[str, datetime]


def _rows_changed_in_qbo(spec: EntitySpec, engine: Engine, sessions: sessionmaker[Session],
                         client: QBOClient, realm_id: str, fetched: Fetched,
                         read_already: set[str]) -> _ChangedRows:
    """The linked rows whose QBO record changed, read by key and mapped. A row that fails
    its rules is left out: it is quarantined on its own, and pulled once it is fixed."""
    with sessions.begin() as session:
        linked = links_by_qbo_id(session, realm_id, spec.name,
                                 [str(record["Id"]) for record in fetched.records])
    keys = sorted({link.source_key for link in linked.values()} - read_already)
    found = read_keys(engine, spec, keys) if keys else []
    frame = _source_frame(found, spec.source.columns)
    valid = validate_frame(spec, map_rows(spec, engine, sessions, client, realm_id, frame)).valid
    by_key = {source_key_of(row[spec.source.primary_key]): row for row in found}
    stamps = {key: moment for key, row in by_key.items()
              if (moment := to_moment(row[spec.source.updated_at])) is not None}
    return _ChangedRows(valid, by_key, stamps)


def _new_in_qbo(spec: EntitySpec, sessions: sessionmaker[Session], realm_id: str,
                fetched: Fetched) -> list[RecordState]:
    """The fetched QBO records no row of this spec is linked to: records to import."""
    with sessions.begin() as session:
        linked = links_by_qbo_id(session, realm_id, spec.name,
                                 [str(record["Id"]) for record in fetched.records])
    return [RecordState(None, None, qbo=record) for record in fetched.records
            if str(record["Id"]) not in linked]


def _read_missing(entity: str, client: QBOClient, sessions: sessionmaker[Session],
                  realm_id: str, qbo_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A linked record never fetched must be read, or it would look new and be created again."""
    records = [client.read(entity, qbo_id) for qbo_id in qbo_ids]
    if records:
        with sessions.begin() as session:
            save_snapshots(session, realm_id, entity, records)
    return {str(record["Id"]): record for record in records}


def unlinked_qbo_records(spec: EntitySpec, specs: SpecSet, session: Session,
              realm_id: str) -> list[Mapping[str, Any]]:
    """QBO records of the spec's entity that no spec links yet: candidates to match."""
    linked = linked_qbo_ids(specs, session, realm_id, spec.qbo_entity)
    return [s.payload for qbo_id, s in get_snapshots(session, realm_id, spec.qbo_entity).items()
            if qbo_id not in linked and not s.deleted]


# --- <spec>/synced ---------------------------------------------------------------------------


def execute_plan(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                 sessions: sessionmaker[Session]) -> tuple[dict[str, int], Tally]:
    """Record conflicts, matches and bases that lag, close the writes a killed run left
    pending that are superseded, write in batches (each batch's intents committed before it
    is sent, its answers and links in one transaction after), release the held rows whose
    outcome is recorded, hold back what QBO refused for good, and move the cursor past what
    is recorded."""
    plan, realm_id = stage.plan, stage.scope.realm_id
    with sessions.begin() as session:
        open_conflicts(session, realm_id, spec.name, plan.conflicts)
        _record_sightings(session, spec, stage, plan.conflicts)
        upsert_links(session, realm_id, spec.name, [
            _link_update(spec, link_for(
                link.source_key, {"Id": link.qbo_id, "SyncToken": link.sync_token},
                stage.sources.get(link.source_key) if link.source_key in plan.qbo_unchanged
                else None)) for link in plan.links])
        upsert_links(session, realm_id, spec.name, [
            _link_update(spec, link_for(rebase.source_key, {"Id": rebase.qbo_id,
                                                            "SyncToken": rebase.sync_token},
                                        rebase.base, rebase.delete_applied))
            for rebase in plan.rebases])
        refused = refused_request_ids(session, realm_id, spec.name,
                                      [w.source_key for w in plan.writes()])
        writes = as_new_attempts(plan.writes(), refused)
        _supersede_pending(session, realm_id, spec.name, writes)
        pending = _pending_batches(session, realm_id, spec.name)
    tally = Tally(conflicted={conflict.source_key for conflict in plan.conflicts})
    for blocked in plan.blocked:
        tally.blocked(blocked.source_key, blocked.reason)
    recover = batches_to_recover(pending.batches, writes, pending.linked)
    writes = _recover_batches(spec, stage, client, sessions, writes, recover, tally)
    recovered = [{write.request_id for write in batch} for batch in recover]
    unanswered = [[p.request_id for p in batch] for batch in pending.batches
                  if {p.request_id for p in batch} not in recovered]
    stale: list[Write] = []
    for batch in in_batches(writes, unanswered, BATCH_ITEM_LIMIT):
        stale.extend(_write_batch(spec, stage, client, sessions, batch, tally))
    _heal_stale(spec, stage, client, sessions, stale, tally)
    assert stage.stage is not None, f"spec {spec.name}: a push reads source rows"
    with sessions.begin() as session:
        settled = tally.settled(stage.stage.frame[SOURCE_KEY])
        release_quarantine(session, realm_id, spec.name, settled)
        clear_rows_due(session, realm_id, spec.name, settled)
    _hold_back(spec, stage, sessions, tally.refusals)
    _move_cursor(spec, stage.stage, sessions, tally)
    counts = {**stage.counts, **tally.counts(),
              "conflicts": stage.counts.get("conflicts", 0) + tally.conflicts,
              "unchanged": stage.counts.get("unchanged", 0) + tally.unchanged}
    return counts, tally


def _record_sightings(session: Session, spec: EntitySpec, stage: PlanStage,
                      conflicts: Sequence[Conflict]) -> None:
    """Record that this run found these open conflicts, and when each side had changed: the
    source row's stamp as read, QBO's `MetaData.LastUpdatedTime` as last fetched."""
    if not conflicts:
        return
    realm_id = stage.scope.realm_id
    snapshots = get_snapshots(session, realm_id, spec.qbo_entity,
                              [c.qbo_id for c in conflicts if c.qbo_id is not None])
    record_sightings(session, realm_id, spec.name, [ConflictSighting(
        conflict.source_key, stage.scope.run_id, stage.stamps.get(conflict.source_key),
        qbo_updated_at(snapshots[conflict.qbo_id].payload)
        if conflict.qbo_id in snapshots else None) for conflict in conflicts])


def _supersede_pending(session: Session, realm_id: str, spec_name: str,
                       writes: Sequence[Write]) -> None:
    """Close the writes a killed run left pending that the core finds superseded (their
    records are linked, and this run does not send them again)."""
    pending = pending_writes(session, realm_id, spec_name)
    linked = get_links(session, realm_id, spec_name, [w.source_key for w in pending])
    supersede_writes(session, realm_id, superseded_writes(
        [PendingWrite(w.request_id, w.source_key) for w in pending], linked.keys(),
        {w.request_id for w in writes}))


@dataclass(frozen=True)
class _PendingBatches:
    batches: list[list[PendingWrite]]  # as they were sent, in order
    linked: set[str]  # the source keys among them that are linked


def _pending_batches(session: Session, realm_id: str, spec_name: str) -> _PendingBatches:
    batches = [[PendingWrite(w.request_id, w.source_key, WriteKind(w.operation), w.qbo_id)
                for w in batch] for batch in unanswered_batches(session, realm_id, spec_name)]
    keys = [write.source_key for batch in batches for write in batch]
    return _PendingBatches(batches, set(get_links(session, realm_id, spec_name, keys)))


def _recover_batches(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                     sessions: sessionmaker[Session], writes: Sequence[Write],
                     batches: Sequence[Sequence[Write]], tally: Tally) -> list[Write]:
    """Send again, as they were, the batches a killed run sent that may have created records
    (`sync.batches.batches_to_recover`), and link the records QBO answers it created. Returns
    the writes still to send: a record those batches linked is re-diffed against QBO's answer
    instead of created again, and one whose batch is still unanswered waits for the next run."""
    created: dict[str, Mapping[str, Any]] = {}
    waiting: set[str] = set()
    planned = {write.source_key for write in writes}
    for batch in batches:
        try:
            results = client.batch(_operations(spec, batch))
        except (QBOServiceError, ThrottledError) as error:
            waiting.update(write.source_key for write in batch)
            tally.errors.append(f"QBO did not answer a {spec.qbo_entity} batch that a run which "
                                f"died had sent ({error}); the next run asks again")
            continue
        answered = _answered_creates(batch, results)
        for write, record in answered:
            created[write.source_key] = record
            tally.recovered_create(write, record, counted=write.source_key in planned)
        with sessions.begin() as session:
            complete_write(session, stage.scope.realm_id,
                           [_outcome(w, r) for w, r in zip(batch, results, strict=True)])
            upsert_links(session, stage.scope.realm_id, spec.name, [_link_update(
                spec, link_for(w.source_key, r, recovered_base(spec, w, r))) for w, r in answered])
            save_snapshots(session, stage.scope.realm_id, spec.qbo_entity,
                           [record for _, record in answered])
    remaining = []
    for write in writes:
        if write.source_key in waiting:
            tally.count(spec, write, Answer(error="a batch a run which died had sent holds it, "
                                            "and QBO did not answer it again"))
        elif write.source_key not in created:
            remaining.append(write)
    follow_ups = [_re_diff_created(spec, stage, w, created[w.source_key]) for batch in batches
                  for w in batch if w.source_key in created and w.source_key in planned]
    return remaining + _settle(spec, stage, sessions, follow_ups, tally)


def _answered_creates(batch: Sequence[Write], results: Sequence[BatchResult]
                      ) -> list[tuple[Write, Mapping[str, Any]]]:
    return [(write, result.record) for write, result in zip(batch, results, strict=True)
            if write.kind is WriteKind.CREATE and result.error is None
            and result.record is not None]


def _re_diff_created(spec: EntitySpec, stage: PlanStage, write: Write,
                     record: Mapping[str, Any]) -> StaleResolution:
    key = write.source_key
    return resolve_stale(spec, stage.scope.realm_id, RecordState(
        key, stage.sources.get(key), recovered_base(spec, write, record), record))


def _write_batch(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                 sessions: sessionmaker[Session], writes: Sequence[Write],
                 tally: Tally) -> list[Write]:
    """Send one batch; returns the writes QBO refused as stale, to be re-diffed."""
    realm_id = stage.scope.realm_id
    with sessions.begin() as session:
        record_write_intent(session, realm_id, spec.name, [
            WriteIntent(w.source_key, w.request_id, w.kind.value, w.qbo_id) for w in writes])
        previous = get_links(session, realm_id, spec.name, [w.source_key for w in writes])
    results = _send_batch(spec, client, writes)
    links, written, stale, answered = [], [], [], []
    for write, result in zip(writes, results, strict=True):
        fate = tally.count(spec, write, _answer(result))
        if fate is not Fate.FAILED:  # a passing failure has no answer: its batch is re-sent
            answered.append(_outcome(write, result))
        if fate is Fate.STALE:
            stale.append(write)
        elif fate is Fate.WRITTEN:
            assert result.record is not None
            written.append(result.record)
            link = previous.get(write.source_key)
            links.append(_link_update(spec, link_after(
                write, result.record, link.base_payload if link else None)))
    with sessions.begin() as session:
        complete_write(session, realm_id, answered)
        upsert_links(session, realm_id, spec.name, links)
        save_snapshots(session, realm_id, spec.qbo_entity, written)
    return stale


def _send_batch(spec: EntitySpec, client: QBOClient, writes: Sequence[Write]
                ) -> list[BatchResult]:
    """QBO's answer per write; a batch that failed as a whole (QBO unavailable or throttled
    past the retries) is an error of each of its writes, so the other batches still go."""
    operations = _operations(spec, writes)
    try:
        return client.batch(operations)
    except (QBOServiceError, ThrottledError) as error:
        return [BatchResult(op.bid, op.entity, error=error) for op in operations]


def _operations(spec: EntitySpec, writes: Sequence[Write]) -> list[BatchOperation]:
    return [BatchOperation(batch_item_id(w.request_id), qbo_operation(w.kind), spec.qbo_entity,
                           w.payload) for w in writes]


def _answer(result: BatchResult) -> Answer:
    error = result.error
    if error is None:
        return Answer(record=result.record)
    return Answer(error=str(error), stale=isinstance(error, StaleObjectError),
                  refused=refused_for_good(error))


def _heal_stale(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                sessions: sessionmaker[Session], refused: Sequence[Write],
                tally: Tally) -> None:
    """Writes refused for a stale SyncToken (someone saved the record in QBO after the
    snapshot): re-read each record, let the core re-diff it, record the conflicts and send
    the retries once. A retry refused as stale again is left for the next run."""
    if not refused:
        return
    resolutions = [r for r in (_re_diff(spec, stage, client, sessions, w, tally)
                               for w in refused) if r is not None]
    retries = _settle(spec, stage, sessions, resolutions, tally)
    for batch in split(retries, BATCH_ITEM_LIMIT):
        for write in _write_batch(spec, stage, client, sessions, batch, tally):
            tally.count(spec, write, Answer(error="refused as stale twice in one run; the "
                                            "next run re-reads it"))


def _settle(spec: EntitySpec, stage: PlanStage, sessions: sessionmaker[Session],
            resolutions: Sequence[StaleResolution], tally: Tally) -> list[Write]:
    """Record the conflicts of re-diffed records and count those QBO already holds; returns
    the writes to send. A recovered create is counted already, whatever its re-diff says."""
    conflicts = [r.conflict for r in resolutions if r.conflict is not None]
    with sessions.begin() as session:
        open_conflicts(session, stage.scope.realm_id, spec.name, conflicts)
        _record_sightings(session, spec, stage, conflicts)
    for conflict in conflicts:
        if conflict.source_key not in tally.recovered:
            tally.conflict(conflict.source_key)
    tally.unchanged += sum(1 for r in resolutions if r.conflict is None and r.retry is None
                           and r.source_key not in tally.recovered)
    return [r.retry for r in resolutions if r.retry is not None]


def _re_diff(spec: EntitySpec, stage: PlanStage, client: QBOClient,
             sessions: sessionmaker[Session], refused: Write,
             tally: Tally) -> StaleResolution | None:
    realm_id, key = stage.scope.realm_id, refused.source_key
    assert refused.qbo_id is not None, f"a {refused.kind.value} without a QBO Id was refused"
    try:
        fresh = client.read(spec.qbo_entity, refused.qbo_id)
    except QBOError as error:
        tally.count(spec, refused, Answer(error=f"refused as stale, and the re-read failed: "
                                          f"{error}"))
        return None
    with sessions.begin() as session:
        save_snapshots(session, realm_id, spec.qbo_entity, [fresh])
        link = get_links(session, realm_id, spec.name, [key]).get(key)
    state = RecordState(key, stage.sources.get(key), link.base_payload if link else None,
                        fresh, link.delete_applied if link else False)
    return resolve_stale(spec, realm_id, state)


def _hold_back(spec: EntitySpec, stage: PlanStage, sessions: sessionmaker[Session],
               refusals: Sequence[Refusal]) -> None:
    """Records QBO refused for good, held back with QBO's reason until they or a record they
    refer to change."""
    if not refusals or stage.stage is None:
        return
    frame = stage.stage.frame
    payloads = dict(zip(frame[SOURCE_KEY], frame[PAYLOAD], strict=True))
    by_key: dict[str, list[str]] = {}
    for refusal in refusals:
        by_key.setdefault(refusal.source_key, []).append(refusal.reason)
    entries = [QuarantineEntry(key, reasons, payloads.get(key), stage.stage.stamps.get(key),
                               stage.stage.references.get(key, ()))
               for key, reasons in by_key.items()]
    with sessions.begin() as session:
        quarantine_rows(session, stage.scope.realm_id, spec.name, entries)


def _move_cursor(spec: EntitySpec, stage: Stage, sessions: sessionmaker[Session],
                 tally: Tally) -> None:
    window = stage.read
    if window is None or not window.advances_cursor:
        return
    retry = set(tally.retry)
    # Held rows read again by key lie before the window: they do not hold the cursor back.
    end = next_cursor(window.since, window.until, [
        RowProgress(stamp, key not in retry) for key, stamp in stage.stamps.items()
        if window.since is None or stamp > window.since])
    if end is not None:
        with sessions.begin() as session:
            set_cursor(session, stage.scope.realm_id, spec.name, change_window_end=end)


def _outcome(write: Write, result: BatchResult) -> WriteOutcome:
    qbo_id = str(result.record["Id"]) if result.record and "Id" in result.record else None
    return WriteOutcome(write.request_id, result.ok, qbo_id,
                        None if result.error is None else str(result.error))


def _link_update(spec: EntitySpec, change: LinkChange) -> LinkUpdate:
    return LinkUpdate(change.source_key, spec.qbo_entity, change.qbo_id, change.sync_token,
                      change.base, change.base_hash, change.delete_applied)
