"""The pull steps: plan what QBO's records change in the source, and write it there.

`plan_pulled` is the `<spec>/diff` of a spec that only pulls (a two-way spec plans both sides in
`push.plan_spec`); `apply_source_writes` is every pulling spec's `<spec>/applied`. As on the push
side, the core decides and these functions only fetch its inputs and store its outcome:
source rows are written through `source.writer` in batches, each batch's links (and bases, so
that nothing echoes back) right after it; records the core or the writer cannot write are
quarantined with their reasons, never half-written, and the QBO-side cursor moves only once
every fetched record is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.qbo import newer_sync_token
from qbo_pipeline.source import (
    RowUpdate,
    RowUpsert,
    SourceWriteError,
    read_by,
    read_keys,
    update_rows,
    upsert_rows,
)
from qbo_pipeline.specs import EntitySpec, PullTarget, SpecSet
from qbo_pipeline.state import (
    LinkRecord,
    LinkUpdate,
    QuarantineEntry,
    get_links,
    links_by_qbo_id,
    quarantine_rows,
    release_quarantine,
    set_cursor,
    upsert_links,
)
from qbo_pipeline.steps.common import (
    COUNT_NAMES,
    Fetched,
    PlanStage,
    linked_qbo_ids,
    ref_entities,
    source_key_resolver,
)
from qbo_pipeline.sync import RecordState
from qbo_pipeline.sync.batches import split
from qbo_pipeline.sync.ids import payload_hash
from qbo_pipeline.sync.mapping import SOURCE_KEY
from qbo_pipeline.sync.plan import plan_pull
from qbo_pipeline.sync.pull import SourceWrite, SourceWriteKind, pull_section, settle_base
from qbo_pipeline.sync.reverse import record_key
from qbo_pipeline.sync.values import source_key_of

SOURCE_WRITE_BATCH = 500  # rows per source transaction
# Pulled records are held back under their own name, so that the push side's validation of a
# two-way spec never releases them (their keys can be the same source keys).
PULL_QUARANTINE_SUFFIX = ".pull"


def pull_quarantine_name(spec: EntitySpec) -> str:
    return f"{spec.name}{PULL_QUARANTINE_SUFFIX}"


# --- <spec>/diff of a spec that only pulls ---------------------------------------------------


def plan_pulled(spec: EntitySpec, specs: SpecSet, fetched: Fetched, engine: Engine,
                sessions: sessionmaker[Session]) -> PlanStage:
    """Each fetched QBO record with its source row (found by link, or by the QBO Id column
    under `target: upsert`) and its base; the core plans the source writes."""
    realm_id = fetched.scope.realm_id
    qbo_ids = [str(record["Id"]) for record in fetched.records]
    with sessions.begin() as session:
        links = links_by_qbo_id(session, realm_id, spec.name, qbo_ids)
        elsewhere = linked_qbo_ids(specs, session, realm_id, spec.qbo_entity) - set(links)
    rows = _rows_of(spec, engine, links, [i for i in qbo_ids if i not in links])
    states = []
    for record in fetched.records:
        qbo_id = str(record["Id"])
        link = links.get(qbo_id)
        row = rows.get(qbo_id)
        key = link.source_key if link is not None else (
            source_key_of(row[spec.source.primary_key]) if row is not None else None)
        states.append(RecordState(key, None, link.base_payload if link else None, record,
                                  source_row=row))
    plan = plan_pull(spec, realm_id, states, now=fetched.fetched_at,
                     resolve_source_key=source_key_resolver(spec, specs, sessions, realm_id),
                     ref_entities=ref_entities(specs), linked_elsewhere=elsewhere)
    counts = {name: 0 for name in COUNT_NAMES}
    counts.update(read=len(fetched.records), skipped=len(plan.skipped),
                  valid=len(fetched.records) - len(plan.skipped) - len(plan.quarantined),
                  quarantined=len(plan.quarantined), unchanged=len(plan.unchanged))
    return PlanStage(fetched.scope, plan, {}, counts, None, fetched)


def _rows_of(spec: EntitySpec, engine: Engine, links: dict[str, LinkRecord],
             unlinked: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Source rows by the QBO Id they belong to: linked rows by key; under `target: upsert`,
    rows holding an unlinked Id in the QBO Id column."""
    key_of = {link.source_key: qbo_id for qbo_id, link in links.items()}
    found = {key_of[source_key_of(row[spec.source.primary_key])]: row
             for row in read_keys(engine, spec, list(key_of))}
    pull = pull_section(spec)
    if pull.target is PullTarget.UPSERT and unlinked:
        assert pull.qbo_id_column is not None
        for row in read_by(engine, spec, pull.qbo_id_column, list(unlinked)):
            found.setdefault(str(row[pull.qbo_id_column]), row)
    return found


