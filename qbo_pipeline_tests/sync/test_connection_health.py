"""The connection health rule (sync/connection_health.py): seed 001's "you'll only need to
reconnect after 100 days", warned 14 days ahead and failed once past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.state import TokenExpiry
from qbo_pipeline.sync.alerts import Severity, connection_alert
from qbo_pipeline.sync.connection_health import (
    WARN_DAYS,
    HealthLevel,
    connection_health,
    refresh_token_end,
    stored_connection_health,
)

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_each_level_and_its_fix() -> None:
    assert connection_health("9", NOW + timedelta(days=80), NOW).level is HealthLevel.OK
    soon = connection_health("9", NOW + timedelta(days=3), NOW)
    assert soon.level is HealthLevel.EXPIRING and soon.syncs
    assert "expires in 3.0 days (2026-12-05 12:00 UTC)" in soon.message
    assert "disconnect and reconnect the company (qbo-pipeline connect --realm 9)" in soon.message
    gone = connection_health("9", NOW - timedelta(seconds=1), NOW)
    assert gone.level is HealthLevel.EXPIRED and not gone.syncs
    assert connection_health("9", None, NOW).level is HealthLevel.OK
    off = connection_health("9", NOW + timedelta(days=80), NOW, connected=False)
    assert off.level is HealthLevel.DISCONNECTED and not off.syncs


def test_a_company_known_without_tokens_is_no_active_connection() -> None:
    """Seed 001's "No active QuickBooks connection": a company the state DB knows, not
    disconnected, but holding no tokens cannot sync, so it is not "ok" but an alert."""
    none = stored_connection_health("9", None, NOW)
    assert none.level is HealthLevel.NOT_CONNECTED and not none.syncs
    assert "No active QuickBooks connection for company 9" in none.message
    assert "qbo-pipeline connect --realm 9" in none.message
    alert = connection_alert(none, "9", "refresh_tokens_valid")
    assert alert is not None and alert.severity is Severity.ERROR
    # Disconnected on purpose: its tokens are gone too, and that is no alert.
    off = stored_connection_health("9", None, NOW, connected=False)
    assert off.level is HealthLevel.DISCONNECTED
    assert connection_alert(off, "9", "refresh_tokens_valid") is None


def test_the_stored_expiries_are_read_as_the_rule_reads_them() -> None:
    stored = TokenExpiry(NOW + timedelta(hours=1), NOW + timedelta(days=90),
                         NOW + timedelta(days=5))
    health = stored_connection_health("9", stored, NOW)
    assert health == connection_health("9", NOW + timedelta(days=90), NOW,
                                       hard_expires_at=NOW + timedelta(days=5))
    assert health.level is HealthLevel.EXPIRING


def test_a_time_without_a_zone_counts_as_utc() -> None:
    naive = (NOW + timedelta(days=WARN_DAYS - 1)).replace(tzinfo=None)
    assert connection_health("9", naive, NOW).level is HealthLevel.EXPIRING


@given(st.floats(min_value=-400, max_value=400, allow_nan=False))
def test_the_level_follows_the_days_left(days: float) -> None:
    left = timedelta(days=days)  # to the microsecond, as stored times are
    health = connection_health("9", NOW + left, NOW)
    expected = (HealthLevel.EXPIRED if left <= timedelta(0) else
                HealthLevel.EXPIRING if left <= timedelta(days=WARN_DAYS) else HealthLevel.OK)
    assert health.level is expected
    assert health.days_left is not None and abs(health.days_left - days) < 1e-6


def test_the_hard_maximum_ends_the_token_when_it_comes_first() -> None:
    """Intuit's five-year maximum is not pushed back by refreshing: when it comes before the
    rolling expiry, the warning and the failure follow it, and say so."""
    rolling = NOW + timedelta(days=90)
    near = connection_health("9", rolling, NOW, hard_expires_at=NOW + timedelta(days=3))
    assert near.level is HealthLevel.EXPIRING and near.days_left == 3
    assert "maximum lifetime" in near.message and "(2026-12-05 12:00 UTC)" in near.message
    past = connection_health("9", rolling, NOW, hard_expires_at=NOW - timedelta(hours=1))
    assert past.level is HealthLevel.EXPIRED and "maximum lifetime" in past.message
    later = connection_health("9", NOW + timedelta(days=3), NOW,
                              hard_expires_at=NOW + timedelta(days=900))
    assert later.level is HealthLevel.EXPIRING and "maximum lifetime" not in later.message
    only_hard = connection_health("9", None, NOW, hard_expires_at=NOW + timedelta(days=10))
    assert only_hard.level is HealthLevel.EXPIRING


@given(st.floats(min_value=-400, max_value=400, allow_nan=False),
       st.one_of(st.none(), st.floats(min_value=-400, max_value=2000, allow_nan=False)))
def test_the_level_follows_the_earlier_expiry(rolling_days: float,
                                              hard_days: float | None) -> None:
    rolling = NOW + timedelta(days=rolling_days)
    hard = None if hard_days is None else NOW + timedelta(days=hard_days)
    health = connection_health("9", rolling, NOW, hard_expires_at=hard)
    earlier = rolling if hard is None else min(rolling, hard)
    assert refresh_token_end(rolling, hard) == earlier
    judged_alone = connection_health("9", earlier, NOW)
    assert (health.level, health.days_left) == (judged_alone.level, judged_alone.days_left)
