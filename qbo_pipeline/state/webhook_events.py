"""The webhook events QBO delivered: stored once per change, then handed out to the sensor.

Like the other repository functions these never commit: the receiver stores a delivery's
events in one transaction and answers only after it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qbo_pipeline.state.models import WebhookEventRecord, utc_now
from qbo_pipeline.state.repository import _table, _upsert

RUN_OUTCOME = "run"  # the outcome of an event that asked for a sync run


class NotifiedChange(Protocol):
    """What a webhook event says (`sync.events.ChangeNotice` has this shape)."""

    @property
    def realm_id(self) -> str: ...

    @property
    def entity(self) -> str: ...

    @property
    def entity_id(self) -> str: ...

    @property
    def operation(self) -> str: ...

    @property
    def last_updated(self) -> datetime | None: ...

    @property
    def event_id(self) -> str | None: ...


def store_webhook_events(session: Session, changes: Iterable[NotifiedChange], *,
                         received_at: datetime | None = None) -> int:
    """Store each change not stored yet; returns how many were new (a duplicate or a replayed
    delivery stores nothing)."""
    received_at = received_at or utc_now()
    new = 0
    for change in changes:
        statement = _upsert(session, WebhookEventRecord).values(
            realm_id=change.realm_id, qbo_entity=change.entity, qbo_id=change.entity_id,
            operation=change.operation, last_updated=change.last_updated,
            event_id=change.event_id, received_at=received_at,
        ).on_conflict_do_nothing(index_elements=["realm_id", "qbo_entity", "qbo_id",
                                                 "last_updated"])
        # RETURNING, not rowcount: psycopg reports no count for a skipped conflict.
        new += len(session.execute(statement.returning(_table(WebhookEventRecord).c.id)).all())
    return new


def pending_webhook_events(session: Session, limit: int = 10_000) -> list[WebhookEventRecord]:
    """The stored events no sensor tick has handled yet, oldest first."""
    query = (select(WebhookEventRecord).where(WebhookEventRecord.outcome.is_(None))
             .order_by(WebhookEventRecord.id).limit(limit))
    return list(session.scalars(query))


def settle_webhook_events(session: Session, row_ids: Sequence[int], outcome: str, *,
                          reason: str | None = None, run_key: str | None = None) -> None:
    """Record the outcome of events: the run they asked for (its key), or why none."""
    if not row_ids:
        return
    session.execute(update(WebhookEventRecord).where(WebhookEventRecord.id.in_(row_ids))
                    .values(outcome=outcome, reason=reason, run_key=run_key,
                            handled_at=utc_now()))


def run_keys_without_run_id(session: Session) -> list[str]:
    """The run keys requested for events whose run Dagster has not been seen to create yet."""
    query = (select(WebhookEventRecord.run_key).distinct()
             .where(WebhookEventRecord.outcome == RUN_OUTCOME,
                    WebhookEventRecord.run_id.is_(None), WebhookEventRecord.run_key.is_not(None)))
    return sorted(key for key in session.scalars(query) if key is not None)


def webhook_events_of_run(session: Session, run_key: str) -> list[WebhookEventRecord]:
    query = (select(WebhookEventRecord).where(WebhookEventRecord.run_key == run_key)
             .order_by(WebhookEventRecord.id))
    return list(session.scalars(query))


def set_webhook_run_id(session: Session, run_key: str, run_id: str) -> None:
    session.execute(update(WebhookEventRecord).where(WebhookEventRecord.run_key == run_key)
                    .values(run_id=run_id))


def list_webhook_events(session: Session, realm_id: str | None = None) -> list[WebhookEventRecord]:
    """Every stored event (of one realm when given), oldest first."""
    query = select(WebhookEventRecord).order_by(WebhookEventRecord.id)
    if realm_id is not None:
        query = query.where(WebhookEventRecord.realm_id == realm_id)
    return list(session.scalars(query))
