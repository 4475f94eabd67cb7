"""Token health and alerts in Dagster (defs/health.py, defs/alerts.py): the refresh token
check of companies connected over the emulator's real OAuth flow (token lifetimes scaled, or
the stored expiry set, never a sleep), the alert sensors evaluated against real runs of an
instance, posting to a local HTTP receiver, and the quarantine and conflict alerts of real
sync runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DagsterInstance,
    EnvVar,
    ExecuteInProcessResult,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from qbo_pipeline.connections import connect_company
from qbo_pipeline.defs.alerts import (
    ALERT_METADATA,
    ALERT_WEBHOOK_VARIABLE,
    CHECK_ALERTS_SENSOR_NAME,
    RUN_FAILURE_SENSOR_NAME,
    AlertDeliveryError,
    AlertWebhook,
    check_alerts,
    sync_run_failure_alert,
)
from qbo_pipeline.defs.assets import CONFLICTS_CHECK, VALIDATION_CHECK, spec_asset_keys
from qbo_pipeline.defs.definitions import build_defs
from qbo_pipeline.defs.health import HEALTH_JOB_NAME, REFRESH_TOKENS_CHECK
from qbo_pipeline.defs.partitions import INCREMENTAL_MODE, MODE_TAG, sync_partition_key
from qbo_pipeline.defs.resources import DISCOVERY_PATH, QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.defs.runner import SyncResources
from qbo_pipeline.emulator.oauth.models import DAY, OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.state import (
    ConflictField,
    ConflictRecord,
    NewConflict,
    StateTokenStore,
    StoredTokens,
    load_cipher,
    open_conflict,
    token_expiry,
)
from qbo_pipeline_tests.conftest import OAUTH, REDIRECT_URI
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest, pipeline_assets
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch

RECONNECT = "disconnect and reconnect the company (qbo-pipeline connect --realm {realm})"


class AlertReceiver:
    """A webhook receiver on 127.0.0.1 that records every JSON body posted to it."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # the test's output stays the test's

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AlertReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    with AlertReceiver() as started:
        yield started


@pytest.fixture(scope="module")
def short_lived_emulator() -> Iterator[EmulatorServer]:
    """An emulator whose refresh tokens live exactly 14 days: connecting warns at once."""
    settings = OAuthSettings(refresh_token_lifetime_seconds=14 * DAY)
    with EmulatorServer(EmulatorConfig(oauth=settings)) as server:
        yield server


def qbo_of(base_url: str) -> QBOConnection:
    return QBOConnection(base_url=base_url, environment=base_url + DISCOVERY_PATH,
                         client_id=OAUTH.client_id, client_secret=OAUTH.client_secret,
                         redirect_uri=REDIRECT_URI, backoff_seconds=0.01)


def connect(base_url: str, state: StateDatabase, tmp_path: Path) -> str:
    """A company connected as `qbo-pipeline connect` does: consent, code swap, tokens stored."""
    source = SourceDatabase(url=f"sqlite:///{tmp_path / 'source.sqlite'}")
    return connect_company(SyncResources(source, state, qbo_of(base_url)))


def run_health_job(state: StateDatabase, instance: DagsterInstance) -> ExecuteInProcessResult:
    """The health job as the definitions hold it (the check reads the state DB only; the
    sync's resources are there because the definitions' assets need them)."""
    defs = build_defs(SPECS, resources={
        "state_db": state, "source_db": SourceDatabase(url="sqlite://"),
        "qbo": qbo_of("http://127.0.0.1:9"), "alerts": AlertWebhook()})
    result = defs.resolve_job_def(HEALTH_JOB_NAME).execute_in_process(instance=instance)
    assert result.success  # a failed check is the check's red, not a failed run
    return result


def token_check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == REFRESH_TOKENS_CHECK
    return evaluation


