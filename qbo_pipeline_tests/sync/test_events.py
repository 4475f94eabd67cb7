"""Which syncs webhook events ask for, as plain data (sync/events.py).

Seed 001: "If someone edits a record directly in QuickBooks after it was synced, Kontrol™
detects the difference on the next QB webhook"; Intuit's webhooks docs: events may be delivered
more than once and out of order, so a receiver must be idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.sync.events import (
    ChangeNotice,
    NoticeOutcome,
    PendingNotice,
    RealmsNow,
    distinct_notices,
    plan_notice_runs,
    qbo_read_since,
    reconciliation_start,
    specs_by_entity,
    with_references,
)

SPECS = load_pipeline_specs()
ENTITY_SPECS = specs_by_entity(SPECS)
MOMENT = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def notice(realm: str = "9341", entity: str = "Customer", entity_id: str = "1",
           minutes: int = 0, operation: str = "Update") -> ChangeNotice:
    return ChangeNotice(realm, entity, entity_id, operation, MOMENT + timedelta(minutes=minutes))


notices = st.builds(notice, realm=st.sampled_from(["1", "2"]),
                    entity=st.sampled_from(["Customer", "Vendor", "Item"]),
                    entity_id=st.sampled_from(["1", "2", "3"]),
                    minutes=st.integers(0, 3))


@given(st.lists(notices, max_size=30), st.randoms())
def test_duplicates_and_order_make_no_difference(batch: list[ChangeNotice], rng: object) -> None:
    """Intuit: the same event can come twice and in any order; one change is one notice."""
    shuffled = list(batch) * 2
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert {n.key for n in distinct_notices(shuffled)} == {n.key for n in batch}
    assert len(distinct_notices(shuffled)) == len({n.key for n in batch})


@given(st.lists(notices, min_size=1, max_size=30), st.randoms())
def test_the_runs_do_not_depend_on_the_order_of_the_events(batch: list[ChangeNotice],
                                                          rng: object) -> None:
    pending = [PendingNotice(number, item) for number, item in enumerate(batch)]
    realms = RealmsNow(frozenset({"1", "2"}))
    shuffled = list(pending)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = (plan_notice_runs(p, ENTITY_SPECS, realms) for p in (pending, shuffled))
    assert [(r.realm_id, r.spec_names, sorted(r.row_ids)) for r in first.runs] == [
        (r.realm_id, r.spec_names, sorted(r.row_ids)) for r in second.runs]
    assert len(first.runs) == len({n.realm_id for n in batch})  # one run per realm at most


def test_a_burst_of_a_hundred_events_is_one_run_per_realm() -> None:
    """Issue 11: "a burst of 100 events is one run"."""
    burst = [PendingNotice(n, notice(entity=("Customer", "Item")[n % 2], entity_id=str(n)))
             for n in range(100)]
    plan = plan_notice_runs(burst, ENTITY_SPECS, RealmsNow(frozenset({"9341"})))
    [run] = plan.runs
    assert run.realm_id == "9341" and run.spec_names == ("client", "project", "service")
    assert sorted(run.row_ids) == list(range(100)) and not plan.settled
    assert run.run_key == "webhooks:9341:0-99"


def test_events_that_need_no_run_say_why() -> None:
    """Bad input is never dropped: each event gets an outcome naming the record and the fix."""
    pending = [PendingNotice(1, notice(realm="777")),
               PendingNotice(2, notice(entity="JournalEntry")),
               PendingNotice(3, notice(realm="555")),
               PendingNotice(4, notice(minutes=-10)),
               PendingNotice(5, notice(minutes=10))]
    cursors = {("9341", "client"): MOMENT, ("9341", "project"): MOMENT}
    plan = plan_notice_runs(pending, ENTITY_SPECS, RealmsNow(
        frozenset({"9341", "555"}), frozenset({"555"}), cursors))
    outcomes = {item.row_id: (item.outcome, item.reason) for item in plan.settled}
    assert outcomes[1][0] is NoticeOutcome.NOT_CONNECTED and "connect --realm 777" in outcomes[1][1]
    assert outcomes[2][0] is NoticeOutcome.NOT_SYNCED and "QBO JournalEntry" in outcomes[2][1]
    assert outcomes[3][0] is NoticeOutcome.MANUAL and "sync_mode" in outcomes[3][1]
    # Changed before both Customer specs last read QBO: a late or replayed event.
    assert outcomes[4][0] is NoticeOutcome.COVERED and "Customer 1" in outcomes[4][1]
    [run] = plan.runs
    assert run.row_ids == (5,)  # changed after the last read: pulled


def test_a_change_read_by_only_one_of_its_specs_still_asks_for_a_run() -> None:
    cursors = {("9341", "client"): MOMENT + timedelta(minutes=5), ("9341", "project"): None}
    plan = plan_notice_runs([PendingNotice(1, notice())], ENTITY_SPECS,
                            RealmsNow(frozenset({"9341"}), qbo_cursors=cursors))
    assert [run.row_ids for run in plan.runs] == [(1,)]


def test_a_run_of_a_spec_takes_the_specs_it_refers_to() -> None:
    assert with_references(SPECS, ["invoice"]) >= {"invoice", "client", "project"}
    assert with_references(SPECS, ["service"]) == {"service"}


def test_the_reconciliation_rereads_the_last_day_and_an_hour() -> None:
    """Intuit asks apps on webhooks to reconcile with CDC; a day's reads overlap by an hour."""
    assert reconciliation_start(MOMENT) == MOMENT - timedelta(hours=25)
    cursor = MOMENT - timedelta(minutes=3)
    assert qbo_read_since(cursor, None) == cursor
    assert qbo_read_since(cursor, reconciliation_start(MOMENT)) == MOMENT - timedelta(hours=25)
    assert qbo_read_since(MOMENT - timedelta(days=3), MOMENT) == MOMENT - timedelta(days=3)
    assert qbo_read_since(None, MOMENT) is None  # never read: everything
