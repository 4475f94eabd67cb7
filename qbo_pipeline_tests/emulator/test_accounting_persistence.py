"""The backend's own guarantees: a state file survives restarts, change events, companies.

The restart test runs the real server twice over one SQLite file; the others call the
backend in-process (no HTTP), as its listeners and the admin endpoints do.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline.emulator.accounting.models import QBOBackend
from qbo_pipeline.emulator.events import ChangeEvent
from qbo_pipeline.emulator.exceptions import ObjectNotFound, StaleObject
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline_tests.conftest import connect_realm

REALM = "9130350000000001"
LINE = {"Amount": 40, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}


def test_state_file_keeps_everything_across_a_restart(tmp_path: Path) -> None:
    """The emulator's --state FILE: objects, Id counters, deleted-transaction tombstones and
    remembered requestid responses all survive a restart."""
    config = EmulatorConfig(state_file=tmp_path / "qbo.sqlite")
    with EmulatorServer(config) as server:
        realm = connect_realm(server.base_url, realm_id=REALM)
        customer = realm.post("customer?requestid=r-1", {"DisplayName": "Kept"}).json()
        customer_id = customer["Customer"]["Id"]
        invoice = realm.post("invoice", {"CustomerRef": {"value": customer_id},
                                         "Line": [LINE]}).json()["Invoice"]
        doomed = realm.post("invoice", {"CustomerRef": {"value": customer_id},
                                        "Line": [LINE]}).json()["Invoice"]
        realm.post("invoice?operation=delete", {"Id": doomed["Id"], "SyncToken": "0"})
    with EmulatorServer(config) as server:
        realm = connect_realm(server.base_url, realm_id=REALM)
        assert realm.get(f"invoice/{invoice['Id']}").json()["Invoice"] == invoice
        replay = realm.post("customer?requestid=r-1", {"DisplayName": "Not Created"})
        assert replay.json() == customer
        newer = realm.post("customer", {"DisplayName": "New"}).json()["Customer"]
        assert int(newer["Id"]) > int(doomed["Id"])
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        found = realm.get("cdc", params={"entities": "Invoice", "changedSince": since}).json()
        statuses = {row["Id"]: row.get("status")
                    for row in found["CDCResponse"][0]["QueryResponse"][0]["Invoice"]}
        assert statuses == {invoice["Id"]: None, doomed["Id"]: "Deleted"}


def test_reset_company_survives_a_restart_as_a_new_company(tmp_path: Path) -> None:
    """Resetting a company in a state file forgets its objects there too."""
    state = tmp_path / "qbo.sqlite"
    backend = QBOBackend(state)
    backend.ensure_realm(REALM)
    customer = backend.create(REALM, "Customer", {"DisplayName": "Forgotten"})
    backend.reset_realm(REALM)
    backend.close()
    reopened = QBOBackend(state)
    with pytest.raises(ObjectNotFound):
        reopened.read(REALM, "Customer", customer["Id"])
    assert "Services" in [item["Name"] for item in reopened.dump_realm(REALM)["Item"]]
    reopened.close()


def test_every_change_is_published_after_the_lock_is_released() -> None:
    """Webhooks (and any listener) hear of each create, update, void and delete; listeners
    run outside the backend's lock, so they may call it from other threads."""
    backend = QBOBackend()
    backend.ensure_realm(REALM)
    heard: list[ChangeEvent] = []
    lock_free: list[bool] = []

    def listener(event: ChangeEvent) -> None:
        heard.append(event)
        reader = threading.Thread(target=backend.realm_ids)
        reader.start()
        reader.join(timeout=2)
        lock_free.append(not reader.is_alive())

    backend.subscribe(listener)
    customer = backend.create(REALM, "Customer", {"DisplayName": "Heard"})
    invoice = backend.create(REALM, "Invoice", {"CustomerRef": {"value": customer["Id"]},
                                                "Line": [LINE]})
    backend.void(REALM, "Invoice", {"Id": invoice["Id"], "SyncToken": "0"})
    backend.delete(REALM, "Invoice", {"Id": invoice["Id"], "SyncToken": "1"})
    assert [(event.entity, event.operation) for event in heard] == [
        ("Customer", "Create"), ("Invoice", "Create"), ("Invoice", "Void"),
        ("Invoice", "Delete"),
    ]
    assert all(lock_free) and heard[0].last_updated.tzinfo is not None


def test_a_failing_listener_does_not_fail_the_request() -> None:
    """A subscriber's error is logged, never turned into an API error."""
    backend = QBOBackend()
    backend.ensure_realm(REALM)

    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("webhook receiver down")

    backend.subscribe(broken)
    assert backend.create(REALM, "Vendor", {"DisplayName": "Still Created"})["Id"]


def test_bookkeeper_edit_bumps_the_sync_token_under_the_client() -> None:
    """A change made in QBO's screens bumps SyncToken, so the client's next write with the
    old token is stale (5010), exactly as on QBO."""
    backend = QBOBackend()
    backend.ensure_realm(REALM)
    customer = backend.create(REALM, "Customer", {"DisplayName": "Edited"})
    edited = backend.bookkeeper_edit(REALM, "Customer", customer["Id"], {"Notes": "by hand"})
    assert edited["SyncToken"] == "1" and edited["Notes"] == "by hand"
    with pytest.raises(StaleObject):
        backend.update(REALM, "Customer", {**customer, "sparse": True, "Notes": "client"})


def test_seed_goes_through_the_rules_and_dump_returns_it() -> None:
    """Seeding creates objects as the API would (computed fields, rules) in order."""
    backend = QBOBackend()
    seeded: dict[str, list[dict[str, Any]]] = backend.seed_realm(
        REALM, {"Customer": [{"DisplayName": "Seeded"}]})
    customer_id = seeded["Customer"][0]["Id"]
    invoices = backend.seed_realm(REALM, {"invoice": [{"CustomerRef": {"value": customer_id},
                                                       "Line": [LINE]}]})["Invoice"]
    assert invoices[0]["TotalAmt"] == 40
    dumped = backend.dump_realm(REALM)
    assert dumped["Invoice"] == invoices and dumped["Customer"] == seeded["Customer"]
