"""Reading and writing the state DB: plain functions that take a Session.

Nothing here commits; the caller owns the transaction (see `db.py`). Every function is
scoped by realm: one QBO company never sees another's state. Writes of many rows are
executemany upserts (`INSERT ... ON CONFLICT DO UPDATE` on SQLite and PostgreSQL), and
reads by key go in chunks, so thousands of rows cost a few statements, not one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state.crypto import SecretCipher
from qbo_pipeline.state.models import (
    ConflictRecord,
    ConflictResolutionRecord,
    ConflictSightingRecord,
    ConflictStatus,
    CursorRecord,
    GivenNameRecord,
    HeldReferenceRecord,
    LinkRecord,
    QuarantineRecord,
    RealmRecord,
    RowDueRecord,
    RunResultRecord,
    SnapshotRecord,
    StateBase,
    TokenRecord,
    WriteLogRecord,
    WriteStatus,
    utc_now,
)

CHUNK_SIZE = 500  # keys per IN (...) and rows per executemany: well under every driver's limit
_Item = TypeVar("_Item")


class StateError(Exception):
    """A state DB operation that would break an invariant; the message says which and why."""


# --- shared ----------------------------------------------------------------------------------


def _chunks(items: Sequence[_Item]) -> Iterator[Sequence[_Item]]:
    for start in range(0, len(items), CHUNK_SIZE):
        yield items[start:start + CHUNK_SIZE]


def _upsert(session: Session, model: type[StateBase]) -> sqlite.Insert | postgresql.Insert:
    dialect = session.get_bind().dialect.name
    table = _table(model)
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StateError(f"the state DB supports SQLite and PostgreSQL, not {dialect}: "
                     "point the state DB URL at one of them")


def _table(model: type[StateBase]) -> Table:
    return cast(Table, model.__table__)


# --- links -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkUpdate:
    """A source record synced with a QBO record: the payload just pushed becomes the base."""

    source_key: str
    qbo_entity: str
    qbo_id: str
    sync_token: str | None
    base_payload: Mapping[str, Any] | None
    base_hash: str | None
    delete_applied: bool = False


def upsert_links(session: Session, realm_id: str, spec_name: str, links: Iterable[LinkUpdate],
                 *, synced_at: datetime | None = None) -> int:
    """Insert or update links by (realm, spec, source key); the last of a key wins.

    Raises StateError when a QBO record is already linked to another source record.
    """
    synced_at = synced_at or utc_now()
    rows = {link.source_key: {
        "realm_id": realm_id, "spec_name": spec_name, "source_key": link.source_key,
        "qbo_entity": link.qbo_entity, "qbo_id": link.qbo_id, "sync_token": link.sync_token,
        "base_payload": link.base_payload, "base_hash": link.base_hash,
        "delete_applied": link.delete_applied, "last_synced_at": synced_at,
    } for link in links}
    if not rows:
        return 0
    _check_qbo_ids_free(session, realm_id, spec_name, list(rows.values()))
    statement = _upsert(session, LinkRecord)
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "spec_name", "source_key"],
        set_={name: statement.excluded[name] for name in (
            "qbo_entity", "qbo_id", "sync_token", "base_payload", "base_hash", "delete_applied",
            "last_synced_at")},
    )
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, list(chunk))
    return len(rows)


def _check_qbo_ids_free(session: Session, realm_id: str, spec_name: str,
                        rows: Sequence[Mapping[str, Any]]) -> None:
    """One QBO record, one source record: linking it twice would hide a duplicate."""
    wanted: dict[tuple[str, str], str] = {}
    for row in rows:
        target = (row["qbo_entity"], row["qbo_id"])
        other = wanted.setdefault(target, row["source_key"])
        if other != row["source_key"]:
            raise _already_linked(realm_id, target, spec_name, other, row["source_key"])
    for entity in {entity for entity, _ in wanted}:
        ids = [qbo_id for kind, qbo_id in wanted if kind == entity]
        for chunk in _chunks(ids):
            found = session.execute(select(LinkRecord.qbo_id, LinkRecord.spec_name,
                                           LinkRecord.source_key).where(
                LinkRecord.realm_id == realm_id, LinkRecord.qbo_entity == entity,
                LinkRecord.qbo_id.in_(chunk)))
            for qbo_id, linked_spec, linked_key in found:
                key = wanted[(entity, qbo_id)]
                if (linked_spec, linked_key) != (spec_name, key):
                    raise _already_linked(realm_id, (entity, qbo_id), linked_spec, linked_key,
                                          key)


def _already_linked(realm_id: str, target: tuple[str, str], linked_spec: str, linked_key: str,
                    new_key: str) -> StateError:
    entity, qbo_id = target
    return StateError(
        f"realm {realm_id}: QBO {entity} {qbo_id} is already linked to {linked_spec} record "
        f"{linked_key!r}, so it cannot also be linked to {new_key!r}; two source records "
        "matched one QBO record: fix the duplicate in the source or its match keys"
    )


def get_links(session: Session, realm_id: str, spec_name: str,
              keys: Iterable[str] | None = None) -> dict[str, LinkRecord]:
    """The links of a spec by source key: all of them, or those of `keys` that exist."""
    base = select(LinkRecord).where(LinkRecord.realm_id == realm_id,
                                    LinkRecord.spec_name == spec_name).execution_options(
        populate_existing=True)
    if keys is None:
        return {link.source_key: link for link in session.scalars(base)}
    found: dict[str, LinkRecord] = {}
    for chunk in _chunks(list(dict.fromkeys(keys))):
        for link in session.scalars(base.where(LinkRecord.source_key.in_(chunk))):
            found[link.source_key] = link
    return found


def links_by_qbo_id(session: Session, realm_id: str, spec_name: str,
                    qbo_ids: Iterable[str]) -> dict[str, LinkRecord]:
    """The spec's links to these QBO records, by QBO Id."""
    found: dict[str, LinkRecord] = {}
    base = select(LinkRecord).where(LinkRecord.realm_id == realm_id,
                                    LinkRecord.spec_name == spec_name).execution_options(
        populate_existing=True)
    for chunk in _chunks(list(dict.fromkeys(qbo_ids))):
        for link in session.scalars(base.where(LinkRecord.qbo_id.in_(chunk))):
            found[link.qbo_id] = link
    return found


