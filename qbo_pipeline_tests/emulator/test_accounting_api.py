"""The Accounting API's objects and rules, over real HTTP against the running emulator.

Each test names the QBO behaviour it follows. "Entity reference" means Intuit's API reference
page of that entity (Accounting API v3, "All entities"); "Error codes" is Intuit's list of
API error codes; "Basic field definitions" the page on Id, SyncToken, MetaData and sparse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline_tests.conftest import ConnectedRealm


def created(realm: ConnectedRealm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(entity.lower(), body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def error_of(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"Fault", "time"}
    errors: list[dict[str, Any]] = body["Fault"]["Error"]
    assert len(errors) == 1 and set(errors[0]) == {"Message", "Detail", "code", "element"}
    return errors[0]


def sale_line(amount: float, item_id: str | None = None) -> dict[str, Any]:
    detail = {"ItemRef": {"value": item_id}} if item_id else {}
    return {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}


def invoice_for(customer_id: str, *amounts: float, **fields: Any) -> dict[str, Any]:
    return {"CustomerRef": {"value": customer_id}, "Line": [sale_line(a) for a in amounts],
            **fields}


@pytest.fixture
def customer(realm: ConnectedRealm) -> dict[str, Any]:
    return created(realm, "Customer", {"DisplayName": "Amy's Bird Sanctuary"})


# --------------------------------------------------------------------------- create and read


def test_create_returns_the_wrapped_object_with_server_fields(realm: ConnectedRealm) -> None:
    """Basic field definitions: Id and SyncToken ("0" on create) and MetaData's CreateTime /
    LastUpdatedTime (ISO 8601 with offset) are set by QBO; responses wrap the object under its
    entity name next to "time"."""
    response = realm.post("customer?minorversion=75", {"DisplayName": "Cool Cars"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Customer", "time"}
    customer = body["Customer"]
    assert customer["SyncToken"] == "0" and customer["Id"].isdigit()
    created_at = datetime.fromisoformat(customer["MetaData"]["CreateTime"])
    assert created_at.utcoffset() is not None
    assert customer["MetaData"]["LastUpdatedTime"] == customer["MetaData"]["CreateTime"]
    read = realm.get(f"customer/{customer['Id']}").json()
    assert read["Customer"] == customer


def test_display_name_is_derived_from_name_parts(realm: ConnectedRealm) -> None:
    """Customer/Vendor/Employee reference: DisplayName defaults to the name parts (or the
    company name) when the request leaves it out."""
    person = created(realm, "Employee", {"GivenName": "Diego", "FamilyName": "Rodriguez"})
    company = created(realm, "Vendor", {"CompanyName": "Books by Bessie"})
    assert person["DisplayName"] == "Diego Rodriguez"
    assert company["DisplayName"] == "Books by Bessie"


def test_company_info_is_read_at_the_realm_id(realm: ConnectedRealm) -> None:
    """CompanyInfo reference: GET /v3/company/<realmId>/companyinfo/<realmId>."""
    info = realm.get(f"companyinfo/{realm.realm_id}").json()["CompanyInfo"]
    assert info["CompanyName"]


def test_new_company_has_accounts_terms_tax_codes_and_services(realm: ConnectedRealm) -> None:
    """A new QBO company comes with a chart of accounts, standard terms, tax codes and the
    "Services" item (the emulator's issue: a realm starts as a new QBO company does)."""
    def names(entity: str, field: str = "Name") -> set[str]:
        found = realm.get("query", params={"query": f"select * from {entity}"}).json()
        return {record[field] for record in found["QueryResponse"][entity]}

    account_types = names("Account", "AccountType")
    assert {"Income", "Accounts Receivable", "Bank", "Expense"} <= account_types
    assert "Undeposited Funds" in names("Account")
    assert {"Net 30", "Due on receipt"} <= names("Term")
    assert {"TAX", "NON"} <= names("TaxCode")
    assert "Services" in names("Item")


def test_unknown_id_is_object_not_found(realm: ConnectedRealm) -> None:
    """Error codes: 610 Object Not Found."""
    assert error_of(realm.get("invoice/99999"))["code"] == "610"


# --------------------------------------------------------------------------- required fields


@pytest.mark.parametrize(
    ("entity", "body", "missing"),
    [
        ("Customer", {"Notes": "no name at all"}, "DisplayName"),
        ("Invoice", {"CustomerRef": {"value": "1"}}, "Line"),
        ("Payment", {"CustomerRef": {"value": "1"}}, "TotalAmt"),
        ("Purchase", {"AccountRef": {"value": "5"}, "Line": []}, "PaymentType"),
        ("Bill", {"Line": []}, "VendorRef"),
        ("TimeActivity", {"Hours": 2}, "NameOf"),
        ("Item", {"Name": "Consulting", "Type": "Service"}, "IncomeAccountRef"),
        ("Account", {"Name": "Petty Cash"}, "AccountType"),
    ],
)
def test_missing_required_field_is_2020(realm: ConnectedRealm, entity: str,
                                        body: dict[str, Any], missing: str) -> None:
    """Error codes: 2020 "Required param missing"; entity references mark these required."""
    error = error_of(realm.post(entity.lower(), body))
    assert error["code"] == "2020"
    assert missing in error["Detail"]


def test_time_activity_needs_a_duration(realm: ConnectedRealm) -> None:
    """TimeActivity reference: Hours/Minutes, or StartTime and EndTime, are required."""
    employee = created(realm, "Employee", {"GivenName": "Emily", "FamilyName": "Platt"})
    who = {"NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]}}
    assert error_of(realm.post("timeactivity", who))["code"] == "2020"
    timed = created(realm, "TimeActivity", {**who, "StartTime": "2026-11-02T09:00:00-08:00",
                                            "EndTime": "2026-11-02T11:30:00-08:00"})
    assert timed["EmployeeRef"]["name"] == "Emily Platt"


# --------------------------------------------------------------------------- references


def test_reference_to_missing_object_is_2500(realm: ConnectedRealm) -> None:
    """Error codes: 2500 Invalid Reference Id."""
    error = error_of(realm.post("invoice", invoice_for("424242", 10)))
    assert error["code"] == "2500" and error["element"] == "CustomerRef"


def test_reference_to_inactive_object_is_610(realm: ConnectedRealm,
                                             customer: dict[str, Any]) -> None:
    """Error codes: 610 "Something you're trying to use has been made inactive"."""
    created_invoice = created(realm, "Invoice", invoice_for(customer["Id"], 10))
    assert created_invoice["CustomerRef"]["name"] == customer["DisplayName"]
    realm.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                            "Active": False})
    assert error_of(realm.post("invoice", invoice_for(customer["Id"], 10)))["code"] == "610"


