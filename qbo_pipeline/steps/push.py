"""The push steps, one function per asset: read, hold back, fetch, plan, write.

Each function fetches the sync core's inputs from the source DB, the state DB and QBO, calls
the core, and stores what the core decided; none decides anything itself (the run's scope,
the start-date rule, the cursor rule, replay order, the new base: all in `sync/`; QBO's limits
and "changes since": in `qbo/`). Each returns the value its asset passes on, with the counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    DuplicateNameError,
    FeatureNotInPlanError,
    QBOClient,
    QBOError,
    QBOServiceError,
    StaleObjectError,
    ThrottledError,
    batch_item_id,
    refused_for_good,
)
from qbo_pipeline.qbo.entities import DISPLAY_NAME_ENTITIES
from qbo_pipeline.qbo.error_catalog import plan_needed
from qbo_pipeline.source import read, read_keys, read_lines
from qbo_pipeline.source.by_spec import read_by
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import (
    ConflictSighting,
    DecidedConflict,
    LinkRecord,
    LinkUpdate,
    NameGiven,
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
    given_names,
    held_rows,
    last_synced,
    links_by_qbo_id,
    open_conflicts,
    pending_writes,
    quarantine_rows,
    record_given_names,
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
from qbo_pipeline.sync.ids import payload_hash, request_id
from qbo_pipeline.sync.mapping import DELETED, PAYLOAD, SOURCE_KEY, NotCreated, frame_records
from qbo_pipeline.sync.names import (
    COLLISION_SETTING,
    DISPLAY_NAME,
    Collision,
    GivenName,
    HoldBack,
    as_given,
    collision_rule,
    holder_type,
    resolve_collision,
    same_name,
)
from qbo_pipeline.sync.on_the_fly import (
    NewRecord,
    creating_specs,
    new_record,
    not_created,
    refused,
    value_column,
    wanted_records,
)
from qbo_pipeline.sync.plan import with_display_name
from qbo_pipeline.sync.pull import pull_query
from qbo_pipeline.sync.resolutions import DecidedField, decided_fields
from qbo_pipeline.sync.results import (
    Answer,
    Fate,
    LinkChange,
    Refusal,
    Renamed,
    Tally,
    link_after,
    link_for,
    qbo_operation,
    recovered_base,
)
from qbo_pipeline.sync.scope import (
    HeldRow,
    ReadMode,
    ReadScope,
    References,
    brings_in_qbo_changes,
    business_days,
    due_again,
    exempt_from_start,
    in_use,
    is_transaction,
    on_or_after_start,
    read_scope,
    references_in_use,
    references_of,
    referrers_of,
    sync_start,
    used_keys,
)
from qbo_pipeline.sync.settings import effective, for_company, row_filters, spec_enabled
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
    values = effective(specs.settings, realm.settings if realm is not None else None)
    overrides = row_filters(spec, values)
    window = read_scope(spec, incremental=scope.incremental, dates=scope.dates,
                        until=scope.until,
                        cursor=cursor.change_window_end if cursor is not None else None,
                        record_key=scope.record_key, importing=scope.importing)
    # Held rows due again, and the rows a person asked to read again (a conflict decided, a
    # record unlinked or relinked).
    due = [] if window.mode is ReadMode.RECORD else list(dict.fromkeys([*due_again(
        [HeldRow(row.source_key, row.held_at, row.refers_to,
                 unstamped=row.source_updated_at is None) for row in held], synced), *asked]))
    usage = _usage(spec, specs, engine, sessions, scope, start, window)
    if usage is not None:  # the rows in use that are not in QBO yet, whatever their stamp
        due.extend(sorted(usage.used - usage.linked - set(due)))
    rows = read(engine, spec, window, also_keys=due)
    frame = _source_frame(rows, spec.source.columns)
    key_column, stamp_column = spec.source.primary_key, spec.source.updated_at
    keys = [source_key_of(value) for value in frame[key_column]] if rows else []
    stamps = {key: moment for key, value in zip(keys, frame[stamp_column] if rows else [],
                                                strict=True)
              if (moment := to_moment(value)) is not None}
    references = {key: references_of(spec, row) for key, row in zip(keys, rows, strict=True)}
    in_scope = _in_scope(spec, frame, start, overrides)
    if usage is not None and not in_scope.empty:
        in_scope = in_scope[in_use([source_key_of(value) for value in in_scope[key_column]],
                                   linked=usage.linked, used=usage.used, read=window)]
    # The import on connect writes nothing to QBO: it creates nothing on the fly either.
    creators = None if scope.importing else {
        name: for_company(specs[name], values) for name in creating_specs(spec)}
    mapped = map_rows(spec, engine, sessions, client, realm_id, in_scope, creators)
    raw = dict(zip(keys, rows, strict=True)) if spec.pulls else {}
    days = business_days(keys, frame[spec.source.business_date]) \
        if rows and is_transaction(spec) and spec.source.business_date else {}
    return Stage(scope, mapped, {"read": len(frame), "skipped": len(frame) - len(in_scope)},
                 window, stamps, references, raw, days)


@dataclass(frozen=True)
class Usage:
    """An `only_when_used` spec's keys linked to QBO, and those the run's records use."""

    linked: set[str]
    used: set[str]


def _usage(spec: EntitySpec, specs: SpecSet, engine: Engine, sessions: sessionmaker[Session],
           scope: SyncScope, start: date, window: ReadScope) -> Usage | None:
    """For a spec whose rows sync only when used (`sync.scope.in_use`), which are: the rows
    that the run's other specs read or hold refer to (`sync.scope.used_keys`)."""
    if not spec.only_when_used or window.mode is ReadMode.RECORD:
        return None
    ordered = specs.in_dependency_order()
    with sessions.begin() as session:
        realm = get_realm(session, scope.realm_id)
        linked = set(get_links(session, scope.realm_id, spec.name))
    values = effective(specs.settings, realm.settings if realm is not None else None)
    in_play = {name: _references_in_play(for_company(specs[name], values), engine, sessions,
                                         scope, start, values)
               for name in referrers_of(spec.name, ordered)
               if scope.runs(name) and spec_enabled(specs[name], values)
               and specs[name].pushes}

    def read_references(name: str, keys: Sequence[str]) -> list[References]:
        return references_in_use(specs[name], read_keys(engine, specs[name], keys))

    return Usage(linked, used_keys(spec.name, ordered, in_play, read_references))


