"""Plans of two-way and mixed specs: QBO writes and source writes from one diff, no echo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from qbo_pipeline.sync.mapping import map_row
from qbo_pipeline.sync.plan import Plan, RecordState, WriteKind, plan_changes, plan_pull
from qbo_pipeline.sync.pull import SourceWriteKind, settle_base
from qbo_pipeline.sync.stale import resolve_stale
from qbo_pipeline_tests.sync.sample_specs import PAID_INVOICE, TWO_WAY_CLIENT, make_spec

NOW = dt.datetime(2024, 5, 15, 12, tzinfo=dt.UTC)
SPEC = make_spec(TWO_WAY_CLIENT)
ROW: dict[str, Any] = {"id": 17, "name": "Acme", "email": "ap@acme.test", "phone": "555-0100",
                       "notes": None, "active": True, "balance": Decimal("0"),
                       "created_at": dt.datetime(2024, 1, 1),
                       "updated_at": dt.datetime(2024, 5, 1, 17), "deleted_at": None}


def state_of(row: dict[str, Any], base: Mapping[str, Any] | None,
             qbo: Mapping[str, Any] | None,
             spec_text: str = TWO_WAY_CLIENT, **replacements: str) -> RecordState:
    """A record as the adapter gathers it: the row, its payload, the link's base, QBO."""
    spec = make_spec(spec_text, **replacements)
    return RecordState(str(row["id"]), map_row(spec, row).payload, base, qbo,
                       source_updated_at=row["updated_at"], source_row=row)


def in_qbo(payload: dict[str, Any], at: str = "2024-05-01T10:00:00-07:00",
           **changes: Any) -> dict[str, Any]:
    return {**payload, "Id": "58", "SyncToken": "3", "Balance": 0, "FullyQualifiedName": "Acme",
            "MetaData": {"LastUpdatedTime": at}, **changes}


BASE = map_row(SPEC, ROW).payload


def plan_of(*states: RecordState, spec_text: str = TWO_WAY_CLIENT, **replacements: str) -> Plan:
    return plan_changes(make_spec(spec_text, **replacements), "realm-1", list(states), now=NOW)


def applied(state: RecordState, plan: Plan, spec_text: str = TWO_WAY_CLIENT) -> RecordState:
    """The same record after the adapter ran the plan: the source row and QBO record written,
    the link's base settled by each write, then the row mapped again."""
    assert state.source_row is not None and state.qbo is not None
    row, base, qbo = dict(state.source_row), state.base, dict(state.qbo)
    for source_write in plan.source_writes:
        row.update(source_write.values)
        base = settle_base(base, source_write.settles)
    for write in plan.updates:
        qbo.update({k: v for k, v in write.payload.items() if k not in ("Id", "sparse")})
        qbo["SyncToken"] = str(int(qbo["SyncToken"]) + 1)
        assert write.settles is not None
        base = settle_base(base, write.settles)
    return state_of(row, base, qbo, spec_text)


def assert_nothing_more(state: RecordState, spec_text: str = TWO_WAY_CLIENT) -> None:
    again = plan_of(state, spec_text=spec_text)
    assert again.writes() == [] and again.source_writes == [] and again.conflicts == []
    assert again.unchanged == [state.source_key]


def test_a_phone_changed_only_in_qbo_is_one_source_write_and_no_qbo_write() -> None:
    state = state_of(ROW, BASE, in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}))
    plan = plan_of(state)
    assert plan.writes() == [] and plan.conflicts == []
    [write] = plan.source_writes
    assert (write.kind, write.source_key, write.qbo_id, write.values) == (
        SourceWriteKind.UPDATE, "17", "58", {"phone": "555-0199"})
    assert write.base == {**BASE, "PrimaryPhone": {"FreeFormNumber": "555-0199"}}
    assert_nothing_more(applied(state, plan))


