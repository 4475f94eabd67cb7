"""Bad values in the source, end to end (Dagster's `materialize`, the emulator over HTTP, the
demo SQLite database corrupted as another application could): every bad row is quarantined
with a reason naming the column, and the rest of its entity and every other entity sync."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from qbo_pipeline.specs import SpecSet, load_specs
from qbo_pipeline.state import list_quarantine
from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_sync import (
    EXPECTED_REFUSED,
    assert_counts_add_up,
    expected_rows,
    synced_counts,
)

SHIPPED_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"
# Rows of the demo's healthy projects (project 2 and clients 2 and 3 hold deliberate errors).
GOOD_INVOICES = ("SELECT i.id FROM invoices i WHERE i.deleted_at IS NULL AND i.id != 1 "
                 "AND i.project_id IN (SELECT id FROM projects WHERE deleted_at IS NULL "
                 "AND id != 2 AND client_id NOT IN (2, 3)) "
                 "AND EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id) "
                 "ORDER BY i.id")
GOOD_TIME = ("SELECT id FROM time_entries WHERE deleted_at IS NULL AND approved AND id != 1 "
             "AND project_id IN (SELECT id FROM projects WHERE deleted_at IS NULL AND id != 2 "
             "AND client_id NOT IN (2, 3)) ORDER BY id")


def source_sql(pipeline: PipelineUnderTest, *statements: str, **params: Any) -> None:
    engine = sa.create_engine(pipeline.source_url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement), params)
    engine.dispose()


def source_ids(pipeline: PipelineUnderTest, query: str) -> list[int]:
    engine = sa.create_engine(pipeline.source_url)
    with engine.connect() as connection:
        found = [int(row_id) for row_id in connection.execute(sa.text(query)).scalars()]
    engine.dispose()
    return found


def held_reasons(pipeline: PipelineUnderTest) -> dict[tuple[str, str], list[str]]:
    with pipeline.sessions.begin() as session:
        return {(row.spec_name, row.source_key): list(row.reasons)
                for row in list_quarantine(session, pipeline.realm.realm_id)}


def test_bad_values_hold_back_their_rows_and_nothing_else(pipeline: PipelineUnderTest) -> None:
    expected = expected_rows(pipeline.source_url)
    bad_date, infinite, *_ = source_ids(pipeline, GOOD_INVOICES)
    text_hours, unclear_approval, *_ = source_ids(pipeline, GOOD_TIME)
    source_sql(
        pipeline,
        f"UPDATE invoices SET due_date = '2026-02-30' WHERE id = {bad_date}",
        f"UPDATE invoice_lines SET amount = 9e999 WHERE id = (SELECT MIN(id) FROM "
        f"invoice_lines WHERE invoice_id = {infinite})",
        f"UPDATE time_entries SET hours = 'abc' WHERE id = {text_hours}",
        f"UPDATE time_entries SET approved = 'maybe' WHERE id = {unclear_approval}")
    result = pipeline.run()
    assert result.success  # no step failed, so every entity downstream ran
    assert_counts_add_up(result)
    held = held_reasons(pipeline)
    assert held[("invoice", str(bad_date))] == [
        f"invoice {bad_date}: DueDate is wrong: '2026-02-30' is not a date (YYYY-MM-DD) - "
        "correct due_date on the invoice"]
    # Not sent as `Infinity` (which QBO would answer as if it were unavailable).
    assert held[("invoice", str(infinite))] == [
        f"invoice {infinite}: Line[1].Amount is wrong: 'Infinity' is not a finite number - "
        "correct amount on the invoice"]
    # Not pushed as 0 hours, which is what SQL makes of 'abc'.
    assert held[("time_entry", str(text_hours))] == [
        f"time entry {text_hours}: hours: 'abc' is not a number - correct hours on the time "
        "entry"]
    # Not skipped as unapproved without a word.
    assert held[("time_entry", str(unclear_approval))] == [
        f"time entry {unclear_approval}: approved: 'maybe' is not yes/no (true, false, 1, 0) "
        "- correct approved on the time entry"]
    counts = synced_counts(result)
    # Only what QBO refuses of the demo anyway (a vendor named as a client) fails.
    assert {name: c["failed"] for name, c in counts.items() if c["failed"]} == \
        EXPECTED_REFUSED, counts
    qbo = pipeline.qbo_records()
    assert len(qbo["Invoice"]) == expected["invoice"] - 2
    assert len(qbo["TimeActivity"]) == expected["time_entry"] - 2
    assert len(qbo["Customer"]) == expected["client"] + expected["project"]
    assert all(entry["Hours"] > 0 or entry.get("Minutes", 0) > 0
               for entry in qbo["TimeActivity"])


def test_undecodable_and_reordering_text_hold_back_the_client_and_what_waits_for_it(
        pipeline: PipelineUnderTest) -> None:
    source_sql(pipeline,
               "UPDATE clients SET name = CAST(X'4163FF6D65' AS TEXT) WHERE id = 4",
               "UPDATE clients SET name = :name WHERE id = 5", name="Evil\u202eCorp")
    result = pipeline.run()
    assert result.success
    assert_counts_add_up(result)
    held = held_reasons(pipeline)
    assert held[("client", "4")][0] == (
        "client 4: DisplayName is wrong: invalid UTF-8 bytes at position 3 (b'Ac\\xffme') - "
        "correct name on the client")
    assert held[("client", "5")][0] == (
        "client 5: DisplayName 'Evil\\u202eCorp' holds control or text-direction characters: "
        "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 5, which QuickBooks would store but no "
        "one can see or type - correct name on the client")
    names = {customer["DisplayName"] for customer in pipeline.qbo_records()["Customer"]}
    assert not any("\u202e" in name or "\ufffd" in name for name in names)
    waiting = [reasons for (spec, _), reasons in held.items() if spec == "project"
               and any("refers to client 4" in reason for reason in reasons)]
    assert waiting  # the client's projects wait for it, with the reason


def test_a_row_without_a_usable_stamp_is_held_every_run_and_synced_once_fixed(
        pipeline: PipelineUnderTest) -> None:
    source_sql(pipeline, "UPDATE employees SET updated_at = '0000-00-00 00:00:00' WHERE id = 1")
    reason = ("employee 1: updated_at: '0000-00-00 00:00:00' is not a date and time "
              "(YYYY-MM-DD HH:MM:SS) - set updated_at on the employee to the time it last "
              "changed: the sync reads a row when its updated_at moves")
    assert pipeline.run().success
    assert held_reasons(pipeline)[("employee", "1")] == [reason]
    again = pipeline.run()  # read again, not forgotten once the cursor moved past it
    assert again.success
    assert synced_counts(again)["employee"]["quarantined"] == 1
    assert held_reasons(pipeline)[("employee", "1")] == [reason]
    # Fixed with a stamp long before the cursor: no change window would ever read it.
    source_sql(pipeline, "UPDATE employees SET updated_at = '2000-01-02 00:00:00' WHERE id = 1")
    fixed = pipeline.run()
    assert fixed.success
    assert synced_counts(fixed)["employee"]["created"] == 1
    assert ("employee", "1") not in held_reasons(pipeline)


def specs_with_client_query(tmp_path: Path, query: str) -> SpecSet:
    folder = tmp_path / "specs"
    shutil.copytree(SHIPPED_SPECS, folder)
    client = folder / "client.yaml"
    spec = yaml.safe_load(client.read_text())
    # Seed 000's push-only clients: a spec that pulls writes into a table, not a query.
    for key in ("by_setting", "pull"):
        spec.pop(key)
    spec["direction"] = "push"
    assert spec["source"].pop("table") == "clients"
    spec["source"]["query"] = query
    client.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_specs(folder)


def test_a_key_the_source_returns_twice_is_reported_not_merged(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    specs = specs_with_client_query(
        tmp_path, "SELECT * FROM clients UNION ALL SELECT * FROM clients WHERE id = 4")
    result = pipeline.run(specs=specs)
    assert result.success
    assert_counts_add_up(result)
    counts = synced_counts(result)["client"]
    assert (counts["read"], counts["quarantined"]) == (7, 4)  # clients 2, 3 and both 4s
    assert held_reasons(pipeline)[("client", "4")] == [
        "client 4: id: '4' is the key of 2 rows read together - make the source return one "
        "row per id (check its query's joins)"]