def _references_in_play(spec: EntitySpec, engine: Engine, sessions: sessionmaker[Session],
                        scope: SyncScope, start: date,
                        values: Mapping[str, Any]) -> list[References]:
    """What the rows a spec's own step syncs this run refer to (its read, as `read_source`
    scopes it), and what its held rows wait for."""
    with sessions.begin() as session:
        cursor = get_cursor(session, scope.realm_id, spec.name)
        held = held_rows(session, scope.realm_id, spec.name)
    window = read_scope(spec, incremental=scope.incremental, dates=scope.dates,
                        until=scope.until,
                        cursor=cursor.change_window_end if cursor is not None else None,
                        record_key=scope.record_of(spec.name), importing=scope.importing)
    rows = read(engine, spec, window)
    frame = _in_scope(spec, _source_frame(rows, spec.source.columns), start,
                      row_filters(spec, values))
    found = references_in_use(spec, [{str(column): value for column, value in row.items()}
                                     for row in frame.to_dict("records")])
    if window.mode is not ReadMode.RECORD:
        found.extend(row.refers_to for row in held)
    return found


def _source_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows as read, in a frame of Python objects: pandas would turn a None among numbers or
    text into NaN, and a value into something else than the source holds."""
    return pd.DataFrame(rows, columns=None if rows else list(columns), dtype=object)


def map_rows(spec: EntitySpec, engine: Engine, sessions: sessionmaker[Session],
             client: QBOClient, realm_id: str, frame: pd.DataFrame,
             creators: Mapping[str, EntitySpec] | None = None) -> pd.DataFrame:
    """Source rows mapped to QBO payloads, references resolved through the links. Given the
    specs its lookups create with (as the company has them), the records those lookups need
    and QBO lacks are created first."""
    lines = _lines(spec, engine, frame)
    settled = {} if creators is None else _create_on_the_fly(
        spec, creators, engine, sessions, client, realm_id, frame, lines)
    return map_frame(spec, frame, lines, _ref_resolver(spec, sessions, realm_id),
                     _lookup_resolver(client, settled))


def _create_on_the_fly(spec: EntitySpec, creators: Mapping[str, EntitySpec], engine: Engine,
                       sessions: sessionmaker[Session], client: QBOClient, realm_id: str,
                       frame: pd.DataFrame, lines: pd.DataFrame | None
                       ) -> dict[tuple[str, str, str], str | NotCreated]:
    """The records the rows' creating lookups look for: the Id QBO has, the Id of the record
    created now (`sync.on_the_fly` decides what), or why it could not be made."""
    children = frame_records(lines) if lines is not None else []
    settled: dict[tuple[str, str, str], str | NotCreated] = {}
    resolve = _lookup_resolver(client)
    for wanted in wanted_records(spec, frame_records(frame), children):
        found = client.find_by(*wanted.key)
        if found:  # several: the lookup says it is ambiguous; none is made
            if len(found) == 1:
                settled[wanted.key] = str(found[0]["Id"])
            continue
        creator = creators[wanted.spec]
        own = read_by(engine, creator, value_column(creator, wanted.by), [wanted.value])
        settled[wanted.key] = _create(spec, creator, new_record(creator, wanted, own, resolve),
                                      client, sessions, realm_id)
    return settled


def _create(spec: EntitySpec, creator: EntitySpec, record: NewRecord, client: QBOClient,
            sessions: sessionmaker[Session], realm_id: str) -> str | NotCreated:
    """Create one record on the fly; link it to the creator's row it was made from."""
    if record.reasons:
        return not_created(record)
    key = record.source_key or f"on-the-fly:{record.wanted.value}"
    try:
        created = client.create(creator.qbo_entity, record.payload,
                                request_id(realm_id, creator.name, key,
                                           payload_hash(record.payload)))
    except QBOError as error:
        if not refused_for_good(error):
            raise  # QBO unavailable: the run fails as a failed lookup would, and is retried
        return refused(record.wanted, str(error), spec)
    with sessions.begin() as session:
        save_snapshots(session, realm_id, creator.qbo_entity, [created])
        if record.source_key is not None:
            upsert_links(session, realm_id, creator.name, [_link_update(
                creator, link_for(record.source_key, created, record.base))])
    return str(created["Id"])


