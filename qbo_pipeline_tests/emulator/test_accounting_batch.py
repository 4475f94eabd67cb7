"""Batch and ``requestid`` idempotency over real HTTP.

"Batch docs" is Intuit's batch entity reference (BatchItemRequest with bId, operation and
the entity or a Query; at most 30 items; per-item Fault in BatchItemResponse). "Request id"
is Intuit's developer blog post on requestid: a repeated id returns the original response;
at most 50 characters, 36 on batch, whose bIds may then hold at most 10.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline_tests.conftest import ConnectedRealm, connect_realm


@pytest.fixture
def other_realm(emulator_server: EmulatorServer) -> Iterator[ConnectedRealm]:
    connected = connect_realm(emulator_server.base_url)
    yield connected
    connected.session.close()


def customer_count(realm: ConnectedRealm) -> int:
    found = realm.get("query", params={"query": "select count(*) from Customer"}).json()
    count: int = found["QueryResponse"]["totalCount"]
    return count


def batch(realm: ConnectedRealm, items: list[dict[str, Any]], path: str = "batch") -> Any:
    return realm.post(path, {"BatchItemRequest": items})


def test_batch_answers_each_item_with_its_result_or_fault(realm: ConnectedRealm) -> None:
    """Batch docs: items run in order; each answer carries its bId and the object, a
    QueryResponse, or a Fault; one failing item does not stop the others."""
    existing = realm.post("customer", {"DisplayName": "Existing"}).json()["Customer"]
    response = batch(realm, [
        {"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batch Made"}},
        {"bId": "2", "operation": "create", "Customer": {"DisplayName": "existing"}},
        {"bId": "3", "operation": "update", "Customer": {
            "Id": existing["Id"], "SyncToken": "0", "sparse": True, "Notes": "from batch"}},
        {"bId": "4", "Query": "select * from Customer where DisplayName = 'Batch Made'"},
        {"bId": "5", "operation": "delete", "Customer": {"Id": existing["Id"],
                                                          "SyncToken": "1"}},
    ])
    assert response.status_code == 200
    answers = {item["bId"]: item for item in response.json()["BatchItemResponse"]}
    assert list(answers) == ["1", "2", "3", "4", "5"]
    assert answers["1"]["Customer"]["DisplayName"] == "Batch Made"
    assert answers["2"]["Fault"]["Error"][0]["code"] == "6240"
    assert answers["2"]["Fault"]["type"] == "ValidationFault"
    assert answers["3"]["Customer"]["Notes"] == "from batch"
    assert answers["4"]["QueryResponse"]["Customer"][0]["Id"] == answers["1"]["Customer"]["Id"]
    assert answers["5"]["Fault"]["Error"][0]["code"] == "500"  # names are never deleted


def test_batch_of_more_than_30_items_is_refused_whole(realm: ConnectedRealm) -> None:
    """Batch docs: at most 30 BatchItemRequest items; more fails the whole request."""
    items = [{"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"C{n}"}}
             for n in range(31)]
    response = batch(realm, items)
    assert response.status_code == 400
    assert "30" in response.json()["Fault"]["Error"][0]["Detail"]
    assert customer_count(realm) == 0


def test_batch_ids_must_be_unique(realm: ConnectedRealm) -> None:
    """Batch docs: bId identifies an item in the answer, so bIds are unique."""
    items = [{"bId": "a", "Query": "select * from Customer"}] * 2
    assert batch(realm, items).json()["Fault"]["Error"][0]["element"] == "bId"


def test_batch_item_without_operation_or_entity_is_an_item_fault(realm: ConnectedRealm) -> None:
    """Batch docs: operation is one of create, update, delete; errors stay per item."""
    answers = batch(realm, [
        {"bId": "1", "Customer": {"DisplayName": "No Operation"}},
        {"bId": "2", "operation": "create"},
    ]).json()["BatchItemResponse"]
    assert [answer["Fault"]["Error"][0]["code"] for answer in answers] == ["2010", "2010"]


def test_repeated_request_id_returns_the_first_response(realm: ConnectedRealm) -> None:
    """Request id: a request repeated with the same requestid is answered with the original
    response and does not create a second object, whatever the second body says."""
    first = realm.post("customer?requestid=create-amy-1", {"DisplayName": "Amy"})
    again = realm.post("customer?requestid=create-amy-1", {"DisplayName": "Someone Else"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert customer_count(realm) == 1


def test_a_first_fault_is_replayed_too(realm: ConnectedRealm) -> None:
    """Request id: the original response is returned, even when it was a fault."""
    realm.post("customer", {"DisplayName": "Taken"})
    first = realm.post("vendor?requestid=v-1", {"DisplayName": "Taken"})
    again = realm.post("vendor?requestid=v-1", {"DisplayName": "Free"})
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


def test_request_ids_are_kept_per_company(realm: ConnectedRealm,
                                          other_realm: ConnectedRealm) -> None:
    """Request id: ids are scoped to the company (realm) they were sent to."""
    realm.post("customer?requestid=same-id", {"DisplayName": "Here"})
    there = other_realm.post("customer?requestid=same-id", {"DisplayName": "There"})
    assert there.json()["Customer"]["DisplayName"] == "There"


def test_request_id_length_limits(realm: ConnectedRealm) -> None:
    """Request id: at most 50 characters on a single write and 36 on a batch, whose bIds
    may then hold at most 10 characters; QBO answers 6000 otherwise."""
    too_long = realm.post(f"customer?requestid={'x' * 51}", {"DisplayName": "Long"})
    assert too_long.json()["Fault"]["Error"][0]["code"] == "6000"
    assert realm.post(f"customer?requestid={'x' * 50}", {"DisplayName": "Long"}).ok
    item = {"bId": "1", "Query": "select * from Customer"}
    assert batch(realm, [item], f"batch?requestid={'y' * 37}").status_code == 400
    assert batch(realm, [item], f"batch?requestid={'y' * 36}").ok
    long_bid = {"bId": "b" * 11, "Query": "select * from Customer"}
    assert batch(realm, [long_bid], "batch?requestid=short").status_code == 400
    assert batch(realm, [long_bid]).ok


def test_repeated_batch_request_id_changes_nothing(realm: ConnectedRealm) -> None:
    """Request id on batch: the repeated batch answers the first BatchItemResponse."""
    items = [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Once"}}]
    first = batch(realm, items, "batch?requestid=batch-1")
    again = batch(realm, items, "batch?requestid=batch-1")
    assert again.json() == first.json()
    assert customer_count(realm) == 1
