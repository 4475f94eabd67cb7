"""Names lists as QBO keeps them, over real HTTP against the running emulator.

Customer (and its jobs), Vendor, Employee, Item, Account, Class and Term: the fields QBO fills
in on create, FullyQualifiedName, inactivation instead of delete, the DisplayName rule across
lists, the accounts an item needs, and QBO's faults for malformed requests (an unknown
property, an unknown entity in a query, an Id that is not a number).

Each test names the QBO behaviour it follows. "Sample" means the sample response on Intuit's
API reference page of that entity; "Error codes" is Intuit's list of API error codes.
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_accounting_api import created, error_of

HOME_CURRENCY = {"value": "USD", "name": "United States Dollar"}
NAMES_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account", "Class", "Term")
ADDRESS = {"Line1": "1 Main St", "City": "Mountain View", "CountrySubDivisionCode": "CA",
           "PostalCode": "94042"}
# Bodies for names lists a new company has no record of (it has accounts, terms, an item).
NEW_RECORDS: dict[str, dict[str, Any]] = {
    "Customer": {"DisplayName": "Echo Customer", "CompanyName": "Echo", "BillAddr": ADDRESS,
                 "ShipAddr": ADDRESS, "PrimaryEmailAddr": {"Address": "echo@example.com"},
                 "PrimaryPhone": {"FreeFormNumber": "555-0100"}, "Notes": "full"},
    "Vendor": {"DisplayName": "Echo Vendor", "BillAddr": ADDRESS, "TermRef": {"value": "13"},
               "WebAddr": {"URI": "https://example.com"}, "AcctNum": "1345"},
    "Employee": {"GivenName": "Echo", "FamilyName": "Employee", "PrimaryAddr": ADDRESS,
                 "Mobile": {"FreeFormNumber": "555-0101"}, "HiredDate": "2026-01-05"},
    "Class": {"Name": "Echo Class"},
}


def read(realm: ConnectedRealm, entity: str, entity_id: str) -> dict[str, Any]:
    response = realm.get(f"{entity.lower()}/{entity_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def account_id(realm: ConnectedRealm, name: str) -> str:
    """The Id of one of a new company's accounts, found by name."""
    found = realm.get("query", params={"query": f"select * from Account where Name = '{name}'"})
    account_id: str = found.json()["QueryResponse"]["Account"][0]["Id"]
    return account_id


def some_record(realm: ConnectedRealm, entity: str) -> dict[str, Any]:
    """A record of the entity: the new company's first, or one made for the test."""
    found = realm.get("query", params={"query": f"select * from {entity}"}).json()
    rows: list[dict[str, Any]] = found["QueryResponse"].get(entity, [])
    return rows[0] if rows else created(realm, entity, NEW_RECORDS[entity])


def sparse(realm: ConnectedRealm, entity: str, record: dict[str, Any], **changes: Any) -> Any:
    return realm.post(entity.lower(), {"Id": record["Id"], "SyncToken": record["SyncToken"],
                                       "sparse": True, **changes})


def server_fields(record: dict[str, Any]) -> None:
    """Basic field definitions: Id, SyncToken, MetaData, domain and sparse on every object."""
    assert record["Id"].isdigit() and record["SyncToken"] == "0"
    assert record["domain"] == "QBO" and record["sparse"] is False
    assert record["MetaData"]["CreateTime"] == record["MetaData"]["LastUpdatedTime"]


# --------------------------------------------------------------------------- what QBO fills in


# --------------------------------------------------------------------------- FullyQualifiedName


# --------------------------------------------------------------------------- names-list rules


@pytest.mark.parametrize("entity", NAMES_LISTS)
def test_no_names_list_object_is_ever_deleted(realm: ConnectedRealm, entity: str) -> None:
    """Names lists have no delete: QBO answers 500 "Unsupported Operation" ("Operation Delete is
    not supported."; python-quickbooks issue 294, deleting a Customer), and the object stays."""
    record = some_record(realm, entity)
    response = realm.post(f"{entity.lower()}?operation=delete",
                          {"Id": record["Id"], "SyncToken": record["SyncToken"]})
    error = error_of(response)
    assert (error["code"], error["Message"]) == ("500", "Unsupported Operation")
    assert error["Detail"].startswith("Operation Delete is not supported.")
    assert read(realm, entity, record["Id"])["Active"] is True


def test_inactivation_is_a_sparse_update_of_active(realm: ConnectedRealm) -> None:
    """Customer reference, Active: a names-list object is made inactive, never deleted; the
    query leaves inactive ones out unless it filters on Active."""
    customer = created(realm, "Customer", {"DisplayName": "Retired Co"})
    inactive = sparse(realm, "Customer", customer, Active=False).json()["Customer"]
    assert inactive["Active"] is False and inactive["SyncToken"] == "1"
    assert read(realm, "Customer", customer["Id"])["Active"] is False

    def query(text: str) -> list[str]:
        found = realm.get("query", params={"query": text}).json()["QueryResponse"]
        return [row["Id"] for row in found.get("Customer", [])]

    assert customer["Id"] not in query("select * from Customer")
    assert query("select * from Customer where Active = false") == [customer["Id"]]


# --------------------------------------------------------------------------- items' accounts


def inventory(realm: ConnectedRealm, **fields: Any) -> dict[str, Any]:
    """Item reference, create an inventory item ("Garden Supplies")."""
    asset = created(realm, "Account", {"Name": "Inventory Asset",
                                       "AccountType": "Other Current Asset"})
    body = {"Name": "Garden Supplies", "Type": "Inventory", "TrackQtyOnHand": True,
            "QtyOnHand": 10, "InvStartDate": "2026-01-01",
            "IncomeAccountRef": {"value": account_id(realm, "Sales of Product Income")},
            "ExpenseAccountRef": {"value": account_id(realm, "Cost of Labor")},
            "AssetAccountRef": {"value": asset["Id"]}, **fields}
    return {name: value for name, value in body.items() if value is not None}


# --------------------------------------------------------------------------- malformed requests


def test_a_query_of_an_unknown_entity_is_4001(realm: ConnectedRealm) -> None:
    """QBO answers "select * from <no such entity>" with 4001 "Invalid query", Detail
    "QueryValidationError: Metadata not found for Entity: ..." (quickbooks-ruby issue 628)."""
    error = error_of(realm.get("query", params={"query": "select * from Custmer"}))
    assert (error["code"], error["Message"]) == ("4001", "Invalid query")
    assert error["Detail"].startswith("QueryValidationError: Metadata not found for Entity: "
                                      "Custmer")


