"""The specs in `mapping_specs/` run through the core with rows shaped like the demo source."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from qbo_pipeline.source.demo_schema import metadata
from qbo_pipeline.specs import SpecSet, load_specs
from qbo_pipeline.sync.mapping import PAYLOAD, map_frame, map_row
from qbo_pipeline.sync.plan import RecordState, plan_changes
from qbo_pipeline.sync.selection import select_frame
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline.sync.validation import validate_frame

NOW = dt.datetime(2024, 5, 1, 9)
LINKED = {("client", "1"): "101", ("project", "7"): "107", ("employee", "3"): "103",
          ("contractor", "4"): "204"}


@pytest.fixture(scope="module")
def specs() -> SpecSet:
    return load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")


def resolve(spec_name: str, key: str) -> str | None:
    return LINKED.get((spec_name, key))


def test_client_needs_an_email(specs: SpecSet) -> None:
    row = {"id": 1, "name": "Acme Builders", "email": None, "phone": "555-0100",
           "contact_first_name": "Ann", "contact_last_name": "Lee", "address_line1": "1 Main",
           "address_line2": None, "city": "Springfield", "state": "IL", "postal_code": "62701",
           "active": 1, "created_at": NOW, "updated_at": NOW, "deleted_at": None}
    spec = as_configured(specs, "client")
    frame = map_frame(spec, pd.DataFrame([row, {**row, "id": 2, "email": "ap@acme.test"}]))
    result = validate_frame(spec, frame)
    assert result.quarantined[0].reasons == [
        "client 1: PrimaryEmailAddr.Address is required - add an email to the client"]
    payload = result.valid[PAYLOAD].tolist()[0]
    assert payload["DisplayName"] == payload["CompanyName"] == "Acme Builders"
    assert payload["BillAddr"]["CountrySubDivisionCode"] == "IL"
    assert (payload["GivenName"], payload["FamilyName"], payload["Active"]) == ("Ann", "Lee", True)


def test_project_is_a_sub_customer_named_number_dash_name(specs: SpecSet) -> None:
    row = {"id": 7, "client_id": 1, "number": "P-007", "name": "Kitchen", "email": None,
           "phone": None, "contact_first_name": None, "contact_last_name": None,
           "job_address_line1": "9 Elm", "job_city": "Shelbyville", "job_state": "IL",
           "job_postal_code": "62565", "active": True}
    mapped = map_row(as_configured(specs, "project"), row, resolve_ref=resolve)
    assert mapped.ok
    assert mapped.payload["DisplayName"] == "P-007 - Kitchen"
    assert mapped.payload["Job"] is True
    assert mapped.payload["ParentRef"] == {"value": "101"}
    assert mapped.payload["ShipAddr"] == {"Line1": "9 Elm", "City": "Shelbyville",
                                          "CountrySubDivisionCode": "IL", "PostalCode": "62565"}


def test_project_contact_changed_in_qbo_is_kept(specs: SpecSet) -> None:
    spec = as_configured(specs, "project")
    pushed = {"DisplayName": "P-007 - Kitchen", "Job": True, "ParentRef": {"value": "101"},
              "PrimaryPhone": {"FreeFormNumber": "555-0100"}}
    changed = {**pushed, "PrimaryPhone": {"FreeFormNumber": "555-0199"}}
    qbo = {**pushed, "Id": "107", "SyncToken": "2",
           "PrimaryPhone": {"FreeFormNumber": "555-0142"}}
    plan = plan_changes(spec, "realm", [RecordState("7", changed, pushed, qbo)])
    assert plan.writes() == [] and plan.conflicts == []


def test_time_entry_query_runs_on_the_demo_schema(specs: SpecSet) -> None:
    spec = specs["time_entry"]
    assert spec.source.query is not None
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    stamps = {"created_at": NOW, "updated_at": NOW, "deleted_at": None}
    with engine.begin() as connection:
        connection.execute(sa.insert(metadata.tables["clients"]), [
            {"id": 1, "name": "Acme", "active": True, **stamps}])
        connection.execute(sa.insert(metadata.tables["projects"]), [
            {"id": 7, "client_id": 1, "number": "P-007", "name": "Kitchen", "active": True,
             **stamps}])
        connection.execute(sa.insert(metadata.tables["employees"]), [
            {"id": 3, "first_name": "Bo", "last_name": "Ng", "employment_type": "Employee",
             "active": True, **stamps},
            {"id": 4, "first_name": "Cy", "last_name": "Roe", "employment_type": "1099 Vendor",
             "active": True, **stamps}])
        connection.execute(sa.insert(metadata.tables["time_entries"]), [
            {"id": i, "employee_id": 3, "project_id": 7, "work_date": dt.date(2024, 5, 1),
             "hours": hours, "description": "Framing", "billable": billable,
             "approved": approved, "hourly_rate": Decimal("85.00"), **stamps}
            for i, hours, billable, approved in [(1, Decimal("7.50"), True, True),
                                                 (2, Decimal("0.25"), False, True),
                                                 (3, Decimal("8.00"), True, False)]])
        # Seed 004: a "1099 Vendor" user's time names their QBO Vendor.
        connection.execute(sa.insert(metadata.tables["time_entries"]), [
            {"id": 4, "employee_id": 4, "project_id": 7, "work_date": dt.date(2024, 5, 2),
             "hours": Decimal("2.00"), "description": "Tiling", "billable": True,
             "approved": True, "hourly_rate": Decimal("60.00"), **stamps}])
        frame = pd.read_sql_query(sa.text(spec.source.query), connection)
    selected = select_frame(spec, frame)
    mapped = map_frame(spec, selected, resolve_ref=resolve)
    result = validate_frame(spec, mapped)
    assert result.quarantined == ()
    payloads: list[dict[str, Any]] = result.valid[PAYLOAD].tolist()
    assert [(p["Hours"], p.get("Minutes"), p["BillableStatus"]) for p in payloads] == [
        (7, 30, "Billable"), (0, 15, "NotBillable"), (2, 0, "Billable")]
    assert payloads[0]["EmployeeRef"] == {"value": "103"}
    assert payloads[0]["CustomerRef"] == {"value": "107"}
    assert payloads[0]["TxnDate"] == "2024-05-01"
    assert payloads[0]["NameOf"] == "Employee"
    assert "VendorRef" not in payloads[0]
    assert (payloads[2]["NameOf"], payloads[2]["VendorRef"]) == ("Vendor", {"value": "204"})
    assert "EmployeeRef" not in payloads[2]


def test_invoice_on_the_sub_customer_with_a_tax_line(specs: SpecSet) -> None:
    invoice = {"id": 11, "project_id": 7, "number": "INV-0011",
               "issue_date": dt.date(2024, 5, 2), "due_date": dt.date(2024, 6, 1),
               "notes": "Thanks", "tax_rate": Decimal("0.0850"), "tax_amount": Decimal("8.50"),
               "status": "sent", "created_at": NOW, "updated_at": NOW, "deleted_at": None}
    lines = [{"id": 1, "invoice_id": 11, "line_no": 1, "description": "Design",
              "quantity": Decimal("2.00"), "unit_price": Decimal("50.00"),
              "amount": Decimal("100.00"), "service_name": "Design"}]
    items = {"Design": "21", "Sales Tax": "22"}
    mapped = map_row(as_configured(specs, "invoice"), invoice, lines, resolve,
                     lambda entity, by, value: items.get(value))
    assert mapped.ok, mapped.issues
    assert mapped.payload["CustomerRef"] == {"value": "107"}
    assert mapped.payload["DocNumber"] == "INV-0011"
    assert mapped.payload["CustomerMemo"] == {"value": "Thanks"}
    # Seed 004's auto mark for printing is off by default: QBO's own NotSet.
    assert mapped.payload["PrintStatus"] == "NotSet"
    assert mapped.payload["Line"][-1] == {
        "Amount": 8.5, "DetailType": "SalesItemLineDetail", "Description": "Tax (8.5%)",
        "SalesItemLineDetail": {"ItemRef": {"value": "22"}}}
