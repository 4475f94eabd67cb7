"""Payments applied to invoices, as a client that reads changes sees them, over real HTTP.

"Payment reference" is Intuit's API reference page of the Payment entity: Line[].LinkedTxn
(TxnType "Invoice") applies the line's Amount to that invoice. "Linked transactions" is
Intuit's page "Manage linked transactions": the invoice's Balance falls and its LinkedTxn lists
the payment. QBO changes the invoice when a payment is linked to it, so its SyncToken and
MetaData.LastUpdatedTime move and CDC and LastUpdatedTime queries find it again. QBO stamps
times to the second, so tests that compare stamps wait for the clock to pass a second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbo_pipeline_tests.conftest import ConnectedRealm


def created(realm: ConnectedRealm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(entity.lower(), body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def written(realm: ConnectedRealm, path: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(path, body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def read_invoice(realm: ConnectedRealm, invoice_id: str) -> dict[str, Any]:
    response = realm.get(f"invoice/{invoice_id}")
    assert response.status_code == 200, response.text
    invoice: dict[str, Any] = response.json()["Invoice"]
    return invoice


def invoice_of(realm: ConnectedRealm, customer_id: str, *amounts: float) -> dict[str, Any]:
    return created(realm, "Invoice", {"CustomerRef": {"value": customer_id}, "Line": [
        {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
        for amount in amounts
    ]})


def payment_body(customer_id: str, total: float,
                 *applied: tuple[str, float]) -> dict[str, Any]:
    """A payment of `total` whose lines apply (invoice Id, amount) pairs, one line each."""
    return {"CustomerRef": {"value": customer_id}, "TotalAmt": total, "Line": [
        {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}
        for invoice_id, amount in applied
    ]}


def links_to(*payments: dict[str, Any]) -> list[dict[str, str]]:
    return [{"TxnId": payment["Id"], "TxnType": "Payment"} for payment in payments]


def past_second_of(stamp: str) -> datetime:
    """Wait until the wall clock is past the second QBO stamped; then a moment later."""
    boundary = datetime.fromisoformat(stamp) + timedelta(seconds=1)
    while (now := datetime.now(UTC)) < boundary:
        time.sleep((boundary - now).total_seconds() + 0.01)
    return now


def updated_at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["MetaData"]["LastUpdatedTime"])


def cdc_invoices(realm: ConnectedRealm, since: datetime,
                 entities: str = "Invoice") -> dict[str, list[dict[str, Any]]]:
    """What CDC answers since `since`: entity -> its changed objects."""
    response = realm.get("cdc", params={"entities": entities, "changedSince": since.isoformat()})
    assert response.status_code == 200, response.text
    found: dict[str, list[dict[str, Any]]] = {}
    for part in response.json()["CDCResponse"][0]["QueryResponse"]:
        for name, value in part.items():
            if isinstance(value, list):
                found[name] = value
    return found


def invoices_updated_after(realm: ConnectedRealm, stamp: str) -> list[dict[str, Any]]:
    response = realm.get("query", params={
        "query": f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '{stamp}'"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["QueryResponse"].get("Invoice", [])
    return rows


@pytest.fixture
def customer(realm: ConnectedRealm) -> dict[str, Any]:
    return created(realm, "Customer", {"DisplayName": "Amy's Bird Sanctuary"})


def test_full_payment_pays_the_invoice_and_shows_it_as_changed(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Linked transactions: paid in full, Balance is 0 and LinkedTxn lists the payment; the
    invoice gets a new SyncToken and a later LastUpdatedTime, so CDC since a moment before the
    payment and a LastUpdatedTime query both return it (and neither did before)."""
    invoice = invoice_of(realm, customer["Id"], 100, 20)
    stamp = invoice["MetaData"]["LastUpdatedTime"]
    since = past_second_of(stamp)
    assert cdc_invoices(realm, since) == {}
    assert invoices_updated_after(realm, stamp) == []

    payment = created(realm, "Payment", payment_body(customer["Id"], 120, (invoice["Id"], 120)))

    paid = read_invoice(realm, invoice["Id"])
    assert paid["Balance"] == 0 and paid["TotalAmt"] == 120
    assert paid["LinkedTxn"] == links_to(payment)
    assert paid["SyncToken"] == "1"
    assert updated_at(paid) > datetime.fromisoformat(stamp)
    assert paid["MetaData"]["CreateTime"] == invoice["MetaData"]["CreateTime"]
    assert cdc_invoices(realm, since)["Invoice"] == [paid]
    assert invoices_updated_after(realm, stamp) == [paid]


