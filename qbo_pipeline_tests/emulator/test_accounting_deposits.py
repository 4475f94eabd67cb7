"""Deposits and purchases as QBO takes them, over real HTTP to the emulator.

"Deposit reference" and "Purchase reference" are the pages of those entities in Intuit's API
reference: a deposit needs DepositToAccountRef and at least one Line (each DepositLineDetail
naming the AccountRef the money comes from), TotalAmt is computed from the lines; a purchase
needs PaymentType, AccountRef and Line, and its AccountRef is the account it is paid from: "A
type of Check should have bank account, CreditCard should specify credit card account". Seed
002 syncs "Trust Bank Accounts - Deposit Slips" and "Hard Costs" into them.
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline_tests.conftest import ConnectedRealm


def created(realm: ConnectedRealm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(entity.lower(), body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def refused(realm: ConnectedRealm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(entity.lower(), body)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["Fault"]["Error"][0]
    return error


def account_id(realm: ConnectedRealm, name: str) -> str:
    found = realm.get("query", params={"query": f"select * from Account where Name = '{name}'"})
    [account] = found.json()["QueryResponse"]["Account"]
    return str(account["Id"])


def deposit_line(amount: float, from_account: str) -> dict[str, Any]:
    return {"Amount": amount, "DetailType": "DepositLineDetail",
            "DepositLineDetail": {"AccountRef": {"value": from_account}}}


def expense_line(amount: float, account: str, **detail: Any) -> dict[str, Any]:
    return {"Amount": amount, "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}, **detail}}


def test_a_deposit_into_a_bank_account_totals_its_lines(realm: ConnectedRealm) -> None:
    """Deposit reference (seed 002, "Trust Bank Accounts - Deposit Slips"): a deposit slip of
    two lines into a Bank account; QBO numbers the lines, fills in the reference names and
    computes TotalAmt, and reading it back gives the same record."""
    trust = created(realm, "Account", {"Name": "Client Trust", "AccountType": "Bank",
                                       "AccountSubType": "TrustAccounts"})
    income = account_id(realm, "Services")

    deposit = created(realm, "Deposit", {
        "DepositToAccountRef": {"value": trust["Id"]}, "TxnDate": "2026-03-02",
        "Line": [deposit_line(1200, income), deposit_line(300.5, income)]})

    assert deposit["TotalAmt"] == 1500.5
    assert deposit["DepositToAccountRef"] == {"value": trust["Id"], "name": "Client Trust"}
    assert [line["Id"] for line in deposit["Line"]] == ["1", "2"]
    assert deposit["Line"][0]["DepositLineDetail"]["AccountRef"]["name"] == "Services"
    assert realm.get(f"deposit/{deposit['Id']}").json()["Deposit"] == deposit


def test_a_deposit_into_an_account_that_is_not_a_bank_is_refused(realm: ConnectedRealm) -> None:
    """Deposit reference: DepositToAccountRef is the bank account the money goes into; an
    income account (or Undeposited Funds itself) is QBO's 6000 "Invalid account type"."""
    income = account_id(realm, "Services")
    for target in (income, account_id(realm, "Undeposited Funds")):
        error = refused(realm, "Deposit", {"DepositToAccountRef": {"value": target},
                                           "Line": [deposit_line(10, income)]})
        assert error["code"] == "6000"
        assert "a deposit goes into an account of type: Bank" in error["Detail"]
    assert realm.get("query", params={"query": "select * from Deposit"}).json()[
        "QueryResponse"] == {}


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"Line": [{"Amount": 5, "DetailType": "DepositLineDetail",
                    "DepositLineDetail": {"AccountRef": {"value": "1"}}}]}, "DepositToAccountRef"),
        ({"DepositToAccountRef": {"value": "5"}, "Line": []}, "Line"),
        ({"DepositToAccountRef": {"value": "5"}, "Line": [
            {"Amount": 5, "DetailType": "DepositLineDetail", "DepositLineDetail": {}}]},
         "AccountRef"),
    ],
)
def test_a_deposit_needs_its_account_and_lines(realm: ConnectedRealm, body: dict[str, Any],
                                               missing: str) -> None:
    """Deposit reference: DepositToAccountRef and Line are required, and a line that is not
    linked to a payment names the account the money comes from (2020 otherwise)."""
    error = refused(realm, "Deposit", body)
    assert error["code"] == "2020" and missing in error["Detail"]


