"""Webhook events in the state DB, on SQLite and PostgreSQL (state/webhook_events.py).

Intuit's webhooks docs: QBO retries a notification not answered 200, so the same event can be
stored twice; seed 001's "next QB webhook" must start the sync once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import (
    list_webhook_events,
    pending_webhook_events,
    run_keys_without_run_id,
    set_webhook_run_id,
    settle_webhook_events,
    store_webhook_events,
)
from qbo_pipeline.webhooks.formats import NotifiedEvent

MOMENT = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def test_each_change_is_stored_once_and_handed_out_until_settled(
        sessions: sessionmaker[Session]) -> None:
    first = NotifiedEvent("9341", "Customer", "1", "Update", MOMENT, "e1")
    later = NotifiedEvent("9341", "Customer", "1", "Update", MOMENT.replace(minute=5), "e2")
    with sessions.begin() as session:
        assert store_webhook_events(session, [first, later, first]) == 2
    with sessions.begin() as session:
        assert store_webhook_events(session, [first]) == 0
        pending = pending_webhook_events(session)
        assert [(e.event_id, e.last_updated) for e in pending] == [("e1", MOMENT),
                                                                   ("e2", later.last_updated)]
        settle_webhook_events(session, [pending[0].id], "run", run_key="webhooks:9341:1-1",
                              reason="sync of client")
        settle_webhook_events(session, [pending[1].id], "covered", reason="read already")
    with sessions.begin() as session:
        assert pending_webhook_events(session) == []
        assert run_keys_without_run_id(session) == ["webhooks:9341:1-1"]
        set_webhook_run_id(session, "webhooks:9341:1-1", "run-1")
    with sessions.begin() as session:
        assert run_keys_without_run_id(session) == []
        assert [(e.outcome, e.run_id) for e in list_webhook_events(session, "9341")] == [
            ("run", "run-1"), ("covered", None)]
