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


def test_customer_create_fills_in_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Customer sample (create "King's Groceries", read "Bill's Windsurf Shop"): Job and
    BillWithParent false, Balance and BalanceWithJobs 0, CurrencyRef USD, PreferredDelivery
    Method "Print", PrintOnCheckName from DisplayName, FullyQualifiedName, Active; no Level on
    a top-level customer; Taxable false without a default tax code."""
    customer = created(realm, "Customer", {"DisplayName": "Bill's Windsurf Shop",
                                           "CompanyName": "Bill's Windsurf Shop"})
    server_fields(customer)
    expected = {"Job": False, "BillWithParent": False, "Balance": 0, "BalanceWithJobs": 0,
                "CurrencyRef": HOME_CURRENCY, "PreferredDeliveryMethod": "Print",
                "PrintOnCheckName": "Bill's Windsurf Shop",
                "FullyQualifiedName": "Bill's Windsurf Shop", "Active": True, "Taxable": False}
    assert {name: customer.get(name) for name in expected} == expected
    assert "Level" not in customer


def test_customer_with_a_default_tax_code_is_taxable(realm: ConnectedRealm) -> None:
    """Customer reference, Taxable: true if DefaultTaxCodeRef is defined, false if
    TaxExemptionReasonId is set (minor version 10 and above)."""
    taxed = created(realm, "Customer", {"DisplayName": "Amy's Bird Sanctuary",
                                        "DefaultTaxCodeRef": {"value": "TAX"}})
    exempt = created(realm, "Customer", {"DisplayName": "Parish", "TaxExemptionReasonId": "6",
                                         "DefaultTaxCodeRef": {"value": "TAX"}})
    chosen = created(realm, "Customer", {"DisplayName": "Chosen", "Taxable": True})
    assert (taxed["Taxable"], exempt["Taxable"], chosen["Taxable"]) == (True, False, True)


def test_vendor_and_employee_create_fill_in_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Vendor sample ("Books by Bessie"): Vendor1099 false, Balance 0, CurrencyRef USD,
    PrintOnCheckName, Active. Employee sample ("Bill Miller"): BillableTime false,
    PrintOnCheckName, Active, and no currency or balance."""
    vendor = created(realm, "Vendor", {"DisplayName": "Books by Bessie"})
    employee = created(realm, "Employee", {"GivenName": "Bill", "FamilyName": "Miller"})
    for record in (vendor, employee):
        server_fields(record)
    assert {name: vendor.get(name) for name in ("Vendor1099", "Balance", "CurrencyRef",
                                                "PrintOnCheckName", "Active")} == {
        "Vendor1099": False, "Balance": 0, "CurrencyRef": HOME_CURRENCY,
        "PrintOnCheckName": "Books by Bessie", "Active": True}
    assert {name: employee.get(name) for name in ("BillableTime", "PrintOnCheckName",
                                                  "Active", "DisplayName")} == {
        "BillableTime": False, "PrintOnCheckName": "Bill Miller", "Active": True,
        "DisplayName": "Bill Miller"}
    assert "CurrencyRef" not in employee and "Balance" not in employee


