"""A linked record both sides hold alike, whose base lags behind (a run wrote it and died
before its link learnt what it wrote): the plan moves the base on, so that the pipeline's own
write is never taken for a change made in QBO (issue 8, found by the chaos harness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline.specs import EntitySpec, load_specs
from qbo_pipeline.sync.diff import RecordAction
from qbo_pipeline.sync.plan import RecordState, plan_changes
from qbo_pipeline.sync.settings import as_configured

OLD, NEW, NEXT = "555-0100", "555-0101", "555-0102"


@pytest.fixture(scope="module")
def client() -> EntitySpec:
    """The shipped client spec as a company on the default settings has it (push only)."""
    return as_configured(load_specs(Path(__file__).resolve().parents[2] / "mapping_specs"),
                         "client")


def payload(phone: str) -> dict[str, Any]:
    return {"DisplayName": "Acme", "CompanyName": "Acme", "Active": True,
            "PrimaryEmailAddr": {"Address": "ap@acme.test"},
            "PrimaryPhone": {"FreeFormNumber": phone}}


def qbo(phone: str, token: str = "3") -> dict[str, Any]:
    return {**payload(phone), "Id": "58", "SyncToken": token}


def test_a_base_behind_what_both_sides_hold_learns_it(client: EntitySpec) -> None:
    plan = plan_changes(client, "R", [RecordState("1", payload(NEW), payload(OLD), qbo(NEW))])
    assert plan.unchanged == ["1"] and plan.writes() == []
    [rebase] = plan.rebases
    assert (rebase.source_key, rebase.qbo_id, rebase.sync_token) == ("1", "58", "3")
    assert rebase.base == payload(NEW)
    # With that base, the next change of the phone in the source is an update, no conflict.
    after = plan_changes(client, "R", [RecordState("1", payload(NEXT), rebase.base,
                                                   qbo(NEW))])
    assert [d.action for d in after.diffs] == [RecordAction.UPDATE] and not after.conflicts


def test_a_base_in_step_is_left_alone(client: EntitySpec) -> None:
    plan = plan_changes(client, "R", [RecordState("1", payload(NEW), payload(NEW), qbo(NEW))])
    assert plan.unchanged == ["1"] and plan.rebases == []


def test_a_record_deleted_in_the_source_keeps_its_base(client: EntitySpec) -> None:
    inactive = {**qbo(NEW), "Active": False}
    plan = plan_changes(client, "R", [RecordState("1", None, payload(OLD), inactive,
                                                  delete_applied=True)])
    assert plan.unchanged == ["1"] and plan.rebases == []
