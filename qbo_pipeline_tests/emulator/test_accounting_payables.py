"""Bills and purchases (expenses) as QBO takes them, over real HTTP to the emulator.

"Bill reference" and "Purchase reference" are Intuit's API reference pages of those entities:
a Bill needs VendorRef and Line, and QBO fills in APAccountRef (Accounts Payable), DueDate,
Balance (= TotalAmt) and CurrencyRef; a Purchase needs AccountRef (the account it is paid
from: a bank account for Cash and Check, a credit card account for CreditCard), PaymentType
and Line. Expense lines post to expense accounts. These are what the payables specs push
(seed 001 "Expenses (as QB Purchase records)", seed 004 "bill data is a 1-way push into a
QuickBooks bill").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.accounting.models import parse_time
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_accounting_api import created, error_of


def account_named(realm: ConnectedRealm, name: str) -> dict[str, Any]:
    response = realm.get("query", params={"query": f"select * from Account where Name = '{name}'"})
    assert response.status_code == 200, response.text
    [account] = response.json()["QueryResponse"]["Account"]
    return dict(account)


def expense_line(account_id: str, amount: float = 40) -> dict[str, Any]:
    return {"Amount": amount, "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account_id}}}


def purchase(payment_type: str, paid_from: str, expense_account: str) -> dict[str, Any]:
    return {"PaymentType": payment_type, "AccountRef": {"value": paid_from},
            "Line": [expense_line(expense_account)]}


def test_a_new_company_has_the_accounts_payables_need(realm: ConnectedRealm) -> None:
    """A new QBO company's chart of accounts holds an Accounts Payable account (bills), a bank
    and a credit card account (purchases are paid from them) and expense accounts."""
    kinds = {name: account_named(realm, name)["AccountType"] for name in (
        "Accounts Payable (A/P)", "Checking", "Credit Card", "Meals and Entertainment")}
    assert kinds == {"Accounts Payable (A/P)": "Accounts Payable", "Checking": "Bank",
                     "Credit Card": "Credit Card", "Meals and Entertainment": "Expense"}


@pytest.mark.parametrize(("payment_type", "paid_from"), [
    ("Check", "Checking"), ("Cash", "Checking"), ("CreditCard", "Credit Card")])
def test_a_purchase_is_paid_from_its_payment_account(realm: ConnectedRealm, payment_type: str,
                                                     paid_from: str) -> None:
    """Purchase reference, AccountRef: a check or cash purchase comes out of a bank account,
    a card purchase out of a credit card account; TotalAmt is the lines' sum, CurrencyRef the
    home currency (seed 001: "paymentMethod -> PaymentType, category -> AccountRef")."""
    body = purchase(payment_type, account_named(realm, paid_from)["Id"],
                    account_named(realm, "Travel")["Id"])
    record = created(realm, "Purchase", body)
    assert (record["TotalAmt"], record["CurrencyRef"]["value"]) == (40, "USD")
    assert record["AccountRef"]["name"] == paid_from


@pytest.mark.parametrize(("payment_type", "paid_from"), [
    ("Check", "Credit Card"), ("CreditCard", "Checking"), ("Cash", "Travel")])
def test_a_purchase_from_another_kind_of_account_is_refused(
        realm: ConnectedRealm, payment_type: str, paid_from: str) -> None:
    """Purchase reference: QBO refuses a payment account of the wrong type (6000, "Invalid
    account type"), naming the field and the account."""
    body = purchase(payment_type, account_named(realm, paid_from)["Id"],
                    account_named(realm, "Travel")["Id"])
    error = error_of(realm.post("purchase", body))
    assert error["code"] == "6000" and "Invalid account type" in error["Detail"]
    assert "AccountRef" in error["Detail"] and paid_from in error["Detail"]


@pytest.mark.parametrize("entity", ["Purchase", "Bill"])
def test_an_expense_line_on_an_income_account_is_refused(realm: ConnectedRealm,
                                                         entity: str) -> None:
    """An expense line posts to an Expense, Other Expense or Cost of Goods Sold account; an
    income account ("Services") is refused with 6000."""
    services = account_named(realm, "Services")["Id"]
    body: dict[str, Any] = (
        purchase("Check", account_named(realm, "Checking")["Id"], services)
        if entity == "Purchase" else
        {"VendorRef": {"value": created(realm, "Vendor", {"DisplayName": "V"})["Id"]},
         "Line": [expense_line(services)]})
    error = error_of(realm.post(entity.lower(), body))
    assert error["code"] == "6000" and "Line[1].AccountBasedExpenseLineDetail" in error["Detail"]


def test_a_bill_gets_what_qbo_fills_in(realm: ConnectedRealm) -> None:
    """Bill reference sample: a bill sent without them gets APAccountRef "Accounts Payable
    (A/P)", Balance = TotalAmt, the home CurrencyRef and a DueDate from the vendor's term
    counted from TxnDate; each line keeps the customer (job) it is for."""
    net_30 = [t for t in realm.get("query", params={"query": "select * from Term"}).json()[
        "QueryResponse"]["Term"] if t["Name"] == "Net 30"][0]
    vendor = created(realm, "Vendor", {"DisplayName": "Lumber Co",
                                       "TermRef": {"value": net_30["Id"]}})
    job = created(realm, "Customer", {"DisplayName": "Kitchen job"})
    line = expense_line(account_named(realm, "Supplies and Materials")["Id"], 250)
    line["AccountBasedExpenseLineDetail"]["CustomerRef"] = {"value": job["Id"]}
    bill = created(realm, "Bill", {"VendorRef": {"value": vendor["Id"]},
                                   "TxnDate": "2026-03-02", "Line": [line]})
    assert bill["APAccountRef"]["name"] == "Accounts Payable (A/P)"
    assert (bill["TotalAmt"], bill["Balance"], bill["CurrencyRef"]["value"]) == (250, 250, "USD")
    assert bill["DueDate"] == "2026-04-01"
    detail = bill["Line"][0]["AccountBasedExpenseLineDetail"]
    assert detail["CustomerRef"] == {"value": job["Id"], "name": "Kitchen job"}


def test_a_bill_without_a_term_is_due_on_its_date(realm: ConnectedRealm) -> None:
    """Bill reference, DueDate: without a term the bill is due on its TxnDate."""
    vendor = created(realm, "Vendor", {"DisplayName": "Cash Vendor"})
    bill = created(realm, "Bill", {"VendorRef": {"value": vendor["Id"]}, "TxnDate": "2026-03-02",
                                   "Line": [expense_line(account_named(realm, "Travel")["Id"])]})
    assert bill["DueDate"] == "2026-03-02"


def test_a_bill_owed_on_another_kind_of_account_is_refused(realm: ConnectedRealm) -> None:
    """Bill reference, APAccountRef: it must be an Accounts Payable account (6000)."""
    vendor = created(realm, "Vendor", {"DisplayName": "V"})
    body = {"VendorRef": {"value": vendor["Id"]},
            "APAccountRef": {"value": account_named(realm, "Checking")["Id"]},
            "Line": [expense_line(account_named(realm, "Travel")["Id"])]}
    error = error_of(realm.post("bill", body))
    assert error["code"] == "6000" and "APAccountRef" in error["Detail"]


@pytest.mark.parametrize("entity", ["Purchase", "Bill"])
def test_bills_and_purchases_cannot_be_voided_through_the_api(realm: ConnectedRealm,
                                                              entity: str) -> None:
    """Intuit's Bill and Purchase references offer create, read, update, delete and query,
    no void: which is why the payables specs report a deleted record for a person to handle
    (seed 004: "it should be manually deleted or made inactive in QuickBooks")."""
    travel = account_named(realm, "Travel")["Id"]
    body: dict[str, Any] = (
        purchase("Check", account_named(realm, "Checking")["Id"], travel)
        if entity == "Purchase" else
        {"VendorRef": {"value": created(realm, "Vendor", {"DisplayName": "V"})["Id"]},
         "Line": [expense_line(travel)]})
    record = created(realm, entity, body)
    response = realm.post(entity.lower(), {"Id": record["Id"], "SyncToken": "0"},
                          params={"operation": "void"})
    assert error_of(response)["code"] == "500"  # Intuit's "Unsupported Operation"


def test_a_record_can_be_backdated_for_tests_of_recent_changes(realm: ConnectedRealm) -> None:
    """The emulator's admin endpoint makes a bill look last changed 20 days ago, so that a
    query for bills changed in the last 14 days (seed 004: "QuickBooks Bills that have been
    modified within the last 2 weeks") leaves it out; a time in the future is refused."""
    vendor = created(realm, "Vendor", {"DisplayName": "Old Vendor"})
    bill = created(realm, "Bill", {"VendorRef": {"value": vendor["Id"]},
                                   "Line": [expense_line(account_named(realm, "Travel")["Id"])]})
    url = f"{realm.base_url}/admin/realms/{realm.realm_id}/bill/{bill['Id']}/backdate"
    past = datetime.now(UTC) - timedelta(days=20)
    response = requests.post(url, json={"LastUpdatedTime": past.isoformat()}, timeout=10)
    assert response.status_code == 200, response.text
    assert parse_time(response.json()["bill"]["MetaData"]["LastUpdatedTime"]) == past.replace(
        microsecond=0)
    since = (datetime.now(UTC) - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = realm.get("query", params={
        "query": f"select * from Bill where MetaData.LastUpdatedTime >= '{since}'"})
    assert recent.json()["QueryResponse"].get("Bill", []) == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert requests.post(url, json={"LastUpdatedTime": future.isoformat()},
                         timeout=10).status_code == 400
