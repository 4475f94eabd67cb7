"""The client against the emulator over real HTTP: CRUD, paging, batches, stale writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbo_pipeline.qbo.client import BatchOperation
from qbo_pipeline.qbo.errors import (
    DuplicateNameError,
    ObjectNotFoundError,
    StaleObjectError,
    ValidationError,
)
from qbo_pipeline_tests.qbo.conftest import ClientUnderTest


def customer(name: str) -> dict[str, Any]:
    return {"DisplayName": name, "PrimaryEmailAddr": {"Address": "ap@example.com"}}


def invoice_for(qbo: ClientUnderTest, customer_id: str, amount: float) -> dict[str, Any]:
    (services,) = qbo.client.query("select * from Item where Name = 'Services'")
    return {"CustomerRef": {"value": customer_id}, "Line": [{
        "Amount": amount, "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": services["Id"]}}}]}


def test_create_read_and_sparse_update(qbo: ClientUnderTest) -> None:
    created = qbo.client.create("Customer", customer("Acme Ltd"), "create-acme")
    assert created["SyncToken"] == "0"
    assert qbo.client.read("Customer", created["Id"])["DisplayName"] == "Acme Ltd"
    updated = qbo.client.update("Customer", {"Id": created["Id"], "SyncToken": "0",
                                             "CompanyName": "Acme Limited"}, "update-acme-1")
    assert updated["SyncToken"] == "1"
    assert updated["CompanyName"] == "Acme Limited"
    assert updated["DisplayName"] == "Acme Ltd"  # sparse: untouched fields stay


def test_a_value_json_cannot_carry_is_refused_naming_it_not_reported_as_qbo_down(
        qbo: ClientUnderTest) -> None:
    body = {**customer("Not A Number Ltd"), "Balance": float("nan")}
    with pytest.raises(ValidationError, match="NaN or infinity") as refused:
        qbo.client.create("Customer", body, "create-nan")
    assert "could not reach" not in str(refused.value)
    query = "select * from Customer where DisplayName = 'Not A Number Ltd'"
    assert list(qbo.client.query(query)) == []  # nothing was sent


def test_stale_sync_token_raises_stale_object_error(qbo: ClientUnderTest) -> None:
    created = qbo.client.create("Customer", customer("Stale Co"), "create-stale")
    qbo.admin("POST", f"realms/{qbo.realm.realm_id}/Customer/{created['Id']}/edit",
              {"CompanyName": "Edited in QBO"})
    with pytest.raises(StaleObjectError) as raised:
        qbo.client.update("Customer", {"Id": created["Id"], "SyncToken": "0",
                                       "CompanyName": "Ours"}, "update-stale")
    assert raised.value.code == "5010"
    assert f"update Customer Id={created['Id']}" in str(raised.value)


def test_void_and_delete_invoices(qbo: ClientUnderTest) -> None:
    buyer = qbo.client.create("Customer", customer("Buyer"), "create-buyer")
    voided = qbo.client.create("Invoice", invoice_for(qbo, buyer["Id"], 100), "create-inv-1")
    result = qbo.client.void("Invoice", voided["Id"], voided["SyncToken"], "void-inv-1")
    assert result["Balance"] == 0
    assert qbo.client.read("Invoice", voided["Id"])["Id"] == voided["Id"]
    deleted = qbo.client.create("Invoice", invoice_for(qbo, buyer["Id"], 50), "create-inv-2")
    qbo.client.delete("Invoice", deleted["Id"], deleted["SyncToken"], "delete-inv-2")
    with pytest.raises(ObjectNotFoundError, match=f"read Invoice Id={deleted['Id']}"):
        qbo.client.read("Invoice", deleted["Id"])


def test_query_pages_through_more_than_1000_records(qbo: ClientUnderTest) -> None:
    seeded = [customer(f"Seeded {number:04d}") for number in range(1105)]
    qbo.admin("POST", f"realms/{qbo.realm.realm_id}/seed", {"Customer": seeded})
    rows = list(qbo.client.query("select * from Customer where DisplayName like 'Seeded%' "
                                 "orderby Id"))
    assert len(rows) == 1105
    assert len({row["Id"] for row in rows}) == 1105
    assert qbo.client.count("select count(*) from Customer where DisplayName like "
                            "'Seeded%'") == 1105


def test_batch_of_45_goes_in_two_requests_and_reports_each_item(qbo: ClientUnderTest) -> None:
    qbo.client.create("Customer", customer("Taken Name"), "create-taken")
    operations = [BatchOperation(f"c-{n}", "create", "Customer", customer(f"Batch {n}"))
                  for n in range(44)]
    operations.append(BatchOperation("c-dup", "create", "Customer", customer("Taken Name")))
    results = qbo.client.batch(operations)
    assert [result.bid for result in results] == [op.bid for op in operations]
    assert all(result.ok for result in results[:44])
    assert {result.record["DisplayName"] for result in results[:44] if result.record} == {
        f"Batch {n}" for n in range(44)}
    assert isinstance(results[44].error, DuplicateNameError)
    usage = qbo.admin("GET", "limits")["usage"][qbo.realm.realm_id]
    assert usage["batches_in_window"] == 2


def test_resent_batch_is_answered_once_by_requestid(qbo: ClientUnderTest) -> None:
    operations = [BatchOperation(f"r-{n}", "create", "Customer", customer(f"Resent {n}"))
                  for n in range(3)]
    first = qbo.client.batch(operations)
    again = qbo.client.batch(operations)
    assert [r.record["Id"] for r in first if r.record] == [
        r.record["Id"] for r in again if r.record]
    assert qbo.client.count("select count(*) from Customer where DisplayName like "
                            "'Resent%'") == 3


def test_cdc_returns_changes_since_a_moment(qbo: ClientUnderTest) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = qbo.client.create("Customer", customer("Changed Co"), "create-changed")
    changed = qbo.client.cdc(["Customer", "Invoice"], before)
    assert created["Id"] in {row["Id"] for row in changed["Customer"]}
    assert changed["Invoice"] == []