def send_check_alerts(result: ExecuteInProcessResult, instance: DagsterInstance,
                      url: str) -> None:
    """The `check_alerts` sensor, evaluated on the finished run as Dagster's daemon would."""
    with build_run_status_sensor_context(
            CHECK_ALERTS_SENSOR_NAME, dagster_event=result.get_run_success_event(),
            dagster_instance=instance, dagster_run=result.dagster_run,
            resources={"alerts": AlertWebhook(url=url)}) as context:
        check_alerts(context)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateDatabase:
    monkeypatch.setenv("QBO_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    return StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")


def test_a_refresh_token_warns_14_days_ahead_and_fails_once_expired(
        short_lived_emulator: EmulatorServer, emulator_server: EmulatorServer,
        state: StateDatabase, tmp_path: Path, receiver: AlertReceiver) -> None:
    dying = connect(short_lived_emulator.base_url, state, tmp_path)
    healthy = connect(emulator_server.base_url, state, tmp_path)  # Intuit's 101 days
    with state.sessions().begin() as session:
        expiry = token_expiry(session, dying).refresh_token_expires_at  # type: ignore[union-attr]
    assert expiry is not None
    assert timedelta(days=13, hours=23) < expiry - datetime.now(UTC) <= timedelta(days=14)
    instance = DagsterInstance.ephemeral()

    warned = token_check(run_health_job(state, instance))
    assert not warned.passed and warned.severity is AssetCheckSeverity.WARN
    assert f"company {dying} expires in 14.0 days" in (warned.description or "")
    assert RECONNECT.format(realm=dying) in (warned.description or "")
    assert healthy not in (warned.description or "")
    assert warned.metadata["needing_a_reconnect"].value == 1
    assert f"| {healthy} | ok |" in str(warned.metadata["companies_table"].value)

    # Past the expiry (the stored one, moved back: no waiting for 14 days).
    store = StateTokenStore(state.sessions(), load_cipher())
    tokens = store.load(dying)
    assert tokens is not None
    store.save(dying, replace(tokens, refresh_token_expires_at=datetime.now(UTC)
                              - timedelta(minutes=1)))
    failed_run = run_health_job(state, instance)
    failed = token_check(failed_run)
    assert not failed.passed and failed.severity is AssetCheckSeverity.ERROR
    assert f"the refresh token of company {dying} expired on" in (failed.description or "")
    assert RECONNECT.format(realm=dying) in (failed.description or "")

    send_check_alerts(failed_run, instance, receiver.url)
    [alert] = receiver.received
    assert alert["severity"] == "error" and alert["realm_id"] == dying
    assert alert["subject"] == REFRESH_TOKENS_CHECK
    assert alert["fix"] == RECONNECT.format(realm=dying)
    assert alert["text"].startswith(f"[ERROR] {REFRESH_TOKENS_CHECK} (company {dying}): ")
    assert tokens.refresh_token not in json.dumps(alert)
    assert (tokens.access_token or "-") not in json.dumps(alert)


def test_healthy_tokens_pass_and_send_nothing(emulator_server: EmulatorServer,
                                              state: StateDatabase, tmp_path: Path,
                                              receiver: AlertReceiver) -> None:
    connect(emulator_server.base_url, state, tmp_path)
    instance = DagsterInstance.ephemeral()
    result = run_health_job(state, instance)
    evaluation = token_check(result)
    assert evaluation.passed and ALERT_METADATA not in evaluation.metadata
    send_check_alerts(result, instance, receiver.url)
    assert receiver.received == []


