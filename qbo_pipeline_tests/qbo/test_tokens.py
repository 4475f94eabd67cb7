"""Tokens through intuit-oauth against the emulator's OAuth server: exchange, refresh, rotate."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.qbo.client import QBOClient
from qbo_pipeline.qbo.errors import ConnectionExpiredError, TokenEndpointError
from qbo_pipeline.qbo.tokens import (
    InMemoryTokenStore,
    OAuthTokenProvider,
    RefreshDecision,
    TokenSet,
    decide_refresh,
    keep_known_hard_expiry,
)
from qbo_pipeline_tests.conftest import OAUTH
from qbo_pipeline_tests.qbo.conftest import ClientUnderTest, emulator_settings


def test_code_exchange_stores_tokens_that_the_client_uses(
        emulator_server: EmulatorServer) -> None:
    settings = emulator_settings(emulator_server.base_url)
    store = InMemoryTokenStore()
    tokens = OAuthTokenProvider(settings, store)
    consent = requests.get(tokens.authorization_url(state="s-1"), allow_redirects=False,
                           timeout=10)
    redirect = parse_qs(urlparse(consent.headers["Location"]).query)
    assert redirect["state"] == ["s-1"]
    realm_id = redirect["realmId"][0]
    stored = tokens.exchange_code(realm_id, redirect["code"][0])
    assert store.load(realm_id) == stored
    assert stored.access_token not in repr(stored)
    assert stored.refresh_token not in repr(stored)
    assert stored.access_expires_at > datetime.now(UTC) + timedelta(minutes=50)
    client = QBOClient(settings, realm_id, tokens)
    assert list(client.query("select * from Item where Name = 'Services'"))


def test_expired_access_token_is_refreshed_once_and_stored(qbo: ClientUnderTest) -> None:
    before = qbo.store.load(qbo.realm.realm_id)
    assert before is not None
    qbo.schedule_fault("expired_token")
    assert list(qbo.client.query("select * from Term"))
    after = qbo.store.load(qbo.realm.realm_id)
    assert after is not None
    assert after.access_token != before.access_token
    assert qbo.injected()["expired_token"] >= 1


def test_token_past_its_expiry_is_refreshed_before_the_request(qbo: ClientUnderTest) -> None:
    realm_id = qbo.realm.realm_id
    current = qbo.store.load(realm_id)
    assert current is not None
    qbo.store.save(realm_id, TokenSet(current.access_token, current.refresh_token,
                                      datetime.now(UTC) - timedelta(seconds=1)))
    assert qbo.tokens.access_token(realm_id) != current.access_token


def test_refused_refresh_token_says_to_reconnect(qbo: ClientUnderTest) -> None:
    realm_id = qbo.realm.realm_id
    qbo.store.save(realm_id, TokenSet("not-a-token", "revoked-refresh-token",
                                      datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(ConnectionExpiredError) as raised:
        qbo.client.read("Customer", "1")
    message = str(raised.value)
    assert message.startswith(f"QBO company {realm_id}: Token refresh failed")
    assert f"disconnect and reconnect the company (qbo-pipeline connect --realm {realm_id}" \
        in message
    assert "revoked-refresh-token" not in message
    assert OAUTH.client_secret not in message


def _expire_access_token(qbo: ClientUnderTest) -> TokenSet:
    current = qbo.store.load(qbo.realm.realm_id)
    assert current is not None
    qbo.store.save(qbo.realm.realm_id, TokenSet(current.access_token, current.refresh_token,
                                                datetime.now(UTC) - timedelta(seconds=1)))
    return current


@pytest.mark.parametrize("kind", ["server_error", "service_unavailable", "dropped_connection"])
def test_a_token_endpoint_failing_for_a_moment_is_retried(qbo: ClientUnderTest,
                                                         kind: str) -> None:
    """A 500, a 503 or a dropped connection of Intuit's token endpoint is retried with backoff,
    as QBO's API calls are: the refresh succeeds and its new tokens are stored."""
    before = _expire_access_token(qbo)
    qbo.admin("POST", "faults/scheduled", {"kind": kind, "count": 2, "target": "token"})
    assert list(qbo.client.query("select * from Term"))
    after = qbo.store.load(qbo.realm.realm_id)
    assert after is not None and after.access_token != before.access_token
    assert qbo.injected()[kind] >= 2