def test_an_email_changed_only_in_the_source_is_one_qbo_update_and_no_source_write() -> None:
    changed = {**ROW, "email": "billing@acme.test"}
    state = state_of(changed, BASE, in_qbo(BASE))
    plan = plan_of(state)
    assert plan.source_writes == []
    [update] = plan.updates
    assert update.payload == {"Id": "58", "SyncToken": "3", "sparse": True,
                              "PrimaryEmailAddr": {"Address": "billing@acme.test"}}
    # The field written, and the fields both sides already hold, settle into the base.
    assert update.settles is not None
    assert update.settles["PrimaryEmailAddr.Address"] == "billing@acme.test"
    assert update.settles["DisplayName"] == "Acme"
    assert_nothing_more(applied(state, plan))


def test_a_record_can_need_both_a_qbo_update_and_a_source_write() -> None:
    changed = {**ROW, "email": "billing@acme.test"}
    qbo = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}, Balance=120.5)
    state = state_of(changed, BASE, qbo)
    plan = plan_of(state)
    assert [w.kind for w in plan.writes()] == [WriteKind.UPDATE]
    [write] = plan.source_writes
    assert write.values == {"phone": "555-0199", "balance": Decimal("120.5")}
    assert "PrimaryPhone" not in plan.updates[0].payload  # pulled values are not sent back
    assert_nothing_more(applied(state, plan))




@pytest.mark.parametrize(("policy", "source_time", "qbo_writes", "source_values", "conflicts"), [
    ("review", dt.datetime(2024, 5, 2), 0, None, 1),
    ("source_wins", dt.datetime(2024, 5, 2), 1, None, 0),
    ("qbo_wins", dt.datetime(2024, 5, 2), 0, {"phone": "555-0199"}, 0),
    ("last_modified_wins", dt.datetime(2024, 5, 2), 1, None, 0),  # the source changed later
    ("last_modified_wins", dt.datetime(2024, 4, 30), 0, {"phone": "555-0199"}, 0),
    ("last_modified_wins", dt.datetime(2024, 5, 1, 17), 0, None, 1),  # a tie: review
])
def test_both_sides_changed_follows_the_policy(policy: str, source_time: dt.datetime,
                                               qbo_writes: int,
                                               source_values: dict[str, Any] | None,
                                               conflicts: int) -> None:
    replacements = {"default: review": f"default: {policy}"}
    row = {**ROW, "phone": "555-0142", "updated_at": source_time}
    qbo = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"})
    state = state_of(row, BASE, qbo, **replacements)
    spec_text = TWO_WAY_CLIENT.replace("default: review", f"default: {policy}")
    plan = plan_of(state, spec_text=spec_text)
    assert len(plan.updates) == qbo_writes and len(plan.conflicts) == conflicts
    assert [w.values for w in plan.source_writes] == ([source_values] if source_values else [])
    if not conflicts:
        assert_nothing_more(applied(state, plan, spec_text), spec_text)


def test_a_conflict_keeps_its_base_until_resolved() -> None:
    row = {**ROW, "phone": "555-0142", "email": "billing@acme.test"}
    state = state_of(row, BASE, in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}))
    plan = plan_of(state)
    assert [f.path for f in plan.conflicts[0].fields] == ["PrimaryPhone.FreeFormNumber"]
    after = applied(state, plan)
    assert after.base is not None
    assert after.base["PrimaryPhone"] == {"FreeFormNumber": "555-0100"}  # unsettled
    again = plan_of(after)
    assert len(again.conflicts) == 1 and again.writes() == [] and again.source_writes == []


def test_a_first_link_by_match_fills_each_side_from_the_other() -> None:
    qbo = {"Id": "90", "SyncToken": "0", "DisplayName": "ACME ", "Notes": "gate code 1234",
           "Balance": 0, "MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"}}
    state = RecordState("17", map_row(SPEC, ROW).payload, source_row=ROW)
    plan = plan_changes(SPEC, "realm-1", [state], match_candidates=[qbo], now=NOW)
    assert plan.links[0].qbo_id == "90"
    assert plan.updates[0].payload["PrimaryPhone"] == {"FreeFormNumber": "555-0100"}
    assert [w.values for w in plan.source_writes] == [{"notes": "gate code 1234"}]
    assert [f.path for f in plan.conflicts[0].fields] == ["DisplayName"]  # case differs