def link_for_qbo_id(session: Session, realm_id: str, qbo_entity: str,
                    qbo_id: str) -> LinkRecord | None:
    return session.scalars(select(LinkRecord).where(
        LinkRecord.realm_id == realm_id, LinkRecord.qbo_entity == qbo_entity,
        LinkRecord.qbo_id == qbo_id).execution_options(populate_existing=True)).one_or_none()


# --- given names -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NameGiven:
    """A record written to QBO under another DisplayName than the source's."""

    source_key: str
    wanted_name: str
    given_name: str
    qbo_id: str
    taken_by: str | None = None


def record_given_names(session: Session, realm_id: str, spec_name: str,
                       names: Iterable[NameGiven], *, given_at: datetime | None = None) -> int:
    """Insert or replace each record's given name by (realm, spec, source key)."""
    given_at = given_at or utc_now()
    rows = {name.source_key: {
        "realm_id": realm_id, "spec_name": spec_name, "source_key": name.source_key,
        "wanted_name": name.wanted_name, "given_name": name.given_name, "qbo_id": name.qbo_id,
        "taken_by": name.taken_by, "given_at": given_at} for name in names}
    if not rows:
        return 0
    statement = _upsert(session, GivenNameRecord)
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "spec_name", "source_key"],
        set_={column: statement.excluded[column] for column in (
            "wanted_name", "given_name", "qbo_id", "taken_by", "given_at")})
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, list(chunk))
    return len(rows)


def given_names(session: Session, realm_id: str, spec_name: str,
                keys: Iterable[str] | None = None) -> dict[str, GivenNameRecord]:
    """The given names of a spec's records by source key: all, or those of `keys`."""
    base = select(GivenNameRecord).where(GivenNameRecord.realm_id == realm_id,
                                         GivenNameRecord.spec_name == spec_name)
    if keys is None:
        return {row.source_key: row for row in session.scalars(base)}
    found: dict[str, GivenNameRecord] = {}
    for chunk in _chunks(list(dict.fromkeys(keys))):
        for row in session.scalars(base.where(GivenNameRecord.source_key.in_(chunk))):
            found[row.source_key] = row
    return found


# --- snapshots -------------------------------------------------------------------------------


def save_snapshots(session: Session, realm_id: str, qbo_entity: str,
                   records: Iterable[Mapping[str, Any]], *,
                   fetched_at: datetime | None = None) -> int:
    """Store QBO records as fetched (a CDC delete, `"status": "Deleted"`, included).

    A record never replaces a newer one (by `MetaData.LastUpdatedTime`) already stored.
    """
    fetched_at = fetched_at or utc_now()
    rows = {row["qbo_id"]: row for row in (
        _snapshot_row(realm_id, qbo_entity, record, fetched_at) for record in records)}
    if not rows:
        return 0
    statement = _upsert(session, SnapshotRecord)
    stored = _table(SnapshotRecord).c.last_updated_time
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "qbo_entity", "qbo_id"],
        set_={name: statement.excluded[name] for name in (
            "sync_token", "payload", "deleted", "last_updated_time", "fetched_at")},
        where=stored.is_(None) | statement.excluded.last_updated_time.is_(None)
        | (statement.excluded.last_updated_time >= stored),
    )
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, list(chunk))
    return len(rows)


def _snapshot_row(realm_id: str, qbo_entity: str, record: Mapping[str, Any],
                  fetched_at: datetime) -> dict[str, Any]:
    if not record.get("Id"):
        raise StateError(f"realm {realm_id}: a QBO {qbo_entity} record without an Id cannot be "
                         f"stored as a snapshot (keys: {sorted(record)})")
    updated = record.get("MetaData", {}).get("LastUpdatedTime")
    return {
        "realm_id": realm_id, "qbo_entity": qbo_entity, "qbo_id": str(record["Id"]),
        "sync_token": None if record.get("SyncToken") is None else str(record["SyncToken"]),
        "payload": dict(record), "deleted": record.get("status") == "Deleted",
        "last_updated_time": datetime.fromisoformat(updated) if updated else None,
        "fetched_at": fetched_at,
    }


def get_snapshots(session: Session, realm_id: str, qbo_entity: str,
                  qbo_ids: Iterable[str] | None = None) -> dict[str, SnapshotRecord]:
    base = select(SnapshotRecord).where(SnapshotRecord.realm_id == realm_id,
                                        SnapshotRecord.qbo_entity == qbo_entity
                                        ).execution_options(populate_existing=True)
    if qbo_ids is None:
        return {snapshot.qbo_id: snapshot for snapshot in session.scalars(base)}
    found: dict[str, SnapshotRecord] = {}
    for chunk in _chunks(list(dict.fromkeys(qbo_ids))):
        for snapshot in session.scalars(base.where(SnapshotRecord.qbo_id.in_(chunk))):
            found[snapshot.qbo_id] = snapshot
    return found


# --- conflicts -------------------------------------------------------------------------------


class ConflictFieldLike(Protocol):
    """One field's values on each side (the sync core's FieldDiff fits)."""

    @property
    def path(self) -> str: ...
    @property
    def source(self) -> Any: ...
    @property
    def qbo(self) -> Any: ...
    @property
    def base(self) -> Any: ...


