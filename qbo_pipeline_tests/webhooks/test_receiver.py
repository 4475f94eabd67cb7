"""The webhook receiver over real HTTP, storing into a real state DB (webhooks/receiver.py).

Intuit's webhooks docs: each notification carries `intuit-signature`, the base64 HMAC-SHA256
of the body keyed by the app's verifier token; answer within 3 seconds; QBO retries what is not
answered 200, so the endpoint must be idempotent. Seed 001: conflicts are detected "on the next
QB webhook", which must therefore be QBO's and not anyone's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.state import list_webhook_events
from qbo_pipeline.webhooks.server import WebhookServer
from qbo_pipeline.webhooks.signature import signature_of

TOKEN = "receiver-test-verifier-4b1c"
CLOUD_EVENTS = [
    {"specversion": "1.0", "id": "e1", "source": "intuit.t", "type": "qbo.customer.updated.v1",
     "datacontenttype": "application/json", "time": "2025-12-04T15:25:05Z",
     "intuitentityid": "1", "intuitaccountid": "111", "data": {}},
    {"specversion": "1.0", "id": "e2", "source": "intuit.t", "type": "qbo.invoice.voided.v1",
     "datacontenttype": "application/json", "time": "2025-12-04T15:25:06Z",
     "intuitentityid": "7", "intuitaccountid": "222", "data": {}},
]


@pytest.fixture
def state(tmp_path: Path) -> StateDatabase:
    return StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")


@pytest.fixture
def receiver(state: StateDatabase) -> Iterator[WebhookServer]:
    with WebhookServer(state.sessions(), TOKEN) as server:
        yield server


def post(server: WebhookServer, payload: Any, signature: str | None = "sign",
         body: bytes | None = None) -> requests.Response:
    body = body if body is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["intuit-signature"] = signature_of(body, TOKEN)
    elif signature is not None:
        headers["intuit-signature"] = signature
    return requests.post(server.url, data=body, headers=headers, timeout=5)


def stored(state: StateDatabase) -> list[tuple[str, str, str, str]]:
    with state.sessions().begin() as session:
        return [(e.realm_id, e.qbo_entity, e.qbo_id, e.operation)
                for e in list_webhook_events(session)]


def test_a_valid_delivery_of_two_realms_is_stored_and_answered_at_once(
        receiver: WebhookServer, state: StateDatabase) -> None:
    started = time.monotonic()
    answer = post(receiver, CLOUD_EVENTS)
    assert time.monotonic() - started < 3.0  # Intuit's limit
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2, "stored": 2, "duplicates": 0, "unreadable": []}
    assert stored(state) == [("111", "Customer", "1", "Update"), ("222", "Invoice", "7", "Void")]


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl",
                                       signature_of(b"[]", "another-apps-token")])
def test_a_missing_or_forged_signature_is_refused_and_nothing_stored(
        receiver: WebhookServer, state: StateDatabase, signature: str | None) -> None:
    answer = post(receiver, CLOUD_EVENTS, signature=signature)
    assert answer.status_code == 401
    assert TOKEN not in answer.text
    assert stored(state) == []


def test_a_replayed_delivery_stores_nothing_new(receiver: WebhookServer,
                                                state: StateDatabase) -> None:
    """A replay (QBO's retry, or a captured delivery sent again) carries a valid signature:
    it is answered 200 but stores no second copy, so it starts no new work."""
    body = json.dumps(CLOUD_EVENTS).encode()
    assert post(receiver, None, body=body).json()["stored"] == 2
    again = post(receiver, None, body=body)
    assert again.status_code == 200
    assert again.json() == {"received": 2, "stored": 0, "duplicates": 2, "unreadable": []}
    # The same events in the legacy format (same change, same moment) are the same changes.
    legacy = {"eventNotifications": [{"realmId": "111", "dataChangeEvent": {"entities": [
        {"name": "Customer", "id": "1", "operation": "Update",
         "lastUpdated": "2025-12-04T15:25:05.000Z"}]}}]}
    assert post(receiver, legacy).json()["stored"] == 0
    assert len(stored(state)) == 2


def test_a_captured_signature_on_another_body_is_refused(receiver: WebhookServer,
                                                         state: StateDatabase) -> None:
    """Replaying a signature with a body of one's own: the signature covers the exact body."""
    captured = signature_of(json.dumps(CLOUD_EVENTS[:1]).encode(), TOKEN)
    forged = [dict(CLOUD_EVENTS[0], intuitentityid="999")]
    assert post(receiver, forged, signature=captured).status_code == 401
    assert stored(state) == []


def test_a_signed_body_in_no_known_format_is_a_400(receiver: WebhookServer,
                                                   state: StateDatabase) -> None:
    answer = post(receiver, {"hello": "world"})
    assert answer.status_code == 400 and "eventNotifications" in answer.json()["error"]
    assert post(receiver, None, body=b"not json").status_code == 400
    assert stored(state) == []