def test_a_create_never_carries_pull_only_fields() -> None:
    payload = {**map_row(SPEC, ROW).payload, "Balance": 10}
    plan = plan_changes(SPEC, "realm-1", [RecordState("17", payload, source_row=ROW)], now=NOW)
    assert "Balance" not in plan.creates[0].payload
    assert "Balance" not in map_row(SPEC, ROW).payload


def test_a_qbo_record_deleted_with_on_qbo_delete_ignore_is_still_a_gone_conflict() -> None:
    deleted = {"Id": "58", "status": "Deleted"}
    plan = plan_of(state_of(ROW, BASE, deleted))
    assert "is gone" in plan.conflicts[0].reason and plan.source_writes == []


def test_a_qbo_record_deleted_under_set_deleted_marks_the_row() -> None:
    spec_text = TWO_WAY_CLIENT.replace("target: linked",
                                       "target: linked\n  on_qbo_delete: set_deleted")
    state = state_of(ROW, BASE, {"Id": "58", "status": "Deleted"}, spec_text)
    plan = plan_of(state, spec_text=spec_text)
    assert plan.conflicts == [] and plan.writes() == []
    assert [(w.kind, w.values) for w in plan.source_writes] == [
        (SourceWriteKind.SET_DELETED, {"deleted_at": NOW})]


def test_the_pull_side_needs_the_clock_and_the_source_row() -> None:
    state = state_of(ROW, BASE, in_qbo(BASE))
    with pytest.raises(ValueError, match="pass the run's clock"):
        plan_changes(SPEC, "realm-1", [state])
    without_row = RecordState("17", BASE, BASE, in_qbo(BASE))
    with pytest.raises(ValueError, match="source_row of client 17 is needed"):
        plan_changes(SPEC, "realm-1", [without_row], now=NOW)


def test_a_stale_retry_of_a_two_way_record_re_plans_only_the_qbo_side() -> None:
    changed = {**ROW, "email": "billing@acme.test"}
    fresh = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}, SyncToken="4")
    resolution = resolve_stale(SPEC, "realm-1", state_of(changed, BASE, fresh))
    assert resolution.conflict is None and resolution.retry is not None
    assert resolution.retry.payload == {"Id": "58", "SyncToken": "4", "sparse": True,
                                        "PrimaryEmailAddr": {"Address": "billing@acme.test"}}


def test_plan_pull_of_a_two_way_spec_plans_only_source_writes() -> None:
    changed = {**ROW, "email": "billing@acme.test"}
    state = state_of(changed, BASE, in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}))
    plan = plan_pull(SPEC, "realm-1", [state], now=NOW)
    assert plan.writes() == []
    assert [w.values for w in plan.source_writes] == [{"phone": "555-0199"}]


# -- invoices: the balance pulled back, paid -> PAID (seed 001) --------------------------------

INVOICE_SPEC = make_spec(PAID_INVOICE)
INVOICE_ROW: dict[str, Any] = {"id": 5, "number": "INV-1001", "issue_date": dt.date(2024, 5, 2),
                               "balance": Decimal("100.00"), "status": "SENT",
                               "updated_at": dt.datetime(2024, 5, 2)}
INVOICE_BASE = map_row(INVOICE_SPEC, INVOICE_ROW).payload


def invoice_state(qbo_balance: float, **row: Any) -> RecordState:
    source_row = {**INVOICE_ROW, **row}
    qbo = {**INVOICE_BASE, "Id": "7", "SyncToken": "2", "Balance": qbo_balance,
           "TotalAmt": 100.0, "MetaData": {"LastUpdatedTime": "2024-05-10T10:00:00-07:00"}}
    return RecordState("5", map_row(INVOICE_SPEC, source_row).payload, INVOICE_BASE, qbo,
                       source_row=source_row)


