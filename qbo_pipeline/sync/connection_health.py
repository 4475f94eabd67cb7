"""Whether a company's connection will keep working: the refresh token's expiry, judged.

An access token lives an hour and is refreshed by itself; the refresh token lives 100 days
from its last rotation (Intuit's rolling expiry) and never past Intuit's hard maximum, and only
a person can replace a dead one, by reconnecting.

The refresh token's end is the earlier of the two expiries (either may be unknown). A
connection is:

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
from typing import Protocol

from qbo_pipeline.qbo.error_catalog import entry

WARN_DAYS = 14
# Seed 001: "Token refresh failed -> your 100-day refresh token expired; disconnect and
# reconnect"; seed 003: reconnect to fix authorization failures. The words are the error
# catalog's, so the warning before expiry and the failure after it give the same fix.
RECONNECT = entry("token_refresh_failed")
# Seed 001: "No active QuickBooks connection": a company the pipeline knows without tokens.
NOT_CONNECTED = entry("no_connection")


class HealthLevel(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    NOT_CONNECTED = "not connected"  # known, not disconnected, but holding no tokens
    DISCONNECTED = "disconnected"


class StoredExpiry(Protocol):
    """What the state DB keeps of a company's refresh token (`state.TokenExpiry`)."""

    @property
    def refresh_token_expires_at(self) -> datetime | None: ...

    @property
    def refresh_token_hard_expires_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class ConnectionHealth:
    level: HealthLevel
    message: str
    days_left: float | None = None

    @property
    def syncs(self) -> bool:
        """Whether syncs of the company can still reach QBO."""
        return self.level in (HealthLevel.OK, HealthLevel.EXPIRING)


def refresh_token_end(rolling_expires_at: datetime | None,
                      hard_expires_at: datetime | None) -> datetime | None:
    """When a refresh token stops working: the earlier of its rolling expiry and Intuit's
    hard maximum, whichever are known (None when neither is)."""
    known = [_aware(moment) for moment in (rolling_expires_at, hard_expires_at)
             if moment is not None]
    return min(known, default=None)


def stored_connection_health(realm_id: str, stored: StoredExpiry | None, now: datetime, *,
                             connected: bool = True) -> ConnectionHealth:
    """The health of a company from what the state DB keeps of it: `stored` is None when it
    holds no tokens, which no sync can get past. The one reading of the stored expiries, for
    `qbo-pipeline connections` and the Dagster check alike."""
    if connected and stored is None:
        return ConnectionHealth(HealthLevel.NOT_CONNECTED,
                                f"{NOT_CONNECTED.message} for company {realm_id} (no tokens "
                                f"stored): {NOT_CONNECTED.fix_for(realm_id)}")
    return connection_health(
        realm_id, stored.refresh_token_expires_at if stored else None, now,
        hard_expires_at=stored.refresh_token_hard_expires_at if stored else None,
        connected=connected)


def connection_health(realm_id: str, refresh_expires_at: datetime | None, now: datetime, *,
                      hard_expires_at: datetime | None = None, connected: bool = True,
                      warn_days: int = WARN_DAYS) -> ConnectionHealth:
    """The connection's health at `now`, from the refresh token's rolling expiry and its hard
    maximum (times without a zone count as UTC)."""
    fix = RECONNECT.fix_for(realm_id)
    if not connected:
        return ConnectionHealth(HealthLevel.DISCONNECTED,
                                f"company {realm_id} was disconnected: connect it to sync it")
    ends_at = refresh_token_end(refresh_expires_at, hard_expires_at)
    if ends_at is None:
        return ConnectionHealth(HealthLevel.OK, f"company {realm_id} is connected (QBO gave "
                                                "no refresh token expiry)")
    left = ends_at - _aware(now)
    days = left / timedelta(days=1)
    until = f"{ends_at:%Y-%m-%d %H:%M} UTC"
    token = _which_token(realm_id, ends_at, refresh_expires_at)
    if left <= timedelta(0):
        return ConnectionHealth(HealthLevel.EXPIRED, f"{token} expired on {until}: syncs fail "
                                                     f"until you {fix}", days)
    if left <= timedelta(days=warn_days):
        return ConnectionHealth(HealthLevel.EXPIRING, f"{token} expires in {days:.1f} days "
                                                      f"({until}): {fix} before then", days)
    return ConnectionHealth(HealthLevel.OK, f"company {realm_id} is connected; its refresh "
                                            f"token expires on {until}", days)


def _which_token(realm_id: str, ends_at: datetime, rolling_expires_at: datetime | None) -> str:
    """The subject of the message: it names Intuit's hard maximum when that is what ends the
    token, since no refresh can push it back (only reconnecting can)."""
    if rolling_expires_at is not None and _aware(rolling_expires_at) <= ends_at:
        return f"the refresh token of company {realm_id}"
    return (f"the refresh token of company {realm_id} (at Intuit's maximum lifetime for it, "
            "which refreshing does not extend)")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
