"""`qbo-pipeline conflicts list|show|resolve` over a real SQLite state DB: the listing in
text and JSON, decisions recorded, and bad requests answered clearly with nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.state import (
    ConflictField,
    ConflictSighting,
    ConflictStatus,
    NewConflict,
    get_resolution,
    list_conflicts,
    open_conflict,
    record_sightings,
    save_snapshots,
)

REALM = "9130355001"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateDatabase:
    """A state DB with client 5's phone in conflict; the CLI reads it from the environment."""
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    monkeypatch.setenv("QBO_STATE_URL", state.url)
    with state.sessions().begin() as session:
        save_snapshots(session, REALM, "Customer", [
            {"Id": "58", "SyncToken": "2", "DisplayName": "Amy's Bird Sanctuary"}])
        open_conflict(session, REALM, "client", NewConflict("5", "58", [ConflictField(
            "PrimaryPhone.FreeFormNumber", "555-0199", "555-0100", "555-0000")]))
    return state


def conflicts(state: StateDatabase) -> list[tuple[str, ConflictStatus]]:
    with state.sessions().begin() as session:
        return [(c.source_key, c.status) for c in list_conflicts(session, REALM, status=None)]


def test_list_names_the_record_and_its_fields(state: StateDatabase) -> None:
    listed = CliRunner().invoke(main, ["conflicts", "list"])
    assert listed.exit_code == 0, listed.output
    assert "client 5 (Amy's Bird Sanctuary, QBO 58" in listed.output
    assert "PrimaryPhone.FreeFormNumber" in listed.output
    as_json = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    [conflict] = as_json
    assert (conflict["entity"], conflict["source_key"], conflict["status"]) == (
        "client", "5", "open")
    assert conflict["fields"] == [{"path": "PrimaryPhone.FreeFormNumber", "source": "555-0199",
                                   "qbo": "555-0100", "base": "555-0000"}]


def test_show_gives_the_three_values_side_by_side(state: StateDatabase) -> None:
    [conflict] = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    shown = CliRunner().invoke(main, ["conflicts", "show", str(conflict["id"])])
    assert shown.exit_code == 0, shown.output
    assert ("PrimaryPhone.FreeFormNumber: source '555-0199', QBO '555-0100', last synced "
            "'555-0000'") in shown.output


def test_show_says_when_each_side_changed_and_which_runs_found_it(
        state: StateDatabase) -> None:
    [conflict] = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    unseen = CliRunner().invoke(main, ["conflicts", "show", str(conflict["id"])])
    assert unseen.exit_code == 0, unseen.output
    assert "changed in" not in unseen.output and "found by run" not in unseen.output
    found_at = datetime(2026, 12, 2, 13, 21, tzinfo=UTC)
    with state.sessions().begin() as session:
        record_sightings(session, REALM, "client", [ConflictSighting(
            "5", "run-a", datetime(2026, 12, 2, 13, 20, 30, tzinfo=UTC),
            datetime(2026, 12, 2, 5, 19, tzinfo=timezone(timedelta(hours=-8))))],
            seen_at=found_at)
        # A later run still sees it open: the last run moves on, the first stays.
        record_sightings(session, REALM, "client", [ConflictSighting(
            "5", "run-b", datetime(2026, 12, 2, 13, 20, 30, tzinfo=UTC),
            datetime(2026, 12, 2, 13, 19, tzinfo=UTC))], seen_at=found_at + timedelta(hours=1))
    shown = CliRunner().invoke(main, ["conflicts", "show", str(conflict["id"])])
    assert shown.exit_code == 0, shown.output
    assert ("  changed in the source 2026-12-02 13:20 UTC, in QBO 2026-12-02 13:19 UTC; found by "
            "run run-a (2026-12-02 13:21 UTC), last seen by run run-b (2026-12-02 14:21 UTC)\n"
            ) in shown.output
    as_json = json.loads(CliRunner().invoke(main, ["conflicts", "show", str(conflict["id"]),
                                                   "--json"]).output)
    assert {name: as_json[name] for name in (
        "source_changed_at", "qbo_changed_at", "first_seen_run", "first_seen_at",
        "last_seen_run", "last_seen_at")} == {
        "source_changed_at": "2026-12-02T13:20:30+00:00",
        "qbo_changed_at": "2026-12-02T13:19:00+00:00",
        "first_seen_run": "run-a", "first_seen_at": "2026-12-02T13:21:00+00:00",
        "last_seen_run": "run-b", "last_seen_at": "2026-12-02T14:21:00+00:00"}


def test_resolve_records_who_decided_what_for_the_next_run(state: StateDatabase) -> None:
    [conflict] = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    done = CliRunner().invoke(main, ["conflicts", "resolve", str(conflict["id"]),
                                     "--keep-source", "--by", "ana@example.com"])
    assert done.exit_code == 0, done.output
    assert "kept_source by ana@example.com; the next sync applies it" in done.output
    assert conflicts(state) == [("5", ConflictStatus.KEPT_SOURCE)]
    with state.sessions().begin() as session:
        resolution = get_resolution(session, conflict["id"])
        assert resolution is not None and resolution.applied_run_id is None
    assert CliRunner().invoke(main, ["conflicts", "list"]).output.strip() == "no open conflicts"


@pytest.mark.parametrize(("arguments", "message"), [
    (["999", "--dismiss", "--by", "ana"], "there is no conflict 999"),
    (["{id}", "--by", "ana"], "say what to do: --keep-source, --apply-qbo or --dismiss"),
    (["{id}", "--apply-qbo", "--by", "ana"], "PrimaryPhone.FreeFormNumber is a push field"),
    (["{id}", "--dismiss", "--by", " "], "say who decides (--by)"),
])
def test_a_bad_request_is_refused_clearly_and_changes_nothing(
        state: StateDatabase, arguments: list[str], message: str) -> None:
    [conflict] = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    given = [a.replace("{id}", str(conflict["id"])) for a in arguments]
    refused = CliRunner().invoke(main, ["conflicts", "resolve", *given])
    assert refused.exit_code != 0
    assert message in refused.output
    assert "Traceback" not in refused.output
    assert conflicts(state) == [("5", ConflictStatus.OPEN)]


def test_a_conflict_decided_already_is_not_decided_again(state: StateDatabase) -> None:
    [conflict] = json.loads(CliRunner().invoke(main, ["conflicts", "list", "--json"]).output)
    first = CliRunner().invoke(main, ["conflicts", "resolve", str(conflict["id"]), "--dismiss",
                                      "--by", "ana"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["conflicts", "resolve", str(conflict["id"]),
                                      "--keep-source", "--by", "bo"])
    assert again.exit_code != 0
    assert f"conflict {conflict['id']} was decided already (dismissed by ana)" in again.output
    assert conflicts(state) == [("5", ConflictStatus.DISMISSED)]
    shown = CliRunner().invoke(main, ["conflicts", "show", "12345"])
    assert shown.exit_code != 0 and "there is no conflict 12345" in shown.output
    unknown = CliRunner().invoke(main, ["conflicts", "list", "--entity", "clients"])
    assert unknown.exit_code != 0 and "unknown entity 'clients'" in unknown.output
