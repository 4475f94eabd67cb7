"""The run's scope, the start-date rule, held rows due again, and the cursor rule: plain data
in, plain data out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from qbo_pipeline.specs import load_specs
from qbo_pipeline.sync.cursor import RowProgress, next_cursor
from qbo_pipeline.sync.scope import (
    BusinessDates,
    HeldRow,
    ReadMode,
    due_again,
    in_use,
    on_or_after_start,
    read_scope,
    references_in_use,
    references_of,
    referrers_of,
    sync_start,
    used_keys,
)

SPECS = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CURSOR = datetime(2026, 3, 2, 11, 45, tzinfo=UTC)
DAY = date(2026, 3, 2)
DAYS = BusinessDates(DAY, DAY)


def at(minutes: int) -> datetime:
    return CURSOR + timedelta(minutes=minutes)


# --- the run's scope -------------------------------------------------------------------------


def test_an_incremental_run_reads_the_change_window_from_the_cursor() -> None:
    scope = read_scope(SPECS["invoice"], incremental=True, dates=DAYS, until=NOON, cursor=CURSOR)
    assert (scope.mode, scope.since, scope.until) == (ReadMode.CHANGED, CURSOR, NOON)
    assert scope.advances_cursor


def test_a_backfill_reads_the_day_of_transactions_and_keeps_the_cursor() -> None:
    scope = read_scope(SPECS["invoice"], incremental=False, dates=DAYS, until=NOON, cursor=CURSOR)
    assert (scope.mode, scope.dates) == (ReadMode.DATES, DAYS)
    assert not scope.advances_cursor


def test_names_lists_are_read_by_change_window_even_in_a_backfill() -> None:
    # The day's transactions refer to them, whatever day they were created.
    scope = read_scope(SPECS["client"], incremental=False, dates=DAYS, until=NOON, cursor=CURSOR)
    assert (scope.mode, scope.since) == (ReadMode.CHANGED, CURSOR)


def test_a_one_record_sync_reads_that_record_and_leaves_the_cursor() -> None:
    scope = read_scope(SPECS["client"], incremental=True, dates=DAYS, until=NOON, cursor=CURSOR,
                       record_key="17")
    assert (scope.mode, scope.record_key) == (ReadMode.RECORD, "17")
    assert not scope.advances_cursor


# --- the start-date rule ---------------------------------------------------------------------


def test_transactions_dated_before_the_start_date_are_left_out() -> None:
    dates = pd.Series(["2023-12-31", "2024-01-01", "2024-06-30"])
    mask = on_or_after_start(SPECS["invoice"], dates, date(2024, 1, 1))
    assert mask.tolist() == [False, True, True]


def test_names_lists_are_all_synced_whatever_their_date() -> None:
    dates = pd.Series([datetime(2019, 1, 1), datetime(2025, 1, 1)])
    assert on_or_after_start(SPECS["client"], dates, date(2024, 1, 1)).all()


def test_an_unreadable_business_date_is_left_for_validation_to_quarantine() -> None:
    dates = pd.Series(["2026-02-30", None, "2023-01-01"])
    assert on_or_after_start(SPECS["invoice"], dates, date(2024, 1, 1)).tolist() == [
        True, True, False]


def test_a_company_start_date_overrides_the_default() -> None:
    assert sync_start(date(2025, 5, 1), date(2024, 1, 1)) == date(2025, 5, 1)
    assert sync_start(None, date(2024, 1, 1)) == date(2024, 1, 1)


# --- held rows due again ---------------------------------------------------------------------


def test_a_held_row_is_due_when_a_record_it_refers_to_synced_after_it_was_held() -> None:
    held = [HeldRow("4", at(0), (("client", "2"),)), HeldRow("5", at(0), (("client", "3"),)),
            HeldRow("6", at(10), (("client", "2"),))]
    synced = {("client", "2"): at(5), ("client", "3"): at(-5)}
    # Project 4 waited for client 2, synced since; 5's client synced before it was held; 6
    # was held after client 2 last synced.
    assert due_again(held, synced) == ["4"]


def test_a_held_row_the_window_reads_anyway_is_not_read_twice() -> None:
    held = [HeldRow("4", at(0), (("client", "2"),))]
    assert due_again(held, {("client", "2"): at(5)}, read_keys=["4"]) == []


def test_a_row_refers_to_the_records_named_by_its_reference_columns() -> None:
    row = {"id": 9, "client_id": 2.0, "number": "P-9", "name": "Kitchen"}
    assert references_of(SPECS["project"], row) == (("client", "2"),)
    assert references_of(SPECS["project"], {**row, "client_id": None}) == ()


# --- the cursor rule -------------------------------------------------------------------------


def test_the_cursor_moves_to_the_window_end_when_every_row_is_recorded() -> None:
    rows = [RowProgress(at(1), True), RowProgress(at(2), True)]
    assert next_cursor(CURSOR, NOON, rows) == NOON
    assert next_cursor(CURSOR, NOON, []) == NOON


def test_the_cursor_stops_before_the_first_row_that_failed_for_a_passing_reason() -> None:
    rows = [RowProgress(at(1), True), RowProgress(at(2), True), RowProgress(at(3), False),
            RowProgress(at(4), True)]
    assert next_cursor(CURSOR, NOON, rows) == at(2)


def test_rows_sharing_the_failed_rows_stamp_are_read_again() -> None:
    rows = [RowProgress(at(1), True), RowProgress(at(2), True), RowProgress(at(2), False)]
    assert next_cursor(CURSOR, NOON, rows) == at(1)


@pytest.mark.parametrize("since", [CURSOR, None])
def test_the_cursor_stays_when_the_first_row_failed(since: datetime | None) -> None:
    rows = [RowProgress(at(1), False), RowProgress(at(2), True)]
    assert next_cursor(since, NOON, rows) is None


# --- rows of an only_when_used spec (seed 004's customers) -------------------------------------


def test_the_clients_in_use_are_found_through_projects_invoices_and_held_rows() -> None:
    """Seed 004: a customer exports "when a Contract/Job, Invoice, or Payment are synced": an
    invoice's client is reached through its project, read by key when its own spec does not
    read it this run; a held project waiting for its client uses it too."""
    ordered = SPECS.in_dependency_order()
    assert referrers_of("client", ordered)[-1] == "project"  # its referrers come first
    assert {"invoice", "time_entry"} <= set(referrers_of("client", ordered))
    projects = {"7": (("client", "3"),), "8": (("client", "4"),)}
    asked: list[tuple[str, list[str]]] = []

    def read_references(name: str, keys: list[str]) -> list[tuple[tuple[str, str], ...]]:
        asked.append((name, list(keys)))
        return [projects[key] for key in keys if name == "project"]

    in_play = {"invoice": [(("project", "7"),)], "project": [(("client", "5"),)],
               "time_entry": [(("employee", "1"), ("project", "8"))]}
    assert used_keys("client", ordered, in_play, read_references) == {"3", "4", "5"}
    assert asked == [("project", ["7", "8"])]
    assert used_keys("client", ordered, {}, read_references) == set()


def test_a_deleted_row_uses_nothing() -> None:
    """Seed 004's "when a Contract/Job ... [is] synced": a job deleted in the app is not one
    synced into QuickBooks, so it sends no customer there."""
    rows = [{"id": 7, "client_id": 3, "deleted_at": None},
            {"id": 8, "client_id": 4, "deleted_at": datetime(2026, 1, 1)}]
    assert references_in_use(SPECS["project"], rows) == [(("client", "3"),)]


def test_only_the_rows_in_use_linked_or_asked_for_sync() -> None:
    """Seed 004: "A customer account only exports to QuickBooks when it is manually synced
    ..., or when a Contract/Job, Invoice, or Payment are synced"; once connected, "it is a
    2-way sync from that point on"."""
    window = read_scope(SPECS["client"], incremental=True, dates=DAYS, until=NOON,
                        cursor=CURSOR)
    keys = ["1", "2", "3"]
    assert in_use(keys, linked={"1"}, used={"3"}, read=window) == [True, False, True]
    record = read_scope(SPECS["client"], incremental=True, dates=DAYS, until=NOON,
                        cursor=CURSOR, record_key="2")
    assert in_use(["2"], linked=set(), used=set(), read=record) == [True]