# --- <spec>/applied --------------------------------------------------------------------------


@dataclass
class ApplyTally:
    """The source writes of one run: rows created and updated, and what could not be written."""

    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    held: list[QuarantineEntry] = field(default_factory=list)


def apply_source_writes(spec: EntitySpec, stage: PlanStage, engine: Engine,
                        sessions: sessionmaker[Session]) -> tuple[dict[str, int], ApplyTally]:
    """Write the plan's source writes in batches, link and settle each batch, hold back what
    cannot be written, and move the QBO-side cursor once every record is recorded."""
    realm_id, plan = stage.scope.realm_id, stage.plan
    tally = ApplyTally()
    for batch in split(plan.source_writes, SOURCE_WRITE_BATCH):
        _apply_batch(spec, realm_id, engine, sessions, batch, tally)
    held = [QuarantineEntry(row.source_key, row.reasons) for row in plan.quarantined]
    with sessions.begin() as session:
        quarantine_rows(session, realm_id, pull_quarantine_name(spec), [*held, *tally.held])
        if stage.fetched is not None:
            # Every fetched record is now written, unchanged, skipped or held with a reason.
            set_cursor(session, realm_id, spec.name,
                       snapshot_cursor=stage.fetched.fetched_at)
    return _pull_counts(stage, tally), tally


def _pull_counts(stage: PlanStage, tally: ApplyTally) -> dict[str, int]:
    """The pull side's counts, over the QBO records in play: those fetched, and those whose
    values a two-way spec's diff writes into a row without fetching them (a record matched by
    a new row, which learns its QBO Id). read = skipped + valid + quarantined, valid = created +
    updated + unchanged + conflicts + failed. Conflicts of a two-way spec that the push side's
    window did not read are counted here."""
    plan = stage.plan
    window = set(stage.stage.frame[SOURCE_KEY]) if stage.stage is not None else set()
    fetched = {str(record["Id"]) for record in stage.fetched.records} \
        if stage.fetched is not None else set()
    read = len(fetched | {write.qbo_id for write in plan.source_writes})
    valid = max(read - len(plan.skipped) - len(plan.quarantined), 0)
    conflicts = sum(1 for conflict in plan.conflicts if conflict.source_key not in window)
    done = tally.created + tally.updated + tally.failed + conflicts
    counts = {name: 0 for name in COUNT_NAMES}
    counts.update(read=read, skipped=len(plan.skipped), valid=valid,
                  quarantined=len(plan.quarantined), created=tally.created,
                  updated=tally.updated, failed=tally.failed, conflicts=conflicts,
                  unchanged=max(valid - done, 0))
    return counts