def test_partial_payment_reduces_the_balance_only(realm: ConnectedRealm,
                                                  customer: dict[str, Any]) -> None:
    """Payment reference: a partial payment leaves the rest open; a second one adds its link;
    each bumps the invoice's SyncToken."""
    invoice = invoice_of(realm, customer["Id"], 100)
    first = created(realm, "Payment", payment_body(customer["Id"], 40, (invoice["Id"], 40)))
    partly = read_invoice(realm, invoice["Id"])
    assert partly["Balance"] == 60 and partly["TotalAmt"] == 100
    assert partly["LinkedTxn"] == links_to(first) and partly["SyncToken"] == "1"

    second = created(realm, "Payment", payment_body(customer["Id"], 60.5, (invoice["Id"], 60)))
    assert second["UnappliedAmt"] == 0.5
    paid = read_invoice(realm, invoice["Id"])
    assert paid["Balance"] == 0 and paid["LinkedTxn"] == links_to(first, second)
    assert paid["SyncToken"] == "2"


def test_void_payment_restores_the_balance_and_shows_the_invoice_again(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Payment reference, void: the voided payment no longer pays the invoice: Balance is back,
    the link is gone, and the invoice changes again (SyncToken, LastUpdatedTime, CDC)."""
    invoice = invoice_of(realm, customer["Id"], 100)
    payment = created(realm, "Payment", payment_body(customer["Id"], 100, (invoice["Id"], 100)))
    paid = read_invoice(realm, invoice["Id"])
    assert paid["Balance"] == 0
    since = past_second_of(paid["MetaData"]["LastUpdatedTime"])
    assert cdc_invoices(realm, since) == {}

    voided = written(realm, "payment?operation=void", "Payment",
                     {"Id": payment["Id"], "SyncToken": payment["SyncToken"]})
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"] == "Voided"

    restored = read_invoice(realm, invoice["Id"])
    assert restored["Balance"] == 100 and "LinkedTxn" not in restored
    assert restored["SyncToken"] == "2"
    assert updated_at(restored) > updated_at(paid)
    assert cdc_invoices(realm, since)["Invoice"] == [restored]
    assert invoices_updated_after(realm, paid["MetaData"]["LastUpdatedTime"]) == [restored]


def test_delete_payment_restores_the_balance_and_shows_the_invoice_again(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Payment reference, delete: the invoice is open again and changed; CDC returns it with
    the payment as status Deleted."""
    invoice = invoice_of(realm, customer["Id"], 80)
    payment = created(realm, "Payment", payment_body(customer["Id"], 50, (invoice["Id"], 50)))
    paid = read_invoice(realm, invoice["Id"])
    assert paid["Balance"] == 30
    since = past_second_of(paid["MetaData"]["LastUpdatedTime"])

    response = realm.post("payment?operation=delete",
                          {"Id": payment["Id"], "SyncToken": payment["SyncToken"]})
    assert response.status_code == 200, response.text

    restored = read_invoice(realm, invoice["Id"])
    assert restored["Balance"] == 80 and "LinkedTxn" not in restored
    assert restored["SyncToken"] == "2"
    found = cdc_invoices(realm, since, "Invoice,Payment")
    assert found["Invoice"] == [restored]
    assert [(row["Id"], row["status"]) for row in found["Payment"]] == [(payment["Id"],
                                                                         "Deleted")]


def test_changing_the_payment_recomputes_the_balances(realm: ConnectedRealm,
                                                      customer: dict[str, Any]) -> None:
    """Payment reference, update: a new line amount changes what the payment applies; moving
    the line to another invoice opens the first again and pays the second."""
    first = invoice_of(realm, customer["Id"], 100)
    second = invoice_of(realm, customer["Id"], 100)
    payment = created(realm, "Payment", payment_body(customer["Id"], 100, (first["Id"], 100)))
    assert read_invoice(realm, first["Id"])["Balance"] == 0

    smaller = written(realm, "payment", "Payment", {
        **payment_body(customer["Id"], 100, (first["Id"], 40)),
        "Id": payment["Id"], "SyncToken": payment["SyncToken"], "sparse": True,
    })
    assert smaller["UnappliedAmt"] == 60
    reopened = read_invoice(realm, first["Id"])
    assert reopened["Balance"] == 60 and reopened["LinkedTxn"] == links_to(payment)
    assert reopened["SyncToken"] == "2"

    moved = written(realm, "payment", "Payment", {
        **payment_body(customer["Id"], 100, (second["Id"], 100)),
        "Id": payment["Id"], "SyncToken": smaller["SyncToken"],
    })
    assert moved["UnappliedAmt"] == 0
    left, paid = read_invoice(realm, first["Id"]), read_invoice(realm, second["Id"])
    assert (left["Balance"], left["SyncToken"]) == (100, "3") and "LinkedTxn" not in left
    assert (paid["Balance"], paid["SyncToken"]) == (0, "1")
    assert paid["LinkedTxn"] == links_to(payment)


def test_payment_applied_to_two_invoices_splits_as_its_lines_say(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Payment reference: each line applies its own Amount to its own invoice."""
    first = invoice_of(realm, customer["Id"], 100)
    second = invoice_of(realm, customer["Id"], 50, 25)
    payment = created(realm, "Payment", payment_body(
        customer["Id"], 150, (first["Id"], 100), (second["Id"], 30.25)))
    assert payment["UnappliedAmt"] == 19.75
    paid, partly = read_invoice(realm, first["Id"]), read_invoice(realm, second["Id"])
    assert (paid["Balance"], paid["SyncToken"]) == (0, "1")
    assert (partly["Balance"], partly["SyncToken"]) == (44.75, "1")
    assert paid["LinkedTxn"] == partly["LinkedTxn"] == links_to(payment)

    voided = written(realm, "payment?operation=void", "Payment",
                     {"Id": payment["Id"], "SyncToken": payment["SyncToken"]})
    assert voided["TotalAmt"] == 0
    assert [read_invoice(realm, invoice["Id"])["Balance"] for invoice in (first, second)] == [
        100, 75]


def test_invoice_update_after_a_payment_needs_the_new_sync_token(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Basic field definitions: the payment moved the invoice's SyncToken, so an update with
    the token read before the payment is 5010 (stale object); with the new one it works and the
    invoice stays paid (Balance and LinkedTxn are QBO's, whatever the request sends)."""
    invoice = invoice_of(realm, customer["Id"], 100)
    payment = created(realm, "Payment", payment_body(customer["Id"], 100, (invoice["Id"], 100)))

    stale = realm.post("invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"],
                                   "sparse": True, "PrivateNote": "too late"})
    assert stale.status_code == 400, stale.text
    error = stale.json()["Fault"]["Error"][0]
    assert error["code"] == "5010"
    assert read_invoice(realm, invoice["Id"]).get("PrivateNote") is None

    current = read_invoice(realm, invoice["Id"])
    updated = written(realm, "invoice", "Invoice", {
        "Id": invoice["Id"], "SyncToken": current["SyncToken"], "sparse": True,
        "PrivateNote": "paid by check", "Balance": 100, "LinkedTxn": [],
    })
    assert updated["PrivateNote"] == "paid by check" and updated["SyncToken"] == "2"
    assert updated["Balance"] == 0 and updated["LinkedTxn"] == links_to(payment)
    assert read_invoice(realm, invoice["Id"]) == updated