def test_a_token_endpoint_down_for_good_says_so_and_not_to_check_the_settings(
        qbo: ClientUnderTest) -> None:
    """After its retries, a token service still answering 503 fails with a message that says
    Intuit's service is down and the next run tries again (the client id is not at fault),
    and carries no token or secret."""
    before = _expire_access_token(qbo)
    retries = qbo.client.settings.max_retries
    qbo.admin("POST", "faults/scheduled",
              {"kind": "service_unavailable", "count": retries + 1, "target": "token"})
    with pytest.raises(TokenEndpointError) as raised:
        qbo.client.read("Customer", "1")
    message = str(raised.value)
    assert message.startswith(f"QBO company {qbo.realm.realm_id}: Intuit's token service is "
                              "unavailable (token endpoint HTTP 503")
    assert "token service is unavailable" in message and "next run tries again" in message
    assert "client id" not in message
    for secret in (before.refresh_token, before.access_token, OAUTH.client_secret):
        assert secret not in message
    stored = qbo.store.load(qbo.realm.realm_id)
    assert stored is not None and stored.access_token == before.access_token


# --- the refresh decision, and the refresh token's two expiries ---------------------------

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
_tokens = st.sampled_from(["", "access-a", "access-b"])


@given(stored_token=_tokens, seen_token=_tokens,
       expires_in=st.integers(min_value=-7200, max_value=7200))
def test_a_refresh_takes_what_another_run_stored_only_when_it_is_new_and_valid(
        stored_token: str, seen_token: str, expires_in: int) -> None:
    """The tokens re-read once the realm is locked were refreshed by another run exactly when
    their access token is another one and still valid: then they are taken, and Intuit is not
    asked again (which would spend the refresh token that run just stored)."""
    stored = TokenSet(stored_token, "refresh", NOW + timedelta(seconds=expires_in))
    decision = decide_refresh(stored, seen_token, NOW)
    another_valid_one = (bool(stored_token) and stored_token != seen_token
                         and not stored.access_expired(NOW))
    assert decision is (RefreshDecision.USE_STORED if another_valid_one
                        else RefreshDecision.REFRESH)


def test_the_stored_token_is_refreshed_when_it_is_the_one_seen_expired() -> None:
    stored = TokenSet("access-a", "refresh", NOW + timedelta(hours=1))
    assert decide_refresh(stored, "access-a", NOW) is RefreshDecision.REFRESH
    assert decide_refresh(stored, "access-old", NOW) is RefreshDecision.USE_STORED


def test_a_refresh_that_does_not_repeat_the_hard_expiry_keeps_the_known_one() -> None:
    hard = NOW + timedelta(days=1000)
    previous = TokenSet("a", "r", NOW, NOW + timedelta(days=50), hard)
    fresh = TokenSet("b", "r2", NOW + timedelta(hours=1), NOW + timedelta(days=100))
    assert keep_known_hard_expiry(fresh, previous).refresh_hard_expires_at == hard
    told = TokenSet("b", "r2", NOW, None, NOW + timedelta(days=999))
    assert keep_known_hard_expiry(told, previous) == told


def test_both_refresh_token_expiries_are_recorded(qbo: ClientUnderTest) -> None:
    """Intuit's token endpoint sends x_refresh_token_expires_in (rolling, 100 days) always and
    x_refresh_token_hard_expires_in (the five-year maximum from consent) when asked; the
    provider asks, and a refresh stores both."""
    before = _expire_access_token(qbo)
    qbo.tokens.access_token(qbo.realm.realm_id)
    after = qbo.store.load(qbo.realm.realm_id)
    assert after is not None and after.access_token != before.access_token
    now = datetime.now(UTC)
    assert after.refresh_expires_at is not None and after.refresh_hard_expires_at is not None
    assert abs(after.refresh_expires_at - (now + timedelta(seconds=8726400))) < timedelta(
        minutes=5)
    assert abs(after.refresh_hard_expires_at - (now + timedelta(days=5 * 365))) < timedelta(
        minutes=5)


def test_the_code_exchange_records_the_hard_expiry(emulator_server: EmulatorServer) -> None:
    settings = emulator_settings(emulator_server.base_url)
    tokens = OAuthTokenProvider(settings, InMemoryTokenStore())
    consent = requests.get(tokens.authorization_url(state="s-2"), allow_redirects=False,
                           timeout=10)
    redirect = parse_qs(urlparse(consent.headers["Location"]).query)
    stored = tokens.exchange_code(redirect["realmId"][0], redirect["code"][0])
    assert stored.refresh_hard_expires_at is not None
    assert stored.refresh_hard_expires_at > datetime.now(UTC) + timedelta(days=4 * 365)


def test_threads_refreshing_at_once_share_one_refresh(qbo: ClientUnderTest) -> None:
    """The in-memory store serializes a realm's refreshes too: threads that all saw the same
    token expire end with one new access token, not one each."""
    _expire_access_token(qbo)
    start = threading.Barrier(4)

    def refresh() -> str:
        start.wait(timeout=30)
        return qbo.tokens.access_token(qbo.realm.realm_id)

    with ThreadPoolExecutor(4) as pool:
        tokens = set(pool.map(lambda _: refresh(), range(4)))
    stored = qbo.store.load(qbo.realm.realm_id)
    assert stored is not None and tokens == {stored.access_token}
