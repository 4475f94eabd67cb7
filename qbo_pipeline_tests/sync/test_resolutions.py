"""A decided field's outcome while the values decided on still hold, and after they moved."""

from __future__ import annotations

import pytest

from qbo_pipeline.sync.diff import FieldOutcome, diff_record
from qbo_pipeline.sync.resolutions import (
    DecidedField,
    DecidedOutcome,
    Decision,
    apply_qbo_problems,
    decided_fields,
)
from qbo_pipeline_tests.sync.test_scope_and_cursor import SPECS

S, Q = "555-0199", "555-0100"  # the values decided on


@pytest.mark.parametrize(("decision", "source", "qbo", "outcome"), [
    (Decision.KEEP_SOURCE, S, Q, DecidedOutcome.UPDATE),
    (Decision.KEEP_SOURCE, "555-0777", Q, DecidedOutcome.UPDATE),  # the source's value now
    (Decision.KEEP_SOURCE, Q, Q, DecidedOutcome.SAME),
    (Decision.KEEP_SOURCE, S, "555-0888", None),  # QBO changed again: decide anew
    (Decision.APPLY_QBO, S, Q, DecidedOutcome.PULL),
    (Decision.APPLY_QBO, "555-0777", Q, None),  # never over a newer source edit
    (Decision.DISMISS, S, Q, DecidedOutcome.SAME),
    (Decision.DISMISS, S, "555-0888", None),
    (Decision.DISMISS, "555-0777", Q, None),
])
def test_a_decided_field_holds_while_the_values_decided_on_do(
        decision: Decision, source: str, qbo: str, outcome: DecidedOutcome | None) -> None:
    assert DecidedField(decision, S, Q).outcome(source, qbo) == outcome


def test_the_diff_applies_a_decision_field_by_field() -> None:
    spec = SPECS["client"]
    base = {"DisplayName": "Amy", "PrimaryPhone": {"FreeFormNumber": "555-0000"}}
    source = {**base, "PrimaryPhone": {"FreeFormNumber": S}}
    qbo = {"Id": "58", "SyncToken": "2", **base, "PrimaryPhone": {"FreeFormNumber": Q}}
    undecided = diff_record(spec, "5", source, base, qbo)
    phone = [f for f in undecided.fields if f.path == "PrimaryPhone.FreeFormNumber"]
    assert [f.outcome for f in phone] == [FieldOutcome.CONFLICT]
    decided = decided_fields(Decision.KEEP_SOURCE, [
        {"path": "PrimaryPhone.FreeFormNumber", "source": S, "qbo": Q, "base": "555-0000"}])
    kept = diff_record(spec, "5", source, base, qbo, decided=decided)
    assert [f.outcome for f in kept.fields if f.path == "PrimaryPhone.FreeFormNumber"] == [
        FieldOutcome.UPDATE]


def test_qbo_values_go_back_only_into_fields_that_pull() -> None:
    [problem] = apply_qbo_problems(SPECS["client"], ["PrimaryPhone.FreeFormNumber"])
    assert problem.startswith("client: PrimaryPhone.FreeFormNumber is a push field")
    assert "change the source row to QuickBooks' value" in problem
