"""Query and change data capture (CDC) over real HTTP.

"Query docs" is Intuit's page "Query operations and syntax"; "CDC docs" is Intuit's page
"Change data capture operation" (30-day look-back, at most 1,000 objects, deleted objects as
status Deleted, all entities but a few: TimeActivity is not among them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline_tests.conftest import ConnectedRealm


def created(realm: ConnectedRealm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = realm.post(entity.lower(), body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def query(realm: ConnectedRealm, text: str) -> dict[str, Any]:
    response = realm.get("query", params={"query": text})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["QueryResponse"]
    return found


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["Fault"]["Error"][0]
    return error


def cdc(realm: ConnectedRealm, entities: str, since: datetime) -> Any:
    return realm.get("cdc", params={"entities": entities, "changedSince": since.isoformat()})


def changes(response: Any) -> list[dict[str, Any]]:
    """The per-entity QueryResponse list inside CDCResponse."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"CDCResponse", "time"} and len(body["CDCResponse"]) == 1
    found: list[dict[str, Any]] = body["CDCResponse"][0]["QueryResponse"]
    return found


@pytest.fixture
def customers(realm: ConnectedRealm) -> list[dict[str, Any]]:
    names = ["Bill's Windsurf Shop", "Amy's Bird Sanctuary", "Cool Cars", "Dukes Basketball"]
    return [created(realm, "Customer", {"DisplayName": name}) for name in names]


# --------------------------------------------------------------------------- query


def test_query_filters_orders_and_pages(realm: ConnectedRealm,
                                        customers: list[dict[str, Any]]) -> None:
    """Query docs: WHERE, ORDERBY, STARTPOSITION and MAXRESULTS; the QueryResponse carries the
    entity's list with startPosition and maxResults (the number of rows returned)."""
    page = query(realm, "SELECT * FROM Customer WHERE DisplayName LIKE '%s%' "
                        "ORDERBY DisplayName STARTPOSITION 2 MAXRESULTS 2")
    names = [row["DisplayName"] for row in page["Customer"]]
    assert names == ["Bill's Windsurf Shop", "Cool Cars"]
    assert page["startPosition"] == 2 and page["maxResults"] == 2


def test_query_by_post_with_application_text(realm: ConnectedRealm,
                                             customers: list[dict[str, Any]]) -> None:
    """Query docs: the query may be POSTed as the body with Content-Type application/text."""
    response = realm.session.post(
        realm.url("query"), data=f"select * from Customer where Id = '{customers[2]['Id']}'",
        headers=realm.headers(**{"Content-Type": "application/text"}),
    )
    assert response.json()["QueryResponse"]["Customer"][0]["DisplayName"] == "Cool Cars"


def test_count_and_empty_results(realm: ConnectedRealm, customers: list[dict[str, Any]]) -> None:
    """Query docs: count(*) answers totalCount; a query matching nothing answers an empty
    QueryResponse."""
    assert query(realm, "select count(*) from Customer") == {"totalCount": 4}
    assert query(realm, "select * from Customer where DisplayName = 'Nobody'") == {}