class ConflictLike(Protocol):
    """A record's conflicting fields (the sync core's Conflict fits)."""

    @property
    def source_key(self) -> str: ...
    @property
    def qbo_id(self) -> str | None: ...
    @property
    def fields(self) -> Sequence[ConflictFieldLike]: ...
    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class ConflictField:
    path: str
    source: Any
    qbo: Any
    base: Any


@dataclass(frozen=True)
class NewConflict:
    source_key: str
    qbo_id: str | None
    fields: Sequence[ConflictField]
    reason: str = ""


def open_conflicts(session: Session, realm_id: str, spec_name: str,
                   conflicts: Iterable[ConflictLike]) -> list[ConflictRecord]:
    """Record conflicts for review; a record's open conflict is refreshed, not duplicated."""
    incoming = {conflict.source_key: conflict for conflict in conflicts}
    existing = {record.source_key: record for record in list_conflicts(
        session, realm_id, spec_name, keys=list(incoming))}
    records = []
    for key, conflict in incoming.items():
        record = existing.get(key) or ConflictRecord(realm_id=realm_id, spec_name=spec_name,
                                                     source_key=key)
        record.qbo_id = conflict.qbo_id
        record.fields = [{"path": field.path, "source": field.source, "qbo": field.qbo,
                          "base": field.base} for field in conflict.fields]
        record.reason = conflict.reason
        records.append(record)
    session.add_all(records)
    session.flush()
    return records


def open_conflict(session: Session, realm_id: str, spec_name: str,
                  conflict: ConflictLike) -> ConflictRecord:
    return open_conflicts(session, realm_id, spec_name, [conflict])[0]


def list_conflicts(session: Session, realm_id: str, spec_name: str | None = None, *,
                   status: ConflictStatus | None = ConflictStatus.OPEN,
                   keys: Sequence[str] | None = None) -> list[ConflictRecord]:
    """Conflicts of a realm (open ones unless `status` says otherwise; None for all)."""
    query = select(ConflictRecord).where(ConflictRecord.realm_id == realm_id)
    if spec_name is not None:
        query = query.where(ConflictRecord.spec_name == spec_name)
    if status is not None:
        query = query.where(ConflictRecord.status == status)
    query = query.order_by(ConflictRecord.id)
    if keys is None:
        return list(session.scalars(query))
    return [record for chunk in _chunks(list(keys))
            for record in session.scalars(query.where(ConflictRecord.source_key.in_(chunk)))]


@dataclass(frozen=True)
class ConflictSighting:
    """A run that found a record's open conflict, and when each side had changed: the source
    row's change stamp and QBO's `MetaData.LastUpdatedTime` (None when unknown)."""

    source_key: str
    run_id: str | None
    source_changed_at: datetime | None
    qbo_changed_at: datetime | None


def record_sightings(session: Session, realm_id: str, spec_name: str,
                     sightings: Iterable[ConflictSighting], *,
                     seen_at: datetime | None = None) -> int:
    """Record the runs that found the open conflicts of these records. A conflict's first
    sighting sets its first and last run; a later one moves the last run and the times each
    side changed, the first run stays. Raises StateError for a record without an open
    conflict."""
    seen_at = seen_at or utc_now()
    incoming = {sighting.source_key: sighting for sighting in sightings}
    if not incoming:
        return 0
    open_ids = {record.source_key: record.id for record in list_conflicts(
        session, realm_id, spec_name, keys=list(incoming))}
    if missing := sorted(set(incoming) - set(open_ids)):
        raise StateError(f"realm {realm_id}: {spec_name} records {missing} have no open "
                         "conflict: open it before recording who found it")
    rows = [{
        "conflict_id": open_ids[key], "realm_id": realm_id,
        "first_run_id": sighting.run_id, "first_seen_at": seen_at,
        "last_run_id": sighting.run_id, "last_seen_at": seen_at,
        "source_changed_at": sighting.source_changed_at,
        "qbo_changed_at": sighting.qbo_changed_at,
    } for key, sighting in incoming.items()]
    statement = _upsert(session, ConflictSightingRecord)
    statement = statement.on_conflict_do_update(
        index_elements=["conflict_id"],
        set_={name: statement.excluded[name] for name in (
            "last_run_id", "last_seen_at", "source_changed_at", "qbo_changed_at")},
    )
    for chunk in _chunks(rows):
        session.execute(statement, list(chunk))
    # The session may hold rows as they were before this statement.
    for conflict_id in open_ids.values():
        loaded = session.identity_map.get(session.identity_key(ConflictSightingRecord,
                                                               conflict_id))
        if loaded is not None:
            session.expire(loaded)
    return len(rows)


def get_sighting(session: Session, conflict_id: int) -> ConflictSightingRecord | None:
    return session.get(ConflictSightingRecord, conflict_id)


def resolve_conflict(session: Session, realm_id: str, conflict_id: int,
                     resolution: ConflictStatus, resolved_by: str) -> ConflictRecord:
    """Close an open conflict with a person's decision, recorded for the next run to apply."""
    if resolution is ConflictStatus.OPEN:
        raise StateError(f"conflict {conflict_id}: a resolution must be one of "
                         f"{[s.value for s in ConflictStatus if s is not ConflictStatus.OPEN]}")
    record = session.get(ConflictRecord, conflict_id)
    if record is None or record.realm_id != realm_id:
        raise StateError(f"realm {realm_id}: there is no conflict {conflict_id}")
    if record.status is not ConflictStatus.OPEN:
        raise StateError(f"realm {realm_id}: conflict {conflict_id} was already resolved "
                         f"({record.status.value} by {record.resolved_by})")
    record.status = resolution
    record.resolved_at = utc_now()
    record.resolved_by = resolved_by
    session.add(ConflictResolutionRecord(
        conflict_id=record.id, realm_id=realm_id, spec_name=record.spec_name,
        source_key=record.source_key, decision=resolution, decided_by=resolved_by,
        decided_at=record.resolved_at))
    session.flush()
    return record


