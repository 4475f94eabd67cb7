"""The connection health rule (sync/connection_health.py): seed 001's "you'll only need to
reconnect after 100 days", warned 14 days ahead and failed once past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.sync.connection_health import WARN_DAYS, HealthLevel, connection_health

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
