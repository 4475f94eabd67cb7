"""The cursor rule, the start-date rule and held rows, end to end: real HTTP to the emulator,
a real SQLite source and state DB, Dagster's `materialize` (or the steps it calls)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa

from qbo_pipeline.defs.assets import REFUSED_METADATA
from qbo_pipeline.source import create_source_engine
from qbo_pipeline.state import get_cursor, list_quarantine, upsert_realm
from qbo_pipeline.steps.common import SyncScope
from qbo_pipeline.steps.push import (
    execute_plan,
    plan_spec,
    read_source,
    refresh_snapshots,
    validate_and_quarantine,
)
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_sync import synced_counts


def touch(pipeline: PipelineUnderTest, sql: str, **params: Any) -> datetime:
    """Change source rows as the application would, stamped just after the window the last
    run covered (so that the next run's window holds them without waiting for the clock).
    Returns the stamp written (naive, in UTC)."""
    with pipeline.sessions.begin() as session:
        ends = [cursor.change_window_end for spec in SPECS.in_dependency_order()
                if (cursor := get_cursor(session, pipeline.realm.realm_id, spec.name))
                is not None and cursor.change_window_end is not None]
    stamp = max(ends).replace(tzinfo=None) + timedelta(milliseconds=1)
    engine = sa.create_engine(pipeline.source_url)
    with engine.begin() as connection:
        connection.execute(sa.text(sql), {"now": stamp, **params})
    engine.dispose()
    return stamp


def scalar(pipeline: PipelineUnderTest, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(pipeline.source_url)
    with engine.connect() as connection:
        value = connection.execute(sa.text(sql), params).scalar()
    engine.dispose()
    return value


def schedule_faults(pipeline: PipelineUnderTest, kind: str, count: int) -> None:
    response = requests.post(f"{pipeline.realm.base_url}/admin/faults/scheduled", json={
        "kind": kind, "count": count, "realm_id": pipeline.realm.realm_id}, timeout=10)
    assert response.status_code == 201, response.text


def test_the_cursor_stays_before_a_write_that_failed_for_a_passing_reason(
        pipeline: PipelineUnderTest) -> None:
    """A batch QBO could not take (503 past every retry) is read again by the next run: the
    cursor must not pass it. (Always advancing the cursor would lose this change.)"""
    assert pipeline.run().success
    spec, realm_id = as_configured(SPECS, "client"), pipeline.realm.realm_id
    with pipeline.sessions.begin() as session:
        before = get_cursor(session, realm_id, "client").change_window_end
    touch(pipeline, "UPDATE clients SET phone = '555-0199', updated_at = :now WHERE id = 5")
    engine = create_source_engine(pipeline.source_url)
    client = pipeline.qbo.client(realm_id, pipeline.sessions)
    scope = SyncScope(realm_id, True, date.today(), datetime.now(UTC))
    stage = read_source(spec, SPECS, engine, pipeline.sessions, client, scope, date(2000, 1, 1))
    stage, _ = validate_and_quarantine(spec, stage, pipeline.sessions)
    fetched = refresh_snapshots(spec, client, pipeline.sessions, scope, datetime.now(UTC))
    planned = plan_spec(spec, SPECS, stage, client, pipeline.sessions, engine, fetched,
                        fetched.fetched_at)
    assert [w.source_key for w in planned.plan.updates] == ["5"]
    # Every attempt of the batch answers 503 (the client retries max_retries times).
    schedule_faults(pipeline, "service_unavailable", pipeline.qbo.max_retries + 1)
    counts, tally = execute_plan(spec, planned, client, pipeline.sessions)
    client.close()
    assert (counts["failed"], tally.retry, tally.refusals) == (1, ["5"], []), tally.errors
    with pipeline.sessions.begin() as session:
        assert get_cursor(session, realm_id, "client").change_window_end == before
    result = pipeline.run(selection=["client/source", "client/validated", "client/qbo_snapshot",
                                     "client/diff", "client/synced", "client/applied"])
    assert synced_counts(result)["client"]["updated"] == 1
    phones = [c.get("PrimaryPhone", {}).get("FreeFormNumber")
              for c in pipeline.qbo_records()["Customer"]]
    assert "555-0199" in phones


def test_transactions_dated_before_the_company_start_date_are_never_pushed(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002 "Select Sync Start Date": with a start date inside the demo's range, only the
    invoices on or after it reach QBO; the others are counted as skipped."""
    start = date.fromisoformat(str(scalar(
        pipeline, "SELECT issue_date FROM invoices ORDER BY issue_date "
                  "LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM invoices)")))
    with pipeline.sessions.begin() as session:
        upsert_realm(session, pipeline.realm.realm_id, sync_start_date=start)
    result = pipeline.run()
    assert result.success
    before = scalar(pipeline, "SELECT COUNT(*) FROM invoices WHERE issue_date < :start",
                    start=start)
    assert before > 0
    dates = [invoice["TxnDate"] for invoice in pipeline.qbo_records().get("Invoice", [])]
    assert dates and min(dates) >= start.isoformat()
    assert synced_counts(result)["invoice"]["skipped"] >= before


def test_a_record_qbo_refuses_is_held_with_its_reason_and_retried_when_what_it_needs_changes(
        pipeline: PipelineUnderTest) -> None:
    """Time of an inactive employee is refused by QBO (610). The refusal is recorded once with
    QBO's reason, the run succeeds and its cursor moves on; the entry is not sent again until
    the employee changes, and then it goes through without a person."""
    assert pipeline.run().success
    employee = scalar(pipeline, "SELECT employee_id FROM time_entries WHERE approved "
                                "AND deleted_at IS NULL AND id > 1 ORDER BY id LIMIT 1")
    entry = scalar(pipeline, "SELECT id FROM time_entries WHERE approved AND employee_id = :e "
                             "AND deleted_at IS NULL AND id > 1 ORDER BY id LIMIT 1", e=employee)
    touch(pipeline, "UPDATE employees SET active = false, updated_at = :now WHERE id = :e",
          e=employee)
    touch(pipeline, "UPDATE time_entries SET description = 'late change', updated_at = :now "
                    "WHERE id = :t", t=entry)
    result = pipeline.run()
    assert result.success
    counts = synced_counts(result)["time_entry"]
    assert (counts["failed"], counts[REFUSED_METADATA]) == (1, 1)
    realm_id = pipeline.realm.realm_id
    with pipeline.sessions.begin() as session:
        held = {row.source_key: row.reasons for row in list_quarantine(session, realm_id,
                                                                       "time_entry")}
        cursor = get_cursor(session, realm_id, "time_entry").change_window_end
    assert str(entry) in held and "610" in " ".join(held[str(entry)])
    assert cursor is not None and cursor > datetime.now(UTC) - timedelta(minutes=1)

    again = synced_counts(pipeline.run())["time_entry"]
    assert (again["failed"], again["read"]) == (0, 0)  # not re-read, not re-sent

    touch(pipeline, "UPDATE employees SET active = true, updated_at = :now WHERE id = :e",
          e=employee)
    healed = synced_counts(pipeline.run())["time_entry"]
    # Under a new request id: QBO answers a repeated one with its first answer, the refusal.
    assert (healed["failed"], healed["updated"] + healed["created"]) == (0, 1)
    with pipeline.sessions.begin() as session:
        assert str(entry) not in {row.source_key for row in list_quarantine(
            session, realm_id, "time_entry")}


def test_a_row_waiting_for_a_record_not_yet_in_qbo_goes_through_once_it_arrives(
        pipeline: PipelineUnderTest) -> None:
    """Client 2 has no email, so it is held back, and so is every project of it (its
    ParentRef cannot resolve). Once the bookkeeper adds the email, the next run pushes the
    client and then its projects, although the projects themselves did not change."""
    assert pipeline.run().success
    waiting = scalar(pipeline, "SELECT COUNT(*) FROM projects WHERE client_id = 2 "
                               "AND deleted_at IS NULL")
    touch(pipeline, "UPDATE clients SET email = 'found@example.com', updated_at = :now "
                    "WHERE id = 2")
    counts = synced_counts(pipeline.run())
    assert counts["client"]["created"] == 1
    assert counts["project"]["created"] == waiting
