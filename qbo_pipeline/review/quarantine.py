"""Quarantined rows for review: each held-back row with its reasons, each reason naming the
record, the field and the fix. A row is tried again by the next sync once it changes (or once
a record it waits for syncs); `qbo-pipeline quarantine retry` tries one now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.review.conflicts import ReviewError, known_entity
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import list_quarantine, list_realms

T = TypeVar("T")


@dataclass(frozen=True)
class QuarantinedView:
    realm_id: str
    entity: str
    source_key: str
    reasons: list[str]
    first_seen: datetime
    last_seen: datetime

    def to_json(self) -> dict[str, Any]:
        view = asdict(self)
        view["first_seen"], view["last_seen"] = (self.first_seen.isoformat(),
                                                 self.last_seen.isoformat())
        return view


def list_quarantined(sessions: sessionmaker[Session], specs: SpecSet, *,
                     realm_id: str | None = None,
                     entity: str | None = None) -> list[QuarantinedView]:
    """The rows held back now, by company, entity and key."""
    if entity is not None:
        known_entity(specs, entity)
    with sessions.begin() as session:
        realms = [realm_id] if realm_id is not None else [r.realm_id for r in list_realms(session)]
        return [QuarantinedView(row.realm_id, row.spec_name, row.source_key,
                                [str(reason) for reason in row.reasons], row.first_seen,
                                row.last_seen)
                for realm in realms for row in list_quarantine(session, realm, entity)]


def quarantined_row(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str,
                    entity: str, source_key: str) -> QuarantinedView | None:
    """The row if it is held back now, else None."""
    rows = list_quarantined(sessions, specs, realm_id=realm_id, entity=entity)
    return next((row for row in rows if row.source_key == source_key), None)


def require_quarantined(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str,
                        entity: str, source_key: str) -> QuarantinedView:
    row = quarantined_row(sessions, specs, realm_id, entity, source_key)
    if row is None:
        raise ReviewError(f"{entity} {source_key} is not held back in realm {realm_id} (see "
                          "`quarantine list`); `qbo-pipeline sync --entity "
                          f"{entity} --id {source_key}` syncs a record that is not")
    return row


def retry_row(sessions: sessionmaker[Session], specs: SpecSet, realm_id: str, entity: str,
              source_key: str, sync_record: Callable[[], T]) -> T:
    """Try a held row again now: `sync_record` syncs that one record (a Dagster run); its
    result is returned once the row passed, and a row still held back is an error that gives
    its reasons."""
    require_quarantined(sessions, specs, realm_id, entity, source_key)
    outcome = sync_record()
    still = quarantined_row(sessions, specs, realm_id, entity, source_key)
    if still is not None:
        raise ReviewError(f"{entity} {source_key} is still held back: " + "; ".join(still.reasons))
    return outcome