def _apply_batch(spec: EntitySpec, realm_id: str, engine: Engine,
                 sessions: sessionmaker[Session], batch: Sequence[SourceWrite],
                 tally: ApplyTally) -> None:
    try:
        written = _write_rows(spec, engine, batch)
    except SourceWriteError:
        # One bad row rolls its call back: write one by one, so that only it is held back.
        written = {}
        for write in batch:
            try:
                written.update(_write_rows(spec, engine, [write]))
            except SourceWriteError as error:
                _hold(spec, write, f"cannot be written into the source: {error}", tally)
    held = {entry.source_key for entry in tally.held}
    for write in batch:
        # A row deleted from the table since the plan was made: say so, do not drop it.
        if id(write) not in written and record_key(write.source_key, write.qbo_id) not in held:
            _hold(spec, write, "has no source row any more (deleted from the table since "
                  "the plan); restore the row or clear the link", tally)
    with sessions.begin() as session:
        current = get_links(session, realm_id, spec.name, list(written.values()))
        upsert_links(session, realm_id, spec.name, [
            _link(spec, write, written[id(write)], current.get(written[id(write)]))
            for write in batch if id(write) in written])
        release_quarantine(session, realm_id, pull_quarantine_name(spec),
                           [record_key(w.source_key, w.qbo_id) for w in batch
                            if id(w) in written])
    _count(batch, written, tally)


def _hold(spec: EntitySpec, write: SourceWrite, problem: str, tally: ApplyTally) -> None:
    """A write that could not be done: held back with its reason, never dropped."""
    key = record_key(write.source_key, write.qbo_id)
    reason = f"{spec.record_label} {key}: QuickBooks {spec.qbo_entity} {write.qbo_id} {problem}"
    tally.failed += 1
    tally.errors.append(reason)
    tally.held.append(QuarantineEntry(key, [reason]))


def _write_rows(spec: EntitySpec, engine: Engine,
                writes: Sequence[SourceWrite]) -> dict[int, str]:
    """Write rows; returns each written write's source key (by the write's identity)."""
    source, pull = spec.source, pull_section(spec)
    table = source.table
    assert table is not None, f"spec {spec.name}: the loader requires a table for a pull"
    upserts = [w for w in writes if w.kind is SourceWriteKind.UPSERT]
    updates = [w for w in writes if w.kind is not SourceWriteKind.UPSERT]
    written: dict[int, str] = {}
    if upserts:
        assert pull.qbo_id_column is not None
        keys = upsert_rows(engine, table, pull.qbo_id_column, source.primary_key,
                           [RowUpsert(w.qbo_id, w.values) for w in upserts],
                           touch=source.updated_at)
        written.update({id(w): keys[w.qbo_id] for w in upserts})
    if updates:
        found = set(update_rows(engine, table, source.primary_key,
                                [RowUpdate(w.source_key, w.values) for w in updates],
                                touch=source.updated_at))
        written.update({id(w): str(w.source_key) for w in updates if str(w.source_key) in found})
    return written


def _link(spec: EntitySpec, write: SourceWrite, source_key: str,
          current: LinkRecord | None) -> LinkUpdate:
    """The link after a source write: the base learns what the write settled, on the base as
    it is now (the push side of a two-way run may have moved it since the plan)."""
    base = settle_base(current.base_payload if current else None, write.settles)
    token = newer_sync_token(current.sync_token if current else None, write.sync_token)
    return LinkUpdate(source_key, spec.qbo_entity, write.qbo_id, token, base,
                      payload_hash(base), current.delete_applied if current else False)


def _count(batch: Sequence[SourceWrite], written: dict[int, str], tally: ApplyTally) -> None:
    for write in batch:
        if id(write) not in written:
            continue
        if write.kind is SourceWriteKind.UPSERT and write.source_key is None:
            tally.created += 1
        else:
            tally.updated += 1


def applied_rows(stage: PlanStage, tally: ApplyTally) -> list[dict[str, Any]]:
    """What the applied asset's preview lists: each source write and its result."""
    failed = {entry.source_key for entry in tally.held}
    return [{"source_key": write.source_key or "(new)", "qbo_id": write.qbo_id,
             "write": write.kind.value, "columns": ", ".join(sorted(write.values)),
             "result": "held back" if record_key(write.source_key, write.qbo_id) in failed
             else "written", "auto": ", ".join(write.auto_applied)}
            for write in stage.plan.source_writes]

