"""The import on connect as the core decides it: which specs it covers, how they read, and
what of a plan it carries out (links only, never a write to QBO)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from qbo_pipeline.specs import load_specs
from qbo_pipeline.sync.plan import Link, Plan, Write, WriteKind, import_only
from qbo_pipeline.sync.scope import BusinessDates, ReadMode, imported_on_connect, read_scope

SPECS = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)


def test_the_names_lists_are_imported_and_the_transactions_are_not() -> None:
    """Seeds 000 and 003: customers, sub-customers, employees, services are read on connect."""
    imported = {spec.name for spec in SPECS if imported_on_connect(spec)}
    assert {"client", "project", "employee", "service"} <= imported
    assert not imported & {"invoice", "time_entry"}


def test_an_import_reads_every_row_and_leaves_the_cursor_for_the_first_sync() -> None:
    scope = read_scope(SPECS["client"], incremental=True, dates=BusinessDates(DAY, DAY),
                       until=NOON, cursor=NOON, importing=True)
    assert (scope.mode, scope.since) == (ReadMode.CHANGED, None)
    assert not scope.advances_cursor
    normal = read_scope(SPECS["client"], incremental=True, dates=BusinessDates(DAY, DAY),
                        until=NOON, cursor=NOON)
    assert normal.since == NOON and normal.advances_cursor


def test_an_import_links_what_matched_and_writes_nothing() -> None:
    create = Write(WriteKind.CREATE, "2", None, {"DisplayName": "New"}, "r-2")
    update = Write(WriteKind.UPDATE, "1", "58", {"DisplayName": "Acme"}, "r-1")
    plan = Plan("client", "realm", creates=[create], updates=[update],
                links=[Link("1", "58", "0", ("DisplayName",))], unchanged=["3"])
    imported = import_only(plan)
    assert imported.writes() == []
    assert imported.links == plan.links and imported.unchanged == ["3"]