def test_a_check_purchase_is_paid_from_a_bank_account(realm: ConnectedRealm) -> None:
    """Purchase reference (seed 002, "Hard Costs"): a Check purchase from the Checking account,
    billable to a customer; QBO computes TotalAmt, and a line sent without BillableStatus is
    NotBillable, as Intuit's sample Purchase shows."""
    customer = created(realm, "Customer", {"DisplayName": "Matter 7"})
    expense = account_id(realm, "Office Supplies")

    purchase = created(realm, "Purchase", {
        "PaymentType": "Check", "AccountRef": {"value": account_id(realm, "Checking")},
        "Line": [expense_line(40, expense, CustomerRef={"value": customer["Id"]},
                              BillableStatus="Billable"),
                 expense_line(2.5, expense)]})

    assert purchase["TotalAmt"] == 42.5 and purchase["AccountRef"]["name"] == "Checking"
    first, second = (line["AccountBasedExpenseLineDetail"] for line in purchase["Line"])
    assert first["BillableStatus"] == "Billable" and first["CustomerRef"]["name"] == "Matter 7"
    assert second["BillableStatus"] == "NotBillable"


def test_a_purchase_is_paid_from_the_account_its_payment_type_needs(
        realm: ConnectedRealm) -> None:
    """Purchase reference, AccountRef: "A type of Check should have bank account, CreditCard
    should specify credit card account". A check from a credit card, a card payment from the
    bank, and a check from an expense account are each QBO's 6000 "Invalid account type"; a
    card payment from the card account is taken."""
    card = created(realm, "Account", {"Name": "Visa", "AccountType": "Credit Card"})["Id"]
    checking, expense = account_id(realm, "Checking"), account_id(realm, "Travel")
    for payment_type, account in (("Check", card), ("CreditCard", checking), ("Check", expense)):
        error = refused(realm, "Purchase", {"PaymentType": payment_type,
                                            "AccountRef": {"value": account},
                                            "Line": [expense_line(9, expense)]})
        assert error["code"] == "6000" and "Invalid account type" in error["Detail"]
    paid = created(realm, "Purchase", {"PaymentType": "CreditCard", "AccountRef": {"value": card},
                                       "Line": [expense_line(9, expense)]})
    assert paid["AccountRef"] == {"value": card, "name": "Visa"}


def test_a_billable_expense_line_names_its_customer(realm: ConnectedRealm) -> None:
    """Purchase reference, BillableStatus: a billable expense is billed to the line's
    CustomerRef, so a Billable line without one is refused (6000)."""
    error = refused(realm, "Purchase", {
        "PaymentType": "Cash", "AccountRef": {"value": account_id(realm, "Checking")},
        "Line": [expense_line(9, account_id(realm, "Travel"), BillableStatus="Billable")]})
    assert error["code"] == "6000" and "CustomerRef" in error["Detail"]


def undeposited_payment(realm: ConnectedRealm, amount: float) -> dict[str, Any]:
    """A payment of a customer's invoice, left in Undeposited Funds (no account named)."""
    customer = created(realm, "Customer", {"DisplayName": f"Payer {amount}"})
    invoice = created(realm, "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [
        {"Amount": amount, "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {}}]})
    return created(realm, "Payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": amount,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                    "TxnType": "Invoice"}]}]})


def payment_line(payment: dict[str, Any], amount: float | None = None) -> dict[str, Any]:
    return {"Amount": payment["TotalAmt"] if amount is None else amount,
            "DetailType": "DepositLineDetail",
            "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment", "TxnLineId": "0"}]}


def test_a_deposit_moves_payments_out_of_undeposited_funds_once(realm: ConnectedRealm) -> None:
    """Deposit reference: a line linked to a Payment (LinkedTxn TxnType Payment) deposits that
    payment, held in Undeposited Funds until then (Payment reference: "all payments will be
    brought over as un-deposited payments", seed 004), with no DepositLineDetail. The whole
    payment goes in; a payment already deposited, one paid into the bank directly and one
    that does not exist are refused."""
    payment = undeposited_payment(realm, 80)
    checking = account_id(realm, "Checking")

    deposit = created(realm, "Deposit", {"DepositToAccountRef": {"value": checking},
                                         "Line": [payment_line(payment)]})

    assert deposit["TotalAmt"] == 80
    again = refused(realm, "Deposit", {"DepositToAccountRef": {"value": checking},
                                       "Line": [payment_line(payment)]})
    assert again["code"] == "6000" and f"Deposit Id={deposit['Id']}" in again["Detail"]
    partly = refused(realm, "Deposit", {"DepositToAccountRef": {"value": checking},
                                        "Line": [payment_line(undeposited_payment(realm, 50),
                                                              20)]})
    assert partly["code"] == "6000" and "deposited whole" in partly["Detail"]
    banked = undeposited_payment(realm, 30)
    moved = realm.post("payment", {"Id": banked["Id"], "SyncToken": banked["SyncToken"],
                                   "sparse": True, "DepositToAccountRef": {"value": checking}})
    assert moved.status_code == 200, moved.text
    direct = refused(realm, "Deposit", {"DepositToAccountRef": {"value": checking},
                                        "Line": [payment_line(banked)]})
    assert direct["code"] == "6000" and "another account" in direct["Detail"]
    missing = refused(realm, "Deposit", {"DepositToAccountRef": {"value": checking},
                                         "Line": [payment_line({"Id": "999", "TotalAmt": 5})]})
    assert missing["code"] == "2500"