# --------------------------------------------------------------------------- names


def test_display_name_is_unique_across_customers_vendors_and_employees(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Customer reference, business rules: DisplayName must be unique across Customer,
    Vendor and Employee (6240 Duplicate Name Exists Error); case does not matter."""
    error = error_of(realm.post("vendor", {"DisplayName": "AMY'S BIRD SANCTUARY"}))
    assert error["code"] == "6240" and f"Id={customer['Id']}" in error["Detail"]


def test_inactive_names_still_hold_their_display_name(realm: ConnectedRealm,
                                                      customer: dict[str, Any]) -> None:
    """Names-list records are never deleted, only made inactive, so the name stays taken."""
    realm.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                            "Active": False})
    assert error_of(realm.post("employee", {"DisplayName": customer["DisplayName"]}))[
        "code"] == "6240"


@pytest.mark.parametrize("name", ["Rob:Barnett", "Tab\there", "Two\nlines"])
def test_display_name_refuses_colon_tab_and_newline(realm: ConnectedRealm, name: str) -> None:
    """Customer reference: DisplayName may not contain a colon, tab or newline (QBO answers
    2040 "Invalid String. The String may contain unsupported or illegal chars")."""
    error = error_of(realm.post("customer", {"DisplayName": name}))
    assert error["code"] == "2040" and error["element"] == "DisplayName"


def test_sub_customers_form_a_hierarchy_of_at_most_five_levels(realm: ConnectedRealm) -> None:
    """Customer reference: a sub-customer has Job true and ParentRef; FullyQualifiedName is
    "Parent:Child" and Level counts from 0; QBO allows up to 4 levels below the top."""
    parent = created(realm, "Customer", {"DisplayName": "Level0"})
    for level in range(1, 5):
        parent = created(realm, "Customer", {"DisplayName": f"Level{level}", "Job": True,
                                             "ParentRef": {"value": parent["Id"]}})
        assert parent["Level"] == level
    assert parent["FullyQualifiedName"] == "Level0:Level1:Level2:Level3:Level4"
    too_deep = realm.post("customer", {"DisplayName": "Level5", "Job": True,
                                       "ParentRef": {"value": parent["Id"]}})
    assert error_of(too_deep)["code"] == "6180"  # Intuit's error codes: "Sub Level Limit"


def test_job_without_parent_is_refused(realm: ConnectedRealm) -> None:
    """Customer reference: ParentRef is required when Job is true."""
    error = error_of(realm.post("customer", {"DisplayName": "Orphan", "Job": True}))
    assert error["code"] == "2020" and "ParentRef" in error["Detail"]


def test_renaming_a_parent_renames_its_jobs(realm: ConnectedRealm,
                                            customer: dict[str, Any]) -> None:
    """FullyQualifiedName always reflects the current parent's name."""
    job = created(realm, "Customer", {"DisplayName": "Birdhouse", "Job": True,
                                      "ParentRef": {"value": customer["Id"]}})
    realm.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                            "DisplayName": "Amy's Aviary"})
    moved = realm.get(f"customer/{job['Id']}").json()["Customer"]
    assert moved["FullyQualifiedName"] == "Amy's Aviary:Birdhouse"