@dataclass(frozen=True)
class DecidedConflict:
    """A decided conflict a run applies: `pending` until a run has applied it."""

    conflict_id: int
    source_key: str
    decision: ConflictStatus
    fields: list[Any]
    pending: bool


def decisions_to_apply(session: Session, realm_id: str, spec_name: str) -> list[DecidedConflict]:
    """The spec's decided conflicts a run applies, the last one of each record: those no run
    has applied yet, and dismissals (one holds while both sides keep the values dismissed)."""
    resolutions = {r.conflict_id: r for r in session.scalars(select(ConflictResolutionRecord)
                   .where(ConflictResolutionRecord.realm_id == realm_id,
                          ConflictResolutionRecord.spec_name == spec_name,
                          (ConflictResolutionRecord.applied_run_id.is_(None))
                          | (ConflictResolutionRecord.decision == ConflictStatus.DISMISSED)))}
    latest: dict[str, DecidedConflict] = {}
    for chunk in _chunks(sorted(resolutions)):
        for record in session.scalars(select(ConflictRecord).where(
                ConflictRecord.id.in_(chunk)).order_by(ConflictRecord.id)):
            resolution = resolutions[record.id]
            latest[record.source_key] = DecidedConflict(
                record.id, record.source_key, resolution.decision, list(record.fields),
                resolution.applied_run_id is None)
    return list(latest.values())


def mark_decisions_applied(session: Session, realm_id: str, conflict_ids: Iterable[int],
                           run_id: str) -> int:
    """Record the run that applied these decisions (a decision already applied keeps its)."""
    table = _table(ConflictResolutionRecord).c
    applied = 0
    for chunk in _chunks(list(dict.fromkeys(conflict_ids))):
        result = session.execute(update(_table(ConflictResolutionRecord)).where(
            table.realm_id == realm_id, table.conflict_id.in_(chunk),
            table.applied_run_id.is_(None)).values(applied_run_id=run_id, applied_at=utc_now()))
        applied += cast(Any, result).rowcount
    return applied


def get_resolution(session: Session, conflict_id: int) -> ConflictResolutionRecord | None:
    return session.get(ConflictResolutionRecord, conflict_id)


# --- quarantine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantineEntry:
    """A row that failed validation, with every reason (as a bookkeeper can act on it)."""

    source_key: str
    reasons: Sequence[str]
    row: Mapping[str, Any] | None = None
    source_updated_at: datetime | None = None
    refers_to: Sequence[tuple[str, str]] = ()  # (spec name, source key) of referenced records


def quarantine_rows(session: Session, realm_id: str, spec_name: str,
                    entries: Iterable[QuarantineEntry], *, seen_at: datetime | None = None) -> int:
    """Hold rows back, or refresh the reasons of rows still held; a released row is held anew."""
    seen_at = seen_at or utc_now()
    rows = {entry.source_key: {
        "realm_id": realm_id, "spec_name": spec_name, "source_key": entry.source_key,
        "reasons": list(entry.reasons), "row": None if entry.row is None else dict(entry.row),
        "source_updated_at": entry.source_updated_at, "first_seen": seen_at,
        "last_seen": seen_at, "released_at": None,
    } for entry in entries}
    if not rows:
        return 0
    statement = _upsert(session, QuarantineRecord)
    held = _table(QuarantineRecord).c
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "spec_name", "source_key"],
        set_={
            **{name: statement.excluded[name] for name in (
                "reasons", "row", "source_updated_at", "last_seen", "released_at")},
            "first_seen": case((held.released_at.is_(None), held.first_seen),
                               else_=statement.excluded.first_seen),
        },
    )
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, list(chunk))
    _replace_references(session, realm_id, spec_name, {
        entry.source_key: entry.refers_to for entry in entries})
    return len(rows)