def _in_scope(spec: EntitySpec, frame: pd.DataFrame, start: date,
              overrides: Mapping[str, bool]) -> pd.DataFrame:
    if frame.empty:
        return frame
    dated = spec.source.business_date
    started = frame if dated is None else frame[
        on_or_after_start(spec, frame[dated], start) | exempt_from_start(spec, frame)]
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


def _lookup_resolver(client: QBOClient,
                     settled: Mapping[tuple[str, str, str], str | NotCreated] | None = None
                     ) -> ResolveLookup:
    found: dict[tuple[str, str, str], str | NotCreated | None] = dict(settled or {})

    def resolve(entity: str, by: str, value: str) -> str | NotCreated | None:
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
        realm = get_realm(session, realm_id)
        named = {key: GivenName(given.wanted_name, given.given_name)
                 for key, given in given_names(session, realm_id, spec.name,
                                               list(sources)).items()}
        # Compared and sent under the name QBO has, while the source keeps the one it replaced.
        sources = {key: None if source is None else as_given(source, named.get(key))
                   for key, source in sources.items()}
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
                          decided=_decided_fields(decided.get(key)), given_name=named.get(key))
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
                              if d.pending), stamps, named,
        collision_rule(effective(specs.settings, realm.settings if realm is not None else None)
                       .get(COLLISION_SETTING)))


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
        # Reported once: the link learns the delete was handled (nothing is written to QBO).
        upsert_links(session, realm_id, spec.name, [
            _link_update(spec, link_for(report.source_key, {"Id": report.qbo_id,
                                                            "SyncToken": report.sync_token},
                                        report.base, delete_applied=True))
            for report in plan.reports])
        refused = refused_request_ids(session, realm_id, spec.name,
                                      [w.source_key for w in plan.writes()])
        writes = as_new_attempts(plan.writes(), refused)
        _supersede_pending(session, realm_id, spec.name, writes)
        pending = _pending_batches(session, realm_id, spec.name)
    tally = Tally(conflicted={conflict.source_key for conflict in plan.conflicts},
                  reported=[report.message for report in plan.reports])
    for blocked in plan.blocked:
        tally.blocked(blocked.source_key, blocked.reason)
    recover = batches_to_recover(pending.batches, writes, pending.linked)
    writes = _recover_batches(spec, stage, client, sessions, writes, recover, tally)
    recovered = [{write.request_id for write in batch} for batch in recover]
    unanswered = [[p.request_id for p in batch] for batch in pending.batches
                  if {p.request_id for p in batch} not in recovered]
    stale: list[Write] = []
    taken: list[_NameTaken] = []
    for sent in _write_batches(spec, stage, client, sessions,
                               in_batches(writes, unanswered, BATCH_ITEM_LIMIT), tally):
        stale.extend(sent.stale)
        taken.extend(sent.taken)
    taken.extend(_heal_stale(spec, stage, client, sessions, stale, tally))
    _rename_taken(spec, stage, client, sessions, taken, tally)
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