def test_names_list_objects_cannot_be_deleted(realm: ConnectedRealm,
                                              customer: dict[str, Any]) -> None:
    """Customer reference: there is no delete; make the customer inactive instead. QBO
    answers 500 "Unsupported Operation" ("Operation Delete is not supported.")."""
    response = realm.post("customer?operation=delete", {"Id": customer["Id"], "SyncToken": "0"})
    error = error_of(response)
    assert (error["code"], error["Message"]) == ("500", "Unsupported Operation")
    assert error["Detail"].startswith("Operation Delete is not supported.")
    assert "inactive" in error["Detail"]


# --------------------------------------------------------------------------- updates


def test_stale_sync_token_is_5010_and_changes_nothing(realm: ConnectedRealm,
                                                      customer: dict[str, Any]) -> None:
    """Basic field definitions, SyncToken: an update with an old SyncToken fails with
    5010 Stale Object Error."""
    first = realm.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                                    "Notes": "first"})
    assert first.json()["Customer"]["SyncToken"] == "1"
    stale = realm.post("customer?operation=update", {"Id": customer["Id"], "SyncToken": "0",
                                                     "sparse": True, "Notes": "second"})
    error = error_of(stale)
    assert error["code"] == "5010" and error["Message"] == "Stale Object Error"
    assert realm.get(f"customer/{customer['Id']}").json()["Customer"]["Notes"] == "first"


def test_sparse_update_changes_only_the_fields_sent(realm: ConnectedRealm) -> None:
    """Basic field definitions, sparse: with "sparse": true only the fields in the request
    change; SyncToken and LastUpdatedTime move on."""
    customer = created(realm, "Customer", {"DisplayName": "Jeff's Jalopies",
                                           "CompanyName": "Jeff's", "Notes": "keep me"})
    updated = realm.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                                      "CompanyName": "Jeff's Jalopies LLC"}).json()["Customer"]
    assert updated["CompanyName"] == "Jeff's Jalopies LLC"
    assert updated["Notes"] == "keep me" and updated["SyncToken"] == "1"
    assert updated["MetaData"]["CreateTime"] == customer["MetaData"]["CreateTime"]


def test_full_update_clears_writable_fields_left_out(realm: ConnectedRealm) -> None:
    """Basic field definitions, full update: writable fields omitted from the request are
    set to NULL."""
    customer = created(realm, "Customer", {"DisplayName": "Kookies", "Notes": "gone soon"})
    updated = realm.post("customer", {"Id": customer["Id"], "SyncToken": "0",
                                      "DisplayName": "Kookies by Kathy"}).json()["Customer"]
    assert "Notes" not in updated and updated["DisplayName"] == "Kookies by Kathy"
    assert updated["Id"] == customer["Id"] and updated["Active"] is True