def account_named(realm: ConnectedRealm, name: str) -> dict[str, Any]:
    response = realm.get("query", params={"query": f"SELECT * FROM Account WHERE Name = '{name}'"})
    assert response.status_code == 200, response.text
    account: dict[str, Any] = response.json()["QueryResponse"]["Account"][0]
    return account


def test_a_payment_without_an_account_goes_to_undeposited_funds(
    realm: ConnectedRealm, customer: dict[str, Any]
) -> None:
    """Payment reference: a payment that names no DepositToAccountRef is put in Undeposited
    Funds (Intuit's Desktop reference says the same of ItemPaymentAdd); seed 004: "all payments
    will be brought over as un-deposited payments". A new company has that account (Other
    Current Asset), and the response carries what Intuit's sample Payment object shows QBO
    filling in (ProcessPayment false, UnappliedAmt)."""
    funds = account_named(realm, "Undeposited Funds")
    assert funds["AccountType"] == "Other Current Asset"
    invoice = invoice_of(realm, customer["Id"], 80)

    payment = created(realm, "Payment", payment_body(customer["Id"], 80, (invoice["Id"], 80)))

    assert payment["DepositToAccountRef"] == {"value": funds["Id"], "name": "Undeposited Funds"}
    assert payment["ProcessPayment"] is False and payment["UnappliedAmt"] == 0
    assert realm.get(f"payment/{payment['Id']}").json()["Payment"] == payment