@dataclass(frozen=True)
class _Renaming:
    """A write sent again under another DisplayName: the source's name, the names tried
    before this one, and who holds the source's name."""

    wanted: str
    attempt: int
    tried_before: tuple[str, ...]
    taken_by: str | None
    taken_by_type: str | None


@dataclass(frozen=True)
class _NameTaken:
    """A write QBO refused because its DisplayName is taken (6240), not counted yet: it is
    sent again under another name, or held back (`sync.names.resolve_collision`)."""

    write: Write
    collision: Collision
    renaming: _Renaming | None  # how the write refused was itself renamed


@dataclass(frozen=True)
class _Sent:
    stale: list[Write]  # refused as stale: re-read and re-diffed
    taken: list[_NameTaken]


def _write_batches(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                   sessions: sessionmaker[Session], batches: Sequence[Sequence[Write]],
                   tally: Tally) -> Iterator[_Sent]:
    """Send `batches` with up to the client's `write_concurrency` in flight at once, and
    record their answers in the order sent. One batch at a time cannot reach QBO's 40 batch
    requests a minute once an answer takes more than 1.5 s (issue 12); the client's limiter
    keeps the whole within QBO's limits. Each batch's intents are committed before it is
    sent, by this thread: a run killed meanwhile leaves its unanswered batches pending, and
    the next run recovers them (`sync.batches`)."""
    in_flight: deque[tuple[Sequence[Write], _Logged, Future[list[BatchResult]]]] = deque()
    with ThreadPoolExecutor(max_workers=client.settings.write_concurrency,
                            thread_name_prefix=f"qbo-batch-{spec.name}") as pool:
        for batch in batches:
            logged = _log_intents(spec, stage, sessions, batch)
            in_flight.append((batch, logged, pool.submit(_send_batch, spec, client, batch)))
            if len(in_flight) >= client.settings.write_concurrency:
                yield _record_answers(spec, stage, sessions, *_answered(in_flight), tally)
        while in_flight:
            yield _record_answers(spec, stage, sessions, *_answered(in_flight), tally)


def _answered(in_flight: deque[tuple[Sequence[Write], _Logged, Future[list[BatchResult]]]]
              ) -> tuple[Sequence[Write], _Logged, list[BatchResult]]:
    batch, logged, future = in_flight.popleft()
    return batch, logged, future.result()


@dataclass(frozen=True)
class _Logged:
    """A batch's writes as logged before it was sent: the links they had then."""

    previous: Mapping[str, LinkRecord]


