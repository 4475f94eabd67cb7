"""Likely duplicates: an unlinked, live QBO record matching a linked one by match keys."""

from __future__ import annotations

from typing import Any

from qbo_pipeline.sync.duplicates import LikelyDuplicate, likely_duplicates
from qbo_pipeline_tests.sync.test_scope_and_cursor import SPECS


def customer(qbo_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"Id": qbo_id, "SyncToken": "0", "DisplayName": name, **fields}


def test_an_unlinked_record_with_a_linked_ones_match_keys_is_listed() -> None:
    linked = {"5": customer("58", "Amy's Bird Sanctuary"), "6": customer("59", "Cool Cars")}
    unlinked = [customer("70", "  amy's   BIRD sanctuary"),  # QBO compares names loosely
                customer("71", "Someone Else")]
    assert likely_duplicates(SPECS["client"], linked, unlinked) == [
        LikelyDuplicate("5", "58", "70", ("DisplayName",))]


def test_records_taken_out_of_use_or_without_the_keys_are_not_duplicates() -> None:
    linked = {"5": customer("58", "Amy"), "7": customer("60", "Old", Active=False)}
    unlinked = [customer("70", "Amy", Active=False),  # made inactive: repaired already
                customer("71", "Old"),  # the linked one is inactive: nothing to repair
                {"Id": "72", "SyncToken": "0"}]  # no DisplayName: matches nothing
    assert likely_duplicates(SPECS["client"], linked, unlinked) == []


def test_a_voided_invoice_is_not_a_duplicate_any_more() -> None:
    spec = SPECS["invoice"]
    linked = {"2": {"Id": "130", "DocNumber": "1002", "TotalAmt": 50}}
    copy = {"Id": "131", "DocNumber": "1002", "TotalAmt": 50}
    voided = {**copy, "TotalAmt": 0, "PrivateNote": "Voided"}
    assert likely_duplicates(spec, linked, [copy]) == [
        LikelyDuplicate("2", "130", "131", ("DocNumber",))]
    assert likely_duplicates(spec, linked, [voided]) == []