def test_update_replaces_line_arrays_whole(realm: ConnectedRealm,
                                           customer: dict[str, Any]) -> None:
    """Invoice reference, sparse update: a Line array in the request replaces all lines."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100, 50))
    updated = realm.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True,
                                     "Line": [sale_line(30)]}).json()["Invoice"]
    assert [line["Amount"] for line in updated["Line"]] == [30, 30]  # the line, its subtotal
    assert updated["TotalAmt"] == 30 and updated["Balance"] == 30


def test_sparse_update_cannot_clear_a_required_field(realm: ConnectedRealm,
                                                     customer: dict[str, Any]) -> None:
    """An update still needs the entity's required fields (2020)."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100))
    response = realm.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True,
                                      "CustomerRef": None})
    assert error_of(response)["code"] == "2020"
    full = realm.post("invoice", {"Id": invoice["Id"], "SyncToken": "0",
                                  "CustomerRef": {"value": customer["Id"]}})
    assert error_of(full)["code"] == "2020"  # a full update without Line


def test_update_needs_id_and_sync_token(realm: ConnectedRealm, customer: dict[str, Any]) -> None:
    """Basic field definitions: Id and SyncToken are required for update."""
    response = realm.post("customer?operation=update", {"Id": customer["Id"],
                                                        "DisplayName": "X"})
    assert error_of(response)["element"] == "SyncToken"


# --------------------------------------------------------------------------- transactions


