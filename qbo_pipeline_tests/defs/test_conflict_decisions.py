"""A conflict decided by a person is applied by the next run, each of the three ways, and
checked in QBO and in the source (real HTTP to the emulator, real SQLite databases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetCheckEvaluation, AssetCheckSeverity, ExecuteInProcessResult

from qbo_pipeline.defs.assets import CONFLICTS_CHECK
from qbo_pipeline.review.conflicts import ConflictView, ReviewError, decide, list_conflicts
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.sync.resolutions import Decision
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_pull_and_two_way import (
    client_phone,
    edit_in_qbo,
    linked_id,
    qbo_phone,
    qbo_record,
    synced_twice,
    two_way_clients,
    writes_of,
)


@dataclass(frozen=True)
class FoundConflict:
    """An open conflict, the run that found it, and the source row's stamp it was found with."""

    conflict: ConflictView
    run: ExecuteInProcessResult
    touched_at: datetime  # naive UTC, as written to the source


def conflict_on_phone(pipeline: PipelineUnderTest, specs: SpecSet) -> ConflictView:
    """Client 5's phone changed in QBO by a bookkeeper and in the source: one open conflict."""
    return found_conflict_on_phone(pipeline, specs).conflict


def found_conflict_on_phone(pipeline: PipelineUnderTest, specs: SpecSet) -> FoundConflict:
    synced_twice(pipeline, specs)
    edit_in_qbo(pipeline, "Customer", linked_id(pipeline, "client", "5"),
                {"PrimaryPhone": {"FreeFormNumber": "555-0100"}})
    touched_at = touch(pipeline, "UPDATE clients SET phone = '555-0199', updated_at = :now "
                                 "WHERE id = 5")
    result = pipeline.run(specs=specs)
    assert result.success
    check = conflicts_check(result)
    assert not check.passed and check.severity is AssetCheckSeverity.WARN
    assert check.metadata["open_conflicts"].value == 1
    assert check.metadata["where_to_decide"].value == "qbo-pipeline conflicts list --entity client"
    [conflict] = list_conflicts(pipeline.sessions, specs)
    assert (conflict.entity, conflict.source_key) == ("client", "5")
    [phone] = [f for f in conflict.fields if f["path"] == "PrimaryPhone.FreeFormNumber"]
    assert (phone["source"], phone["qbo"]) == ("555-0199", "555-0100")
    assert conflict.name != "client 5"  # the customer's name in QBO, for a person to read
    return FoundConflict(conflict, result, touched_at)


def conflicts_check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [check] = [e for e in result.get_asset_check_evaluations()
               if e.check_name == CONFLICTS_CHECK and e.asset_key.path[0] == "client"]
    return check


def applied_run(pipeline: PipelineUnderTest, specs: SpecSet, conflict_id: int) -> str | None:
    [view] = [v for v in list_conflicts(pipeline.sessions, specs, include_decided=True)
              if v.id == conflict_id]
    return view.applied_by_run


@pytest.mark.parametrize(("decision", "phones"), [
    (Decision.KEEP_SOURCE, ("555-0199", "555-0199")),
    (Decision.APPLY_QBO, ("555-0100", "555-0100")),
    (Decision.DISMISS, ("555-0199", "555-0100")),
])
def test_each_decision_is_applied_by_the_next_run_and_nothing_echoes(
        pipeline: PipelineUnderTest, tmp_path: Path, decision: Decision,
        phones: tuple[str, str]) -> None:
    specs = two_way_clients(tmp_path, "review")
    conflict = conflict_on_phone(pipeline, specs)
    [decided] = decide(pipeline.sessions, specs, [conflict.id], decision, "ana@example.com")
    assert (decided.status, decided.decided_by) != ("open", None)
    result = pipeline.run(specs=specs)
    assert result.success
    assert (client_phone(pipeline, "5"), qbo_phone(pipeline, "5")) == phones
    assert list_conflicts(pipeline.sessions, specs) == []  # not raised again
    assert conflicts_check(result).passed
    assert applied_run(pipeline, specs, conflict.id) == result.run_id
    assert writes_of(pipeline.run(specs=specs)) == (0, 0)