def _log_intents(spec: EntitySpec, stage: PlanStage, sessions: sessionmaker[Session],
                 writes: Sequence[Write]) -> _Logged:
    realm_id = stage.scope.realm_id
    with sessions.begin() as session:
        record_write_intent(session, realm_id, spec.name, [
            WriteIntent(w.source_key, w.request_id, w.kind.value, w.qbo_id) for w in writes])
        return _Logged(get_links(session, realm_id, spec.name, [w.source_key for w in writes]))


def _write_batch(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                 sessions: sessionmaker[Session], writes: Sequence[Write], tally: Tally,
                 renamings: Mapping[str, _Renaming] | None = None) -> _Sent:
    """Send one batch; returns the writes QBO refused as stale, to be re-diffed, and those it
    refused for a DisplayName taken, to be renamed. `renamings`: the writes (by request id)
    sent under another name than the source's, recorded with their link once written."""
    logged = _log_intents(spec, stage, sessions, writes)
    return _record_answers(spec, stage, sessions, writes, logged,
                           _send_batch(spec, client, writes), tally, renamings)


def _record_answers(spec: EntitySpec, stage: PlanStage, sessions: sessionmaker[Session],
                    writes: Sequence[Write], logged: _Logged, results: Sequence[BatchResult],
                    tally: Tally, renamings: Mapping[str, _Renaming] | None = None) -> _Sent:
    realm_id = stage.scope.realm_id
    renamings = renamings or {}
    previous = logged.previous
    links, written, stale, answered, taken, names = [], [], [], [], [], []
    for write, result in zip(writes, results, strict=True):
        answer = _answer(result)
        renaming = renamings.get(write.request_id)
        collision = _collision(stage, write, answer, renaming)
        if collision is not None:
            answered.append(_outcome(write, result))
            taken.append(_NameTaken(write, collision, renaming))
            continue
        fate = tally.count(spec, write, answer)
        # A passing failure has no answer: its batch is re-sent. A plan's refusal is QBO's
        # answer to that request id (it would give it again): the next try is a new attempt.
        if fate is not Fate.FAILED or answer.plan_needed is not None:
            answered.append(_outcome(write, result))
        if fate is Fate.STALE:
            stale.append(write)
        elif fate is Fate.WRITTEN:
            assert result.record is not None
            written.append(result.record)
            link = previous.get(write.source_key)
            links.append(_link_update(spec, link_after(
                write, result.record, link.base_payload if link else None)))
            if renaming is not None:
                names.append(_name_given(write, result.record, renaming, tally))
    with sessions.begin() as session:
        complete_write(session, realm_id, answered)
        upsert_links(session, realm_id, spec.name, links)
        record_given_names(session, realm_id, spec.name, names)
        save_snapshots(session, realm_id, spec.qbo_entity, written)
    return _Sent(stale, taken)


def _collision(stage: PlanStage, write: Write, answer: Answer,
               renaming: _Renaming | None) -> Collision | None:
    """The DisplayName collision QBO answered `write` with, if it did."""
    tried = write.payload.get(DISPLAY_NAME)
    if not answer.name_taken or not isinstance(tried, str):
        return None
    if renaming is not None:
        return Collision(write.source_key, renaming.wanted, tried, renaming.attempt,
                         answer.taken_by)
    given = stage.given_names.get(write.source_key)
    # A name given by an earlier run that QBO refuses now: resolved from the source's name.
    wanted = given.wanted if given is not None and same_name(tried, given.given) else tried
    return Collision(write.source_key, wanted, tried, 0 if wanted == tried else 1,
                     answer.taken_by)


def _name_given(write: Write, record: Mapping[str, Any], renaming: _Renaming,
                tally: Tally) -> NameGiven:
    given = str(write.payload[DISPLAY_NAME])
    qbo_id = str(record["Id"])
    tally.renamed.append(Renamed(write.source_key, qbo_id, renaming.wanted, given,
                                 renaming.taken_by, renaming.taken_by_type))
    return NameGiven(write.source_key, renaming.wanted, given, qbo_id, renaming.taken_by)