def test_inactive_names_are_hidden_unless_asked_for(realm: ConnectedRealm,
                                                    customers: list[dict[str, Any]]) -> None:
    """Query docs: inactive names-list records are left out unless the query filters on
    Active, e.g. Active IN (true, false)."""
    gone = customers[0]
    realm.post("customer", {"Id": gone["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    visible = {row["Id"] for row in query(realm, "select * from Customer")["Customer"]}
    assert gone["Id"] not in visible
    everyone = query(realm, "select * from Customer where Active in (true, false)")
    assert gone["Id"] in {row["Id"] for row in everyone["Customer"]}


def test_query_by_last_updated_time(realm: ConnectedRealm,
                                    customers: list[dict[str, Any]]) -> None:
    """Query docs: nested fields such as MetaData.LastUpdatedTime can be filtered on."""
    stamp = customers[0]["MetaData"]["LastUpdatedTime"]
    found = query(realm, f"select * from Customer where MetaData.LastUpdatedTime >= '{stamp}'")
    assert len(found["Customer"]) == 4
    later = (datetime.fromisoformat(stamp) + timedelta(hours=1)).isoformat()
    assert query(realm, f"select * from Customer where MetaData.LastUpdatedTime > '{later}'") == {}


def test_query_errors_are_qbo_faults(realm: ConnectedRealm) -> None:
    """Error codes: 4000 "Error parsing query" and 4001 "Invalid query" (MAXRESULTS over
    1000), with the reason in Detail."""
    parse = error_of(realm.get("query", params={"query": "select * from Customer where"}))
    assert parse["code"] == "4000" and "QueryParserError" in parse["Detail"]
    limit = error_of(realm.get("query", params={"query": "select * from Invoice maxresults 1001"}))
    assert limit["code"] == "4001" and "1000" in limit["Detail"]


def test_deleted_transactions_do_not_match_queries(realm: ConnectedRealm,
                                                   customers: list[dict[str, Any]]) -> None:
    """A deleted transaction no longer exists for queries."""
    invoice = created(realm, "Invoice", {"CustomerRef": {"value": customers[0]["Id"]}, "Line": [
        {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]})
    realm.post("invoice?operation=delete", {"Id": invoice["Id"], "SyncToken": "0"})
    assert query(realm, "select count(*) from Invoice") == {"totalCount": 0}


# --------------------------------------------------------------------------- CDC


def test_cdc_returns_changes_per_entity_with_deletions(realm: ConnectedRealm,
                                                       customers: list[dict[str, Any]]) -> None:
    """CDC docs: one QueryResponse per requested entity; a deleted transaction comes back as
    {"Id", "status": "Deleted", "MetaData": {"LastUpdatedTime"}}; a names-list record made
    inactive comes back as itself with Active false (names are never deleted)."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    invoice = created(realm, "Invoice", {"CustomerRef": {"value": customers[0]["Id"]}, "Line": [
        {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]})
    realm.post("invoice?operation=delete", {"Id": invoice["Id"], "SyncToken": "0"})
    realm.post("customer", {"Id": customers[1]["Id"], "SyncToken": "0", "sparse": True,
                            "Active": False})
    by_entity = changes(cdc(realm, "Customer,Invoice", since))
    customer_changes, invoice_changes = by_entity
    assert len(customer_changes["Customer"]) == 4
    inactive = [row for row in customer_changes["Customer"] if row["Id"] == customers[1]["Id"]]
    assert inactive[0]["Active"] is False
    tombstone = invoice_changes["Invoice"][0]
    assert tombstone["Id"] == invoice["Id"] and tombstone["status"] == "Deleted"
    assert "LastUpdatedTime" in tombstone["MetaData"]
    assert customer_changes["startPosition"] == 1 and customer_changes["maxResults"] == 4


def test_cdc_leaves_out_older_changes(realm: ConnectedRealm,
                                      customers: list[dict[str, Any]]) -> None:
    """CDC docs: only what changed since changedSince is returned."""
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert changes(cdc(realm, "Customer", later)) == [{}]


def test_cdc_looks_back_at_most_30_days(realm: ConnectedRealm) -> None:
    """CDC docs: "CDC operations can track changes within the last 30 days"."""
    error = error_of(cdc(realm, "Customer", datetime.now(UTC) - timedelta(days=31)))
    assert "older than" in error["Detail"] and error["element"] == "changedSince"


def test_cdc_refuses_time_activity(realm: ConnectedRealm) -> None:
    """CDC docs list the entities CDC does not cover; TimeActivity is one of them."""
    error = error_of(cdc(realm, "Customer,TimeActivity", datetime.now(UTC)))
    assert "TimeActivity" in error["Detail"]


def test_cdc_answers_at_most_1000_objects(realm: ConnectedRealm,
                                          emulator_server: EmulatorServer) -> None:
    """CDC docs: "Server responses can handle a maximum of 1,000 objects", counted over all
    requested entities."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    names = [{"DisplayName": f"Client {number:04}"} for number in range(990)]
    emulator_server.emulator.backend.seed_realm(
        realm.realm_id, {"Customer": names, "Vendor": [{"DisplayName": f"Supplier {n}"}
                                                       for n in range(20)]})
    customer_changes, vendor_changes = changes(cdc(realm, "Customer,Vendor", since))
    assert len(customer_changes["Customer"]) + len(vendor_changes["Vendor"]) == 1000
