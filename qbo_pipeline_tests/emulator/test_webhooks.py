"""Webhook notifications, received by a real HTTP endpoint, checked against Intuit's docs.

"Webhooks docs" below is Intuit's "Managing webhooks notifications" and "Best practices"
pages; "CloudEvents notice" is Intuit's post "Upcoming change to webhooks payload structure".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.events import ChangeEvent
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.emulator.webhooks import (
    WebhookDispatcher,
    WebhookSettings,
    legacy_payload,
    sign,
    verify,
)
from qbo_pipeline_tests.conftest import ConnectedRealm, connect_realm

VERIFIER_TOKEN = "test-verifier-token-3f9a"


@dataclass
class Delivery:
    signature: str | None
    content_type: str | None
    body: bytes

    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint on a free local port that records what it receives."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    delay_seconds: float = 0.0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"expected {count} webhook deliveries, "
                                     f"got {len(self.deliveries)}")
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            endpoint = state["receiver"]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(endpoint.delay_seconds)
            status = endpoint.statuses.pop(0) if endpoint.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with endpoint.arrived:
                endpoint.deliveries.append(Delivery(self.headers.get("intuit-signature"),
                                                    self.headers.get("Content-Type"), body))
                endpoint.arrived.notify_all()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output quiet

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{http.server_address[1]}/qbo/webhooks")
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state["receiver"]
    http.shutdown()
    http.server_close()


def webhook_server(receiver: Receiver, **settings: Any) -> EmulatorServer:
    webhooks = WebhookSettings(url=receiver.url, verifier_token=VERIFIER_TOKEN,
                               coalesce_seconds=settings.pop("coalesce_seconds", 0.2),
                               **settings)
    return EmulatorServer(EmulatorConfig(webhooks=webhooks))


def create_customer(company: ConnectedRealm, name: str) -> dict[str, Any]:
    answer = company.post("customer", {"DisplayName": name})
    assert answer.status_code == 200, answer.text
    customer: dict[str, Any] = answer.json()["Customer"]
    return customer


def test_signature_is_base64_hmac_sha256_of_the_body() -> None:
    """Webhooks docs: hash the payload with HMAC-SHA256 keyed by the verifier token; the
    ``intuit-signature`` header is that hash in base64."""
    body = b'[{"specversion":"1.0"}]'
    expected = base64.b64encode(hmac.new(b"token", body, hashlib.sha256).digest()).decode()
    assert sign(body, "token") == expected
    assert verify(body, expected, "token")
    assert not verify(body + b" ", expected, "token")
    assert not verify(body, expected, "another-token")
    assert not verify(body, None, "token")


def test_cloudevents_notification_after_a_create(receiver: Receiver) -> None:
    """CloudEvents notice: a JSON array of events with specversion 1.0, an id, a source, type
    ``qbo.<entity>.<operation>.v1``, time, intuitentityid (the record) and intuitaccountid
    (the realm); signed with the verifier token."""
    with webhook_server(receiver) as server:
        company = connect_realm(server.base_url)
        customer = create_customer(company, "Webhook Cloud Ltd")
        delivery = receiver.wait_for(1)[0]
    assert verify(delivery.body, delivery.signature, VERIFIER_TOKEN)
    assert delivery.content_type == "application/json"
    [event] = delivery.payload()
    assert event["specversion"] == "1.0"
    assert event["type"] == "qbo.customer.created.v1"
    assert event["intuitentityid"] == customer["Id"]
    assert event["intuitaccountid"] == company.realm_id
    assert event["datacontenttype"] == "application/json"
    assert event["id"] and event["source"].startswith("intuit.")
    assert event["time"].endswith("Z")
    assert event["data"] == {}


def test_legacy_format_chosen_at_run_time(receiver: Receiver) -> None:
    """Webhooks docs: the ``eventNotifications`` format, one notification per realm, with
    ``dataChangeEvent.entities`` of name, id, operation, lastUpdated."""
    with webhook_server(receiver) as server:
        answer = requests.put(f"{server.base_url}/admin/webhooks", json={"format": "legacy"},
                              timeout=5)
        assert answer.status_code == 200, answer.text
        company = connect_realm(server.base_url)
        customer = create_customer(company, "Webhook Legacy Ltd")
        delivery = receiver.wait_for(1)[0]
    assert verify(delivery.body, delivery.signature, VERIFIER_TOKEN)
    [notification] = delivery.payload()["eventNotifications"]
    assert notification["realmId"] == company.realm_id
    [entity] = notification["dataChangeEvent"]["entities"]
    assert entity["name"] == "Customer"
    assert entity["id"] == customer["Id"]
    assert entity["operation"] == "Create"
    assert entity["lastUpdated"].endswith("Z")


def test_changes_close_together_come_in_one_notification(receiver: Receiver) -> None:
    """Webhooks docs: events are aggregated and sent in one periodic notification per realm."""
    with webhook_server(receiver, coalesce_seconds=0.5) as server:
        company = connect_realm(server.base_url)
        first = create_customer(company, "Webhook First Ltd")
        second = create_customer(company, "Webhook Second Ltd")
        delivery = receiver.wait_for(1)[0]
        time.sleep(0.3)
    assert len(receiver.deliveries) == 1
    assert [event["intuitentityid"] for event in delivery.payload()] == [first["Id"],
                                                                          second["Id"]]


def test_a_failed_delivery_is_retried_with_the_same_body(receiver: Receiver) -> None:
    """Best practices: without an HTTP 200 QBO retries the event (10 s, 20 s, 30 s, ...; here
    shrunk), so receivers must be idempotent: the retry carries the same event ids."""
    receiver.statuses = [500]
    with webhook_server(receiver, retry_delays=(0.1, 0.1)) as server:
        create_customer(connect_realm(server.base_url), "Webhook Retry Ltd")
        failed, retried = receiver.wait_for(2)
        assert server.emulator.webhooks.wait_until_idle()
        counts = requests.get(f"{server.base_url}/admin/webhooks", timeout=5).json()
    assert retried.body == failed.body
    assert verify(retried.body, retried.signature, VERIFIER_TOKEN)
    assert counts["deliveries"]["delivered"] == 1
    assert counts["deliveries"]["attempts"] == 2


def test_a_slow_receiver_does_not_slow_the_api(receiver: Receiver) -> None:
    """Notifications are sent apart from the API call that caused them: a write answers at
    once whatever the endpoint does."""
    receiver.delay_seconds = 0.5
    with webhook_server(receiver, coalesce_seconds=0.0) as server:
        company = connect_realm(server.base_url)
        create_customer(company, "Webhook Slow One Ltd")
        started = time.monotonic()
        create_customer(company, "Webhook Slow Two Ltd")
        create_customer(company, "Webhook Slow Three Ltd")
        assert time.monotonic() - started < 0.4


def test_a_bookkeeper_edit_is_notified_as_an_update(receiver: Receiver) -> None:
    """A change made in QBO's own screens is notified like any other: operation Update."""
    with webhook_server(receiver) as server:
        company = connect_realm(server.base_url)
        customer = create_customer(company, "Webhook Edited Ltd")
        receiver.wait_for(1)
        edit = requests.post(f"{server.base_url}/admin/realms/{company.realm_id}/Customer/"
                             f"{customer['Id']}/edit", json={"CompanyName": "Edited"}, timeout=5)
        assert edit.status_code == 200, edit.text
        [event] = receiver.wait_for(2)[1].payload()
    assert event["type"] == "qbo.customer.updated.v1"
    assert event["intuitentityid"] == customer["Id"]


