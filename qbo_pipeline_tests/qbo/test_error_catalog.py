"""Every entry of the error catalog, produced by a real fault of the emulator over HTTP.

Each case makes the emulator answer as QBO would (a fault switch, a company setting, or the
record itself: a stale SyncToken, a taken name, a revoked token), or points the client at a
closed port, and checks the message our code gives: it belongs to the entry, names the record,
says the entry's fix, and carries no token or secret. A catalog entry without a case here fails
``test_every_catalog_entry_has_a_producing_case``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import requests

from qbo_pipeline.qbo.client import BatchOperation, QBOClient
from qbo_pipeline.qbo.error_catalog import CATALOG, entry, entry_for
from qbo_pipeline.qbo.errors import (
    ConnectionExpiredError,
    QBOError,
    TokenEndpointError,
    refused_for_good,
)
from qbo_pipeline.qbo.settings import QBOSettings
from qbo_pipeline.qbo.tokens import InMemoryTokenStore, OAuthTokenProvider, TokenSet
from qbo_pipeline.specs import load_specs
from qbo_pipeline.sync.mapping import map_frame
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline.sync.validation import validate_frame
from qbo_pipeline_tests.conftest import (
    ACCOUNTING_SCOPE,
    OAUTH,
    REDIRECT_URI,
    ConnectedRealm,
    connect_realm,
)
from qbo_pipeline_tests.qbo.conftest import ClientUnderTest, client_for, emulator_settings

ROOT = Path(__file__).resolve().parents[2]
# One retry keeps the cases that exhaust the retries fast; the faults are scheduled to outlast it.
FAST = {"max_retries": 1}


@dataclass(frozen=True)
class Produced:
    """What a case got: the catalog entry our code chose, its message, and the words that
    name the record (or the company, when the failure is the connection's)."""

    key: str
    message: str
    record: str
    secrets: tuple[str, ...] = ()
    realm_id: str | None = None  # the company the fix names, when not the test's own
    error: QBOError | None = None  # what the client raised (none for the source's check)


Case = Callable[[ClientUnderTest], Produced]


def _caught(call: Callable[[], Any]) -> QBOError:
    with pytest.raises(QBOError) as raised:
        call()
    return raised.value


def _produced(error: QBOError, record: str, *secrets: str) -> Produced:
    return Produced(error.entry.key, str(error), record, secrets, error=error)


def _fast(qbo: ClientUnderTest, **overrides: Any) -> ClientUnderTest:
    """Another client of the same company, with other settings (fewer retries...)."""
    return client_for(qbo.realm, **{**FAST, **overrides})


def _customer(qbo: ClientUnderTest, name: str, **fields: Any) -> dict[str, Any]:
    return qbo.client.create("Customer", {"DisplayName": name, **fields}, f"c-{name}")


def _invoice(qbo: ClientUnderTest, customer_id: str, doc_number: str) -> dict[str, Any]:
    (item,) = qbo.client.find_by("Item", "Name", "Services")
    return {"DocNumber": doc_number, "CustomerRef": {"value": customer_id},
            "Line": [{"Amount": 100, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}]}


def _expire_access_token(qbo: ClientUnderTest) -> TokenSet:
    """The stored access token is taken as expired, so the next call refreshes first."""
    current = qbo.store.load(qbo.realm.realm_id)
    assert current is not None
    qbo.store.save(qbo.realm.realm_id, TokenSet(current.access_token, current.refresh_token,
                                                datetime.now(UTC) - timedelta(seconds=1)))
    return current


def _company_secrets(qbo: ClientUnderTest) -> tuple[str, ...]:
    stored = qbo.store.load(qbo.realm.realm_id)
    tokens = (stored.access_token, stored.refresh_token) if stored else ()
    return (qbo.realm.access_token, qbo.realm.refresh_token, OAUTH.client_secret, *tokens)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: a connection to it is refused


def _consent_code(base_url: str) -> tuple[str, str]:
    """The emulator's consent screen, answered at once: (realm id, authorization code)."""
    consent = requests.get(f"{base_url}/connect/oauth2", allow_redirects=False, timeout=10,
                           params={"client_id": OAUTH.client_id, "redirect_uri": REDIRECT_URI,
                                   "response_type": "code", "scope": ACCOUNTING_SCOPE,
                                   "state": "catalog"})
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    return query["realmId"][0], query["code"][0]


# --- the cases, one per catalog entry ---------------------------------------------------------


def no_connection(qbo: ClientUnderTest) -> Produced:
    settings = qbo.client.settings
    empty = OAuthTokenProvider(settings, InMemoryTokenStore())
    client = QBOClient(settings, qbo.realm.realm_id, empty)
    with pytest.raises(ConnectionExpiredError) as raised:
        client.read("Customer", "1")
    return Produced(raised.value.entry.key, str(raised.value), qbo.realm.realm_id,
                    error=raised.value)


def token_refresh_failed(qbo: ClientUnderTest) -> Produced:
    qbo.tokens.revoke(qbo.realm.realm_id)  # as a disconnect in QBO's app list does
    with pytest.raises(ConnectionExpiredError) as raised:
        qbo.client.read("Customer", "1")
    return Produced(raised.value.entry.key, str(raised.value), qbo.realm.realm_id,
                    _company_secrets(qbo), error=raised.value)


def authorization_code_refused(qbo: ClientUnderTest) -> Produced:
    realm_id, code = _consent_code(qbo.realm.base_url)
    qbo.tokens.exchange_code(realm_id, code)
    with pytest.raises(ConnectionExpiredError) as raised:
        qbo.tokens.exchange_code(realm_id, code)  # a code is good once
    return Produced(raised.value.entry.key, str(raised.value), realm_id, (code,),
                    error=raised.value)


def token_request_refused(qbo: ClientUnderTest) -> Produced:
    wrong = "not-the-app-secret-0123456789"
    settings = QBOSettings.for_emulator(qbo.realm.base_url, OAUTH.client_id, wrong,
                                        REDIRECT_URI, backoff_seconds=0.01, **FAST)
    _expire_access_token(qbo)
    client = QBOClient(settings, qbo.realm.realm_id, OAuthTokenProvider(settings, qbo.store))
    with pytest.raises(TokenEndpointError) as raised:
        client.read("Customer", "1")
    return Produced(raised.value.entry.key, str(raised.value), qbo.realm.realm_id,
                    (wrong, *_company_secrets(qbo)), error=raised.value)


def token_service_unavailable(qbo: ClientUnderTest) -> Produced:
    under_test = _fast(qbo)
    _expire_access_token(under_test)
    under_test.admin("POST", "faults/scheduled",
                     {"kind": "server_error", "count": 2, "target": "token"})
    with pytest.raises(TokenEndpointError) as raised:
        under_test.client.read("Customer", "1")
    return Produced(raised.value.entry.key, str(raised.value), qbo.realm.realm_id,
                    _company_secrets(under_test), error=raised.value)


def authentication_failed(qbo: ClientUnderTest) -> Produced:
    # The token dies on the request and again on its one re-send after the refresh.
    qbo.schedule_fault("expired_token", count=2)
    error = _caught(lambda: qbo.client.read("Customer", "1"))
    return _produced(error, "Customer Id=1", *_company_secrets(qbo))


def authorization_failed(qbo: ClientUnderTest) -> Produced:
    other = connect_realm(qbo.realm.base_url)
    other.session.close()
    # This company's tokens, sent for another company: QBO answers 3100.
    crossed = ConnectedRealm(qbo.realm.base_url, other.realm_id, qbo.realm.access_token,
                             qbo.realm.refresh_token, qbo.realm.session)
    under_test = client_for(crossed)
    error = _caught(lambda: under_test.client.read("Customer", "1"))
    produced = _produced(error, "Customer Id=1", *_company_secrets(qbo))
    return replace(produced, realm_id=other.realm_id)


def throttled(qbo: ClientUnderTest) -> Produced:
    under_test = _fast(qbo)
    under_test.schedule_fault("throttle", count=2)
    error = _caught(lambda: _customer(under_test, "Throttled Co"))
    assert under_test.injected()["throttle"] >= 2  # waited and retried before giving up
    return _produced(error, "Customer 'Throttled Co'", *_company_secrets(qbo))


def plan_limit(qbo: ClientUnderTest) -> Produced:
    qbo.admin("PUT", f"realms/{qbo.realm.realm_id}/company", {"SubscriptionStatus": "CANCELED"})
    error = _caught(lambda: _customer(qbo, "Lapsed Co"))
    assert qbo.client.read("CompanyInfo", qbo.realm.realm_id)  # reads still work
    return _produced(error, "Customer 'Lapsed Co'", *_company_secrets(qbo))


def feature_not_in_plan(qbo: ClientUnderTest) -> Produced:
    """Seed 003: time needs QuickBooks Online Essentials or better; the emulator's company on
    Simple Start answers a time activity with 5020, and the write is not refused for good."""
    employee = qbo.client.create("Employee", {"GivenName": "Plan", "FamilyName": "Less"},
                                 "e-plan")
    qbo.admin("PUT", f"realms/{qbo.realm.realm_id}/company", {"Plan": "Simple Start"})
    error = _caught(lambda: qbo.client.create("TimeActivity", {
        "NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]}, "Hours": 1},
        "t-plan"))
    assert not refused_for_good(error)
    return _produced(error, "TimeActivity", *_company_secrets(qbo))


def stale_sync_token(qbo: ClientUnderTest) -> Produced:
    created = _customer(qbo, "Stale Co")
    qbo.admin("POST", f"realms/{qbo.realm.realm_id}/Customer/{created['Id']}/edit",
              {"CompanyName": "Edited in QBO"})
    body = {"Id": created["Id"], "SyncToken": created["SyncToken"], "DisplayName": "Stale Co",
            "Notes": "ours"}
    error = _caught(lambda: qbo.client.update("Customer", body, "u-stale"))
    return _produced(error, f"Customer Id={created['Id']} 'Stale Co'")


def required_field_missing(qbo: ClientUnderTest) -> Produced:
    customer = _customer(qbo, "Lineless Co")
    body = {"DocNumber": "R-1", "CustomerRef": {"value": customer["Id"]}}
    error = _caught(lambda: qbo.client.create("Invoice", body, "i-lineless"))
    assert "Line" in str(error)  # QBO's detail names the field
    return _produced(error, "Invoice 'R-1'")


def unsupported_property(qbo: ClientUnderTest) -> Produced:
    error = _caught(lambda: _customer(qbo, "Odd Co", Nickname="Oddie"))
    assert "Nickname" in str(error)
    return _produced(error, "Customer 'Odd Co'")


def invalid_reference(qbo: ClientUnderTest) -> Produced:
    body = _invoice(qbo, "999999", "REF-1")
    error = _caught(lambda: qbo.client.create("Invoice", body, "i-ref"))
    assert "CustomerRef" in str(error)
    return _produced(error, "Invoice 'REF-1'")


def invalid_value(qbo: ClientUnderTest) -> Produced:
    error = _caught(lambda: _customer(qbo, "Acme:West"))  # 2040: a colon is not allowed
    assert error.code == "2040"
    return _produced(error, "Customer 'Acme:West'")


def query_refused(qbo: ClientUnderTest) -> Produced:
    error = _caught(lambda: list(qbo.client.query("SELECT * FROM Customer WHERE")))
    return _produced(error, "QBO query")


def object_not_found(qbo: ClientUnderTest) -> Produced:
    error = _caught(lambda: qbo.client.read("Customer", "999999"))
    return _produced(error, "Customer Id=999999")


def duplicate_name(qbo: ClientUnderTest) -> Produced:
    first = _customer(qbo, "Twin Co")
    error = _caught(lambda: qbo.client.create("Customer", {"DisplayName": "Twin Co"}, "c-2"))
    assert f"Id={first['Id']}" in str(error)  # which record holds the name
    return _produced(error, "Customer 'Twin Co'")


def duplicate_doc_number(qbo: ClientUnderTest) -> Produced:
    customer = _customer(qbo, "Numbered Co")
    qbo.client.create("Invoice", _invoice(qbo, customer["Id"], "D-1"), "i-d1")
    error = _caught(lambda: qbo.client.create("Invoice", _invoice(qbo, customer["Id"], "D-1"),
                                              "i-d2"))
    return _produced(error, "Invoice 'D-1'")


def business_validation(qbo: ClientUnderTest) -> Produced:
    (checking,) = qbo.client.find_by("Account", "Name", "Checking")
    body = {"Name": "Bank Fees", "Type": "Service", "IncomeAccountRef": {"value": checking["Id"]}}
    error = _caught(lambda: qbo.client.create("Item", body, "item-bad-account"))
    return _produced(error, "Item 'Bank Fees'")


def business_rule(qbo: ClientUnderTest) -> Produced:
    customer = _customer(qbo, "Closed Books Co")
    qbo.admin("PUT", f"realms/{qbo.realm.realm_id}/company", {"BookCloseDate": "2099-12-31"})
    error = _caught(lambda: qbo.client.create("Invoice", _invoice(qbo, customer["Id"], "C-1"),
                                              "i-closed"))
    assert error.code == "6200"  # not in the catalog by itself: the 6xxx family takes it
    return _produced(error, "Invoice 'C-1'")


def refused(qbo: ClientUnderTest) -> Produced:
    created = _customer(qbo, "Undeletable Co")
    error = _caught(lambda: qbo.client.delete("Customer", created["Id"], "0", "d-1"))
    assert error.code == "500"  # Unsupported Operation, at HTTP 400
    return _produced(error, f"Customer Id={created['Id']}")


def service_error(qbo: ClientUnderTest) -> Produced:
    under_test = _fast(qbo)
    # A 500 with QBO's JSON fault, then the load balancer's 503 HTML page on the retry.
    under_test.schedule_fault("server_error")
    under_test.schedule_fault("service_unavailable")
    error = _caught(lambda: _customer(under_test, "Outage Co"))
    assert error.http_status == 503
    return _produced(error, "Customer 'Outage Co'", *_company_secrets(qbo))


def network_unreachable(qbo: ClientUnderTest) -> Produced:
    settings = emulator_settings(f"http://127.0.0.1:{_closed_port()}", **FAST)
    client = QBOClient(settings, qbo.realm.realm_id, qbo.tokens)
    error = _caught(lambda: client.read("Customer", "1"))
    return _produced(error, "Customer Id=1", *_company_secrets(qbo))


def network_timeout(qbo: ClientUnderTest) -> Produced:
    under_test = _fast(qbo, timeout_seconds=0.2, max_retries=0)
    # The delay is the emulator's own setting: put it back for the tests after this one.
    before = under_test.admin("GET", "faults")["settings"]["slow_seconds"]
    under_test.admin("PUT", "faults", {"slow_seconds": 0.6})
    try:
        under_test.schedule_fault("slow")
        error = _caught(lambda: under_test.client.read("Customer", "1"))
    finally:
        under_test.admin("PUT", "faults", {"slow_seconds": before})
    return _produced(error, "Customer Id=1", *_company_secrets(qbo))


def missing_email(qbo: ClientUnderTest) -> Produced:
    error = _caught(lambda: _customer(qbo, "Emailless Co", PreferredDeliveryMethod="Email"))
    return _produced(error, "Customer 'Emailless Co'")


def source_record_invalid(qbo: ClientUnderTest) -> Produced:
    """Found before any request: the shipped client spec needs an email (seed 001)."""
    spec = as_configured(load_specs(ROOT / "mapping_specs"), "client")
    columns = ("email", "phone", "contact_first_name", "contact_last_name", "address_line1",
               "address_line2", "city", "state", "postal_code", "deleted_at")
    row = {**dict.fromkeys(columns), "id": 17, "name": "Acme", "active": True,
           "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
    result = validate_frame(spec, map_frame(spec, pd.DataFrame([row], dtype=object)))
    (held,) = result.quarantined
    (reason,) = held.reasons
    assert "add an email to the client" in entry("source_record_invalid").fix
    return Produced("source_record_invalid", reason, "client 17")


CASES: dict[str, Case] = {case.__name__: case for case in (
    no_connection, token_refresh_failed, authorization_code_refused, token_request_refused,
    token_service_unavailable, authentication_failed, authorization_failed, throttled,
    plan_limit, feature_not_in_plan, stale_sync_token, required_field_missing, unsupported_property,
    invalid_reference, invalid_value, query_refused, object_not_found, duplicate_name,
    duplicate_doc_number, business_validation, business_rule, refused, service_error,
    network_unreachable, network_timeout, missing_email, source_record_invalid)}


# --- the tests ----------------------------------------------------------------------------------


def test_every_catalog_entry_has_a_producing_case() -> None:
    keys = [item.key for item in CATALOG]
    assert len(keys) == len(set(keys)), "two catalog entries share a key"
    assert sorted(CASES) == sorted(keys)


@pytest.fixture
def company(realm: ConnectedRealm) -> Iterator[ClientUnderTest]:
    under_test = client_for(realm)
    yield under_test
    under_test.client.close()


@pytest.mark.parametrize("key", [item.key for item in CATALOG])
def test_the_fault_gives_the_entrys_message(key: str, company: ClientUnderTest) -> None:
    produced = CASES[key](company)
    found = entry(key)
    assert produced.key == key, produced.message
    assert produced.record in produced.message
    if key != "source_record_invalid":  # worded by the spec's own rule and hint
        assert found.message in produced.message
        realm_id = produced.realm_id or company.realm.realm_id
        assert found.fix.replace("--realm R", f"--realm {realm_id}") in produced.message
    for secret in produced.secrets:
        assert secret not in produced.message
    if produced.error is not None:  # what the push does with it is what the table says
        assert refused_for_good(produced.error) is found.held_back


def test_seed_messages_are_in_the_catalog() -> None:
    """Seed 001's catalog and seed 003's advice, word for word where they have words."""
    assert entry("no_connection").message == "No active QuickBooks connection"
    assert entry("token_refresh_failed").message.startswith("Token refresh failed")
    assert "disconnect and reconnect" in entry("token_refresh_failed").fix
    assert entry("missing_email").message.startswith("Failed to sync customer")
    assert "QB API error (400)" in entry("stale_sync_token").message
    assert "QB API error (429)" in entry("throttled").message
    assert "wait 60 seconds" in entry("throttled").fix
    for key in ("authentication_failed", "authorization_failed", "token_refresh_failed"):
        assert "reconnect" in entry(key).fix


def test_every_entry_names_an_exception_class_of_the_client() -> None:
    """An entry QBO's answers can match names a QBOError subclass (the client raises it);
    only the source's own check (no request) is worded elsewhere."""
    import qbo_pipeline.qbo.errors as errors
    from qbo_pipeline.sync import issues

    for item in CATALOG:
        raised = getattr(errors, item.error, None)
        if item.codes or item.family or item.statuses:
            assert isinstance(raised, type) and issubclass(raised, QBOError), item
        else:
            assert raised is not None or hasattr(issues, item.error), item


@pytest.mark.parametrize(("codes", "status", "key"), [
    (["2999"], 400, "invalid_value"), (["6999"], 400, "business_rule"),
    (["6240"], None, "duplicate_name"), ([], 502, "service_error"), ([], 418, "refused"),
    (["10000"], 500, "service_error"), (["2020", "6240"], 400, "required_field_missing"),
])
def test_entries_are_found_by_code_then_family_then_status(codes: list[str],
                                                           status: int | None,
                                                           key: str) -> None:
    assert entry_for(codes, status).key == key



def test_a_batch_items_fault_gets_its_entrys_message_naming_the_record(
        company: ClientUnderTest) -> None:
    """The push writes in batches: each item's fault is matched and worded as a single
    request's would be, naming the record the item carries."""
    _customer(company, "Batch Twin")
    operations = [
        BatchOperation("b1", "create", "Customer", {"DisplayName": "Batch Twin"}),
        BatchOperation("b2", "create", "Customer",
                       {"DisplayName": "Batch Emailless", "PreferredDeliveryMethod": "Email"}),
        BatchOperation("b3", "create", "Customer", {"DisplayName": "Batch Fine"}),
    ]
    twin, emailless, fine = company.client.batch(operations)
    assert fine.ok
    for result, key, name in ((twin, "duplicate_name", "Batch Twin"),
                              (emailless, "missing_email", "Batch Emailless")):
        assert result.error is not None and result.error.entry.key == key
        message = str(result.error)
        assert f"Customer '{name}'" in message and entry(key).fix in message