def test_a_payment_goes_to_the_bank_account_it_names(realm: ConnectedRealm,
                                                     customer: dict[str, Any]) -> None:
    """Payment reference: DepositToAccountRef is the asset account the payment is deposited to
    (seed 004: "unless you enter a default ... account here"); the account must be a Bank or
    Other Current Asset account (QBO's 6000, as integrators' help pages describe its deposit
    account rule), so an income account is refused and nothing is applied."""
    checking = account_named(realm, "Checking")
    income = account_named(realm, "Services")
    invoice = invoice_of(realm, customer["Id"], 80)

    refused = realm.post("payment", {**payment_body(customer["Id"], 80, (invoice["Id"], 80)),
                                     "DepositToAccountRef": {"value": income["Id"]}})
    assert refused.status_code == 400, refused.text
    assert refused.json()["Fault"]["Error"][0]["code"] == "6000"
    assert read_invoice(realm, invoice["Id"])["Balance"] == 80

    payment = created(realm, "Payment", {**payment_body(customer["Id"], 80, (invoice["Id"], 80)),
                                         "DepositToAccountRef": {"value": checking["Id"]}})
    assert payment["DepositToAccountRef"] == {"value": checking["Id"], "name": "Checking"}
    assert read_invoice(realm, invoice["Id"])["Balance"] == 0


def test_more_than_the_open_balance_is_refused(realm: ConnectedRealm,
                                               customer: dict[str, Any]) -> None:
    """Linked transactions: a payment applies at most what the invoice still owes; more is
    QBO's 6000 "The payments you entered add up to more ..." (the detail integrators' help
    pages quote), naming the invoice and its open balance, and the invoice is left as it was."""
    invoice = invoice_of(realm, customer["Id"], 100)
    created(realm, "Payment", payment_body(customer["Id"], 70, (invoice["Id"], 70)))
    before = read_invoice(realm, invoice["Id"])

    over = realm.post("payment", payment_body(customer["Id"], 40, (invoice["Id"], 40)))

    assert over.status_code == 400, over.text
    error = over.json()["Fault"]["Error"][0]
    assert error["code"] == "6000"
    assert "The payments you entered add up to more" in error["Detail"]
    assert f"Invoice Id={invoice['Id']}, whose open balance is 30" in error["Detail"]
    assert read_invoice(realm, invoice["Id"]) == before