def failing_sync(pipeline: PipelineUnderTest) -> ExecuteInProcessResult:
    """A sync whose company's grant Intuit no longer honours: the stored refresh token is one
    the emulator never issued and the access token is gone, so the first call must refresh."""
    bogus = StoredTokens(refresh_token="AB11" + "x" * 60)
    StateTokenStore(pipeline.sessions, load_cipher()).save(pipeline.realm.realm_id, bogus)
    key = sync_partition_key(pipeline.realm.realm_id, datetime.now(UTC).date())
    result = materialize(
        pipeline_assets(), partition_key=key, instance=pipeline.instance,
        tags={MODE_TAG: INCREMENTAL_MODE}, selection=spec_asset_keys(SPECS, ["client"]),
        resources={"source_db": SourceDatabase(url=pipeline.source_url),
                   "state_db": pipeline.state, "qbo": pipeline.qbo},
        raise_on_error=False)
    assert not result.success
    return result


def test_a_failed_sync_run_is_an_alert_naming_the_run_company_and_fix(
        pipeline: PipelineUnderTest, receiver: AlertReceiver) -> None:
    result = failing_sync(pipeline)
    realm_id, run = pipeline.realm.realm_id, result.dagster_run
    with build_run_status_sensor_context(
            RUN_FAILURE_SENSOR_NAME, dagster_event=result.get_run_failure_event(),
            dagster_instance=pipeline.instance, dagster_run=run,
            resources={"alerts": AlertWebhook(url=receiver.url)}) as context:
        sync_run_failure_alert(context.for_run_failure())
    [alert] = receiver.received
    assert alert["severity"] == "error" and alert["realm_id"] == realm_id
    assert alert["subject"] == f"run {run.run_id} of {run.job_name}"
    assert alert["message"].startswith("client/")  # the stage that failed
    assert alert["fix"] == RECONNECT.format(realm=realm_id)
    assert "AB11" + "x" * 60 not in json.dumps(alert)
    assert pipeline.realm.refresh_token not in json.dumps(alert)


def test_the_failure_sensor_ticking_on_the_instance_sends_the_runs_failed_since(
        pipeline: PipelineUnderTest, receiver: AlertReceiver) -> None:
    """As the daemon runs it: a first tick starts from now, the next sends what failed since
    (a run of the CLI's own process included: it has no code location to match)."""
    resources = {"alerts": AlertWebhook(url=receiver.url)}
    with build_sensor_context(instance=pipeline.instance, resources=resources) as first:
        sync_run_failure_alert.evaluate_tick(first)
        cursor = first.cursor
    result = failing_sync(pipeline)
    with build_sensor_context(instance=pipeline.instance, resources=resources,
                              cursor=cursor) as second:
        sync_run_failure_alert.evaluate_tick(second)
    assert [alert["subject"] for alert in receiver.received] == [
        f"run {result.dagster_run.run_id} of {result.dagster_run.job_name}"]


def test_an_unreachable_or_refusing_webhook_fails_without_naming_its_address(
        pipeline: PipelineUnderTest) -> None:
    result = failing_sync(pipeline)
    with AlertReceiver(status=404) as refusing, build_run_status_sensor_context(
            RUN_FAILURE_SENSOR_NAME, dagster_event=result.get_run_failure_event(),
            dagster_instance=pipeline.instance, dagster_run=result.dagster_run,
            resources={"alerts": AlertWebhook(url=refusing.url)}) as context, \
                pytest.raises(AlertDeliveryError, match="answered HTTP 404") as refused:
        sync_run_failure_alert(context.for_run_failure())
    assert "hooks/alerts" not in str(refused.value) and "127.0.0.1" not in str(refused.value)


def test_the_webhook_address_is_read_through_an_env_var(monkeypatch: pytest.MonkeyPatch,
                                                         receiver: AlertReceiver) -> None:
    """A Slack webhook's address is its credential: Dagster keeps the variable's name."""
    monkeypatch.setenv(ALERT_WEBHOOK_VARIABLE, receiver.url)
    webhook = AlertWebhook.from_env({ALERT_WEBHOOK_VARIABLE: receiver.url})
    assert webhook.url == EnvVar(ALERT_WEBHOOK_VARIABLE)
    assert receiver.url not in repr(webhook)
    webhook.process_config_and_initialize().send({"text": "hello"})
    assert receiver.received == [{"text": "hello"}]
    unset = AlertWebhook.from_env({ALERT_WEBHOOK_VARIABLE: ""})
    assert not unset.configured
    unset.send({"text": "nowhere"})  # logged by the sensors, sent nowhere
    assert len(receiver.received) == 1