def _replace_references(session: Session, realm_id: str, spec_name: str,
                        refers_to: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    held = _table(HeldReferenceRecord)
    for keys in _chunks(list(refers_to)):
        session.execute(delete(held).where(
            held.c.realm_id == realm_id, held.c.spec_name == spec_name,
            held.c.source_key.in_(keys)))
    rows = [{"realm_id": realm_id, "spec_name": spec_name, "source_key": key,
             "target_spec": target_spec, "target_key": target_key}
            for key, targets in refers_to.items() for target_spec, target_key in set(targets)]
    for chunk in _chunks(rows):
        session.execute(insert(held), list(chunk))


@dataclass(frozen=True)
class HeldRow:
    """A row still held back: since when (last seen), the records it refers to, and the
    source stamp it was held with (None: it had no usable updated_at)."""

    source_key: str
    held_at: datetime
    refers_to: tuple[tuple[str, str], ...]
    source_updated_at: datetime | None = None


def held_rows(session: Session, realm_id: str, spec_name: str) -> list[HeldRow]:
    """The spec's rows held back now, with what each refers to."""
    references: dict[str, list[tuple[str, str]]] = {}
    for key, target_spec, target_key in session.execute(select(
            HeldReferenceRecord.source_key, HeldReferenceRecord.target_spec,
            HeldReferenceRecord.target_key).where(
            HeldReferenceRecord.realm_id == realm_id,
            HeldReferenceRecord.spec_name == spec_name)):
        references.setdefault(key, []).append((target_spec, target_key))
    held = session.execute(select(
        QuarantineRecord.source_key, QuarantineRecord.last_seen,
        QuarantineRecord.source_updated_at).where(
        QuarantineRecord.realm_id == realm_id, QuarantineRecord.spec_name == spec_name,
        QuarantineRecord.released_at.is_(None)))
    return [HeldRow(key, seen, tuple(sorted(references.get(key, ()))), stamp)
            for key, seen, stamp in held]


def last_synced(session: Session, realm_id: str,
                records: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """When each (spec name, source key) record was last linked or written, if it was."""
    wanted: dict[str, list[str]] = {}
    for spec_name, key in set(records):
        wanted.setdefault(spec_name, []).append(key)
    found: dict[tuple[str, str], datetime] = {}
    for spec_name, keys in wanted.items():
        for chunk in _chunks(keys):
            for key, synced_at in session.execute(select(
                    LinkRecord.source_key, LinkRecord.last_synced_at).where(
                    LinkRecord.realm_id == realm_id, LinkRecord.spec_name == spec_name,
                    LinkRecord.source_key.in_(chunk))):
                found[(spec_name, key)] = synced_at
    return found


def release_quarantine(session: Session, realm_id: str, spec_name: str, keys: Iterable[str], *,
                       released_at: datetime | None = None) -> int:
    """Release held rows that now pass validation; returns how many were held."""
    released_at = released_at or utc_now()
    held = _table(QuarantineRecord).c
    released = 0
    for chunk in _chunks(list(dict.fromkeys(keys))):
        result = session.execute(update(_table(QuarantineRecord)).where(
            held.realm_id == realm_id, held.spec_name == spec_name,
            held.source_key.in_(chunk), held.released_at.is_(None),
        ).values(released_at=released_at))
        released += cast(Any, result).rowcount
    return released


def list_quarantine(session: Session, realm_id: str, spec_name: str | None = None, *,
                    include_released: bool = False) -> list[QuarantineRecord]:
    query = select(QuarantineRecord).where(QuarantineRecord.realm_id == realm_id
                                           ).execution_options(populate_existing=True)
    if spec_name is not None:
        query = query.where(QuarantineRecord.spec_name == spec_name)
    if not include_released:
        query = query.where(QuarantineRecord.released_at.is_(None))
    return list(session.scalars(query.order_by(QuarantineRecord.spec_name,
                                               QuarantineRecord.source_key)))


def open_quarantine_after_runs(session: Session, realm_id: str, spec_name: str,
                               runs: int) -> list[int]:
    """How many of the spec's rows were held in quarantine when each of its last `runs` run
    results was recorded, oldest first: the history a growing quarantine is judged by.

    Read from each row's first sighting and release, so no count needs storing; a row held
    again after a release counts from its first sighting (close enough for a trend)."""
    finished = list(session.scalars(select(RunResultRecord.finished_at).where(
        RunResultRecord.realm_id == realm_id, RunResultRecord.spec_name == spec_name,
        RunResultRecord.finished_at.is_not(None)).order_by(RunResultRecord.id.desc())
        .limit(runs)))
    return [_open_quarantine_at(session, realm_id, spec_name, moment)
            for moment in reversed(finished) if moment is not None]


def _open_quarantine_at(session: Session, realm_id: str, spec_name: str,
                        moment: datetime) -> int:
    return int(session.scalar(select(func.count()).select_from(QuarantineRecord).where(
        QuarantineRecord.realm_id == realm_id, QuarantineRecord.spec_name == spec_name,
        QuarantineRecord.first_seen <= moment,
        (QuarantineRecord.released_at.is_(None)) | (QuarantineRecord.released_at > moment)))
        or 0)


def request_reread(session: Session, realm_id: str, spec_name: str, source_key: str,
                   reason: str) -> None:
    """Have the next run read this row again although it did not change."""
    due = session.scalars(select(RowDueRecord).where(
        RowDueRecord.realm_id == realm_id, RowDueRecord.spec_name == spec_name,
        RowDueRecord.source_key == source_key)).one_or_none()
    if due is None:
        session.add(RowDueRecord(realm_id=realm_id, spec_name=spec_name, source_key=source_key,
                                 reason=reason))
    else:
        due.reason, due.requested_at = reason, utc_now()
    session.flush()


def rows_due(session: Session, realm_id: str, spec_name: str) -> list[str]:
    return list(session.scalars(select(RowDueRecord.source_key).where(
        RowDueRecord.realm_id == realm_id, RowDueRecord.spec_name == spec_name)
        .order_by(RowDueRecord.id)))


def clear_rows_due(session: Session, realm_id: str, spec_name: str,
                   keys: Iterable[str]) -> None:
    """The rows whose outcome a run recorded: no longer due."""
    table = _table(RowDueRecord).c
    for chunk in _chunks(list(dict.fromkeys(keys))):
        session.execute(delete(_table(RowDueRecord)).where(
            table.realm_id == realm_id, table.spec_name == spec_name,
            table.source_key.in_(chunk)))


def delete_link(session: Session, realm_id: str, spec_name: str,
                source_key: str) -> LinkRecord | None:
    """Remove a record's link (a person unlinks it); returns the link as it was."""
    link = get_links(session, realm_id, spec_name, [source_key]).get(source_key)
    if link is not None:
        session.delete(link)
        session.flush()
    return link


@dataclass(frozen=True)
class OpenReview:
    """What waits for a person in one spec of a realm: open conflicts and held rows."""

    conflicts: int
    oldest_conflict: datetime | None
    quarantined: int


def open_review(session: Session, realm_id: str, spec_name: str) -> OpenReview:
    conflicts, oldest = session.execute(select(
        func.count(ConflictRecord.id), func.min(ConflictRecord.created_at)).where(
        ConflictRecord.realm_id == realm_id, ConflictRecord.spec_name == spec_name,
        ConflictRecord.status == ConflictStatus.OPEN)).one()
    quarantined = session.scalar(select(func.count()).select_from(QuarantineRecord).where(
        QuarantineRecord.realm_id == realm_id, QuarantineRecord.spec_name == spec_name,
        QuarantineRecord.released_at.is_(None)))
    return OpenReview(int(conflicts), _aware(oldest), int(quarantined or 0))


def _aware(moment: datetime | None) -> datetime | None:
    """An aggregate's time, which SQLite hands back without the column's UTC conversion."""
    if moment is None or isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment
    parsed = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def changed_quarantined_keys(session: Session, realm_id: str, spec_name: str,
                             updated_at_by_key: Mapping[str, datetime | None]) -> list[str]:
    """The held rows among `updated_at_by_key` whose source changed since they were held:
    those must be validated again; an unchanged held row would only fail again."""
    changed = []
    for chunk in _chunks(list(updated_at_by_key)):
        for key, held_at in session.execute(select(
                QuarantineRecord.source_key, QuarantineRecord.source_updated_at).where(
                QuarantineRecord.realm_id == realm_id, QuarantineRecord.spec_name == spec_name,
                QuarantineRecord.released_at.is_(None), QuarantineRecord.source_key.in_(chunk))):
            if held_at is None or updated_at_by_key[key] != held_at:
                changed.append(key)
    return sorted(changed)


# --- cursors ---------------------------------------------------------------------------------


def get_cursor(session: Session, realm_id: str, spec_name: str) -> CursorRecord | None:
    return session.get(CursorRecord, (realm_id, spec_name))


def synced_realms(session: Session) -> set[str]:
    """The realms whose sync has moved a change-window cursor: they synced once in full."""
    return set(session.scalars(select(CursorRecord.realm_id).where(
        CursorRecord.change_window_end.is_not(None)).distinct()))


def restart_change_window(session: Session, realm_id: str, spec_name: str) -> None:
    """Have the spec's next run read every row again (its change window starts over)."""
    session.execute(update(CursorRecord).where(
        CursorRecord.realm_id == realm_id, CursorRecord.spec_name == spec_name).values(
        change_window_end=None))


def set_cursor(session: Session, realm_id: str, spec_name: str, *,
               change_window_end: datetime | None = None,
               snapshot_cursor: datetime | None = None) -> None:
    """Move a spec's cursors; a cursor not given keeps its value.

    Set `change_window_end` only once the window's writes succeeded: the next run starts there.
    """
    statement = _upsert(session, CursorRecord)
    stored = _table(CursorRecord).c
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "spec_name"],
        set_={
            "change_window_end": func.coalesce(statement.excluded.change_window_end,
                                               stored.change_window_end),
            "snapshot_cursor": func.coalesce(statement.excluded.snapshot_cursor,
                                             stored.snapshot_cursor),
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(statement, {"realm_id": realm_id, "spec_name": spec_name,
                                "change_window_end": change_window_end,
                                "snapshot_cursor": snapshot_cursor, "updated_at": utc_now()})
    # The session may hold the row as it was before this statement.
    loaded = session.identity_map.get(session.identity_key(CursorRecord, (realm_id, spec_name)))
    if loaded is not None:
        session.expire(loaded)


# --- write log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteIntent:
    """A write about to be sent in a batch, under its idempotent request id."""

    source_key: str
    request_id: str
    operation: str
    qbo_id: str | None = None


@dataclass(frozen=True)
class WriteOutcome:
    """What QBO answered for one request id."""

    request_id: str
    succeeded: bool
    qbo_id: str | None = None
    error: str | None = None


def record_write_intent(session: Session, realm_id: str, spec_name: str,
                        intents: Iterable[WriteIntent]) -> int:
    """Log writes as pending before their batch is sent (commit before sending).

    A request id already logged as failed becomes pending again; one that succeeded stays
    succeeded, because QBO will answer its retry with the first answer.
    """
    now = utc_now()
    rows = {intent.request_id: {
        "realm_id": realm_id, "spec_name": spec_name, "source_key": intent.source_key,
        "request_id": intent.request_id, "operation": intent.operation,
        "status": WriteStatus.PENDING, "qbo_id": intent.qbo_id, "error": None,
        "created_at": now, "completed_at": None,
    } for intent in intents}
    if not rows:
        return 0
    statement = _upsert(session, WriteLogRecord)
    logged = _table(WriteLogRecord).c
    statement = statement.on_conflict_do_update(
        index_elements=["realm_id", "request_id"],
        set_={name: statement.excluded[name] for name in ("status", "error", "completed_at")},
        where=logged.status != WriteStatus.SUCCEEDED.value,
    )
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, list(chunk))
    return len(rows)


def complete_write(session: Session, realm_id: str, outcomes: Iterable[WriteOutcome], *,
                   completed_at: datetime | None = None) -> int:
    """Record QBO's answers; write the batch's links in the same transaction."""
    completed_at = completed_at or utc_now()
    logged = _table(WriteLogRecord).c
    statement = update(_table(WriteLogRecord)).where(
        logged.realm_id == bindparam("b_realm_id"),
        logged.request_id == bindparam("b_request_id"),
    ).values(
        status=bindparam("b_status"), error=bindparam("b_error"),
        qbo_id=func.coalesce(bindparam("b_qbo_id", type_=logged.qbo_id.type), logged.qbo_id),
        completed_at=bindparam("b_completed_at", type_=logged.completed_at.type),
    )
    params = [{
        "b_realm_id": realm_id, "b_request_id": outcome.request_id,
        "b_status": WriteStatus.SUCCEEDED if outcome.succeeded else WriteStatus.FAILED,
        "b_error": outcome.error, "b_qbo_id": outcome.qbo_id, "b_completed_at": completed_at,
    } for outcome in outcomes]
    for chunk in _chunks(params):
        session.execute(statement, list(chunk))
    return len(params)


def pending_writes(session: Session, realm_id: str,
                   spec_name: str | None = None) -> list[WriteLogRecord]:
    """Writes sent (or about to be) whose answer was never recorded: a run died in between.

    Re-send each under the same request id (QBO answers with the first result), then write
    its link, before planning new writes for the record.
    """
    query = select(WriteLogRecord).where(
        WriteLogRecord.realm_id == realm_id, WriteLogRecord.status == WriteStatus.PENDING,
    ).execution_options(populate_existing=True)
    if spec_name is not None:
        query = query.where(WriteLogRecord.spec_name == spec_name)
    return list(session.scalars(query.order_by(WriteLogRecord.id)))


def supersede_writes(session: Session, realm_id: str, request_ids: Iterable[str], *,
                     completed_at: datetime | None = None) -> int:
    """Close pending writes whose answer no longer matters (`sync.batches.superseded_writes`
    decides which); returns how many were pending."""
    completed_at = completed_at or utc_now()
    logged = _table(WriteLogRecord).c
    closed = 0
    for chunk in _chunks(list(dict.fromkeys(request_ids))):
        result = session.execute(update(_table(WriteLogRecord)).where(
            logged.realm_id == realm_id, logged.request_id.in_(chunk),
            logged.status == WriteStatus.PENDING.value,
        ).values(status=WriteStatus.SUPERSEDED, completed_at=completed_at))
        closed += cast(Any, result).rowcount
    return closed


def refused_request_ids(session: Session, realm_id: str, spec_name: str,
                        keys: Iterable[str]) -> set[str]:
    """The request ids QBO answered with a refusal, for these source records."""
    found: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(keys))):
        found.update(session.scalars(select(WriteLogRecord.request_id).where(
            WriteLogRecord.realm_id == realm_id, WriteLogRecord.spec_name == spec_name,
            WriteLogRecord.status == WriteStatus.FAILED, WriteLogRecord.source_key.in_(chunk))))
    return found


