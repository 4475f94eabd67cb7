"""Found by the chaos harness (issue 8, seed 33: "time_entry 166 has two QBO TimeActivity
records: 196 (linked) and 192 (unlinked)"): a create re-sent in another batch was done twice.

A sync is SIGKILLed after QBO did a batch of two creates and before the answer arrived. One
of the two time entries then changes in the source, so the logged batch can no longer be sent
as it was planned (its requestid is derived from its items, and the changed entry's write has
a new request id). The other create used to go out again in a new batch, under a new
requestid, and QBO created it a second time: a TimeActivity has no match key (DisplayName,
DocNumber), so "match before create" cannot find the first one.

Now the logged batch goes out again as it was (`sync.batches.batches_to_recover`): QBO answers
with the two records it created, both are linked, and the changed entry is updated to its
new description in the same run.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.sync.scope import CHANGE_WINDOW_LAG
from qbo_pipeline_tests.chaos.edits import now_stamp
from qbo_pipeline_tests.chaos.pipeline import ChaosPipeline

ENTRIES = (901, 902)
KILL_AFTER_SECONDS = 0.5  # after the batch's intents are logged: it is sent and done by then

CLIENTS = 4  # the demo's size for these tests



def test_a_create_done_by_a_killed_sync_is_not_done_again_in_another_batch(
        pipeline: ChaosPipeline) -> None:
    code, output = pipeline.run_sync("--entity", "time_entry")
    assert code == 0, output[-5:]
    _add_time_entries(pipeline)
    _kill_while_the_batch_is_answered(pipeline)
    assert {key for _, key, _ in pipeline.pending_writes()} == {str(n) for n in ENTRIES}

    _describe_again(pipeline, ENTRIES[1])  # the logged batch cannot go out as it was
    code, output = pipeline.run_sync("--entity", "time_entry")
    assert code == 0, output[-5:]
    links = dict(pipeline.live_links("time_entry"))
    activities = pipeline.emulator.dump(pipeline.realm_id)["TimeActivity"]
    unlinked = [a["Id"] for a in activities if a["Id"] not in set(links.values())]
    assert unlinked == [], f"TimeActivity {unlinked} was created twice for one time entry"
    by_id = {a["Id"]: a for a in activities}
    assert [by_id[links[str(n)]]["Description"] for n in ENTRIES] == [
        "Entry 901", "Changed meanwhile"]
    assert pipeline.pending_writes() == []


def _add_time_entries(pipeline: ChaosPipeline) -> None:
    p, e = schema.projects, schema.employees
    with pipeline.source.begin() as connection:
        project = connection.scalar(select(p.c.id).where(
            p.c.active.is_(True), p.c.deleted_at.is_(None)).order_by(p.c.id.desc()))
        employee = connection.scalar(select(e.c.id).where(
            e.c.active.is_(True), e.c.employment_type == schema.EMPLOYEE_TYPE))
        stamp = now_stamp()
        connection.execute(insert(schema.time_entries), [{
            "id": entry, "employee_id": employee, "project_id": project,
            "work_date": stamp.date() - timedelta(days=1), "hours": Decimal(2),
            "description": f"Entry {entry}", "billable": True, "approved": True,
            "hourly_rate": Decimal(100), "created_at": stamp, "updated_at": stamp}
            for entry in ENTRIES])
    time.sleep(CHANGE_WINDOW_LAG.total_seconds() + 0.5)  # in the next sync's change window


def _describe_again(pipeline: ChaosPipeline, entry: int) -> None:
    with pipeline.source.begin() as connection:
        connection.execute(update(schema.time_entries).where(
            schema.time_entries.c.id == entry).values(description="Changed meanwhile",
                                                       updated_at=now_stamp()))
    time.sleep(CHANGE_WINDOW_LAG.total_seconds() + 0.5)


def _kill_while_the_batch_is_answered(pipeline: ChaosPipeline) -> None:
    """Once time entries' QBO snapshot is read, every answer is cut off mid-body (the
    request is done); the sync is killed while its client retries the batch."""
    after = pipeline.write_log_size()
    sync = pipeline.sync("--entity", "time_entry")
    try:
        deadline = time.monotonic() + 120
        while not any("time_entry/qbo_snapshot" in line for line in sync.new_lines()):
            assert sync.running() and time.monotonic() < deadline, sync.output[-3:]
            time.sleep(0.01)
        pipeline.emulator.set_faults({"dropped_connection": 1.0}, 0, seed=1)
        while pipeline.batches_logged(after) < 1:
            assert sync.running() and time.monotonic() < deadline, sync.output[-3:]
            time.sleep(0.01)
        time.sleep(KILL_AFTER_SECONDS)
    finally:
        sync.kill()
        pipeline.emulator.clear_faults()
