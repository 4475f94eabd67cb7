"""Connection health in the Dagster UI: is every company's refresh token still good?

Why an asset check, and not a sensor: a sensor can only skip or request runs, so a dying token
would show nowhere but in its tick log. A check has a result the asset page, the checks list
and Dagster's alerting show: green, a yellow warning (WARN) from 14 days before a company's
refresh token expires, a red failure (ERROR) once it has. It rides on `qbo/connections`, an
asset that stands for the connected companies and their tokens (kept in the state DB, so the
asset is never materialized). The companies come and go as partitions of `realm`, and Dagster
has one check per asset (per-partition checks are a preview feature), so the one check judges
every company: the worst one sets its severity, and its description and alerts name each
company that needs a person, with the fix. `connection_health_job` runs it, daily by
`connection_health_daily` and from the UI at will; the `check_alerts` sensor delivers its
alerts.
"""

# No `from __future__ import annotations` here: Dagster reads the check function's annotations
# (its resource types) when the check is defined.

from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DefaultScheduleStatus,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
    in_process_executor,
)

from qbo_pipeline.defs.alerts import alert_metadata
from qbo_pipeline.defs.assets import markdown_table
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.state import list_realms, token_expiry
from qbo_pipeline.sync.alerts import Alert, Severity, connection_alert, worst
from qbo_pipeline.sync.connection_health import (
    WARN_DAYS,
    ConnectionHealth,
    stored_connection_health,
)

CONNECTIONS_KEY = AssetKey(["qbo", "connections"])
REFRESH_TOKENS_CHECK = "refresh_tokens_valid"
HEALTH_JOB_NAME = "connection_health_job"
HEALTH_SCHEDULE_NAME = "connection_health_daily"
# Early in the working day in Europe and before it in America: a warning read the same day.
HEALTH_CRON = "0 6 * * *"

connections = AssetSpec(
    CONNECTIONS_KEY, group_name="connections", kinds={"quickbooks"},
    description="The QBO companies connected to the pipeline and their OAuth tokens (kept "
                "encrypted in the state DB; judged by its checks, never materialized).")


def company_health(state_db: StateDatabase, now: datetime) -> list[tuple[str, ConnectionHealth]]:
    """Each connected company's health at `now`, by realm id."""
    with state_db.sessions().begin() as session:
        expiries = [(realm.realm_id, token_expiry(session, realm.realm_id))
                    for realm in list_realms(session)]
    return [(realm_id, stored_connection_health(realm_id, expiry, now))
            for realm_id, expiry in expiries]


def token_check_result(health: list[tuple[str, ConnectionHealth]]) -> AssetCheckResult:
    """Passed while no company needs a person; else WARN or ERROR, the worst company's."""
    found: list[Alert] = [alert for realm_id, each in health
                          if (alert := connection_alert(each, realm_id, REFRESH_TOKENS_CHECK))]
    table = pd.DataFrame([{"realm_id": realm_id, "status": str(each.level),
                           "days_left": None if each.days_left is None else round(
                               each.days_left, 1)} for realm_id, each in health],
                         columns=["realm_id", "status", "days_left"])
    metadata = {"companies": len(health), "needing_a_reconnect": len(found),
                "warn_days": WARN_DAYS,
                "companies_table": MetadataValue.md(markdown_table(table, limit=100)),
                **alert_metadata(*found)}
    level = worst(found)
    if level is None:
        return AssetCheckResult(passed=True, metadata=metadata,
                                description=f"{len(health)} connected company(ies), every "
                                            "refresh token valid for more than "
                                            f"{WARN_DAYS} days")
    severity = AssetCheckSeverity.ERROR if level is Severity.ERROR else AssetCheckSeverity.WARN
    return AssetCheckResult(passed=False, severity=severity, metadata=metadata,
                            description="\n".join(alert.text() for alert in found))


@asset_check(asset=CONNECTIONS_KEY, name=REFRESH_TOKENS_CHECK,
             description=f"Warns {WARN_DAYS} days before a company's refresh token expires "
                         "and fails once it has: disconnect and reconnect the company.")
def refresh_tokens_valid(state_db: StateDatabase) -> AssetCheckResult:
    return token_check_result(company_health(state_db, datetime.now(UTC)))


# The check alone: `qbo/connections` has nothing to materialize.
connection_health_job = define_asset_job(
    HEALTH_JOB_NAME, selection=AssetSelection.checks(refresh_tokens_valid),
    executor_def=in_process_executor,
    description="Checks every connected company's refresh token (warns 14 days ahead).")

# Running by default, unlike the sync schedules: it reads the state DB only, writes nothing to
# QBO, and a warning nobody switched on would warn nobody.
connection_health_schedule = ScheduleDefinition(
    name=HEALTH_SCHEDULE_NAME, cron_schedule=HEALTH_CRON, job=connection_health_job,
    execution_timezone="UTC", default_status=DefaultScheduleStatus.RUNNING,
    description="Daily at 06:00 UTC, checks every company's refresh token.")