def unanswered_batches(session: Session, realm_id: str,
                       spec_name: str) -> list[list[WriteLogRecord]]:
    """The pending writes of each batch sent without a recorded answer, batches and their
    items in the order sent (the writes of one batch are logged together, in one statement,
    with one timestamp)."""
    batches: dict[datetime, list[WriteLogRecord]] = {}
    for logged in pending_writes(session, realm_id, spec_name):
        batches.setdefault(logged.created_at, []).append(logged)
    return list(batches.values())


# --- run results -----------------------------------------------------------------------------


def record_run_result(session: Session, realm_id: str, spec_name: str, run_id: str,
                      counts: Mapping[str, int], *, started_at: datetime,
                      finished_at: datetime | None = None,
                      partition_key: str | None = None) -> RunResultRecord:
    record = RunResultRecord(realm_id=realm_id, spec_name=spec_name, run_id=run_id,
                             partition_key=partition_key, counts=dict(counts),
                             started_at=started_at, finished_at=finished_at or utc_now())
    session.add(record)
    session.flush()
    return record


def list_run_results(session: Session, realm_id: str, spec_name: str | None = None, *,
                     limit: int = 50) -> list[RunResultRecord]:
    """The latest results first."""
    query = select(RunResultRecord).where(RunResultRecord.realm_id == realm_id)
    if spec_name is not None:
        query = query.where(RunResultRecord.spec_name == spec_name)
    return list(session.scalars(query.order_by(RunResultRecord.id.desc()).limit(limit)))


