"""Plans of a pull spec: QBO Items into a `services` table (plan_pull)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from qbo_pipeline.sync.plan import Plan, RecordState, plan_pull
from qbo_pipeline.sync.pull import SourceWriteKind, in_pull_window, pull_query
from qbo_pipeline_tests.sync.sample_specs import SERVICE, make_spec

SPEC = make_spec(SERVICE)
NOW = dt.datetime(2024, 5, 15, 12, tzinfo=dt.UTC)


def item(qbo_id: str, name: str | None, **changes: Any) -> dict[str, Any]:
    return {"Id": qbo_id, "SyncToken": "0", "Name": name, "Type": "Service", "Active": True,
            "UnitPrice": 85.0, "Taxable": False,
            "IncomeAccountRef": {"value": "79", "name": "Services"},
            "MetaData": {"LastUpdatedTime": "2024-05-14T09:00:00-07:00"}, **changes}


def row_of(key: int, qbo_id: str, name: str, **changes: Any) -> dict[str, Any]:
    return {"id": key, "qbo_id": qbo_id, "name": name, "description": None,
            "rate": Decimal("85.00"), "taxable": 0, "active": 1, "income_account": "Services",
            "updated_at": dt.datetime(2024, 5, 1), "deleted_at": None, **changes}


def linked(key: int, qbo: dict[str, Any], row: dict[str, Any]) -> RecordState:
    return RecordState(str(key), None, None, qbo, source_row=row)


def new(qbo: dict[str, Any]) -> RecordState:
    return RecordState(None, None, None, qbo)


def pull(states: list[RecordState], spec_text: str = SERVICE, **replacements: str) -> Plan:
    return plan_pull(make_spec(spec_text, **replacements), "realm-1", states, now=NOW)


def test_new_items_are_upserted_with_every_pulled_column() -> None:
    plan = pull([new(item("12", "Design")), new(item("13", "Framing", UnitPrice=60.5))])
    assert plan.writes() == [] and plan.quarantined == []
    assert [(w.kind, w.source_key, w.qbo_id) for w in plan.source_writes] == [
        (SourceWriteKind.UPSERT, None, "12"), (SourceWriteKind.UPSERT, None, "13")]
    design = plan.source_writes[0]
    # The qbo_id column is the upsert's match value, never one of its values.
    assert design.values == {"name": "Design", "description": None, "rate": Decimal("85"),
                             "taxable": False, "active": True, "income_account": "Services"}
    assert design.base == {"Name": "Design", "UnitPrice": 85.0, "Taxable": False,
                           "Active": True, "IncomeAccountRef": {"value": "79"}}
    assert design.fields == tuple(SPEC.pulled_fields)
    assert design.reasons == ("new in QuickBooks: Item 12",)
    assert plan.source_writes[1].values["rate"] == Decimal("60.5")
    assert plan.pull_counts()["source_upserts"] == 2
    assert [d.source_key for d in plan.diffs] == ["qbo:12", "qbo:13"]


def test_a_renamed_item_is_one_source_update() -> None:
    plan = pull([linked(3, item("12", "Design work"), row_of(3, "12", "Design"))])
    [write] = plan.source_writes
    assert (write.kind, write.source_key, write.qbo_id) == (SourceWriteKind.UPDATE, "3", "12")
    assert write.values == {"name": "Design work"}
    assert write.fields == ("Name",)
    assert write.reasons == ("Name changed in QuickBooks: 'Design' -> 'Design work'",)
    assert write.settles == {"Name": "Design work"}


def test_nothing_is_written_when_the_row_already_holds_qbos_values() -> None:
    states = [linked(3, item("12", "Design"), row_of(3, "12", "Design")),
              linked(4, item("13", "Framing", Active=False), row_of(4, "13", "Framing",
                                                                    active=False))]
    plan = pull(states)
    assert plan.source_writes == [] and plan.writes() == []
    assert plan.unchanged == ["3", "4"]


def test_applying_the_upserts_then_planning_again_writes_nothing() -> None:
    records = [item("12", "Design"), item("13", "Framing")]
    first = pull([new(record) for record in records])
    rows = {w.qbo_id: {"id": index, "qbo_id": w.qbo_id, **w.values}
            for index, w in enumerate(first.source_writes, start=1)}
    again = pull([linked(rows[r["Id"]]["id"], r, rows[r["Id"]]) for r in records])
    assert again.source_writes == [] and again.unchanged == ["1", "2"]


def test_an_item_made_inactive_is_marked() -> None:
    plan = pull([linked(3, item("12", "Design", Active=False), row_of(3, "12", "Design"))])
    [write] = plan.source_writes
    # The pulled Active -> active mapping marks it already; on_qbo_delete adds nothing more.
    assert (write.kind, write.values) == (SourceWriteKind.UPDATE, {"active": False})


def test_an_inactive_item_with_an_inactive_column_only_is_marked_inactive() -> None:
    plan = pull([linked(3, item("12", "Design", Active=False), row_of(3, "12", "Design"))],
                **{"  Active: {column: active, type: boolean}\n": "",
                   "on_qbo_delete: mark_inactive": "on_qbo_delete: mark_inactive\n"
                                                   "  inactive_column: active"})
    [write] = plan.source_writes
    assert (write.kind, write.values) == (SourceWriteKind.MARK_INACTIVE, {"active": False})
    assert write.reasons == ("made inactive in QuickBooks (Item 12): active=False",)


DELETED = {"Id": "12", "status": "Deleted",
           "MetaData": {"LastUpdatedTime": "2024-05-14T09:00:00-07:00"}}


@pytest.mark.parametrize(("action", "expected"), [
    ("ignore", None),
    ("mark_inactive", (SourceWriteKind.MARK_INACTIVE, {"active": False})),
    ("set_deleted", (SourceWriteKind.SET_DELETED, {"deleted_at": NOW})),
])
def test_an_item_deleted_in_qbo_follows_on_qbo_delete(
        action: str, expected: tuple[SourceWriteKind, dict[str, Any]] | None) -> None:
    plan = pull([linked(3, DELETED, row_of(3, "12", "Design"))],
                **{"on_qbo_delete: mark_inactive": f"on_qbo_delete: {action}"})
    assert [(w.kind, w.values) for w in plan.source_writes] == ([expected] if expected else [])
    if expected is None:
        assert plan.unchanged == ["3"]
    else:
        assert plan.source_writes[0].base is None  # the link's base stays as it is
        assert plan.diffs[0].action.value == "deleted_in_qbo"


def test_a_deleted_item_already_marked_or_never_imported_needs_nothing() -> None:
    plan = pull([linked(3, DELETED, row_of(3, "12", "Design", active=False)),
                 new({**DELETED, "Id": "14"})])
    assert plan.source_writes == []
    assert plan.unchanged == ["3"] and plan.skipped == ["qbo:14"]


def test_an_inactive_item_not_in_the_source_is_not_imported() -> None:
    plan = pull([new(item("12", "Old service", Active=False))])
    assert plan.source_writes == [] and plan.skipped == ["qbo:12"]


def test_a_bad_item_is_quarantined_whole_and_the_others_go_on() -> None:
    plan = pull([new(item("12", "Design")),
                 new(item("13", "A service name too long")),
                 new(item("14", "Odd", UnitPrice="n/a", IncomeAccountRef={"value": "79"})),
                 linked(3, item("15", None), row_of(3, "15", "Framing"))])
    assert [w.qbo_id for w in plan.source_writes] == ["12"]
    assert {q.source_key: q.reasons for q in plan.quarantined} == {
        "qbo:13": ["QuickBooks Item 13: Name is 23 characters, more than the 20 allowed - "
                   "correct it in QuickBooks"],
        "qbo:14": ["QuickBooks Item 14: UnitPrice 'n/a' is not a number - correct it in "
                   "QuickBooks",
                   "QuickBooks Item 14: IncomeAccountRef holds QuickBooks Account 79 without "
                   "its name - read the record again from QuickBooks"],
        "3": ["service 3: Name is required - correct it in QuickBooks Item 15"],
    }
    assert plan.pull_counts()["quarantined"] == 3


def test_under_target_linked_unlinked_records_are_skipped() -> None:
    plan = pull([new(item("12", "Design")),
                 linked(3, item("13", "Framing 2"), row_of(3, "13", "Framing"))],
                **{"target: upsert": "target: linked"})
    assert plan.skipped == ["qbo:12"]
    [write] = plan.source_writes
    assert (write.kind, write.source_key, write.values) == (
        SourceWriteKind.UPDATE, "3", {"name": "Framing 2"})


def test_records_outside_the_window_are_skipped() -> None:
    old = item("12", "Design", MetaData={"LastUpdatedTime": "2024-04-01T09:00:00-07:00"})
    plan = pull([new(old), new(item("13", "Framing"))],
                **{"filter: ": "modified_within_days: 14\n  filter: "})
    assert [w.qbo_id for w in plan.source_writes] == ["13"] and plan.skipped == ["qbo:12"]


def test_records_another_spec_links_are_left_to_it() -> None:
    """Seed 004: bills are "a 1-way push" and QBO's recent ones "can be imported": a bill the
    app pushed (linked by its pushing spec) is not imported again by the importing spec."""
    plan = plan_pull(SPEC, "realm-1", [new(item("12", "Design")), new(item("13", "Framing"))],
                     now=NOW, linked_elsewhere={"12"})
    assert [w.qbo_id for w in plan.source_writes] == ["13"] and plan.skipped == ["qbo:12"]


def test_the_pull_query() -> None:
    cursor = dt.datetime(2024, 5, 14, tzinfo=dt.UTC)
    query = pull_query(SPEC, NOW, cursor)
    assert (query.qbo_entity, query.since, query.filter, query.include_inactive) == (
        "Item", cursor, "Type = 'Service'", True)
    everything = make_spec(SERVICE, **{"filter: ": "read: all\n  filter: "})
    assert pull_query(everything, NOW, cursor).since is None
    recent = make_spec(SERVICE, **{"filter: ": "read: all\n  modified_within_days: 14\n"
                                               "  filter: "})
    assert pull_query(recent, NOW, cursor).since == NOW - dt.timedelta(days=14)
    changed_recent = make_spec(SERVICE, **{"filter: ": "modified_within_days: 14\n  filter: "})
    assert pull_query(changed_recent, NOW, cursor).since == cursor  # the later of the two
    assert pull_query(changed_recent, NOW, None).since == NOW - dt.timedelta(days=14)
    assert in_pull_window(changed_recent, item("1", "x"), NOW)


def test_a_pull_needs_the_qbo_record_and_a_spec_that_pulls() -> None:
    with pytest.raises(ValueError, match="a pulled record needs its QuickBooks record"):
        pull([RecordState("3", None, None, None, source_row=row_of(3, "12", "Design"))])
    with pytest.raises(ValueError, match="pulls nothing from QuickBooks"):
        pull([], "name: service\nqbo_entity: Item\nsource: {table: s, primary_key: id, "
                 "updated_at: u}\nfields: {Name: {column: name}}\non_source_delete: ignore\n")
