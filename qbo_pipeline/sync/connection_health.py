"""Whether a company's connection will keep working: the refresh token's expiry, judged.

An access token lives an hour and is refreshed by itself; the refresh token lives 100 days
from its last rotation (Intuit's rolling expiry) and never past Intuit's hard maximum, and only
a person can replace a dead one, by reconnecting. So a connection is:

- `ok` while its refresh token has more than `WARN_DAYS` left (or no known expiry);
- `expiring` within `WARN_DAYS` of it: still syncing, but a person should reconnect soon;
- `expired` once it has passed: every sync of the company fails until someone reconnects;
- `disconnected` when someone disconnected it on purpose.

One rule, read by `qbo-pipeline connections` and by the Dagster check on each company's
connection, so that the CLI and the UI never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from qbo_pipeline.qbo.error_catalog import entry

WARN_DAYS = 14
# Seed 001: "Token refresh failed -> your 100-day refresh token expired; disconnect and
# reconnect"; seed 003: reconnect to fix authorization failures. The words are the error
# catalog's, so the warning before expiry and the failure after it give the same fix.
RECONNECT_FIX = entry("token_refresh_failed").fix.replace("--realm R", "--realm {realm}")


class HealthLevel(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class ConnectionHealth:
    level: HealthLevel
    message: str
    days_left: float | None = None

    @property
    def syncs(self) -> bool:
        """Whether syncs of the company can still reach QBO."""
        return self.level in (HealthLevel.OK, HealthLevel.EXPIRING)


def connection_health(realm_id: str, refresh_expires_at: datetime | None, now: datetime, *,
                      connected: bool = True, warn_days: int = WARN_DAYS) -> ConnectionHealth:
    """The connection's health at `now` (times without a zone count as UTC)."""
    fix = RECONNECT_FIX.format(realm=realm_id)
    if not connected:
        return ConnectionHealth(HealthLevel.DISCONNECTED,
                                f"company {realm_id} was disconnected: connect it to sync it")
    if refresh_expires_at is None:
        return ConnectionHealth(HealthLevel.OK, f"company {realm_id} is connected (QBO gave "
                                                "no refresh token expiry)")
    left = _aware(refresh_expires_at) - _aware(now)
    days = left / timedelta(days=1)
    until = f"{_aware(refresh_expires_at):%Y-%m-%d %H:%M} UTC"
    if left <= timedelta(0):
        return ConnectionHealth(HealthLevel.EXPIRED, f"the refresh token of company {realm_id} "
                                f"expired on {until}: syncs fail until you {fix}", days)
    if left <= timedelta(days=warn_days):
        return ConnectionHealth(HealthLevel.EXPIRING, f"the refresh token of company {realm_id} "
                                f"expires in {days:.1f} days ({until}): {fix} before then",
                                days)
    return ConnectionHealth(HealthLevel.OK, f"company {realm_id} is connected; its refresh "
                                            f"token expires on {until}", days)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