def _rename_taken(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                  sessions: sessionmaker[Session], taken: Sequence[_NameTaken],
                  tally: Tally) -> None:
    """Send each write whose DisplayName QBO refused as taken again under the next name the
    company's rule gives, until one is free or the rule gives up (then it is held back with
    the names tried, the record holding the name and the fix)."""
    realm_id = stage.scope.realm_id
    while taken:
        retries: list[Write] = []
        renamings: dict[str, _Renaming] = {}
        for name_taken in _with_holder_types(spec, stage, sessions, taken):
            collision, before = name_taken.collision, name_taken.renaming
            tried = (*before.tried_before, collision.tried) if before else (collision.tried,)
            outcome = resolve_collision(collision, spec.qbo_entity, stage.collision_rule,
                                        tried[:-1])
            if isinstance(outcome, HoldBack):
                tally.count(spec, name_taken.write, Answer(error=outcome.reason, refused=True))
                continue
            retry = with_display_name(realm_id, spec.name, name_taken.write, outcome.name)
            retries.append(retry)
            first = before or collision
            renamings[retry.request_id] = _Renaming(collision.wanted, outcome.attempt, tried,
                                                    first.taken_by, first.taken_by_type)
        taken = []
        for batch in split(retries, BATCH_ITEM_LIMIT):
            sent = _write_batch(spec, stage, client, sessions, batch, tally, renamings)
            taken.extend(sent.taken)
            for write in sent.stale:
                tally.count(spec, write, Answer(error="refused as stale while renamed; the "
                                                "next run re-reads it"))


def _with_holder_types(spec: EntitySpec, stage: PlanStage, sessions: sessionmaker[Session],
                       taken: Sequence[_NameTaken]) -> list[_NameTaken]:
    """Each refusal with the list of the record holding the name, as far as the snapshots
    know it (QBO's answer names its Id only)."""
    ids = {refused.collision.taken_by for refused in taken} - {None}
    with sessions.begin() as session:
        known = {entity: {qbo_id: snapshot.payload for qbo_id, snapshot in get_snapshots(
            session, stage.scope.realm_id, entity, [i for i in ids if i]).items()}
            for entity in DISPLAY_NAME_ENTITIES}
    return [replace(refused, collision=replace(refused.collision, taken_by_type=holder_type(
        refused.collision.tried, refused.collision.taken_by, known))) for refused in taken]


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
    if isinstance(error, FeatureNotInPlanError):
        return Answer(error=error.detail or error.entry.message,
                      plan_needed=plan_needed(result.entity))
    taken = isinstance(error, DuplicateNameError) and error.on_display_name
    return Answer(error=str(error), stale=isinstance(error, StaleObjectError),
                  refused=refused_for_good(error), name_taken=taken,
                  taken_by=error.taken_by if isinstance(error, DuplicateNameError) else None)


def _heal_stale(spec: EntitySpec, stage: PlanStage, client: QBOClient,
                sessions: sessionmaker[Session], refused: Sequence[Write],
                tally: Tally) -> list[_NameTaken]:
    """Writes refused for a stale SyncToken (someone saved the record in QBO after the
    snapshot): re-read each record, let the core re-diff it, record the conflicts and send
    the retries once. A retry refused as stale again is left for the next run; one refused
    for a DisplayName taken is returned, to be renamed."""
    if not refused:
        return []
    resolutions = [r for r in (_re_diff(spec, stage, client, sessions, w, tally)
                               for w in refused) if r is not None]
    retries = _settle(spec, stage, sessions, resolutions, tally)
    taken: list[_NameTaken] = []
    for batch in split(retries, BATCH_ITEM_LIMIT):
        sent = _write_batch(spec, stage, client, sessions, batch, tally)
        taken.extend(sent.taken)
        for write in sent.stale:
            tally.count(spec, write, Answer(error="refused as stale twice in one run; the "
                                            "next run re-reads it"))
    return taken


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
