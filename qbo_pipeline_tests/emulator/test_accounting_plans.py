"""A company's QuickBooks Online plan, and the invoice fields QBO fills in by default.

Seed 003: "You need a QuickBooks Online Essentials plan or better if you intend to sync your
times with QuickBooks. Only a Simple Start plan is required to sync invoices." QBO answers a
write of a feature the plan lacks with Intuit's 5020 ("You have issued a request against a
feature for which your product is not entitled"), and CompanyInfo's NameValue names the plan
(`OfferingSku`) and the subscription.

The invoice defaults follow the sample responses of Intuit's Invoice reference: TxnDate
today when missing, DueDate from the sales term or the TxnDate, CurrencyRef USD, PrintStatus
and EmailStatus NotSet, ApplyTaxAfterDiscount false, TotalAmt and Balance computed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.accounting.models import COMPANY_TIMEZONE, QBOBackend
from qbo_pipeline.emulator.exceptions import FeatureNotInPlan, InvalidRequest
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_accounting_api import created, error_of, sale_line

REALM = "4620816365000123"


@pytest.fixture
def backend() -> QBOBackend:
    fresh = QBOBackend()
    fresh.ensure_realm(REALM)
    return fresh


def _time(backend: QBOBackend) -> dict[str, Any]:
    employee = backend.create(REALM, "Employee", {"GivenName": "Ann", "FamilyName": "Lee"})
    return {"NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]}, "Hours": 2,
            "Minutes": 0, "TxnDate": "2026-03-02"}


def _invoice(backend: QBOBackend, **fields: Any) -> dict[str, Any]:
    customer = backend.create(REALM, "Customer", {"DisplayName": f"Plan {len(fields)} "
                                                                 f"{sorted(fields)}"})
    return backend.create(REALM, "Invoice", {"CustomerRef": {"value": customer["Id"]},
                                             "Line": [sale_line(40), sale_line(2.5)], **fields})


def _name_values(backend: QBOBackend) -> dict[str, str]:
    info = backend.read(REALM, "CompanyInfo", REALM)
    return {pair["Name"]: pair["Value"] for pair in info["NameValue"]}


def test_simple_start_refuses_time_activities_but_takes_invoices(backend: QBOBackend) -> None:
    """Seed 003: time needs Essentials or better; "Only a Simple Start plan is required to
    sync invoices"."""
    body = _time(backend)
    backend.set_company_state(REALM, {"Plan": "Simple Start"})
    with pytest.raises(FeatureNotInPlan) as refused:
        backend.create(REALM, "TimeActivity", body)
    assert refused.value.code == "5020" and "Simple Start" in refused.value.detail
    assert _invoice(backend)["TotalAmt"] == 42.5
    backend.set_company_state(REALM, {"Plan": "Essentials"})
    assert backend.create(REALM, "TimeActivity", body)["Hours"] == 2


def test_a_time_activity_written_on_plus_cannot_be_changed_on_simple_start(
        backend: QBOBackend) -> None:
    written = backend.create(REALM, "TimeActivity", _time(backend))
    backend.set_company_state(REALM, {"Plan": "simple start"})
    with pytest.raises(FeatureNotInPlan):
        backend.update(REALM, "TimeActivity", {**written, "sparse": True, "Hours": 3})
    assert backend.read(REALM, "TimeActivity", written["Id"])["Hours"] == 2


def test_company_info_names_the_plan_and_the_subscription(backend: QBOBackend) -> None:
    """QBO's CompanyInfo NameValue: OfferingSku and SubscriptionStatus."""
    assert _name_values(backend) == {"SubscriptionStatus": "SUBSCRIBED",
                                     "OfferingSku": "QuickBooks Online Plus"}
    state = backend.set_company_state(REALM, {"Plan": "Essentials",
                                              "SubscriptionStatus": "TRIAL"})
    assert (state["Plan"], state["SubscriptionStatus"]) == ("Essentials", "TRIAL")
    assert _name_values(backend) == {"SubscriptionStatus": "TRIAL",
                                     "OfferingSku": "QuickBooks Online Essentials"}


def test_an_unknown_plan_is_refused(backend: QBOBackend) -> None:
    with pytest.raises(InvalidRequest, match="Simple Start, Essentials, Plus"):
        backend.set_company_state(REALM, {"Plan": "Advanced Pro"})


def test_the_plan_fault_goes_on_the_wire_as_qbo_sends_it(realm: ConnectedRealm) -> None:
    admin = f"{realm.base_url}/admin/realms/{realm.realm_id}/company"
    employee = created(realm, "Employee", {"GivenName": "Bo", "FamilyName": "Ng"})
    answer = requests.put(admin, json={"Plan": "Simple Start"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["Plan"] == "Simple Start", answer.text
    refused = error_of(realm.post("timeactivity", {
        "NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]}, "Hours": 1}))
    assert (refused["code"], refused["Message"]) == ("5020", "Permission Denied Error")
    assert "not entitled" in refused["Detail"]
    info = realm.get(f"companyinfo/{realm.realm_id}").json()["CompanyInfo"]
    assert {"Name": "OfferingSku", "Value": "QuickBooks Online Simple Start"} in info["NameValue"]


# --------------------------------------------------------------------------- invoice defaults


def test_an_invoice_gets_qbo_defaults(backend: QBOBackend) -> None:
    """Intuit's Invoice sample response: CurrencyRef USD, PrintStatus and EmailStatus NotSet,
    ApplyTaxAfterDiscount false, TotalAmt and Balance the lines' total, TxnDate today and the
    DueDate the TxnDate when no sales term says otherwise."""
    invoice = _invoice(backend)
    today = datetime.now(COMPANY_TIMEZONE).date().isoformat()
    assert invoice["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert (invoice["PrintStatus"], invoice["EmailStatus"]) == ("NotSet", "NotSet")
    assert invoice["ApplyTaxAfterDiscount"] is False
    assert (invoice["TotalAmt"], invoice["Balance"]) == (42.5, 42.5)
    assert invoice["TxnDate"] == invoice["DueDate"] == today


def test_the_due_date_follows_the_sales_term(backend: QBOBackend) -> None:
    """DueDate "calculated based on the sales terms if not explicitly set"."""
    net_30 = backend.create(REALM, "Term", {"Name": "Net 30 days", "DueDays": 30})
    tenth = backend.create(REALM, "Term", {"Name": "The 10th", "DayOfMonthDue": 10})
    by_days = _invoice(backend, TxnDate="2026-01-15", SalesTermRef={"value": net_30["Id"]})
    by_day = _invoice(backend, TxnDate="2026-01-15", SalesTermRef={"value": tenth["Id"]},
                      DocNumber="T10")
    given = _invoice(backend, TxnDate="2026-01-15", DueDate="2026-01-20", DocNumber="G1",
                     SalesTermRef={"value": net_30["Id"]})
    assert by_days["DueDate"] == (datetime(2026, 1, 15) + timedelta(days=30)).date().isoformat()
    assert by_day["DueDate"] == "2026-02-10"
    assert given["DueDate"] == "2026-01-20"


def test_print_and_email_status_take_qbo_values_only(backend: QBOBackend) -> None:
    marked = _invoice(backend, PrintStatus="NeedToPrint")
    assert marked["PrintStatus"] == "NeedToPrint"
    with pytest.raises(Exception, match="PrintStatus 'Maybe' must be one of NotSet"):
        _invoice(backend, PrintStatus="Maybe", DocNumber="M1")