def validation_check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [check] = [e for e in result.get_asset_check_evaluations()
               if e.check_name == VALIDATION_CHECK and e.asset_key.path[0] == "client"]
    return check


def test_a_quarantine_growing_run_after_run_is_an_alert(pipeline: PipelineUnderTest) -> None:
    """Two clients lack an email in the demo source; one more loses it before each run: the
    open quarantine goes 2 -> 3 -> 4, an error at the second rise."""
    clients = spec_asset_keys(SPECS, ["client"])
    first = validation_check(pipeline.run(selection=clients))
    assert first.severity is AssetCheckSeverity.WARN and first.metadata["quarantined"].value == 2
    held = []
    for client_id in (4, 5):  # clients 2 and 3 are the bad ones of the demo
        touch(pipeline, "UPDATE clients SET email = NULL, updated_at = :now WHERE id = :id",
              id=client_id)
        held.append(validation_check(pipeline.run(selection=clients)))
    assert held[0].severity is AssetCheckSeverity.WARN and ALERT_METADATA not in held[0].metadata
    grown = held[1]
    assert not grown.passed and grown.severity is AssetCheckSeverity.ERROR
    [alert] = grown.metadata[ALERT_METADATA].value  # type: ignore[misc]
    assert "grew at each of the last 2 runs (2 -> 3 -> 4 rows held back)" in alert["message"]
    assert alert["realm_id"] == pipeline.realm.realm_id
    assert f"quarantine list --realm {pipeline.realm.realm_id} --entity client" in alert["fix"]


def test_a_conflict_open_longer_than_a_week_is_an_alert(pipeline: PipelineUnderTest,
                                                        receiver: AlertReceiver) -> None:
    realm_id = pipeline.realm.realm_id
    with pipeline.sessions.begin() as session:
        record = open_conflict(session, realm_id, "client", NewConflict(
            "999", "77", [ConflictField("PrimaryPhone.FreeFormNumber", "555-0199",
                                        "555-0100", "555-0000")]))
        conflict_id = record.id
    clients = spec_asset_keys(SPECS, ["client"])

    def conflicts_check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
        [check] = [e for e in result.get_asset_check_evaluations()
                   if e.check_name == CONFLICTS_CHECK and e.asset_key.path[0] == "client"]
        return check

    fresh = conflicts_check(pipeline.run(selection=clients))
    assert fresh.severity is AssetCheckSeverity.WARN and ALERT_METADATA not in fresh.metadata
    with pipeline.sessions.begin() as session:
        session.execute(sa.update(ConflictRecord).where(ConflictRecord.id == conflict_id)
                        .values(created_at=datetime.now(UTC) - timedelta(days=8)))
    result = pipeline.run(selection=clients)
    old = conflicts_check(result)
    assert not old.passed and old.severity is AssetCheckSeverity.ERROR
    assert "1 client conflict(s) open, the oldest for 8.0 days (longer than 7)" in (
        old.description or "")

    send_check_alerts(result, pipeline.instance, receiver.url)
    [alert] = receiver.received
    assert alert["realm_id"] == realm_id and alert["subject"] == "client conflicts"
    assert alert["fix"] == f"decide them: qbo-pipeline conflicts list --realm {realm_id} " \
                           "--entity client"

    # The next run (15 minutes later, say) still shows it red, but does not send it again.
    again = pipeline.run(selection=clients)
    assert conflicts_check(again).severity is AssetCheckSeverity.ERROR
    send_check_alerts(again, pipeline.instance, receiver.url)
    assert len(receiver.received) == 1
