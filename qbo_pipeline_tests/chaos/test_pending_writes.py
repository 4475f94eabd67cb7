"""Regression (issue 8): "after kills during writes, write-log entries stay pending although
their records are linked".

A sync SIGKILLed after QBO did a batch and before its answer arrived (here: every answer cut
off mid-body, so the client is still retrying) leaves the batch's writes pending in the
write log. The next run finds the record already as the source has it
in QBO (its snapshot shows the write), so it plans nothing for it and never re-sends the
batch: before the fix, the entry stayed pending for ever, and every later run replayed
"unanswered batches" that could never be sent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import update

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline_tests.chaos.pipeline import ChaosPipeline
from qbo_pipeline_tests.chaos.processes import Command

NEW_PHONE = "(555) 700-0001"
NEXT_PHONE = "(555) 700-0002"
KILL_AFTER_SECONDS = 0.5  # after the batch's intents are logged: it is sent and done by then



def test_a_write_killed_in_flight_is_settled_once_its_record_is_linked(
        pipeline: ChaosPipeline) -> None:
    code, output = pipeline.run_sync("--entity", "client")
    assert code == 0, output[-5:]
    _change_phone(pipeline, NEW_PHONE)

    _kill_while_a_batch_is_answered(pipeline)
    assert pipeline.pending_writes() == [("client", "1", "update")]
    assert _qbo_phone(pipeline, "1") == NEW_PHONE  # QBO did the write; its link did not learn

    code, output = pipeline.run_sync("--entity", "client")
    assert code == 0, output[-5:]
    assert pipeline.pending_writes() == [], (
        "the killed sync's write is still pending although client 1 is linked and QBO holds "
        "the value it wrote")
    assert _qbo_phone(pipeline, "1") == NEW_PHONE

    # The next change of the same field is the source's alone: it goes to QBO.
    _change_phone(pipeline, NEXT_PHONE)
    code, output = pipeline.run_sync("--entity", "client")
    assert code == 0, output[-5:]
    assert _open_conflicts(pipeline) == [], (
        "the killed sync's own write of the phone was taken for a bookkeeper's change")
    assert _qbo_phone(pipeline, "1") == NEXT_PHONE


def _change_phone(pipeline: ChaosPipeline, phone: str) -> None:
    """Client 1's phone, stamped just past the window synced (a stamp of now would wait out
    the change window's lag)."""
    with pipeline.source.begin() as connection:
        connection.execute(update(schema.clients).where(schema.clients.c.id == 1).values(
            phone=phone, updated_at=_cursor(pipeline, "client") + timedelta(milliseconds=1)))


def _kill_while_a_batch_is_answered(pipeline: ChaosPipeline) -> None:
    """Once the QBO snapshot is read, every answer is cut off mid-body (the request is done);
    the sync is killed while its client retries the batch."""
    after = pipeline.write_log_size()
    sync = pipeline.sync("--entity", "client")
    try:
        _wait_until(lambda: any("client/qbo_snapshot" in line for line in sync.new_lines()),
                    sync, "read the QBO snapshot")
        pipeline.emulator.set_faults({"dropped_connection": 1.0}, 0, seed=1)
        _wait_until(lambda: pipeline.batches_logged(after) >= 1, sync, "logged its write")
        time.sleep(KILL_AFTER_SECONDS)
    finally:
        sync.kill()
        pipeline.emulator.clear_faults()


def _wait_until(condition: Callable[[], bool], sync: Command, what: str,
                timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert sync.running(), f"the sync ended before it {what}: " + " | ".join(
            sync.output[-3:])
        assert time.monotonic() < deadline, f"the sync never {what}"
        time.sleep(0.01)


def _cursor(pipeline: ChaosPipeline, spec: str) -> datetime:
    connection = sqlite3.connect(pipeline.state_file)
    try:
        [(end,)] = connection.execute("SELECT change_window_end FROM qbo_cursors "
                                      "WHERE spec_name = ?", (spec,))
    finally:
        connection.close()
    return datetime.fromisoformat(end)


def _open_conflicts(pipeline: ChaosPipeline) -> list[tuple[str, str]]:
    connection = sqlite3.connect(pipeline.state_file)
    try:
        return list(connection.execute("SELECT source_key, fields FROM qbo_conflicts "
                                       "WHERE status = 'open'"))
    finally:
        connection.close()


def _qbo_phone(pipeline: ChaosPipeline, client_key: str) -> str:
    [qbo_id] = [qbo_id for key, qbo_id in pipeline.live_links("client") if key == client_key]
    customers = {c["Id"]: c for c in pipeline.emulator.dump(pipeline.realm_id)["Customer"]}
    phone: str = customers[qbo_id]["PrimaryPhone"]["FreeFormNumber"]
    return phone
