from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline.specs import DeleteAction
from qbo_pipeline.sync.diff import FieldOutcome, RecordAction, compared_fields, diff_record
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, make_spec

SPEC = make_spec(CUSTOMER)
SOURCE: dict[str, Any] = {
    "DisplayName": "Acme", "Active": True, "GivenName": "Ann",
    "BillAddr": {"Line1": "1 Main St", "City": "Springfield"},
    "PrimaryEmailAddr": {"Address": "ap@acme.test"},
}


def qbo_echo(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What QBO returns for a payload: ids, metadata, and values shaped its own way."""
    record = {**payload, "Id": "58", "SyncToken": "3", "FullyQualifiedName": "Acme",
              "Balance": 0, "MetaData": {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"},
              "BillAddr": {**payload["BillAddr"], "Id": "91"}}
    record.update(changes)
    return record


def outcomes(diff: Any) -> dict[str, FieldOutcome]:
    return {f.path: f.outcome for f in diff.fields if f.outcome is not FieldOutcome.SAME}


def test_a_new_record_is_created() -> None:
    assert diff_record(SPEC, "17", SOURCE, None, None).action is RecordAction.CREATE


def test_qbos_echo_of_what_was_pushed_is_unchanged() -> None:
    diff = diff_record(SPEC, "17", SOURCE, SOURCE, qbo_echo(SOURCE))
    assert diff.action is RecordAction.UNCHANGED
    assert [f.path for f in diff.fields] == compared_fields(SPEC)


def test_values_are_normalised_before_comparing() -> None:
    spec = make_spec(INVOICE)
    source = {"CustomerRef": {"value": "58"}, "DocNumber": "1001", "TxnDate": "2024-05-02",
              "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 40,
                        "SalesItemLineDetail": {"Qty": 1, "ItemRef": {"value": "32"}}}]}
    qbo = {"Id": "7", "SyncToken": "0", "CustomerRef": {"value": "58", "name": "P-7 - Kitchen"},
           "DocNumber": 1001, "TxnDate": "2024-05-02", "TotalAmt": 40.0,
           "Line": [{"Id": "1", "LineNum": 1, "DetailType": "SalesItemLineDetail",
                     "Amount": 40.00, "Description": "",
                     "SalesItemLineDetail": {"Qty": "1.0", "UnitPrice": 40,
                                             "ItemRef": {"value": "32", "name": "Design"}}},
                    {"DetailType": "SubTotalLineDetail", "Amount": 40.0}]}
    assert diff_record(spec, "5", source, source, qbo).action is RecordAction.UNCHANGED


def test_a_source_change_is_an_update() -> None:
    changed = {**SOURCE, "DisplayName": "Acme Inc"}
    diff = diff_record(SPEC, "17", changed, SOURCE, qbo_echo(SOURCE))
    assert diff.action is RecordAction.UPDATE
    assert outcomes(diff) == {"DisplayName": FieldOutcome.UPDATE}
    assert [(f.source, f.base, f.qbo) for f in diff.updates] == [("Acme Inc", "Acme", "Acme")]


def test_a_cleared_source_field_is_an_update() -> None:
    cleared = {key: value for key, value in SOURCE.items() if key != "GivenName"}
    diff = diff_record(SPEC, "17", cleared, SOURCE, qbo_echo(SOURCE))
    assert outcomes(diff) == {"GivenName": FieldOutcome.UPDATE}


def test_a_qbo_only_change_under_review_is_a_conflict() -> None:
    qbo = qbo_echo(SOURCE, PrimaryEmailAddr={"Address": "billing@acme.test"})
    diff = diff_record(SPEC, "17", SOURCE, SOURCE, qbo)
    assert diff.action is RecordAction.CONFLICT
    [conflict] = diff.conflicts
    assert (conflict.path, conflict.source, conflict.qbo, conflict.base) == (
        "PrimaryEmailAddr.Address", "ap@acme.test", "billing@acme.test", "ap@acme.test")


@pytest.mark.parametrize(("path", "source_value", "qbo_value", "expected"), [
    ("GivenName", "Annie", "Anna", FieldOutcome.KEEP_QBO),        # qbo_wins
    ("BillAddr.City", "Shelbyville", "Ogdenville", FieldOutcome.UPDATE),  # source_wins
    ("DisplayName", "Acme A", "Acme Q", FieldOutcome.CONFLICT),    # review (the default)
])
def test_both_sides_changed_follows_the_field_policy(path: str, source_value: str,
                                                     qbo_value: str,
                                                     expected: FieldOutcome) -> None:
    def with_value(record: dict[str, Any], value: str) -> dict[str, Any]:
        top, _, rest = path.partition(".")
        changed = dict(record)
        changed[top] = {**record[top], rest: value} if rest else value
        return changed

    diff = diff_record(SPEC, "17", with_value(SOURCE, source_value), SOURCE,
                       with_value(qbo_echo(SOURCE), qbo_value))
    assert outcomes(diff) == {path: expected}
    field = next(f for f in diff.fields if f.path == path)
    assert (field.source, field.qbo) == (source_value, qbo_value)


def test_a_field_we_never_sent_is_not_compared() -> None:
    without_name = {key: value for key, value in SOURCE.items() if key != "GivenName"}
    qbo = qbo_echo(without_name, GivenName="Set in QuickBooks")
    diff = diff_record(SPEC, "17", without_name, without_name, qbo)
    assert diff.action is RecordAction.UNCHANGED


def test_first_link_with_no_base_fills_empty_qbo_fields_and_reviews_different_ones() -> None:
    qbo = {"Id": "58", "SyncToken": "0", "DisplayName": "Acme", "GivenName": "Anna",
           "PrimaryEmailAddr": {"Address": "other@acme.test"}}
    diff = diff_record(SPEC, "17", SOURCE, None, qbo)
    assert outcomes(diff) == {
        "Active": FieldOutcome.UPDATE, "BillAddr.Line1": FieldOutcome.UPDATE,
        "BillAddr.City": FieldOutcome.UPDATE, "GivenName": FieldOutcome.KEEP_QBO,
        "PrimaryEmailAddr.Address": FieldOutcome.CONFLICT,
    }


def test_a_changed_line_is_a_change_of_the_line_field() -> None:
    spec = make_spec(INVOICE)
    source = {"DocNumber": "1", "Line": [{"Amount": 40, "Description": "Design"}]}
    changed = {"DocNumber": "1", "Line": [{"Amount": 45, "Description": "Design"}]}
    qbo = {"Id": "7", "SyncToken": "0", **source}
    diff = diff_record(spec, "5", changed, source, qbo)
    assert outcomes(diff) == {"Line": FieldOutcome.UPDATE}
    added_in_qbo = {**qbo, "Line": [*source["Line"], {"Amount": 1, "Description": "Fee"}]}
    assert outcomes(diff_record(spec, "5", source, source, added_in_qbo)) == {
        "Line": FieldOutcome.CONFLICT}


@pytest.mark.parametrize(("qbo", "applied", "expected"), [
    ({"Id": "58", "SyncToken": "3", "Active": True}, False, RecordAction.DELETE),
    ({"Id": "58", "SyncToken": "3", "Active": False}, False, RecordAction.UNCHANGED),
    ({"Id": "58", "SyncToken": "3", "Active": True}, True, RecordAction.UNCHANGED),
    (None, False, RecordAction.UNCHANGED),
])
def test_a_source_delete(qbo: dict[str, Any] | None, applied: bool,
                         expected: RecordAction) -> None:
    diff = diff_record(SPEC, "17", None, SOURCE, qbo, delete_applied=applied)
    assert diff.action is expected
    if expected is RecordAction.DELETE:
        assert diff.delete_action is DeleteAction.INACTIVATE


def test_ignore_leaves_a_deleted_record_alone() -> None:
    spec = make_spec(CUSTOMER, **{"on_source_delete: inactivate": "on_source_delete: ignore"})
    qbo = {"Id": "58", "SyncToken": "3", "Active": True}
    assert diff_record(spec, "17", None, SOURCE, qbo).action is RecordAction.UNCHANGED


def test_a_linked_record_gone_from_qbo_is_a_conflict_not_a_new_create() -> None:
    diff = diff_record(SPEC, "17", SOURCE, SOURCE, None)
    assert diff.action is RecordAction.CONFLICT
    assert diff.reason.startswith("client 17 was synced, but its QuickBooks Customer is gone")