def test_a_dismissed_difference_is_raised_again_once_a_side_changes(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    specs = two_way_clients(tmp_path, "review")
    conflict = conflict_on_phone(pipeline, specs)
    decide(pipeline.sessions, specs, [conflict.id], Decision.DISMISS, "ana@example.com")
    assert pipeline.run(specs=specs).success
    touch(pipeline, "UPDATE clients SET phone = '555-0123', updated_at = :now WHERE id = 5")
    assert pipeline.run(specs=specs).success
    [again] = list_conflicts(pipeline.sessions, specs)
    assert again.id != conflict.id and again.source_key == "5"


def test_a_decision_on_a_record_changed_again_meanwhile_opens_a_new_conflict(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    """Applying QBO's value decided on would overwrite the source's newer edit: no."""
    specs = two_way_clients(tmp_path, "review")
    conflict = conflict_on_phone(pipeline, specs)
    decide(pipeline.sessions, specs, [conflict.id], Decision.APPLY_QBO, "ana@example.com")
    touch(pipeline, "UPDATE clients SET phone = '555-0777', updated_at = :now WHERE id = 5")
    assert pipeline.run(specs=specs).success
    assert (client_phone(pipeline, "5"), qbo_phone(pipeline, "5")) == ("555-0777", "555-0100")
    [again] = list_conflicts(pipeline.sessions, specs)
    assert [f["source"] for f in again.fields if f["path"] == "PrimaryPhone.FreeFormNumber"] \
        == ["555-0777"]


def test_keep_source_on_a_push_spec_pushes_it_and_apply_qbo_is_refused_with_the_way_out(
        pipeline: PipelineUnderTest) -> None:
    conflict = conflict_on_phone(pipeline, SPECS)
    with pytest.raises(ReviewError, match=r"PrimaryPhone.FreeFormNumber is a push field.*"
                                          r"change the source row"):
        decide(pipeline.sessions, SPECS, [conflict.id], Decision.APPLY_QBO, "ana@example.com")
    assert [c.id for c in list_conflicts(pipeline.sessions, SPECS)] == [conflict.id]  # kept
    decide(pipeline.sessions, SPECS, [conflict.id], Decision.KEEP_SOURCE, "ana@example.com")
    assert pipeline.run().success
    assert (client_phone(pipeline, "5"), qbo_phone(pipeline, "5")) == ("555-0199", "555-0199")
    with pytest.raises(ReviewError, match=f"conflict {conflict.id} was decided already"):
        decide(pipeline.sessions, SPECS, [conflict.id], Decision.DISMISS, "ana@example.com")
    with pytest.raises(ReviewError, match="there is no conflict 999"):
        decide(pipeline.sessions, SPECS, [999], Decision.DISMISS, "ana@example.com")


def test_a_conflict_says_when_each_side_changed_and_which_runs_found_it(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    specs = two_way_clients(tmp_path, "review")
    found = found_conflict_on_phone(pipeline, specs)
    conflict = found.conflict
    assert conflict.first_seen_run == conflict.last_seen_run == found.run.run_id
    assert conflict.first_seen_at is not None and conflict.first_seen_at == conflict.last_seen_at
    assert conflict.source_changed_at == found.touched_at.replace(tzinfo=UTC)
    in_qbo = qbo_record(pipeline, "Customer", linked_id(pipeline, "client", "5"))
    edited_at = datetime.fromisoformat(in_qbo["MetaData"]["LastUpdatedTime"]).astimezone(UTC)
    assert conflict.qbo_changed_at == edited_at
    as_json = conflict.to_json()
    assert (as_json["first_seen_run"], as_json["qbo_changed_at"]) == (found.run.run_id,
                                                                     edited_at.isoformat())

    # The source changes again before anyone decides: the next run still sees the conflict.
    touched_again = touch(pipeline, "UPDATE clients SET phone = '555-0123', updated_at = :now "
                                    "WHERE id = 5")
    later = pipeline.run(specs=specs)
    assert later.success
    [again] = list_conflicts(pipeline.sessions, specs)
    assert again.id == conflict.id
    assert (again.first_seen_run, again.first_seen_at) == (found.run.run_id,
                                                           conflict.first_seen_at)
    assert again.last_seen_run == later.run_id != found.run.run_id
    assert again.last_seen_at is not None and again.last_seen_at > conflict.first_seen_at
    assert again.source_changed_at == touched_again.replace(tzinfo=UTC)
    assert again.qbo_changed_at == edited_at  # QBO did not change
