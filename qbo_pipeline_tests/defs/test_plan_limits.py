"""A company whose QuickBooks Online plan lacks a feature: seed 003, "You need a QuickBooks
Online Essentials plan or better if you intend to sync your times with QuickBooks. Only a
Simple Start plan is required to sync invoices."

Real HTTP to the emulator (its company put on Simple Start through the admin endpoint), real
SQLite source and state DBs, Dagster's `materialize`. QBO answers each time activity with
5020; the time entries are not bad rows: they wait, none is quarantined, one message names
the plan and the fix, and the invoices of the same run sync.
"""

from __future__ import annotations

import requests

from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_display_name_collisions import held_reasons
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_sync import synced_counts


def put_on_plan(pipeline: PipelineUnderTest, plan: str) -> None:
    realm = pipeline.realm
    answer = requests.put(f"{realm.base_url}/admin/realms/{realm.realm_id}/company",
                          json={"Plan": plan}, timeout=10)
    assert answer.status_code == 200, answer.text


def run_messages(pipeline: PipelineUnderTest, run_id: str) -> list[str]:
    return [event.message or "" for event in pipeline.instance.all_logs(run_id)]


def test_simple_start_refuses_time_while_invoices_sync(pipeline: PipelineUnderTest) -> None:
    """Seed 003: time needs Essentials or better, invoices only Simple Start. The run
    succeeds, the invoices are in QBO, every valid time entry waits (counted failed, retried,
    not held back), and one message says why and what to do."""
    put_on_plan(pipeline, "Simple Start")

    result = pipeline.run()

    assert result.success
    counts = synced_counts(result)
    assert counts["invoice"]["created"] > 0
    assert counts["time_entry"]["created"] == 0
    waiting = counts["time_entry"]["failed"]
    assert waiting > 0
    assert "TimeActivity" not in pipeline.qbo_records()
    # Only the demo's bad rows are held back (hours above 24...), none for the plan.
    held = [reason for reasons in held_reasons(pipeline, "time_entry").values()
            for reason in reasons]
    assert not [reason for reason in held if "5020" in reason or "plan" in reason], held
    said = [message for message in run_messages(pipeline, result.run_id)
            if "does not include TimeActivity" in message]
    assert len(said) == 1, said
    assert "Simple Start" in said[0]
    assert "upgrade to QuickBooks Online Essentials or better, or disable time_entry sync " \
           "(qbo-pipeline settings set time_entry.enabled false)" in said[0]


def test_time_waiting_for_the_plan_syncs_once_the_company_upgrades(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003's fix: with Essentials, the next run pushes the time entries that waited,
    although none of them changed since (they were never quarantined, and the cursor did not
    move past them)."""
    put_on_plan(pipeline, "Simple Start")
    first = synced_counts(pipeline.run())["time_entry"]
    put_on_plan(pipeline, "Essentials")

    result = pipeline.run()

    assert result.success
    assert synced_counts(result)["time_entry"]["created"] == first["failed"]
    assert len(links_of(pipeline, "time_entry")) == first["failed"]
    assert len(pipeline.qbo_records()["TimeActivity"]) == first["failed"]
