"""Alerts through Dagster's own hooks, delivered to a webhook when one is configured.

- `sync_run_failure_alert`, a run-failure sensor: every failed run of this code location (a
  sync, a backfill, the health job) becomes one alert naming its job, run id, company and fix.
- `check_alerts`, a run-status sensor on finished runs: the failed checks of the run whose rule
  made them alerts (they carry `ALERT_METADATA`: an expiring or expired refresh token, a
  growing quarantine, a long-open conflict) are sent on, one message per company; the same
  alert raised by an earlier run lately is not sent again (`sync.alerts.REPEAT_AFTER`).

The checks and the failed runs are in the Dagster UI either way; the sensors only deliver
them. Delivery is a JSON POST to `QBO_ALERT_WEBHOOK_URL` (a Slack incoming webhook reads its
`text`); without it the sensors log the alerts and send nothing. Dagster's
`make_email_on_run_failure_sensor` and dagster-slack's `make_slack_on_run_failure_sensor` are
the other routes (README, "Alerts and connection health").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    EnvVar,
    EventLogEntry,
    MetadataValue,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

# Dagster's own error record of a failed step (a public type of its shared package).
from dagster_shared.error import SerializableErrorInfo

from qbo_pipeline.defs.partitions import RANGE_START_TAG, REALM_DIMENSION, REALM_TAG
from qbo_pipeline.sync.alerts import Alert, is_repeat, run_failure_alert

ALERT_WEBHOOK_VARIABLE = "QBO_ALERT_WEBHOOK_URL"
# A check result's alerts for a person, as the JSON the webhook receives (`Alert.to_json`):
# written by the checks whose rule (`sync.alerts`) says so, read by `check_alerts`.
ALERT_METADATA = "alerts"
RUN_FAILURE_SENSOR_NAME = "sync_run_failure_alert"
CHECK_ALERTS_SENSOR_NAME = "check_alerts"
PARTITION_REALM_TAG = f"dagster/partition/{REALM_DIMENSION}"
# Earlier evaluations of a check looked at for a repeated alert: a day of 15-minute runs of
# ten companies (with more, an alert may be sent again sooner: a repeat, never a loss).
HISTORY_LIMIT = 1000


class AlertDeliveryError(Exception):
    """The webhook refused or missed an alert (the message never names the address: a Slack
    webhook's address is its credential)."""


class AlertWebhook(ConfigurableResource):
    """Where alerts go: a URL that takes a JSON POST, or nowhere (logged only)."""

    # An `EnvVar` when set, so Dagster keeps the variable's name and never the address.
    url: str | None = None
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertWebhook:
        environ = os.environ if environ is None else environ
        url = EnvVar(ALERT_WEBHOOK_VARIABLE) if environ.get(ALERT_WEBHOOK_VARIABLE) else None
        return cls(url=url)

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def send(self, payload: Mapping[str, Any]) -> None:
        if not self.url:
            return
        try:
            response = requests.post(self.url, json=dict(payload), timeout=self.timeout_seconds)
        except requests.RequestException as error:
            raise AlertDeliveryError(f"the alert webhook ({ALERT_WEBHOOK_VARIABLE}) could not "
                                     f"be reached: {type(error).__name__}") from None
        if response.status_code >= 400:
            raise AlertDeliveryError(f"the alert webhook ({ALERT_WEBHOOK_VARIABLE}) answered "
                                     f"HTTP {response.status_code}")


def realm_of_run(tags: Mapping[str, str]) -> str | None:
    """The company a run synced: its `qbo/realm` tag, its partition's realm, or the realm of
    the range a backfill covered (`month|realm`)."""
    if realm := tags.get(REALM_TAG) or tags.get(PARTITION_REALM_TAG):
        return realm
    start = tags.get(RANGE_START_TAG)
    return (start.partition("|")[2] or None) if start else None


def failure_text(context: RunFailureSensorContext) -> str | None:
    """The first failed step's error, which says what went wrong; else the run's summary."""
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None:
            return error_text(error)
    return context.failure_event.message


def error_text(error: SerializableErrorInfo) -> str:
    """The error a person can act on: under Dagster's wrappers ("Error occurred while
    executing op"), without the exception's module path."""
    while error.cause is not None and error.cls_name and error.cls_name.startswith("Dagster"):
        error = error.cause
    text = error.message.strip()
    if error.cls_name:
        before, found, after = text.partition(f"{error.cls_name}: ")
        if found and " " not in before:  # `package.module.` before the class name
            return after
    return text


# Every run of the instance, not only this code location's: `qbo-pipeline sync` runs its job
# in its own process, so its runs carry no code location for the sensor to match (the
# instance serves this pipeline alone).
@run_failure_sensor(name=RUN_FAILURE_SENSOR_NAME, default_status=DefaultSensorStatus.RUNNING,
                    monitor_all_code_locations=True,
                    description="Sends an alert for every failed run (a sync, a backfill, the "
                                "health job) to QBO_ALERT_WEBHOOK_URL, naming the company and "
                                "the fix.")
def sync_run_failure_alert(context: RunFailureSensorContext, alerts: AlertWebhook) -> None:
    run = context.dagster_run
    alert = run_failure_alert(run.job_name, run.run_id, realm_of_run(run.tags),
                              failure_text(context))
    _deliver(context, alerts, alert.to_json())


def check_alert_payloads(context: RunStatusSensorContext) -> Iterator[Mapping[str, Any]]:
    """The alerts of the run's failed checks, as their checks wrote them, but those an
    earlier run's check raised lately (already sent)."""
    run_id = context.dagster_run.run_id
    now = datetime.now(UTC)
    for record in context.instance.all_logs(run_id,
                                            of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = _evaluation(record)
        if evaluation is None or evaluation.passed:
            continue
        found = _payloads(evaluation)
        if found:
            earlier = list(_earlier_payloads(context.instance, evaluation.asset_check_key,
                                             run_id))
            yield from (payload for payload in found if not is_repeat(payload, earlier, now))


def _evaluation(record: EventLogEntry) -> AssetCheckEvaluation | None:
    event = record.dagster_event
    if event is None or event.event_type is not DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    return event.asset_check_evaluation_data


def _payloads(evaluation: AssetCheckEvaluation) -> list[Mapping[str, Any]]:
    stored = evaluation.metadata.get(ALERT_METADATA)
    found = stored.value if stored is not None else None
    return [p for p in found if isinstance(p, Mapping)] if isinstance(found, list) else []


def _earlier_payloads(instance: DagsterInstance, key: AssetCheckKey,
                      run_id: str) -> Iterator[tuple[datetime, Mapping[str, Any]]]:
    """The alerts of the check's latest evaluations by other runs (every company's: the
    check is one for all of them), with when each was raised."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=HISTORY_LIMIT)
    for execution in history:
        evaluation = _evaluation(execution.event) if execution.event is not None else None
        if execution.run_id == run_id or evaluation is None:
            continue
        when = datetime.fromtimestamp(execution.create_timestamp, UTC)
        yield from ((when, payload) for payload in _payloads(evaluation))


@run_status_sensor(name=CHECK_ALERTS_SENSOR_NAME, run_status=DagsterRunStatus.SUCCESS,
                   default_status=DefaultSensorStatus.RUNNING, monitor_all_code_locations=True,
                   description="Sends the alerts of a finished run's failed checks (refresh "
                               "tokens expiring or expired, growing quarantines, long-open "
                               "conflicts) to QBO_ALERT_WEBHOOK_URL.")
def check_alerts(context: RunStatusSensorContext, alerts: AlertWebhook) -> None:
    for payload in check_alert_payloads(context):
        _deliver(context, alerts, payload)


def _deliver(context: RunStatusSensorContext, alerts: AlertWebhook,
             payload: Mapping[str, Any]) -> None:
    text = str(payload.get("text", ""))
    if not alerts.configured:
        context.log.info(f"alert (no {ALERT_WEBHOOK_VARIABLE} set, not sent): {text}")
        return
    alerts.send(payload)
    context.log.info(f"alert sent: {text}")


def alert_metadata(*found: Alert) -> dict[str, Any]:
    """The metadata a check adds for its alerts (none: nothing added)."""
    return {ALERT_METADATA: MetadataValue.json([a.to_json() for a in found])} if found else {}