# --- realms and tokens -----------------------------------------------------------------------


def upsert_realm(session: Session, realm_id: str, *, sync_start_date: date | None = None,
                 settings: Mapping[str, Any] | None = None) -> RealmRecord:
    """Register or reconnect a realm; what is not given keeps its value."""
    record = session.get(RealmRecord, realm_id)
    if record is None:
        record = RealmRecord(realm_id=realm_id, settings={})
        session.add(record)
    elif record.disconnected_at is not None:
        record.connected_at = utc_now()
        record.disconnected_at = None
    if sync_start_date is not None:
        record.sync_start_date = sync_start_date
    if settings is not None:
        record.settings = dict(settings)
    session.flush()
    return record


def get_realm(session: Session, realm_id: str) -> RealmRecord | None:
    return session.get(RealmRecord, realm_id)


def set_realm_setting(session: Session, realm_id: str, key: str, value: Any) -> RealmRecord:
    """Store one setting's value for a connected realm (None: back to its default)."""
    record = session.get(RealmRecord, realm_id)
    if record is None or record.disconnected_at is not None:
        raise StateError(f"realm {realm_id} is not connected")
    settings = {name: stored for name, stored in (record.settings or {}).items()
                if name != key}
    if value is not None:
        settings[key] = value
    record.settings = settings  # a new dict: the JSON column sees the change
    session.flush()
    return record


def list_realms(session: Session, *, include_disconnected: bool = False) -> list[RealmRecord]:
    query = select(RealmRecord).order_by(RealmRecord.realm_id)
    if not include_disconnected:
        query = query.where(RealmRecord.disconnected_at.is_(None))
    return list(session.scalars(query))


def disconnect_realm(session: Session, realm_id: str) -> None:
    """Mark a realm disconnected and forget its tokens; its links stay for a reconnect."""
    record = session.get(RealmRecord, realm_id)
    if record is None:
        raise StateError(f"there is no realm {realm_id} to disconnect")
    record.disconnected_at = utc_now()
    token = session.get(TokenRecord, realm_id)
    if token is not None:
        session.delete(token)
    session.flush()


