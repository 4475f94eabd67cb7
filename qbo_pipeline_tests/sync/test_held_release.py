"""When a held row that passes may leave the quarantine: at once when the change window
holds it (a killed run leaves the cursor before it), else only once its outcome is recorded
(issue 8: a held row read again by key was lost to a kill between validation and its write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qbo_pipeline.sync.cursor import window_rows
from qbo_pipeline.sync.plan import Write, WriteKind
from qbo_pipeline.sync.results import Answer, Tally
from qbo_pipeline.sync.scope import BusinessDates, ReadMode, ReadScope
from qbo_pipeline_tests.sync.test_scope_and_cursor import SPECS

CURSOR = datetime(2024, 5, 1, 9, tzinfo=UTC)
UNTIL = CURSOR + timedelta(minutes=15)
STAMPS = {"changed": CURSOR + timedelta(minutes=1), "held": CURSOR - timedelta(days=9)}


def test_only_the_rows_of_a_change_window_are_read_again_after_a_kill() -> None:
    window = ReadScope(ReadMode.CHANGED, UNTIL, since=CURSOR)
    assert window_rows(window, STAMPS) == {"changed"}
    assert window_rows(ReadScope(ReadMode.CHANGED, UNTIL), STAMPS) == {"changed", "held"}


def test_a_backfill_or_a_one_record_sync_moves_no_cursor_so_holds_no_window() -> None:
    days = BusinessDates(CURSOR.date(), CURSOR.date())
    assert window_rows(ReadScope(ReadMode.DATES, UNTIL, dates=days), STAMPS) == set()
    assert window_rows(ReadScope(ReadMode.RECORD, UNTIL, record_key="held"), STAMPS) == set()
    assert window_rows(None, STAMPS) == set()


def test_a_record_is_settled_unless_refused_blocked_or_failed_for_a_passing_reason() -> None:
    spec = next(iter(SPECS.in_dependency_order()))
    tally = Tally()
    for key, answer in (("written", Answer(record={"Id": "1"})),
                        ("refused", Answer(error="6000 bad", refused=True)),
                        ("failed", Answer(error="503 unavailable"))):
        tally.count(spec, Write(WriteKind.CREATE, key, None, {}, f"rid-{key}"), answer)
    tally.blocked("blocked", "two QBO records match")
    keys = ["written", "refused", "failed", "blocked", "unchanged"]
    assert tally.settled(keys) == ["written", "unchanged"]