def test_item_create_fills_in_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Item samples ("Concrete", "Gardening"): FullyQualifiedName, Taxable false, UnitPrice and
    PurchaseCost 0, TrackQtyOnHand false for a service, the tax-included flags false, the
    Type as sent and the account reference named; no SubItem or Level at the top."""
    item = created(realm, "Item", {"Name": "Gardening", "Type": "Service",
                                   "IncomeAccountRef": {"value": account_id(realm, "Services")}})
    server_fields(item)
    assert {name: item.get(name) for name in (
        "FullyQualifiedName", "Taxable", "SalesTaxIncluded", "PurchaseTaxIncluded",
        "TrackQtyOnHand", "UnitPrice", "PurchaseCost", "Type", "Active")} == {
        "FullyQualifiedName": "Gardening", "Taxable": False, "SalesTaxIncluded": False,
        "PurchaseTaxIncluded": False, "TrackQtyOnHand": False, "UnitPrice": 0,
        "PurchaseCost": 0, "Type": "Service", "Active": True}
    assert item["IncomeAccountRef"]["name"] == "Services"
    assert "SubItem" not in item and "Level" not in item


def test_category_items_carry_no_sales_fields(realm: ConnectedRealm) -> None:
    """Item sample of a category ("Organic Trees"): Name, Active, FullyQualifiedName, Type and
    the server fields only; a category has no price, tax flag or account."""
    category = created(realm, "Item", {"Name": "Organic Trees", "Type": "Category"})
    assert set(category) == {"Name", "Type", "Active", "FullyQualifiedName", "Id", "SyncToken",
                             "MetaData", "domain", "sparse"}


def test_account_create_fills_in_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Account sample ("MyJobs", Accounts Receivable): Classification from the type, SubAccount
    false, CurrentBalance and CurrentBalanceWithSubAccounts 0, CurrencyRef USD,
    FullyQualifiedName, Active; a balance sent is QBO's to keep (read-only)."""
    account = created(realm, "Account", {"Name": "MyJobs", "AccountType": "Accounts Receivable",
                                         "CurrentBalance": 500})
    server_fields(account)
    assert {name: account.get(name) for name in (
        "Classification", "SubAccount", "CurrentBalance", "CurrentBalanceWithSubAccounts",
        "CurrencyRef", "FullyQualifiedName", "Active")} == {
        "Classification": "Asset", "SubAccount": False, "CurrentBalance": 0,
        "CurrentBalanceWithSubAccounts": 0, "CurrencyRef": HOME_CURRENCY,
        "FullyQualifiedName": "MyJobs", "Active": True}
    assert "Level" not in account


