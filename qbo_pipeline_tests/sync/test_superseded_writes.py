"""Which writes a killed run left pending are superseded: their record is linked, and the
new plan does not send them again (issue 8: they stayed pending for ever)."""

from __future__ import annotations

from qbo_pipeline.sync.batches import PendingWrite, superseded_writes

PENDING = [PendingWrite("rid-1", "1"), PendingWrite("rid-2", "2"), PendingWrite("rid-3", "3")]


def test_a_pending_write_of_a_linked_record_not_sent_again_is_superseded() -> None:
    assert superseded_writes(PENDING, linked={"1", "2"}, planned=set()) == ["rid-1", "rid-2"]


def test_a_pending_write_the_plan_sends_again_waits_for_its_answer() -> None:
    # Sent again under its request id, QBO answers it with its first answer.
    assert superseded_writes(PENDING, linked={"1", "2"}, planned={"rid-1"}) == ["rid-2"]


def test_a_pending_write_of_an_unlinked_record_stays_pending() -> None:
    # A create that may have happened: only its answer (or a match) would tell its QBO record.
    assert superseded_writes(PENDING, linked=set(), planned=set()) == []
