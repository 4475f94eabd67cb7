"""What only QBO's screens change, and the faults it brings: a lapsed subscription (6190),
closed books (6200); and two rules of QBO's own list: a customer emailed its invoices without
an email (6420), a sixth level of sub-customers (6180).

The rules are checked on the backend alone (no server), the wire format and the admin switch
over HTTP. Codes and messages follow Intuit's error codes list and its "subscription states"
page: a canceled, expired, suspended or restricted company is read-only.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.accounting.models import QBOBackend
from qbo_pipeline.emulator.exceptions import (
    AccountPeriodClosed,
    EmailAddressRequired,
    InvalidCompanyStatus,
    InvalidRequest,
    SubLevelLimit,
)
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_accounting_api import created, error_of, sale_line

REALM = "4620816365000000"
_NUMBERS = itertools.count(1)


@pytest.fixture
def backend() -> QBOBackend:
    fresh = QBOBackend()
    fresh.ensure_realm(REALM)
    return fresh


def _invoice(backend: QBOBackend, txn_date: str) -> dict[str, Any]:
    customer = backend.create(REALM, "Customer", {"DisplayName": f"Dated {next(_NUMBERS)}"})
    return {"CustomerRef": {"value": customer["Id"]}, "TxnDate": txn_date,
            "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {}}]}


@pytest.mark.parametrize("status", ["CANCELED", "EXPIRED", "SUSPENDED", "RESTRICTED"])
def test_a_lapsed_subscription_refuses_writes_but_not_reads(backend: QBOBackend,
                                                            status: str) -> None:
    customer = backend.create(REALM, "Customer", {"DisplayName": "Before"})
    backend.set_company_state(REALM, {"SubscriptionStatus": status})
    with pytest.raises(InvalidCompanyStatus):
        backend.create(REALM, "Customer", {"DisplayName": "After"})
    with pytest.raises(InvalidCompanyStatus):
        backend.update(REALM, "Customer", {**customer, "sparse": True, "Notes": "x"})
    assert backend.read(REALM, "Customer", customer["Id"])["DisplayName"] == "Before"
    backend.set_company_state(REALM, {"SubscriptionStatus": "SUBSCRIBED"})
    assert backend.create(REALM, "Customer", {"DisplayName": "Renewed"})["Id"]


def test_closed_books_refuse_transactions_dated_on_or_before_the_closing_date(
        backend: QBOBackend) -> None:
    open_invoice = backend.create(REALM, "Invoice", _invoice(backend, "2026-02-01"))
    backend.set_company_state(REALM, {"BookCloseDate": "2026-01-31"})
    with pytest.raises(AccountPeriodClosed) as raised:
        backend.create(REALM, "Invoice", _invoice(backend, "2026-01-31"))
    assert raised.value.code == "6200" and raised.value.element == "TxnDate"
    assert backend.create(REALM, "Invoice", _invoice(backend, "2026-02-01"))["Id"]
    assert backend.create(REALM, "Customer", {"DisplayName": "Names lists stay open"})
    backend.set_company_state(REALM, {"BookCloseDate": "2026-02-28"})
    with pytest.raises(AccountPeriodClosed):
        backend.void(REALM, "Invoice", {"Id": open_invoice["Id"],
                                        "SyncToken": open_invoice["SyncToken"]})
    backend.set_company_state(REALM, {"BookCloseDate": None})  # reopened
    assert backend.create(REALM, "Invoice", _invoice(backend, "2026-01-15"))["Id"]


def test_a_customer_emailed_its_invoices_needs_an_email(backend: QBOBackend) -> None:
    with pytest.raises(EmailAddressRequired) as raised:
        backend.create(REALM, "Customer", {"DisplayName": "No Email",
                                           "PreferredDeliveryMethod": "Email"})
    assert raised.value.code == "6420"
    assert backend.create(REALM, "Customer", {
        "DisplayName": "Has Email", "PreferredDeliveryMethod": "Email",
        "PrimaryEmailAddr": {"Address": "ap@example.com"}})["Id"]


@pytest.mark.parametrize("changes", [{"SubscriptionStatus": "GONE"},
                                     {"BookCloseDate": "31/01/2026"}, {"Tier": "Plus"}])
def test_company_settings_are_checked(backend: QBOBackend, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        backend.set_company_state(REALM, changes)


def test_the_faults_go_on_the_wire_as_qbo_sends_them(realm: ConnectedRealm) -> None:
    admin = f"{realm.base_url}/admin/realms/{realm.realm_id}/company"
    answer = requests.put(admin, json={"SubscriptionStatus": "EXPIRED"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["SubscriptionStatus"] == "EXPIRED"
    lapsed = error_of(realm.post("customer", {"DisplayName": "Lapsed"}))
    assert (lapsed["code"], lapsed["Message"]) == ("6190", "Invalid Company Status")
    assert realm.get(f"companyinfo/{realm.realm_id}").status_code == 200
    requests.put(admin, json={"SubscriptionStatus": "PAID", "BookCloseDate": "2099-12-31"},
                 timeout=10)
    customer = created(realm, "Customer", {"DisplayName": "Closed Books"})
    closed = error_of(realm.post("invoice", {"CustomerRef": {"value": customer["Id"]},
                                             "Line": [sale_line(10)]}))
    assert (closed["code"], closed["element"]) == ("6200", "TxnDate")
    refused = requests.put(admin, json={}, timeout=10)
    assert refused.status_code == 400 and "SubscriptionStatus" in refused.text


def test_a_sixth_level_of_sub_customers_is_6180(backend: QBOBackend) -> None:
    """Intuit's error codes: 6180 "Sub Level Limit", five levels of nesting at most."""
    parent = backend.create(REALM, "Customer", {"DisplayName": "Level 0"})
    for level in range(1, 5):
        parent = backend.create(REALM, "Customer", {
            "DisplayName": f"Level {level}", "Job": True, "ParentRef": {"value": parent["Id"]}})
    with pytest.raises(SubLevelLimit) as raised:
        backend.create(REALM, "Customer", {"DisplayName": "Level 5", "Job": True,
                                           "ParentRef": {"value": parent["Id"]}})
    assert (raised.value.code, raised.value.element) == ("6180", "ParentRef")
