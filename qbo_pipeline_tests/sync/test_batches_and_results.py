"""Replay order of unanswered batches, the link and base after each answer, the tally."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbo_pipeline.sync import Write, WriteKind
from qbo_pipeline.sync.batches import PendingWrite, batches_to_recover, in_batches, split
from qbo_pipeline.sync.results import (
    Answer,
    Fate,
    Tally,
    link_after,
    qbo_operation,
    recovered_base,
)
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline_tests.sync.test_scope_and_cursor import SPECS


def write(key: str, kind: WriteKind = WriteKind.CREATE) -> Write:
    settles = {"n": key} if kind in (WriteKind.CREATE, WriteKind.UPDATE) else None
    return Write(kind, key, None if kind is WriteKind.CREATE else f"q{key}", {"n": key},
                 f"rid-{key}", settles)


def test_an_unanswered_batch_goes_out_again_first_in_its_order() -> None:
    writes = [write(str(n)) for n in range(5)]
    batches = in_batches(writes, [["rid-3", "rid-1"]], batch_size=30)
    assert [[w.source_key for w in b] for b in batches] == [["3", "1"], ["0", "2", "4"]]


def test_a_logged_batch_whose_writes_changed_is_planned_anew() -> None:
    writes = [write(str(n)) for n in range(3)]
    batches = in_batches(writes, [["rid-1", "rid-gone"]], batch_size=30)
    assert [[w.source_key for w in b] for b in batches] == [["0", "1", "2"]]


def pending(key: str, kind: WriteKind = WriteKind.CREATE) -> PendingWrite:
    return PendingWrite(f"logged-{key}", key, kind, None if kind is WriteKind.CREATE else f"q{key}")


def test_a_logged_batch_that_may_have_created_records_is_sent_again_as_it_was() -> None:
    """Record 2 changed since the batch was logged: its item keeps the logged request id and
    operation (the batch's requestid), and carries the current body."""
    changed = write("2")
    recovered = batches_to_recover([[pending("1"), pending("2"), pending("3")]],
                                   [replace(write("1"), request_id="logged-1"), changed],
                                   linked=set())
    assert [[(w.source_key, w.request_id, w.kind) for w in b] for b in recovered] == [[
        ("1", "logged-1", WriteKind.CREATE), ("2", "logged-2", WriteKind.CREATE),
        ("3", "logged-3", WriteKind.CREATE)]]
    first, second, gone = recovered[0]
    assert second.payload == changed.payload and second.settles == changed.settles
    assert (gone.payload, gone.settles) == ({}, None)  # no planned write: QBO never reads it


def test_only_unsendable_batches_holding_a_create_of_an_unlinked_record_are_recovered() -> None:
    as_planned = [replace(write("1"), request_id="logged-1")]
    assert batches_to_recover([[pending("1")]], as_planned, linked=set()) == []  # in_batches
    updates = [[pending("4", WriteKind.UPDATE), pending("5", WriteKind.UPDATE)]]
    assert batches_to_recover(updates, [write("4", WriteKind.UPDATE)], linked={"4", "5"}) == []
    assert batches_to_recover([[pending("6")]], [write("6")], linked={"6"}) == []


def test_a_recovered_record_is_based_on_what_qbo_holds_of_the_compared_fields() -> None:
    spec = as_configured(SPECS, "client")  # as a company on the defaults has it: push only
    sent = {"DisplayName": "Acme", "PrimaryEmailAddr": {"Address": "a@example.com"}}
    now = Write(WriteKind.CREATE, "1", None, sent, "logged-1", sent)
    record = {"Id": "58", "SyncToken": "0", **sent, "Active": True, "MetaData": {"x": 1}}
    assert recovered_base(spec, now, record) == sent  # QBO holds what the write sends now
    changed = Write(WriteKind.CREATE, "1", None, {**sent, "DisplayName": "Acme Ltd"},
                    "logged-1", {**sent, "DisplayName": "Acme Ltd"})
    base = recovered_base(spec, changed, record)  # what was written then
    assert base["DisplayName"] == "Acme" and base["PrimaryEmailAddr"] == {
        "Address": "a@example.com"}
    assert "MetaData" not in base and "Id" not in base
    assert recovered_base(spec, replace(now, payload={}, settles=None), record) == base


def test_a_recovered_create_is_counted_once_even_when_then_updated() -> None:
    spec, tally = SPECS["time_entry"], Tally()
    tally.recovered_create(write("1"), {"Id": "q1"}, counted=True)
    tally.recovered_create(write("9"), {"Id": "q9"}, counted=False)  # not valid this run
    tally.count(spec, write("1", WriteKind.UPDATE), Answer(record={"Id": "q1"}))
    assert tally.counts() == {"created": 1, "updated": 0, "failed": 0}
    assert [row.result for row in tally.rows][:2] == [
        "created by a run that died; linked now"] * 2


def test_batches_hold_at_most_the_batch_size() -> None:
    batches = in_batches([write(str(n)) for n in range(65)], [], batch_size=30)
    assert [len(b) for b in batches] == [30, 30, 5]
    with pytest.raises(ValueError):
        split([1], 0)


def test_a_create_or_update_settles_what_it_wrote_into_the_base() -> None:
    link = link_after(write("7"), {"Id": "58", "SyncToken": "0"}, None)
    assert (link.qbo_id, link.sync_token, link.base, link.delete_applied) == (
        "58", "0", {"n": "7"}, False)
    assert link.base_hash is not None
    kept = link_after(write("7", WriteKind.UPDATE), {"Id": "58", "SyncToken": "1"},
                      {"n": "old", "Notes": "kept"})
    assert kept.base == {"n": "7", "Notes": "kept"}


def test_a_void_keeps_the_base_and_records_that_the_delete_ran() -> None:
    link = link_after(write("7", WriteKind.VOID), {"Id": "q7", "SyncToken": "3"},
                      {"n": "old"})
    assert (link.base, link.delete_applied, link.sync_token) == ({"n": "old"}, True, "3")


def test_each_write_kind_has_its_qbo_operation() -> None:
    assert {kind: qbo_operation(kind) for kind in WriteKind} == {
        WriteKind.CREATE: "create", WriteKind.UPDATE: "update", WriteKind.VOID: "void",
        WriteKind.INACTIVATE: "update", WriteKind.DELETE: "delete"}


def test_the_tally_counts_each_fate() -> None:
    spec, tally = SPECS["time_entry"], Tally()
    assert tally.count(spec, write("1"), Answer(record={"Id": "1"})) is Fate.WRITTEN
    assert tally.count(spec, write("2", WriteKind.UPDATE), Answer(record={"Id": "2"})) \
        is Fate.WRITTEN
    assert tally.count(spec, write("3", WriteKind.UPDATE), Answer(error="5010", stale=True)) \
        is Fate.STALE
    assert tally.count(spec, write("4"), Answer(error="610 inactive", refused=True)) \
        is Fate.REFUSED
    assert tally.count(spec, write("5"), Answer(error="503")) is Fate.FAILED
    tally.blocked("6", "time entry 6: two QuickBooks records match")
    assert tally.counts() == {"created": 1, "updated": 1, "failed": 3}
    assert [r.source_key for r in tally.refusals] == ["4", "6"]
    assert tally.retry == ["5"]
    assert "time entry 4: QuickBooks refused the create: 610 inactive" in tally.errors
