"""Credit memos and the credit they give, applied to invoices, over real HTTP.

"CreditMemo reference" is Intuit's API reference page of the CreditMemo entity: CustomerRef and
Line are required, TotalAmt is computed from the lines, Balance and RemainingCredit start at
TotalAmt. "Linked transactions" is Intuit's page "Manage linked transactions": a credit memo is
applied to an invoice by a Payment whose lines link both, the credit's line counting against the
invoice's, so the payment's TotalAmt is 0 when the credit covers what it applies; the invoice's
Balance and the memo's RemainingCredit fall, and each lists the payment in LinkedTxn. Seed 002
("Change/Write-Offs") and seed 004 ("CREDIT MEMO EXPORT") are the sync's reasons for needing it.
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_accounting_payments import (
    created,
    invoice_of,
    links_to,
    read_invoice,
    written,
)


def credit_memo_of(realm: ConnectedRealm, customer_id: str, amount: float) -> dict[str, Any]:
    return created(realm, "CreditMemo", {"CustomerRef": {"value": customer_id}, "Line": [
        {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]})


def read_memo(realm: ConnectedRealm, memo_id: str) -> dict[str, Any]:
    response = realm.get(f"creditmemo/{memo_id}")
    assert response.status_code == 200, response.text
    memo: dict[str, Any] = response.json()["CreditMemo"]
    return memo


def credit_applied(customer_id: str, invoice_id: str, memo_id: str, amount: float,
                   total: float = 0) -> dict[str, Any]:
    """Linked transactions: a payment of `total` applying `amount` of the memo's credit (and
    `total` more of money) to the invoice."""
    return {"CustomerRef": {"value": customer_id}, "TotalAmt": total, "Line": [
        {"Amount": amount + total,
         "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]},
        {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]},
    ]}


@pytest.fixture
def customer(realm: ConnectedRealm) -> dict[str, Any]:
    return created(realm, "Customer", {"DisplayName": "Cool Cars"})


def test_a_credit_memo_needs_its_customer_and_lines(realm: ConnectedRealm,
                                                    customer: dict[str, Any]) -> None:
    """CreditMemo reference: CustomerRef and Line are required (QBO's 2020)."""
    no_customer = realm.post("creditmemo", {"Line": [
        {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]})
    no_lines = realm.post("creditmemo", {"CustomerRef": {"value": customer["Id"]}})
    for response in (no_customer, no_lines):
        assert response.status_code == 400, response.text
        assert response.json()["Fault"]["Error"][0]["code"] == "2020"


def test_a_new_credit_memo_has_all_its_credit_remaining(realm: ConnectedRealm,
                                                        customer: dict[str, Any]) -> None:
    """CreditMemo reference: TotalAmt from the lines; Balance and RemainingCredit equal it;
    the home currency and the next DocNumber are filled in; what a request sends for the
    computed fields is ignored."""
    memo = created(realm, "CreditMemo", {
        "CustomerRef": {"value": customer["Id"]}, "RemainingCredit": 1, "Balance": 2,
        "Line": [{"Amount": 30, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}},
                 {"Amount": 12.5, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}}]})
    assert memo["TotalAmt"] == 42.5
    assert memo["Balance"] == 42.5 and memo["RemainingCredit"] == 42.5
    assert memo["CurrencyRef"]["value"] == "USD"
    assert memo["DocNumber"] and "LinkedTxn" not in memo


def test_a_credit_applied_lowers_the_invoice_and_the_memo_alike(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Linked transactions: a $0 payment linking the invoice and the credit memo moves 40 of
    credit onto the invoice: its Balance and the memo's RemainingCredit both fall by 40, both
    list the payment in LinkedTxn and get a new SyncToken; the invoice's lines and total stay."""
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, customer["Id"], 40)

    payment = created(realm, "Payment",
                      credit_applied(customer["Id"], invoice["Id"], memo["Id"], 40))

    assert payment["TotalAmt"] == 0 and payment["UnappliedAmt"] == 0
    owed = read_invoice(realm, invoice["Id"])
    assert owed["Balance"] == 60 and owed["TotalAmt"] == 100
    assert owed["Line"] == invoice["Line"]
    assert owed["LinkedTxn"] == links_to(payment) and owed["SyncToken"] == "1"
    used = read_memo(realm, memo["Id"])
    assert used["RemainingCredit"] == 0 and used["Balance"] == 0 and used["TotalAmt"] == 40
    assert used["LinkedTxn"] == links_to(payment) and used["SyncToken"] == "1"


def test_credit_and_money_together_pay_the_invoice(realm: ConnectedRealm,
                                                   customer: dict[str, Any]) -> None:
    """Linked transactions: a payment of 70 using 30 of a 50 credit pays 100 of the invoice;
    the memo keeps 20 of credit."""
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, customer["Id"], 50)

    created(realm, "Payment",
            credit_applied(customer["Id"], invoice["Id"], memo["Id"], 30, total=70))

    assert read_invoice(realm, invoice["Id"])["Balance"] == 0
    assert read_memo(realm, memo["Id"])["RemainingCredit"] == 20