def realm_history(session: Session, realm_id: str) -> dict[str, int]:
    """What the state DB keeps of a realm, by kind: what a disconnect leaves for a reconnect."""
    columns = {"links": LinkRecord.realm_id, "conflicts": ConflictRecord.realm_id,
               "quarantined rows": QuarantineRecord.realm_id,
               "run results": RunResultRecord.realm_id}
    return {name: session.scalar(select(func.count()).where(column == realm_id)) or 0
            for name, column in columns.items()}


def last_sync_finished(session: Session, realm_id: str) -> datetime | None:
    """When a sync of the realm last finished a spec (the run results record each one)."""
    return _aware(session.scalar(select(func.max(RunResultRecord.finished_at))
                                 .where(RunResultRecord.realm_id == realm_id)))


@dataclass(frozen=True)
class TokenExpiry:
    """When a realm's stored tokens expire, read without decrypting them. A refresh token has
    a rolling expiry and Intuit's hard maximum (None when unknown); it dies at the earlier."""

    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    refresh_token_hard_expires_at: datetime | None = None

    @property
    def refresh_token_ends_at(self) -> datetime | None:
        """When the refresh token stops working: the earlier of its two expiries."""
        # The same rule as sync.connection_health.refresh_token_end, which judges it.
        known = [moment for moment in (self.refresh_token_expires_at,
                                       self.refresh_token_hard_expires_at) if moment is not None]
        return min(known, default=None)


def token_expiry(session: Session, realm_id: str) -> TokenExpiry | None:
    record = session.get(TokenRecord, realm_id)
    if record is None:
        return None
    return TokenExpiry(_aware(record.access_token_expires_at),
                       _aware(record.refresh_token_expires_at),
                       _aware(record.refresh_token_hard_expires_at))


@dataclass(frozen=True, repr=False)
class StoredTokens:
    """A realm's OAuth tokens in clear, in memory only; the repr hides them."""

    refresh_token: str
    access_token: str | None = None
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    refresh_token_hard_expires_at: datetime | None = None

    def __repr__(self) -> str:
        return (f"StoredTokens(<hidden>, access_token_expires_at="
                f"{self.access_token_expires_at!r})")


def save_tokens(session: Session, cipher: SecretCipher, realm_id: str,
                tokens: StoredTokens) -> None:
    """Store a realm's tokens encrypted (the refresh token changes on every refresh)."""
    record = session.get(TokenRecord, realm_id) or TokenRecord(realm_id=realm_id)
    record.refresh_token_encrypted = cipher.encrypt(tokens.refresh_token)
    record.access_token_encrypted = (None if tokens.access_token is None
                                     else cipher.encrypt(tokens.access_token))
    record.access_token_expires_at = tokens.access_token_expires_at
    record.refresh_token_expires_at = tokens.refresh_token_expires_at
    record.refresh_token_hard_expires_at = tokens.refresh_token_hard_expires_at
    record.updated_at = utc_now()
    session.add(record)
    session.flush()


def load_tokens(session: Session, cipher: SecretCipher, realm_id: str) -> StoredTokens | None:
    record = session.get(TokenRecord, realm_id)
    if record is None:
        return None
    what = f"the stored tokens of realm {realm_id}"
    return StoredTokens(
        refresh_token=cipher.decrypt(record.refresh_token_encrypted, what=what),
        access_token=(None if record.access_token_encrypted is None
                      else cipher.decrypt(record.access_token_encrypted, what=what)),
        access_token_expires_at=record.access_token_expires_at,
        refresh_token_expires_at=record.refresh_token_expires_at,
        refresh_token_hard_expires_at=record.refresh_token_hard_expires_at,
    )


def lock_tokens(session: Session, realm_id: str) -> None:
    """Hold the realm's token row until the session's transaction ends, so that one process at
    a time refreshes its tokens: the next one waits, then reads what the first one stored.

    It must be the transaction's first statement: on SQLite it takes the DB's write lock
    (`BEGIN IMMEDIATE`, waiting out the busy timeout), which SQLite has for the whole file only;
    on PostgreSQL it locks the row (`SELECT ... FOR UPDATE`). A realm with no row locks nothing:
    it has no refresh token to lose.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        session.execute(select(TokenRecord.realm_id).where(TokenRecord.realm_id == realm_id)
                        .with_for_update())
    else:
        raise StateError(f"the state DB supports SQLite and PostgreSQL, not {dialect}: "
                         "point the state DB URL at one of them")


class LockedTokens:
    """A realm's stored tokens while its refresh is serialized (`StateTokenStore.refreshing`):
    what is saved here is committed when the lock is released, together, or not at all."""

    def __init__(self, session: Session, cipher: SecretCipher, realm_id: str) -> None:
        self._session = session
        self._cipher = cipher
        self._realm_id = realm_id

    def load(self) -> StoredTokens | None:
        return load_tokens(self._session, self._cipher, self._realm_id)

    def save(self, tokens: StoredTokens) -> None:
        save_tokens(self._session, self._cipher, self._realm_id, tokens)


class StateTokenStore:
    """Tokens per realm in the state DB, each call in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session], cipher: SecretCipher) -> None:
        self._sessions = sessions
        self._cipher = cipher

    def save(self, realm_id: str, tokens: StoredTokens) -> None:
        with self._sessions.begin() as session:
            save_tokens(session, self._cipher, realm_id, tokens)

    def load(self, realm_id: str) -> StoredTokens | None:
        with self._sessions.begin() as session:
            return load_tokens(session, self._cipher, realm_id)

    @contextmanager
    def refreshing(self, realm_id: str) -> Iterator[LockedTokens]:
        """The realm's tokens, locked against every other process and thread until the block
        ends; what the block saves is committed as it ends (rolled back if it raises)."""
        with self._sessions.begin() as session:
            lock_tokens(session, realm_id)
            yield LockedTokens(session, self._cipher, realm_id)