def test_invoice_totals_subtotal_line_and_line_ids(realm: ConnectedRealm,
                                                   customer: dict[str, Any]) -> None:
    """Invoice reference: TotalAmt is computed from the lines, QBO appends a SubTotalLine,
    line Ids are assigned, and Balance starts at TotalAmt."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100, 25.5))
    assert invoice["TotalAmt"] == 125.5 and invoice["Balance"] == 125.5
    *items, subtotal = invoice["Line"]
    assert [line["Id"] for line in items] == ["1", "2"]
    assert subtotal == {"Amount": 125.5, "DetailType": "SubTotalLineDetail",
                        "SubTotalLineDetail": {}}


def test_invoice_doc_numbers_are_assigned_and_kept_unique(
    realm: ConnectedRealm, emulator_server: EmulatorServer, customer: dict[str, Any]
) -> None:
    """Invoice reference: DocNumber is assigned when absent; with custom transaction numbers
    and the duplicate warning on, a used DocNumber is 6140 Duplicate Document Number Error."""
    first = created(realm, "Invoice", invoice_for(customer["Id"], 1))
    second = created(realm, "Invoice", invoice_for(customer["Id"], 1))
    assert (first["DocNumber"], second["DocNumber"]) == ("1001", "1002")
    duplicate = realm.post("invoice", invoice_for(customer["Id"], 1, DocNumber="1001"))
    error = error_of(duplicate)
    assert error["code"] == "6140" and f"TxnId={first['Id']}" in error["Detail"]
    emulator_server.emulator.backend.set_preference(realm.realm_id, "WarnDuplicateDocNum", False)
    assert realm.post("invoice", invoice_for(customer["Id"], 1, DocNumber="1001")).ok


def test_payment_reduces_invoice_balance(realm: ConnectedRealm,
                                         customer: dict[str, Any]) -> None:
    """Payment reference: Line[].LinkedTxn applies the payment to invoices; the invoice's
    Balance drops, it links the payment, and (having changed) gets a new SyncToken."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100))
    payment = created(realm, "Payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": 70,
        "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    })
    assert payment["UnappliedAmt"] == 30
    paid = realm.get(f"invoice/{invoice['Id']}").json()["Invoice"]
    assert paid["Balance"] == 60 and paid["SyncToken"] == "1"
    assert paid["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    over = realm.post("payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": 61,
        "Line": [{"Amount": 61, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    })
    assert error_of(over)["code"] == "6000"


def test_void_invoice_zeroes_amounts_and_stays_readable(realm: ConnectedRealm,
                                                        customer: dict[str, Any]) -> None:
    """Invoice reference, void: amounts become zero, Balance 0, "Voided" in PrivateNote;
    the invoice stays readable and its SyncToken moves on."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100, 20))
    response = realm.post("invoice?operation=void", {"Id": invoice["Id"], "SyncToken": "0"})
    voided = response.json()["Invoice"]
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0
    assert voided["PrivateNote"] == "Voided" and voided["SyncToken"] == "1"
    assert all(line["Amount"] == 0 for line in voided["Line"])
    assert realm.get(f"invoice/{invoice['Id']}").json()["Invoice"] == voided


def test_void_payment_restores_the_invoice_balance(realm: ConnectedRealm,
                                                   customer: dict[str, Any]) -> None:
    """Payment reference, void: a voided payment no longer pays the invoice."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100))
    payment = created(realm, "Payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": 100,
        "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    })
    assert realm.get(f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 0
    realm.post("payment?operation=void", {"Id": payment["Id"], "SyncToken": "0"})
    assert realm.get(f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 100


def test_paid_invoice_is_neither_voided_nor_deleted(realm: ConnectedRealm,
                                                    customer: dict[str, Any]) -> None:
    """The emulator refuses (6000) to void or delete an invoice while payments apply to it,
    so the payment is dealt with first and no payment is left pointing at nothing."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 100))
    realm.post("payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": 10,
        "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    })
    for operation in ("void", "delete"):
        response = realm.post(f"invoice?operation={operation}",
                              {"Id": invoice["Id"], "SyncToken": "1"})
        assert error_of(response)["code"] == "6000"


def test_only_invoices_and_payments_are_voided(realm: ConnectedRealm,
                                               customer: dict[str, Any]) -> None:
    """Void is an Invoice/Payment operation; elsewhere it is refused (Error codes: 500
    "Unsupported Operation")."""
    response = realm.post("customer?operation=void", {"Id": customer["Id"], "SyncToken": "0"})
    assert error_of(response)["code"] == "500"


def test_delete_transaction_then_it_is_gone(realm: ConnectedRealm,
                                            customer: dict[str, Any]) -> None:
    """Invoice reference, delete: the answer is {"status": "Deleted"}; reading it is 610."""
    invoice = created(realm, "Invoice", invoice_for(customer["Id"], 10))
    stale = realm.post("invoice?operation=delete", {"Id": invoice["Id"], "SyncToken": "7"})
    assert error_of(stale)["code"] == "5010"
    response = realm.post("invoice?operation=delete", {"Id": invoice["Id"], "SyncToken": "0"})
    assert response.json()["Invoice"] == {"status": "Deleted", "domain": "QBO",
                                          "Id": invoice["Id"]}
    assert error_of(realm.get(f"invoice/{invoice['Id']}"))["code"] == "610"


@pytest.mark.parametrize(
    ("entity", "body"),
    [
        ("Purchase", {"PaymentType": "Cash", "AccountRef": {"value": "5"}, "Line": [
            {"Amount": 12.5, "DetailType": "AccountBasedExpenseLineDetail",
             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}}}]}),
        ("Deposit", {"DepositToAccountRef": {"value": "5"}, "Line": [
            {"Amount": 12.5, "DetailType": "DepositLineDetail",
             "DepositLineDetail": {"AccountRef": {"value": "1"}}}]}),
    ],
)
def test_expense_and_deposit_totals(realm: ConnectedRealm, entity: str,
                                    body: dict[str, Any]) -> None:
    """Purchase and Deposit references: TotalAmt is the sum of the lines."""
    record = created(realm, entity, body)
    assert record["TotalAmt"] == 12.5 and record["Line"][0]["Id"] == "1"


def test_bill_numbers_are_unique_per_vendor(realm: ConnectedRealm) -> None:
    """Bill reference: DocNumber (the vendor's bill number) may not repeat for one vendor."""
    vendors = [created(realm, "Vendor", {"DisplayName": name})["Id"] for name in ("V1", "V2")]

    def bill(vendor_id: str) -> dict[str, Any]:
        return {"VendorRef": {"value": vendor_id}, "DocNumber": "B-1", "Line": [
            {"Amount": 5, "DetailType": "AccountBasedExpenseLineDetail",
             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}}}]}

    assert created(realm, "Bill", bill(vendors[0]))["Balance"] == 5
    assert realm.post("bill", bill(vendors[1])).ok
    assert error_of(realm.post("bill", bill(vendors[0])))["code"] == "6140"


def test_read_only_entities_refuse_writes(realm: ConnectedRealm) -> None:
    """TaxCode reference: TaxCode is read-only through the Accounting API (Error codes: 500
    "Unsupported Operation")."""
    assert error_of(realm.post("taxcode", {"Name": "GST"}))["code"] == "500"


def test_body_that_is_not_json_is_refused(realm: ConnectedRealm) -> None:
    """A request QBO cannot parse is a 400 ValidationFault, not a server error."""
    response = realm.session.post(realm.url("customer"), data="{not json",
                                  headers=realm.headers(**{"Content-Type": "application/json"}))
    assert error_of(response)["code"] == "2010"
