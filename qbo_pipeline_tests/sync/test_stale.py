from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline.sync.plan import RecordState, WriteKind, plan_changes
from qbo_pipeline.sync.stale import resolve_stale
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, make_spec

SPEC = make_spec(CUSTOMER)
BASE: dict[str, Any] = {
    "DisplayName": "Acme", "Active": True, "GivenName": "Ann",
    "BillAddr": {"Line1": "1 Main St", "City": "Springfield"},
    "PrimaryEmailAddr": {"Address": "ap@acme.test"},
}
NEW_EMAIL = {**BASE, "PrimaryEmailAddr": {"Address": "billing@acme.test"}}


def in_qbo(payload: dict[str, Any], token: str, **changes: Any) -> dict[str, Any]:
    return {**payload, "Id": "58", "SyncToken": token, **changes}


def refused_update(source: dict[str, Any]) -> Any:
    """The update planned on the snapshot (SyncToken 3) that QBO refused as stale."""
    [write] = plan_changes(SPEC, "realm-1", [RecordState("1", source, BASE,
                                                         in_qbo(BASE, "3"))]).writes()
    return write


def test_an_edit_of_another_field_retries_the_write_on_the_new_sync_token() -> None:
    refused = refused_update(NEW_EMAIL)
    fresh = in_qbo(BASE, "4", Notes="call before visiting")  # a field the spec does not map
    resolution = resolve_stale(SPEC, "realm-1", RecordState("1", NEW_EMAIL, BASE, fresh))
    assert resolution.conflict is None and resolution.retry is not None
    assert resolution.retry.kind is WriteKind.UPDATE
    assert resolution.retry.payload == {"Id": "58", "SyncToken": "4", "sparse": True,
                                        "PrimaryEmailAddr": {"Address": "billing@acme.test"}}
    # QBO replays the answer of a request id it has seen: the retry must not reuse it.
    assert resolution.retry.request_id != refused.request_id


def test_an_edit_of_the_same_field_is_a_conflict_and_nothing_is_written() -> None:
    fresh = in_qbo(BASE, "4", PrimaryEmailAddr={"Address": "ap2@acme.test"})
    resolution = resolve_stale(SPEC, "realm-1", RecordState("1", NEW_EMAIL, BASE, fresh))
    assert resolution.retry is None and resolution.conflict is not None
    assert resolution.conflict.qbo_id == "58"
    assert [(f.path, f.source, f.qbo, f.base) for f in resolution.conflict.fields] == [
        ("PrimaryEmailAddr.Address", "billing@acme.test", "ap2@acme.test", "ap@acme.test")]


def test_a_conflict_still_lets_the_other_changed_fields_through() -> None:
    source = {**NEW_EMAIL, "DisplayName": "Acme Inc"}
    fresh = in_qbo(BASE, "4", PrimaryEmailAddr={"Address": "ap2@acme.test"})
    resolution = resolve_stale(SPEC, "realm-1", RecordState("1", source, BASE, fresh))
    assert resolution.conflict is not None and resolution.retry is not None
    assert resolution.retry.payload == {"Id": "58", "SyncToken": "4", "sparse": True,
                                        "DisplayName": "Acme Inc"}


def test_qbo_already_holding_our_values_needs_nothing() -> None:
    fresh = in_qbo(NEW_EMAIL, "4")
    resolution = resolve_stale(SPEC, "realm-1", RecordState("1", NEW_EMAIL, BASE, fresh))
    assert (resolution.retry, resolution.conflict) == (None, None)


def test_a_refused_void_is_voided_again_on_the_new_sync_token() -> None:
    spec = make_spec(INVOICE)
    base = {"CustomerRef": {"value": "58"}, "DocNumber": "1001", "TxnDate": "2024-05-02"}
    fresh = {**base, "Id": "7", "SyncToken": "5", "PrivateNote": "sent twice"}
    resolution = resolve_stale(spec, "realm-1", RecordState("3", None, base, fresh))
    assert resolution.retry is not None and resolution.retry.kind is WriteKind.VOID
    assert resolution.retry.payload == {"Id": "7", "SyncToken": "5"}


def test_the_record_must_have_been_re_read() -> None:
    with pytest.raises(ValueError, match="client 1: re-read the QuickBooks Customer"):
        resolve_stale(SPEC, "realm-1", RecordState("1", NEW_EMAIL, BASE, None))
