"""Changes since a moment, and finding by field: the client against the emulator over HTTP.

Which endpoint answered is told apart two ways: a request log on the client's session, and
deleted records, which only CDC reports (``"status": "Deleted"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from qbo_pipeline.qbo import QBOClient, escape_query_value
from qbo_pipeline.qbo.changes import CDC_MAX_OBJECTS, CDC_REACH, CHANGE_OVERLAP, changes_query
from qbo_pipeline.qbo.queries import find_by_query
from qbo_pipeline.qbo.transport import build_session
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.qbo.conftest import ClientUnderTest, client_for


class RequestLog:
    """The endpoint (``cdc``, ``query``...) of every request the client sent, in order."""

    def __init__(self) -> None:
        self.endpoints: list[str] = []
        self.queries: list[str] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        url = urlparse(response.url)
        self.endpoints.append(url.path.rsplit("/", 1)[-1])
        self.queries.extend(parse_qs(url.query).get("query", []))


@pytest.fixture
def logged(realm: ConnectedRealm) -> Iterator[tuple[ClientUnderTest, RequestLog]]:
    """A client whose session logs every request it sends."""
    under_test = client_for(realm)
    log = RequestLog()
    session = build_session(under_test.client.settings)
    session.hooks["response"].append(log)
    client = QBOClient(under_test.client.settings, realm.realm_id, under_test.tokens, session)
    yield ClientUnderTest(client, under_test.tokens, under_test.store, realm), log
    client.close()
    under_test.client.close()


def customer(name: str) -> dict[str, Any]:
    return {"DisplayName": name}


def deleted_invoice(qbo: ClientUnderTest) -> str:
    """The Id of an invoice created, then deleted, just now."""
    buyer = qbo.client.create("Customer", customer("Deleting Buyer"), "create-del-buyer")
    (services,) = qbo.client.find_by("Item", "Name", "Services")
    created = qbo.client.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [{
        "Amount": 10, "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": services["Id"]}}}]}, "create-del-inv")
    qbo.client.delete("Invoice", created["Id"], created["SyncToken"], "delete-del-inv")
    return str(created["Id"])


def deactivate(qbo: ClientUnderTest, record: dict[str, Any], request_id: str) -> None:
    qbo.client.update("Customer", {"Id": record["Id"], "SyncToken": record["SyncToken"],
                                   "Active": False}, request_id)


# --- changed_since ---------------------------------------------------------------------------


def test_without_a_moment_every_record_comes_inactive_ones_included(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    kept = qbo.client.create("Customer", customer("Kept Co"), "create-kept")
    gone = qbo.client.create("Customer", customer("Gone Co"), "create-gone")
    deactivate(qbo, gone, "deactivate-gone")
    assert {row["Id"] for row in qbo.client.query("SELECT * FROM Customer")} == {kept["Id"]}
    log.endpoints.clear()
    everyone = qbo.client.changed_since("Customer", None)
    assert {row["Id"]: row["Active"] for row in everyone} == {kept["Id"]: True,
                                                               gone["Id"]: False}
    assert log.endpoints == ["query"]
    assert log.queries[-1].startswith(
        "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id")


def test_within_cdc_reach_cdc_answers_deletions_included(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    since = datetime.now(UTC) - timedelta(minutes=1)
    invoice_id = deleted_invoice(qbo)
    log.endpoints.clear()
    changed = qbo.client.changed_since("Invoice", since)
    assert log.endpoints == ["cdc"]
    (gone,) = [row for row in changed if row["Id"] == invoice_id]
    assert gone["status"] == "Deleted"  # kept as CDC sends it: the caller marks the deletion


def test_cdc_is_asked_from_a_few_minutes_before_the_moment(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    """Clocks differ: a record QBO stamped just before our moment must still come."""
    qbo, log = logged
    created = qbo.client.create("Customer", customer("Just Before Co"), "create-before")
    a_bit_later = datetime.now(UTC) + CHANGE_OVERLAP - timedelta(minutes=1)
    changed = qbo.client.changed_since("Customer", a_bit_later)
    assert log.endpoints[-1] == "cdc"
    assert created["Id"] in {row["Id"] for row in changed}


def test_beyond_cdc_reach_a_query_answers(logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    since = datetime.now(UTC) - timedelta(minutes=1)
    invoice_id = deleted_invoice(qbo)
    log.endpoints.clear()
    month_later = datetime.now(UTC) + CDC_REACH
    changed = qbo.client.changed_since("Invoice", since, now=month_later)
    assert log.endpoints == ["query"]
    assert invoice_id not in {row["Id"] for row in changed}  # a query reports no deletions
    assert "MetaData.LastUpdatedTime > " in log.queries[-1]


def test_a_naive_moment_is_taken_as_utc(qbo: ClientUnderTest) -> None:
    """The state DB (SQLite) hands back naive datetimes; they are UTC."""
    created = qbo.client.create("Customer", customer("Naive Co"), "create-naive")
    naive = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)
    assert created["Id"] in {row["Id"] for row in qbo.client.changed_since("Customer", naive)}


def test_a_full_cdc_answer_falls_back_to_a_query_that_misses_nothing(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    since = datetime.now(UTC) - timedelta(minutes=1)
    seeded = [{"DisplayName": f"Bulk {n:04d}"} for n in range(CDC_MAX_OBJECTS + 5)]
    qbo.admin("POST", f"realms/{qbo.realm.realm_id}/seed", {"Customer": seeded})
    assert len(qbo.client.cdc(["Customer"], since)["Customer"]) == CDC_MAX_OBJECTS
    log.endpoints.clear()
    changed = qbo.client.changed_since("Customer", since)
    assert log.endpoints == ["cdc", "query", "query"]  # 1005 rows: two pages of 1000
    assert len({row["Id"] for row in changed}) == CDC_MAX_OBJECTS + 5


def test_an_entity_cdc_does_not_serve_is_queried(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    since = datetime.now(UTC) - timedelta(minutes=1)
    worker = qbo.client.create("Employee", {"DisplayName": "Time Worker"}, "create-worker")
    entry = qbo.client.create("TimeActivity", {
        "NameOf": "Employee", "EmployeeRef": {"value": worker["Id"]}, "Hours": 2,
        "TxnDate": datetime.now(UTC).date().isoformat()}, "create-time")
    log.endpoints.clear()
    changed = qbo.client.changed_since("TimeActivity", since)
    assert log.endpoints == ["query"]
    assert [row["Id"] for row in changed] == [entry["Id"]]
    assert not log.queries[-1].startswith("SELECT * FROM TimeActivity WHERE Active")


def test_a_condition_is_asked_of_a_query_even_within_cdc_reach(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    """CDC cannot filter, so "Items of type Service changed since T" is a query."""
    qbo, log = logged
    since = datetime.now(UTC) - timedelta(minutes=1)
    service = qbo.client.create("Item", {"Name": "Audit", "Type": "Service",
                                         "IncomeAccountRef": {"value": "1"}}, "create-audit")
    log.endpoints.clear()
    changed = qbo.client.changed_since("Item", since, condition="Type = 'Service'")
    assert log.endpoints == ["query"]
    assert "AND Type = 'Service'" in log.queries[-1]
    assert service["Id"] in [row["Id"] for row in changed]


def test_an_unknown_entity_is_refused_before_any_request(
        logged: tuple[ClientUnderTest, RequestLog]) -> None:
    qbo, log = logged
    with pytest.raises(ValueError, match="unknown QBO entity 'Budget'"):
        qbo.client.changed_since("Budget", datetime.now(UTC))
    assert log.endpoints == []


def test_change_queries_read_as_qbo_expects() -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert changes_query("Invoice", None) == "SELECT * FROM Invoice ORDERBY Id"
    assert changes_query("Invoice", moment) == (
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '2026-03-01T11:55:00+00:00' "
        "ORDERBY Id")
    assert changes_query("Vendor", moment) == (
        "SELECT * FROM Vendor WHERE Active IN (true, false) AND "
        "MetaData.LastUpdatedTime > '2026-03-01T11:55:00+00:00' ORDERBY Id")
    assert changes_query("Item", None, "Type = 'Service'") == (
        "SELECT * FROM Item WHERE Active IN (true, false) AND Type = 'Service' ORDERBY Id")


# --- find_by ---------------------------------------------------------------------------------


def test_find_by_a_name_with_a_quote_and_a_backslash(qbo: ClientUnderTest) -> None:
    name = "O'Brien \\ Sons"
    created = qbo.client.create("Customer", customer(name), "create-obrien")
    qbo.client.create("Customer", customer("O'Brien"), "create-obrien-short")
    found = qbo.client.find_by("Customer", "DisplayName", name)
    assert [row["Id"] for row in found] == [created["Id"]]
    assert qbo.client.find_by("Customer", "DisplayName", "Nobody's Here") == []


def test_find_by_leaves_inactive_records_out(qbo: ClientUnderTest) -> None:
    """A lookup resolves to a record a reference may point at; an inactive one is refused."""
    gone = qbo.client.create("Customer", customer("Retired Co"), "create-retired")
    deactivate(qbo, gone, "deactivate-retired")
    assert qbo.client.find_by("Customer", "DisplayName", "Retired Co") == []


def test_escaping_doubles_backslashes_before_escaping_quotes() -> None:
    assert escape_query_value("O'Brien") == "O\\'Brien"
    assert escape_query_value("a\\'b") == "a\\\\\\'b"
    assert find_by_query("Item", "Name", "it's") == (
        "SELECT * FROM Item WHERE Name = 'it\\'s' ORDERBY Id")


@pytest.mark.parametrize(("entity", "field"), [("Customer; DROP", "DisplayName"),
                                                ("Customer", "DisplayName = 'x' OR Id"),
                                                ("Customer", "")])
def test_find_by_refuses_names_that_would_change_the_query(entity: str, field: str) -> None:
    with pytest.raises(ValueError, match="is not a QBO"):
        find_by_query(entity, field, "x")