def test_voiding_the_payment_gives_the_credit_back(realm: ConnectedRealm,
                                                   customer: dict[str, Any]) -> None:
    """Payment reference, void: a voided payment applies nothing, so the invoice owes its whole
    total again and the memo has all its credit; neither lists the payment any more."""
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, customer["Id"], 40)
    payment = created(realm, "Payment",
                      credit_applied(customer["Id"], invoice["Id"], memo["Id"], 40))

    written(realm, "payment?operation=void", "Payment",
            {"Id": payment["Id"], "SyncToken": payment["SyncToken"]})

    restored = read_invoice(realm, invoice["Id"])
    assert restored["Balance"] == 100 and "LinkedTxn" not in restored
    credit = read_memo(realm, memo["Id"])
    assert credit["RemainingCredit"] == 40 and credit["Balance"] == 40
    assert "LinkedTxn" not in credit and credit["SyncToken"] == "2"


def test_more_credit_than_the_memo_has_is_refused(realm: ConnectedRealm,
                                                  customer: dict[str, Any]) -> None:
    """Linked transactions: a payment uses at most the memo's remaining credit (QBO's 6000),
    and nothing changes."""
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, customer["Id"], 40)
    created(realm, "Payment", credit_applied(customer["Id"], invoice["Id"], memo["Id"], 25))

    over = realm.post("payment", credit_applied(customer["Id"], invoice["Id"], memo["Id"], 20))

    assert over.status_code == 400, over.text
    error = over.json()["Fault"]["Error"][0]
    assert error["code"] == "6000"
    assert f"CreditMemo Id={memo['Id']}, whose remaining credit is 15" in error["Detail"]
    assert read_memo(realm, memo["Id"])["RemainingCredit"] == 15
    assert read_invoice(realm, invoice["Id"])["Balance"] == 75


def test_a_credit_above_the_invoice_balance_is_refused(realm: ConnectedRealm,
                                                       customer: dict[str, Any]) -> None:
    """Linked transactions: a credit that would take the invoice below zero is refused (6000),
    as a payment would be."""
    invoice = invoice_of(realm, customer["Id"], 30)
    memo = credit_memo_of(realm, customer["Id"], 40)

    over = realm.post("payment", credit_applied(customer["Id"], invoice["Id"], memo["Id"], 40))

    assert over.status_code == 400, over.text
    assert "whose open balance is 30" in over.json()["Fault"]["Error"][0]["Detail"]
    assert read_memo(realm, memo["Id"])["RemainingCredit"] == 40


def test_credit_used_without_an_invoice_is_refused(realm: ConnectedRealm,
                                                   customer: dict[str, Any]) -> None:
    """Linked transactions: the credit's line counts against an invoice of the same payment;
    credit with nothing to apply it to is refused (6000)."""
    memo = credit_memo_of(realm, customer["Id"], 40)

    alone = realm.post("payment", {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 0,
                                   "Line": [{"Amount": 10, "LinkedTxn": [
                                       {"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}]})

    assert alone.status_code == 400, alone.text
    assert alone.json()["Fault"]["Error"][0]["code"] == "6000"
    assert read_memo(realm, memo["Id"])["RemainingCredit"] == 40


def test_another_customers_credit_is_refused(realm: ConnectedRealm,
                                             customer: dict[str, Any]) -> None:
    """Payment reference: a payment links only its own customer's transactions."""
    other = created(realm, "Customer", {"DisplayName": "Diego Rodriguez"})
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, other["Id"], 40)

    refused = realm.post("payment",
                         credit_applied(customer["Id"], invoice["Id"], memo["Id"], 40))

    assert refused.status_code == 400, refused.text
    assert f"CreditMemo Id={memo['Id']} belongs to customer" in refused.text


def test_an_applied_credit_memo_cannot_be_deleted(realm: ConnectedRealm,
                                                  customer: dict[str, Any]) -> None:
    """As an invoice with payments: a credit memo whose credit is used is not deleted while the
    payment links it; once the payment is voided it can be."""
    invoice = invoice_of(realm, customer["Id"], 100)
    memo = credit_memo_of(realm, customer["Id"], 40)
    payment = created(realm, "Payment",
                      credit_applied(customer["Id"], invoice["Id"], memo["Id"], 40))
    used = read_memo(realm, memo["Id"])

    refused = realm.post("creditmemo?operation=delete",
                         {"Id": used["Id"], "SyncToken": used["SyncToken"]})
    assert refused.status_code == 400, refused.text
    assert "has payments applied" in refused.text

    written(realm, "payment?operation=void", "Payment",
            {"Id": payment["Id"], "SyncToken": payment["SyncToken"]})
    freed = read_memo(realm, memo["Id"])
    deleted = realm.post("creditmemo?operation=delete",
                         {"Id": freed["Id"], "SyncToken": freed["SyncToken"]})
    assert deleted.status_code == 200, deleted.text
