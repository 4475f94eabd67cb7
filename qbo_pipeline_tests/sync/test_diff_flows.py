"""The three-way diff per field flow (push, pull, two_way) and policy, last_modified_wins too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from qbo_pipeline.specs import ConflictPolicy, Direction
from qbo_pipeline.sync.diff import (
    ChangedLast,
    FieldOutcome,
    RecordAction,
    changed_last,
    diff_record,
    field_outcome,
    qbo_updated_at,
)
from qbo_pipeline_tests.sync.sample_specs import TWO_WAY_CLIENT, make_spec

PUSH, PULL, TWO_WAY = Direction.PUSH, Direction.PULL, Direction.TWO_WAY
REVIEW, SOURCE_WINS = ConflictPolicy.REVIEW, ConflictPolicy.SOURCE_WINS
QBO_WINS, LAST = ConflictPolicy.QBO_WINS, ConflictPolicy.LAST_MODIFIED_WINS
SOURCE_LATER, QBO_LATER = ChangedLast.SOURCE, ChangedLast.QBO
SAME, UPDATE, KEEP_QBO = FieldOutcome.SAME, FieldOutcome.UPDATE, FieldOutcome.KEEP_QBO
CONFLICT, PULLED = FieldOutcome.CONFLICT, FieldOutcome.PULL


@pytest.mark.parametrize(("flow", "policy", "s", "b", "q", "last", "expected"), [
    # s == q: nothing to do, whatever the flow.
    (PUSH, REVIEW, "a", "b", "a", None, SAME),
    (PULL, REVIEW, "a", "b", "a", None, SAME),
    (TWO_WAY, REVIEW, "a", "b", "a", None, SAME),
    # push-only: as before, plus last_modified_wins.
    (PUSH, REVIEW, "s", "b", "b", None, UPDATE),
    (PUSH, REVIEW, "b", "b", "q", None, CONFLICT),  # QBO moved: a push-only field reviews it
    (PUSH, SOURCE_WINS, "s", "b", "q", None, UPDATE),
    (PUSH, QBO_WINS, "s", "b", "q", None, KEEP_QBO),
    (PUSH, REVIEW, "s", "b", "q", None, CONFLICT),
    (PUSH, LAST, "s", "b", "q", SOURCE_LATER, UPDATE),
    (PUSH, LAST, "s", "b", "q", QBO_LATER, KEEP_QBO),
    (PUSH, LAST, "s", "b", "q", None, CONFLICT),  # a tie
    # pull-only: QBO is the authority, no conflict whatever moved.
    (PULL, REVIEW, "s", "b", "q", None, PULLED),
    (PULL, SOURCE_WINS, "b", "b", "q", SOURCE_LATER, PULLED),
    (PULL, REVIEW, "s", None, "q", None, PULLED),
    # two_way: one side moved.
    (TWO_WAY, REVIEW, "s", "b", "b", None, UPDATE),
    (TWO_WAY, REVIEW, "b", "b", "q", None, PULLED),
    # two_way: both moved, each policy.
    (TWO_WAY, REVIEW, "s", "b", "q", None, CONFLICT),
    (TWO_WAY, SOURCE_WINS, "s", "b", "q", None, UPDATE),
    (TWO_WAY, QBO_WINS, "s", "b", "q", None, PULLED),
    (TWO_WAY, LAST, "s", "b", "q", SOURCE_LATER, UPDATE),
    (TWO_WAY, LAST, "s", "b", "q", QBO_LATER, PULLED),
    (TWO_WAY, LAST, "s", "b", "q", None, CONFLICT),
    # two_way without a base: what one side lacks it takes from the other; both set: policy.
    (TWO_WAY, REVIEW, "s", None, None, None, UPDATE),
    (TWO_WAY, REVIEW, None, None, "q", None, PULLED),
    (TWO_WAY, REVIEW, "s", None, "q", None, CONFLICT),
    (TWO_WAY, QBO_WINS, "s", None, "q", None, PULLED),
])
def test_field_outcomes(flow: Direction, policy: ConflictPolicy, s: Any, b: Any, q: Any,
                        last: ChangedLast | None, expected: FieldOutcome) -> None:
    assert field_outcome(flow, policy, s, b, q, last) is expected


# -- times ------------------------------------------------------------------------------------


def test_qbo_times_are_read_in_utc() -> None:
    qbo = {"MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"}}
    assert qbo_updated_at(qbo) == dt.datetime(2024, 5, 1, 17, tzinfo=dt.UTC)
    assert qbo_updated_at({"MetaData": {"LastUpdatedTime": "yesterday"}}) is None
    assert qbo_updated_at({}) is None


@pytest.mark.parametrize(("source_time", "expected"), [
    (dt.datetime(2024, 5, 1, 17, 30), ChangedLast.SOURCE),  # naive: taken as UTC
    (dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
     ChangedLast.SOURCE),
    (dt.datetime(2024, 5, 1, 16, 59, tzinfo=dt.UTC), ChangedLast.QBO),
    (dt.datetime(2024, 5, 1, 19, tzinfo=dt.timezone(dt.timedelta(hours=2))), None),  # a tie
    (None, None),
])
def test_changed_last_compares_in_utc(source_time: dt.datetime | None,
                                      expected: ChangedLast | None) -> None:
    qbo = {"MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"}}
    assert changed_last(source_time, qbo) is expected


# -- whole records of a two-way spec ----------------------------------------------------------

SPEC = make_spec(TWO_WAY_CLIENT)
BASE: dict[str, Any] = {"DisplayName": "Acme", "PrimaryEmailAddr": {"Address": "ap@acme.test"},
                        "PrimaryPhone": {"FreeFormNumber": "555-0100"}, "Active": True}


def in_qbo(payload: dict[str, Any], at: str = "2024-05-01T10:00:00-07:00",
           **changes: Any) -> dict[str, Any]:
    return {**payload, "Id": "58", "SyncToken": "3", "Balance": 0,
            "MetaData": {"LastUpdatedTime": at}, **changes}


def outcomes(diff: Any) -> dict[str, FieldOutcome]:
    return {f.path: f.outcome for f in diff.fields if f.outcome is not FieldOutcome.SAME}


def test_a_phone_changed_only_in_qbo_is_pulled() -> None:
    qbo = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"})
    diff = diff_record(SPEC, "17", BASE, BASE, qbo, pull_only_same={"Balance"})
    assert diff.action is RecordAction.PULL
    assert outcomes(diff) == {"PrimaryPhone.FreeFormNumber": PULLED}
    assert [(f.source, f.base, f.qbo) for f in diff.pulls] == [
        ("555-0100", "555-0100", "555-0199")]


def test_a_push_only_email_changed_only_in_qbo_is_reviewed_not_pulled() -> None:
    qbo = in_qbo(BASE, PrimaryEmailAddr={"Address": "billing@acme.test"})
    diff = diff_record(SPEC, "17", BASE, BASE, qbo, pull_only_same={"Balance"})
    assert outcomes(diff) == {"PrimaryEmailAddr.Address": CONFLICT}


def test_an_update_and_a_pull_in_one_record() -> None:
    source = {**BASE, "PrimaryEmailAddr": {"Address": "new@acme.test"}}
    qbo = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"}, Balance=120)
    diff = diff_record(SPEC, "17", source, BASE, qbo, pull_only_same=set())
    assert diff.action is RecordAction.UPDATE
    assert outcomes(diff) == {"PrimaryEmailAddr.Address": UPDATE,
                              "PrimaryPhone.FreeFormNumber": PULLED, "Balance": PULLED}


def test_a_value_only_qbo_holds_is_pulled_and_qbos_own_additions_are_not() -> None:
    # Notes was never set on either side: QBO filling it in is news for the source.
    qbo = in_qbo(BASE, Notes="gate code 1234", FullyQualifiedName="Acme")
    diff = diff_record(SPEC, "17", BASE, BASE, qbo, pull_only_same={"Balance"})
    assert outcomes(diff) == {"Notes": PULLED}
    unchanged = diff_record(SPEC, "17", BASE, BASE, in_qbo(BASE), pull_only_same={"Balance"})
    assert unchanged.action is RecordAction.UNCHANGED
    # Without the column-space answer a pull-only field is compared as a payload: the source
    # payload never holds it, so QBO's Balance 0 reads as a value to pull.
    assert outcomes(diff_record(SPEC, "17", BASE, BASE, in_qbo(BASE))) == {"Balance": PULLED}


@pytest.mark.parametrize(("source_time", "expected"), [
    (dt.datetime(2024, 5, 1, 18, tzinfo=dt.UTC), UPDATE),
    (dt.datetime(2024, 5, 1, 16, tzinfo=dt.UTC), PULLED),
    (dt.datetime(2024, 5, 1, 17, tzinfo=dt.UTC), CONFLICT),
    (None, CONFLICT),
])
def test_last_modified_wins_on_a_record(source_time: dt.datetime | None,
                                        expected: FieldOutcome) -> None:
    spec = make_spec(TWO_WAY_CLIENT, **{"default: review": "default: last_modified_wins"})
    source = {**BASE, "PrimaryPhone": {"FreeFormNumber": "555-0142"}}
    qbo = in_qbo(BASE, PrimaryPhone={"FreeFormNumber": "555-0199"})
    diff = diff_record(spec, "17", source, BASE, qbo, source_updated_at=source_time,
                       pull_only_same={"Balance"})
    assert outcomes(diff) == {"PrimaryPhone.FreeFormNumber": expected}


def test_pull_only_fields_follow_the_column_space_answer() -> None:
    qbo = in_qbo(BASE, Balance=120)
    assert outcomes(diff_record(SPEC, "17", BASE, BASE, qbo, pull_only_same={"Balance"})) == {}
    assert outcomes(diff_record(SPEC, "17", BASE, BASE, qbo, pull_only_same=set())) == {
        "Balance": PULLED}
