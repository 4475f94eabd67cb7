"""Rules the client enforces before anything goes on the wire."""

from __future__ import annotations

import pytest
import requests

from qbo_pipeline.qbo.client import (
    BATCH_ITEM_ID_LIMIT,
    BatchOperation,
    QBOClient,
    batch_item_id,
    batch_request_id,
    throttle_waits,
)
from qbo_pipeline.qbo.settings import QBOSettings

# Nothing listens here: each call below must be refused before a request is attempted.
UNREACHABLE = QBOSettings.for_emulator("http://127.0.0.1:9", "client", "secret",
                                       "http://localhost:8000/callback")


class StaticTokens:
    def access_token(self, realm_id: str) -> str:
        return "token"

    def refresh_access_token(self, realm_id: str, rejected_token: str) -> str:
        return "token"


@pytest.fixture
def client() -> QBOClient:
    return QBOClient(UNREACHABLE, "123", StaticTokens())


def test_write_request_id_over_50_characters_is_refused(client: QBOClient) -> None:
    with pytest.raises(ValueError, match="create Customer 'A': requestid must be 1 to 50"):
        client.create("Customer", {"DisplayName": "A"}, "x" * 51)


def test_update_without_sync_token_is_refused(client: QBOClient) -> None:
    with pytest.raises(ValueError, match="update Customer Id=5 'A': an update needs"):
        client.update("Customer", {"Id": "5", "DisplayName": "A"}, "req-1")


def test_query_with_its_own_paging_is_refused(client: QBOClient) -> None:
    with pytest.raises(ValueError, match="leave out STARTPOSITION/MAXRESULTS"):
        list(client.query("select * from Customer maxresults 10"))


def test_batch_needs_distinct_bids(client: QBOClient) -> None:
    operations = [BatchOperation("b1", "create", "Customer", {"DisplayName": name})
                  for name in ("A", "B")]
    with pytest.raises(ValueError, match="distinct bid"):
        client.batch(operations)


def test_batch_request_id_is_stable_short_and_depends_on_the_items() -> None:
    first = [BatchOperation(f"c-{n}", "create", "Customer", {"DisplayName": f"N{n}"})
             for n in range(30)]
    again = [BatchOperation(f"c-{n}", "create", "Customer", {"DisplayName": f"N{n}"})
             for n in range(30)]
    assert batch_request_id(first) == batch_request_id(again)
    assert len(batch_request_id(first)) == 36
    assert batch_request_id(first) != batch_request_id(first[:29])


def test_batch_items_have_qbo_shape() -> None:
    update = BatchOperation("u-1", "update", "Invoice", {"Id": "9", "SyncToken": "2"})
    query = BatchOperation("q-1", "query", query="select * from Term")
    assert update.to_item() == {"bId": "u-1", "operation": "update",
                                "Invoice": {"Id": "9", "SyncToken": "2"}}
    assert query.to_item() == {"bId": "q-1", "Query": "select * from Term"}


def _throttled(retry_after: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def test_throttle_waits_grow_with_jitter_up_to_the_cap() -> None:
    waits = throttle_waits(base_seconds=4.0, cap_seconds=20.0)
    next(waits)  # primed, as backoff does
    observed = [waits.send(_throttled()) for _ in range(5)]
    ceilings = [4.0, 8.0, 16.0, 20.0, 20.0]
    for wait, ceiling in zip(observed, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_throttle_waits_honour_retry_after_when_sent() -> None:
    waits = throttle_waits(base_seconds=4.0)
    next(waits)
    assert waits.send(_throttled("7")) == 7.0
    assert 2.0 <= waits.send(_throttled("not-a-number")) <= 8.0


def test_batch_item_id_is_ten_characters_of_the_request_id_and_stable() -> None:
    request_id = "3f2a9c1e-77b0-4d2e-9a61-0c5e8f1d2b3a"
    assert batch_item_id(request_id) == "3f2a9c1e77"
    assert batch_item_id(request_id) == batch_item_id("3f2a9c1e-77b0-4d2e-9a61-0c5e8f1d2b3a")
    assert batch_item_id(request_id) != batch_item_id("9d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6")
    assert len(batch_item_id("a" * 50)) == BATCH_ITEM_ID_LIMIT == 10
    assert batch_item_id("short") == "short"


def test_batch_item_id_names_the_change_so_a_retried_batch_keeps_its_requestid() -> None:
    changes = ["3f2a9c1e-77b0-4d2e-9a61-0c5e8f1d2b3a", "9d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6"]
    sent = [BatchOperation(batch_item_id(c), "create", "Customer") for c in changes]
    retried = [BatchOperation(batch_item_id(c), "create", "Customer") for c in changes]
    assert batch_request_id(sent) == batch_request_id(retried)


def test_batch_item_id_needs_a_request_id() -> None:
    with pytest.raises(ValueError, match="no characters for a bId"):
        batch_item_id("---")


def test_batch_size_is_qbos_limit_and_importable_from_the_package() -> None:
    from qbo_pipeline.qbo import BATCH_ITEM_LIMIT

    assert BATCH_ITEM_LIMIT == 30


def test_the_newer_of_two_sync_tokens_is_the_higher_count() -> None:
    """QBO counts a record's SyncToken up from 0 with each save ("9" < "10" as numbers)."""
    from qbo_pipeline.qbo import newer_sync_token

    assert newer_sync_token("9", "10") == "10"
    assert newer_sync_token("3", None) == "3"
    assert newer_sync_token(None, None) is None