def test_class_and_term_create_fill_in_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Class sample ("France"): SubClass false, FullyQualifiedName, Active. Term sample
    ("Net 60"): Type STANDARD for a DueDays term, DiscountPercent and DiscountDays 0; a term
    that names a day of the month is DATE_DRIVEN; days sent are kept."""
    france = created(realm, "Class", {"Name": "France"})
    server_fields(france)
    assert {name: france.get(name) for name in ("SubClass", "FullyQualifiedName", "Active")} \
        == {"SubClass": False, "FullyQualifiedName": "France", "Active": True}
    net = created(realm, "Term", {"Name": "Net 45", "DueDays": 45})
    early = created(realm, "Term", {"Name": "2% 10 Net 30", "DueDays": 30, "DiscountDays": 10,
                                    "DiscountPercent": 2})
    monthly = created(realm, "Term", {"Name": "15th of month", "DayOfMonthDue": 15})
    assert {name: net.get(name) for name in ("Type", "DueDays", "DiscountDays",
                                             "DiscountPercent", "Active")} == {
        "Type": "STANDARD", "DueDays": 45, "DiscountDays": 0, "DiscountPercent": 0,
        "Active": True}
    assert (early["DiscountDays"], early["DiscountPercent"]) == (10, 2)
    assert (monthly["Type"], monthly["DayOfMonthDue"]) == ("DATE_DRIVEN", 15)
    assert "DueDays" not in monthly


# --------------------------------------------------------------------------- FullyQualifiedName


def test_sub_classes_accounts_and_items_are_named_parent_colon_child(
        realm: ConnectedRealm) -> None:
    """Class, Account and Item references: FullyQualifiedName prepends the parents, joined
    by ':'; a sub-item has SubItem and a Level (Item reference: "returned only when SubItem is
    set to true"), accounts and classes have no Level."""
    region = created(realm, "Class", {"Name": "Europe"})
    country = created(realm, "Class", {"Name": "France", "SubClass": True,
                                       "ParentRef": {"value": region["Id"]}})
    assert country["FullyQualifiedName"] == "Europe:France" and "Level" not in country
    assert country["ParentRef"] == {"value": region["Id"], "name": "Europe"}
    bank = created(realm, "Account", {"Name": "Bank Fees", "AccountType": "Expense"})
    wires = created(realm, "Account", {"Name": "Wires", "AccountType": "Expense",
                                       "SubAccount": True, "ParentRef": {"value": bank["Id"]}})
    assert wires["FullyQualifiedName"] == "Bank Fees:Wires" and "Level" not in wires
    trees = created(realm, "Item", {"Name": "Trees", "Type": "Category"})
    maple = created(realm, "Item", {"Name": "Maple", "Type": "NonInventory", "SubItem": True,
                                    "ParentRef": {"value": trees["Id"]},
                                    "IncomeAccountRef": {"value": account_id(realm, "Services")}})
    assert (maple["FullyQualifiedName"], maple["Level"]) == ("Trees:Maple", 1)


def test_renaming_a_parent_renames_the_whole_tree(realm: ConnectedRealm) -> None:
    """FullyQualifiedName always reflects the current names of the parents, at every level;
    so does the name a child's ParentRef carries."""
    top = created(realm, "Class", {"Name": "West"})
    middle = created(realm, "Class", {"Name": "Coast", "SubClass": True,
                                      "ParentRef": {"value": top["Id"]}})
    bottom = created(realm, "Class", {"Name": "Harbour", "SubClass": True,
                                      "ParentRef": {"value": middle["Id"]}})
    assert sparse(realm, "Class", top, Name="Pacific").ok
    moved = read(realm, "Class", bottom["Id"])
    assert moved["FullyQualifiedName"] == "Pacific:Coast:Harbour"
    assert read(realm, "Class", middle["Id"])["ParentRef"]["name"] == "Pacific"


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


def test_renaming_to_a_name_taken_in_another_list_is_6240(realm: ConnectedRealm) -> None:
    """Customer reference: DisplayName is unique across Customer, Vendor and Employee, on
    update too (6240 Duplicate Name Exists Error), whatever the case; a name held by an
    inactive record still counts; a record may keep (or recase) its own name."""
    vendor = created(realm, "Vendor", {"DisplayName": "Hicks Hardware"})
    employee = created(realm, "Employee", {"DisplayName": "Emily Platt"})
    assert sparse(realm, "Employee", employee, Active=False).ok
    customer = created(realm, "Customer", {"DisplayName": "Cool Cars"})
    for taken, owner in (("hicks HARDWARE", vendor), ("Emily Platt", employee)):
        error = error_of(sparse(realm, "Customer", customer, DisplayName=taken))
        assert (error["code"], error["Message"]) == ("6240", "Duplicate Name Exists Error")
        assert f"Id={owner['Id']}" in error["Detail"]
    assert read(realm, "Customer", customer["Id"])["DisplayName"] == "Cool Cars"
    recased = sparse(realm, "Customer", customer, DisplayName="COOL CARS")
    assert recased.json()["Customer"]["DisplayName"] == "COOL CARS"


# --------------------------------------------------------------------------- items' accounts


def test_a_service_needs_an_income_or_an_expense_account(realm: ConnectedRealm) -> None:
    """Item reference: a service or non-inventory item needs IncomeAccountRef (2020 Required
    param missing), unless it is only bought, when ExpenseAccountRef stands in."""
    error = error_of(realm.post("item", {"Name": "Consulting", "Type": "NonInventory"}))
    assert error["code"] == "2020" and "IncomeAccountRef" in error["Detail"]
    bought = created(realm, "Item", {"Name": "Subcontracting", "Type": "Service",
                                     "ExpenseAccountRef": {"value": account_id(realm,
                                                                               "Cost of Labor")}})
    assert bought["ExpenseAccountRef"]["name"] == "Cost of Labor"


@pytest.mark.parametrize(("field", "account", "message"), [
    ("IncomeAccountRef", "Office Supplies", "Expense account"),
    ("IncomeAccountRef", "Checking", "Bank account"),
    ("ExpenseAccountRef", "Services", "Income account"),
])
def test_an_item_account_of_the_wrong_type_is_refused(realm: ConnectedRealm, field: str,
                                                      account: str, message: str) -> None:
    """Item reference: IncomeAccountRef names an income account, ExpenseAccountRef an expense
    or cost-of-goods-sold one; otherwise QBO's business validation (6000) "Invalid account
    type: You need to select a different type of account for this transaction"."""
    body = {"Name": "Misfiled", "Type": "Service",
            "IncomeAccountRef": {"value": account_id(realm, "Services")},
            field: {"value": account_id(realm, account)}}
    error = error_of(realm.post("item", body))
    assert error["code"] == "6000" and error["element"] == field
    assert "Invalid account type" in error["Detail"] and message in error["Detail"]


def test_an_item_account_that_does_not_exist_is_2500(realm: ConnectedRealm) -> None:
    """Error codes: 2500 Invalid Reference Id, for an item's account as for any reference."""
    error = error_of(realm.post("item", {"Name": "Ghost", "Type": "Service",
                                         "IncomeAccountRef": {"value": "4242"}}))
    assert error["code"] == "2500" and error["element"] == "IncomeAccountRef"


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


def test_an_inventory_item_has_its_three_accounts_and_its_stock(realm: ConnectedRealm) -> None:
    """Item reference: an Inventory item needs IncomeAccountRef, ExpenseAccountRef,
    AssetAccountRef (an Other Current Asset account), QtyOnHand and InvStartDate."""
    item = created(realm, "Item", inventory(realm))
    assert (item["TrackQtyOnHand"], item["QtyOnHand"]) == (True, 10)
    assert item["AssetAccountRef"]["name"] == "Inventory Asset"


@pytest.mark.parametrize("missing", ["ExpenseAccountRef", "AssetAccountRef", "QtyOnHand",
                                     "InvStartDate"])
def test_an_inventory_item_without_one_of_them_is_2020(realm: ConnectedRealm,
                                                       missing: str) -> None:
    """Item reference: each is conditionally required for Inventory items (2020)."""
    error = error_of(realm.post("item", inventory(realm, **{missing: None})))
    assert error["code"] == "2020" and missing in error["Detail"]


def test_an_inventory_item_must_track_its_quantity(realm: ConnectedRealm) -> None:
    """QBO: "Business Validation Error: When you create an item, if Track quantity on hand is
    turned off, the item cannot be of type Inventory." (Intuit's .NET SDK issue 10); and an
    asset account must be an asset account."""
    body = inventory(realm)
    error = error_of(realm.post("item", {**body, "TrackQtyOnHand": False}))
    assert error["code"] == "6000" and "Track quantity on hand" in error["Detail"]
    misfiled = {**body, "AssetAccountRef": {"value": account_id(realm, "Checking")}}
    assert error_of(realm.post("item", misfiled))["element"] == "AssetAccountRef"


# --------------------------------------------------------------------------- malformed requests


@pytest.mark.parametrize(("entity", "body", "unknown", "type_name"), [
    ("Customer", {"DisplayName": "Typo Co", "CompanyNmae": "Typo"}, "CompanyNmae", "Customer"),
    ("Vendor", {"DisplayName": "Typo Supply", "Job": True}, "Job", "Vendor"),
    ("Item", {"Name": "Typo", "Type": "Service", "IncomeAccountRef": {"value": "1"},
              "SalesDesc": "QBO calls it Description"}, "SalesDesc", "Item"),
    ("Customer", {"DisplayName": "Street Co", "BillAddr": {"Street": "1 Main"}}, "Street",
     "PhysicalAddress"),
    ("Class", {"Name": "Typo", "ParentRef": {"id": "1"}}, "id", "ReferenceType"),
])
def test_an_unknown_property_is_2010(realm: ConnectedRealm, entity: str, body: dict[str, Any],
                                     unknown: str, type_name: str) -> None:
    """Error codes: 2010 "Request has invalid or unsupported property"; QBO's reader refuses a
    property its schema does not have, at any depth, and names it in the Detail ("Property
    Name:Unrecognized field ... specified is unsupported or invalid")."""
    error = error_of(realm.post(entity.lower(), body))
    assert (error["code"], error["Message"]) == ("2010",
                                                 "Request has invalid or unsupported property")
    assert error["Detail"].startswith(f'Property Name:Unrecognized field "{unknown}" (class '
                                      f"com.intuit.schema.finance.v3.{type_name})")
    assert error["element"].endswith(unknown)


def test_an_unknown_property_on_update_changes_nothing(realm: ConnectedRealm) -> None:
    """QBO reads the body before anything else: the whole update is refused (2010)."""
    customer = created(realm, "Customer", {"DisplayName": "Steady Co"})
    error = error_of(sparse(realm, "Customer", customer, Notes="new", Nots="typo"))
    assert error["code"] == "2010" and error["element"] == "Nots"
    assert "Notes" not in read(realm, "Customer", customer["Id"])


@pytest.mark.parametrize("entity", NAMES_LISTS)
def test_everything_qbo_answers_it_takes_back(realm: ConnectedRealm, entity: str) -> None:
    """Basic field definitions, full update: the body is the object as read, changed; every
    property QBO writes into a response is one it accepts in a request."""
    record = read(realm, entity, some_record(realm, entity)["Id"])
    response = realm.post(entity.lower(), record)
    assert response.status_code == 200, response.text


def test_jobs_and_sub_items_are_taken_back_too(realm: ConnectedRealm) -> None:
    """The same for records below a parent, which carry ParentRef and Level."""
    parent = created(realm, "Customer", {"DisplayName": "Echo Parent"})
    job = created(realm, "Customer", {"DisplayName": "Echo Job", "Job": True,
                                      "ParentRef": {"value": parent["Id"]}})
    trees = created(realm, "Item", {"Name": "Echo Trees", "Type": "Category"})
    maple = created(realm, "Item", {"Name": "Echo Maple", "Type": "Service", "SubItem": True,
                                    "ParentRef": {"value": trees["Id"]},
                                    "IncomeAccountRef": {"value": account_id(realm, "Services")}})
    for entity, record in (("Customer", job), ("Item", maple)):
        assert record["Level"] == 1
        assert realm.post(entity.lower(), read(realm, entity, record["Id"])).ok


def test_a_query_of_an_unknown_entity_is_4001(realm: ConnectedRealm) -> None:
    """QBO answers "select * from <no such entity>" with 4001 "Invalid query", Detail
    "QueryValidationError: Metadata not found for Entity: ..." (quickbooks-ruby issue 628)."""
    error = error_of(realm.get("query", params={"query": "select * from Custmer"}))
    assert (error["code"], error["Message"]) == ("4001", "Invalid query")
    assert error["Detail"].startswith("QueryValidationError: Metadata not found for Entity: "
                                      "Custmer")


def test_an_id_that_is_not_a_number_is_2030(realm: ConnectedRealm) -> None:
    """Error codes: 2030 "Invalid ID" ("Id should be a valid number. Supplied value:..."), on a
    read, an update and a delete; a well-formed Id that names nothing stays 610."""
    customer = created(realm, "Customer", {"DisplayName": "Numbered Co"})
    for response in (realm.get("customer/abc"),
                     realm.post("customer", {"Id": "x", "SyncToken": "0", "sparse": True,
                                             "Notes": "never"}),
                     realm.post("invoice?operation=delete", {"Id": "1-2", "SyncToken": "0"})):
        error = error_of(response)
        assert (error["code"], error["Message"], error["element"]) == ("2030", "Invalid ID",
                                                                       "Id")
        assert error["Detail"].startswith("Id should be a valid number. Supplied value:")
    assert error_of(realm.get("customer/424242"))["code"] == "610"
    assert "Notes" not in read(realm, "Customer", customer["Id"])


def test_tax_codes_keep_their_own_ids(realm: ConnectedRealm) -> None:
    """TaxCode reference: a US company's pseudo tax codes are TAX and NON; they read as such."""
    assert read(realm, "TaxCode", "TAX")["Taxable"] is True