def test_a_fully_paid_invoice_becomes_paid_without_a_conflict() -> None:
    state = invoice_state(0)
    plan = plan_changes(INVOICE_SPEC, "realm-1", [state], now=NOW)
    assert plan.conflicts == [] and plan.writes() == []
    [write] = plan.source_writes
    assert write.values == {"balance": Decimal("0"), "status": "PAID"}
    assert write.auto_applied == ("paid in QuickBooks",)
    assert write.reasons == ("Balance changed in QuickBooks: Decimal('100.00') -> Decimal('0')",
                             "auto-applied (paid in QuickBooks): status='PAID'")
    assert plan.pull_counts()["auto_applied"] == 1
    after = applied(state, plan, PAID_INVOICE)
    again = plan_changes(INVOICE_SPEC, "realm-1", [after], now=NOW)
    assert again.source_writes == [] and again.writes() == [] and again.unchanged == ["5"]


def test_a_partial_payment_only_updates_the_balance() -> None:
    plan = plan_changes(INVOICE_SPEC, "realm-1", [invoice_state(40)], now=NOW)
    [write] = plan.source_writes
    assert (write.values, write.auto_applied) == ({"balance": Decimal("40")}, ())


def test_a_paid_invoice_already_marked_needs_nothing() -> None:
    plan = plan_changes(INVOICE_SPEC, "realm-1",
                        [invoice_state(0, balance=Decimal("0.00"), status="PAID")], now=NOW)
    assert plan.source_writes == [] and plan.unchanged == ["5"]


def test_the_auto_apply_alone_is_a_source_write() -> None:
    # The balance was pulled earlier, before the rule existed: only the status is due.
    plan = plan_changes(INVOICE_SPEC, "realm-1", [invoice_state(0, balance=0)], now=NOW)
    assert [w.values for w in plan.source_writes] == [{"status": "PAID"}]
    assert plan.unchanged == []


# -- two-way with target upsert: imports what no source record matched -----------------------

UPSERT_CLIENT = TWO_WAY_CLIENT.replace("target: linked", "target: upsert\n  qbo_id_column: qbo_id")


def test_a_qbo_record_matched_by_a_create_is_not_imported_too() -> None:
    spec = make_spec(UPSERT_CLIENT)
    acme = {"Id": "90", "SyncToken": "0", "DisplayName": "Acme",
            "PrimaryPhone": {"FreeFormNumber": "555-0100"}, "Active": True, "Balance": 0}
    bolt = {"Id": "91", "SyncToken": "0", "DisplayName": "Bolt", "Active": True}
    states = [RecordState("17", map_row(spec, ROW).payload, source_row={**ROW, "qbo_id": None}),
              RecordState(None, None, qbo=acme), RecordState(None, None, qbo=bolt)]
    plan = plan_changes(spec, "realm-1", states, match_candidates=[acme, bolt], now=NOW)
    assert [link.qbo_id for link in plan.links] == ["90"]
    assert plan.skipped == []  # not left alone: its matched row learns its Id (below)
    assert [(w.kind, w.source_key, w.qbo_id) for w in plan.source_writes] == [
        (SourceWriteKind.UPDATE, "17", "90"), (SourceWriteKind.UPSERT, None, "91")]
    # The matched row learns its QBO Id, so that the next pull finds it by it.
    assert plan.source_writes[0].values == {"qbo_id": "90"}
    assert plan.source_writes[1].values["name"] == "Bolt"


def test_a_match_equal_on_both_sides_is_unchanged_in_qbo_while_its_row_learns_the_id() -> None:
    """The app's "Net 30" found as QBO's own: no QBO write, so the push side counts it as
    unchanged (its counts add up), although the pull still writes the QBO Id into the row."""
    spec = make_spec(UPSERT_CLIENT)
    row = {**ROW, "qbo_id": None}
    payload = map_row(spec, row).payload
    acme = {**payload, "Id": "90", "SyncToken": "0", "Balance": 0,
            "MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"}}
    plan = plan_changes(spec, "realm-1", [RecordState("17", payload, source_row=row)],
                        match_candidates=[acme], now=NOW)
    assert [link.qbo_id for link in plan.links] == ["90"] and plan.writes() == []
    assert [w.values for w in plan.source_writes] == [{"qbo_id": "90"}]
    assert plan.qbo_unchanged == ["17"]
    assert plan.unchanged == []  # a source write is due: not unchanged either way