def test_close_sends_what_is_still_gathered(receiver: Receiver) -> None:
    """Stopping the emulator does not lose notifications gathered for the next send."""
    dispatcher = WebhookDispatcher(WebhookSettings(url=receiver.url, verifier_token="t",
                                                   coalesce_seconds=60.0))
    dispatcher.notify(ChangeEvent("9341", "Invoice", "17", "Void", datetime.now(UTC)))
    dispatcher.close()
    [event] = receiver.wait_for(1)[0].payload()
    assert event["type"] == "qbo.invoice.voided.v1"


def test_no_url_means_no_notifications() -> None:
    """Without a configured endpoint QBO sends nothing; notify still returns quietly."""
    dispatcher = WebhookDispatcher(WebhookSettings())
    dispatcher.notify(ChangeEvent("9341", "Customer", "1", "Create", datetime.now(UTC)))
    assert dispatcher.wait_until_idle(1.0)
    assert dispatcher.describe()["deliveries"]["attempts"] == 0
    dispatcher.close()


def test_legacy_payload_groups_one_realm() -> None:
    """Webhooks docs: "it only uses one RealmID at this time" per eventNotifications entry."""
    moment = datetime(2025, 9, 8, 20, 52, 31, 657000, tzinfo=UTC)
    payload = legacy_payload("310687", [ChangeEvent("310687", "Account", "1234", "Create",
                                                    moment)])
    assert payload == {"eventNotifications": [{"realmId": "310687", "dataChangeEvent": {
        "entities": [{"name": "Account", "id": "1234", "operation": "Create",
                      "lastUpdated": "2025-09-08T20:52:31.657Z"}]}}]}


def test_settings_refuse_an_unknown_format() -> None:
    """Only QBO's two formats exist; a typo names the allowed ones."""
    with pytest.raises(ValueError, match="cloudevents, legacy"):
        WebhookSettings(format="cloud-events")
