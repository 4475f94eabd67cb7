"""Conflicts for review: list them, show one, decide one or many.

A decision is recorded here and applied by the next sync of the record's company
(`sync.resolutions` says what each decision does): keep the source's values, apply QBO's, or
dismiss. Deciding checks everything first and records all or nothing: an unknown conflict, one
already decided, or QBO's values of a field that cannot be written into the source are errors
that name the conflict and the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import (
    ConflictRecord,
    ConflictStatus,
    get_realm,
    get_resolution,
    get_sighting,
    get_snapshots,
    request_reread,
    resolve_conflict,
)
from qbo_pipeline.steps.common import STATUS_OF
from qbo_pipeline.sync.resolutions import Decision, apply_qbo_problems
from qbo_pipeline.sync.settings import as_configured

# QBO fields that name a record to a person, in the order they are tried.
NAME_FIELDS = ("DisplayName", "FullyQualifiedName", "Name", "DocNumber", "Description")


class ReviewError(Exception):
    """A request of the review desk that cannot be done; nothing was changed."""


@dataclass(frozen=True)
class ConflictView:
    """A conflict as a person reads it: the record by name, each field's three values, when
    each side changed and the runs that found it (None when not recorded)."""

    id: int
    realm_id: str
    entity: str
    source_key: str
    qbo_id: str | None
    name: str
    status: str
    reason: str
    fields: list[dict[str, Any]]
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    applied_by_run: str | None = None
    source_changed_at: datetime | None = None
    qbo_changed_at: datetime | None = None
    first_seen_run: str | None = None
    first_seen_at: datetime | None = None
    last_seen_run: str | None = None
    last_seen_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        view = asdict(self)
        for moment in ("created_at", "decided_at", "source_changed_at", "qbo_changed_at",
                       "first_seen_at", "last_seen_at"):
            view[moment] = view[moment].isoformat() if view[moment] else None
        return view


def list_conflicts(sessions: sessionmaker[Session], specs: SpecSet, *,
                   realm_id: str | None = None, entity: str | None = None,
                   include_decided: bool = False) -> list[ConflictView]:
    """Open conflicts (every one with `include_decided`), oldest first."""
    if entity is not None:
        known_entity(specs, entity)
    query = select(ConflictRecord).order_by(ConflictRecord.id)
    if realm_id is not None:
        query = query.where(ConflictRecord.realm_id == realm_id)
    if entity is not None:
        query = query.where(ConflictRecord.spec_name == entity)
    if not include_decided:
        query = query.where(ConflictRecord.status == ConflictStatus.OPEN)
    with sessions.begin() as session:
        return [_view(session, specs, record) for record in session.scalars(query)]


def known_entity(specs: SpecSet, entity: str) -> None:
    if entity not in specs:
        raise ReviewError(f"unknown entity {entity!r}: the mapping specs define "
                          f"{', '.join(specs.names)}")


def show_conflict(sessions: sessionmaker[Session], specs: SpecSet,
                  conflict_id: int) -> ConflictView:
    with sessions.begin() as session:
        return _view(session, specs, _conflict(session, conflict_id))


def decide(sessions: sessionmaker[Session], specs: SpecSet, conflict_ids: Sequence[int],
           decision: Decision, decided_by: str) -> list[ConflictView]:
    """Record one decision on each conflict, all or none; the next sync applies them."""
    if not conflict_ids:
        raise ReviewError("name at least one conflict to decide (see `conflicts list`)")
    if not decided_by.strip():
        raise ReviewError("say who decides (--by): every decision is recorded with its author")
    with sessions.begin() as session:
        records = [_conflict(session, conflict_id) for conflict_id in conflict_ids]
        problems = [problem for record in records
                    for problem in _problems(session, specs, record, decision)]
        if problems:
            raise ReviewError("; ".join(problems))
        for record in records:
            resolve_conflict(session, record.realm_id, record.id, STATUS_OF[decision],
                             decided_by.strip())
            request_reread(session, record.realm_id, record.spec_name, record.source_key,
                           f"conflict {record.id} decided by {decided_by.strip()}")
        return [_view(session, specs, record) for record in records]


def _problems(session: Session, specs: SpecSet, record: ConflictRecord,
              decision: Decision) -> list[str]:
    if record.status is not ConflictStatus.OPEN:
        return [f"conflict {record.id} was decided already ({record.status.value} by "
                f"{record.resolved_by}); a new difference opens a new conflict"]
    if record.spec_name not in specs:
        return [f"conflict {record.id} is of {record.spec_name!r}, which no mapping spec "
                "defines any more"]
    if decision is Decision.APPLY_QBO:
        return [f"conflict {record.id}: {problem}" for problem in apply_qbo_problems(
            company_spec(session, specs, record.realm_id, record.spec_name),
            [str(f["path"]) for f in record.fields])]
    return []


def company_spec(session: Session, specs: SpecSet, realm_id: str, name: str) -> EntitySpec:
    """Spec `name` as the company has it: a setting may make a two-way spec push only."""
    realm = get_realm(session, realm_id)
    return as_configured(specs, name, realm.settings if realm is not None else None)


def apply_qbo_problems_of(sessions: sessionmaker[Session], specs: SpecSet,
                          view: ConflictView) -> list[str]:
    """Why the conflict's QBO values cannot be written into the source, if they cannot."""
    if view.entity not in specs:
        return []
    with sessions.begin() as session:
        spec = company_spec(session, specs, view.realm_id, view.entity)
    return apply_qbo_problems(spec, [str(f["path"]) for f in view.fields])


def _conflict(session: Session, conflict_id: int) -> ConflictRecord:
    record = session.get(ConflictRecord, conflict_id)
    if record is None:
        raise ReviewError(f"there is no conflict {conflict_id} (see `conflicts list`)")
    return record


def _view(session: Session, specs: SpecSet, record: ConflictRecord) -> ConflictView:
    resolution = get_resolution(session, record.id)
    view = ConflictView(
        record.id, record.realm_id, record.spec_name, record.source_key, record.qbo_id,
        _name(session, specs, record), record.status.value, record.reason,
        [dict(field) for field in record.fields], record.created_at,
        record.resolved_by, record.resolved_at,
        resolution.applied_run_id if resolution is not None else None)
    sighting = get_sighting(session, record.id)
    if sighting is None:  # a conflict opened before runs recorded who found it
        return view
    return replace(view, source_changed_at=sighting.source_changed_at,
                   qbo_changed_at=sighting.qbo_changed_at,
                   first_seen_run=sighting.first_run_id, first_seen_at=sighting.first_seen_at,
                   last_seen_run=sighting.last_run_id, last_seen_at=sighting.last_seen_at)


def _name(session: Session, specs: SpecSet, record: ConflictRecord) -> str:
    """The record's name in QBO (as last fetched), else its spec and source key."""
    fallback = f"{record.spec_name} {record.source_key}"
    if record.qbo_id is None or record.spec_name not in specs:
        return fallback
    entity = specs[record.spec_name].qbo_entity
    snapshot = get_snapshots(session, record.realm_id, entity, [record.qbo_id]).get(
        record.qbo_id)
    return record_name(snapshot.payload if snapshot is not None else {}, fallback)


def record_name(payload: Mapping[str, Any], fallback: str) -> str:
    """A QBO record's name for a person to read (`fallback` for a record without one)."""
    return next((str(payload[field]) for field in NAME_FIELDS if payload.get(field)), fallback)
