"""A record's link (source key <-> QBO Id), shown, removed or pointed at another QBO record:
the steps of repairing a duplicate (seed 001: void the duplicate in QuickBooks, unlink, relink
to the right record, sync again).

Unlinking dismisses the record's open conflicts and has the next sync read the row again: it
then finds the QBO record by the spec's match keys, or creates one. Relinking points the link
at another QBO record the pipeline has fetched, with no agreed values yet, so the next sync
compares the row with that record field by field (a difference is a conflict, under `review`).

`find_duplicates` lists the QBO records to repair: unlinked ones that match a linked record by
the spec's match keys (`sync.duplicates` says which).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.review.conflicts import ReviewError, known_entity, record_name
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import (
    ConflictStatus,
    LinkUpdate,
    delete_link,
    get_links,
    get_snapshots,
    link_for_qbo_id,
    list_conflicts,
    list_realms,
    request_reread,
    resolve_conflict,
    upsert_links,
)
from qbo_pipeline.steps.common import linked_qbo_ids
from qbo_pipeline.sync.duplicates import likely_duplicates


@dataclass(frozen=True)
class LinkView:
    realm_id: str
    entity: str
    source_key: str
    qbo_entity: str
    qbo_id: str
    name: str
    sync_token: str | None
    last_synced_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        view = asdict(self)
        view["last_synced_at"] = self.last_synced_at.isoformat() if self.last_synced_at else None
        return view


@dataclass(frozen=True)
class DuplicateView:
    """A likely duplicate: QBO record `duplicate_qbo_id`, linked to nothing, matches the
    record `qbo_id` that source record `source_key` is linked to."""

    realm_id: str
    entity: str
    source_key: str
    qbo_entity: str
    qbo_id: str
    name: str
    duplicate_qbo_id: str
    duplicate_name: str
    matched_on: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def show_link(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str, entity: str,
              source_key: str) -> LinkView:
    known_entity(specs, entity)
    with sessions.begin() as session:
        link = get_links(session, realm_id, entity, [source_key]).get(source_key)
        if link is None:
            raise ReviewError(f"{entity} {source_key} is not linked to a QBO record in realm "
                              f"{realm_id}")
        return LinkView(realm_id, entity, source_key, link.qbo_entity, link.qbo_id,
                        _name(session, realm_id, link.qbo_entity, link.qbo_id), link.sync_token,
                        link.last_synced_at)


def unlink(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str, entity: str,
           source_key: str, by: str) -> LinkView:
    """Remove the link; the next sync reads the row again and matches or creates its record."""
    view = show_link(sessions, specs, realm_id, entity, source_key)
    with sessions.begin() as session:
        _dismiss_open_conflicts(session, realm_id, entity, source_key, by)
        delete_link(session, realm_id, entity, source_key)
        request_reread(session, realm_id, entity, source_key,
                       f"unlinked from QBO {view.qbo_entity} {view.qbo_id} by {by}")
    return view


def relink(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str, entity: str,
           source_key: str, qbo_id: str, by: str) -> LinkView:
    """Point the row's link at QBO record `qbo_id` (fetched by an earlier sync)."""
    known_entity(specs, entity)
    qbo_entity = specs[entity].qbo_entity
    with sessions.begin() as session:
        snapshot = get_snapshots(session, realm_id, qbo_entity, [qbo_id]).get(qbo_id)
        if snapshot is None or snapshot.deleted:
            raise ReviewError(f"QBO {qbo_entity} {qbo_id} is not among the records fetched from "
                              f"realm {realm_id}: check the Id in QuickBooks (a voided or "
                              "deleted record cannot be linked), or sync first")
        taken = link_for_qbo_id(session, realm_id, qbo_entity, qbo_id)
        if taken is not None and (taken.spec_name, taken.source_key) != (entity, source_key):
            raise ReviewError(f"QBO {qbo_entity} {qbo_id} is linked to {taken.spec_name} "
                              f"{taken.source_key}: unlink that one first")
        _dismiss_open_conflicts(session, realm_id, entity, source_key, by)
        upsert_links(session, realm_id, entity, [LinkUpdate(
            source_key, qbo_entity, qbo_id, snapshot.sync_token, None, None)])
        request_reread(session, realm_id, entity, source_key,
                       f"relinked to QBO {qbo_entity} {qbo_id} by {by}")
    return show_link(sessions, specs, realm_id, entity, source_key)


def find_duplicates(sessions: sessionmaker[Session], specs: SpecSet, *,
                    realm_id: str | None = None,
                    entity: str | None = None) -> list[DuplicateView]:
    """The likely duplicates among the QBO records the pipeline has fetched, by company and
    entity (specs without match keys have none)."""
    if entity is not None:
        known_entity(specs, entity)
    chosen = [specs[entity]] if entity is not None else specs.in_dependency_order()
    with sessions.begin() as session:
        realms = [realm_id] if realm_id is not None else [r.realm_id for r in list_realms(session)]
        return [view for realm in realms for spec in chosen if spec.match_key_groups
                for view in _duplicates_of(session, specs, realm, spec)]


def _duplicates_of(session: Session, specs: SpecSet, realm_id: str,
                   spec: EntitySpec) -> list[DuplicateView]:
    snapshots = get_snapshots(session, realm_id, spec.qbo_entity)
    taken = linked_qbo_ids(specs, session, realm_id, spec.qbo_entity)
    linked = {key: snapshots[link.qbo_id].payload
              for key, link in get_links(session, realm_id, spec.name).items()
              if link.qbo_id in snapshots and not snapshots[link.qbo_id].deleted}
    unlinked = [s.payload for qbo_id, s in snapshots.items()
                if qbo_id not in taken and not s.deleted]

    def name(qbo_id: str) -> str:
        return record_name(snapshots[qbo_id].payload, f"{spec.qbo_entity} {qbo_id}")

    return [DuplicateView(realm_id, spec.name, d.source_key, spec.qbo_entity, d.qbo_id,
                          name(d.qbo_id), d.duplicate_qbo_id, name(d.duplicate_qbo_id),
                          list(d.matched_on))
            for d in likely_duplicates(spec, linked, unlinked)]


def _dismiss_open_conflicts(session: Session, realm_id: str, entity: str, source_key: str,
                            by: str) -> None:
    for conflict in list_conflicts(session, realm_id, entity, keys=[source_key]):
        resolve_conflict(session, realm_id, conflict.id, ConflictStatus.DISMISSED, by)


def _name(session: Session, realm_id: str, qbo_entity: str, qbo_id: str) -> str:
    snapshot = get_snapshots(session, realm_id, qbo_entity, [qbo_id]).get(qbo_id)
    return record_name(snapshot.payload if snapshot is not None else {}, f"{qbo_entity} {qbo_id}")
