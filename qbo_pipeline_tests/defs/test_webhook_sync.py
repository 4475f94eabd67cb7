"""Webhooks end to end: the receiver stores QBO's events, the sensor turns them into one sync
run, and the daily reconciliation catches what webhooks missed (defs/events.py, defs/jobs.py).

Seed 001: "If someone edits a record directly in QuickBooks after it was synced, Kontrol™
detects the difference on the next QB webhook." Seed 004: "Once accounts are connected, any
changes in QuickBooks Online will update the record in Contractors Cloud." Intuit's webhooks
best practices: reconcile with CDC, since a notification can be missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    ExecuteInProcessResult,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from qbo_pipeline.defs.definitions import build_defs
from qbo_pipeline.defs.events import RUN_KEY_TAG, WEBHOOK_SENSOR_NAME, build_webhook_sensor
from qbo_pipeline.defs.jobs import RECONCILIATION_SCHEDULE_NAME, build_reconciliation_schedule
from qbo_pipeline.defs.partitions import (
    REALM_DIMENSION,
    REALM_TAG,
    RECONCILE_SINCE_TAG,
    sync_start_date,
)
from qbo_pipeline.defs.resources import SourceDatabase, StateDatabase
from qbo_pipeline.state import list_webhook_events, set_cursor, upsert_realm
from qbo_pipeline.webhooks.server import WebhookServer
from qbo_pipeline.webhooks.signature import signature_of
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest, pipeline_assets

TOKEN = "sensor-test-verifier-77e2"
SENSOR = build_webhook_sensor(SPECS, sync_start_date(), SPECS.settings)


def evaluate(sensor_state: StateDatabase, instance: DagsterInstance) -> SensorResult | SkipReason:
    result = SENSOR(build_sensor_context(instance=instance, resources={"state_db": sensor_state}))
    assert isinstance(result, SensorResult | SkipReason)
    return result


def cloud_event(realm_id: str, entity: str, entity_id: str, second: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"ev-{entity}-{entity_id}-{second}",
            "source": "intuit.test", "type": f"qbo.{entity.lower()}.updated.v1",
            "datacontenttype": "application/json",
            "time": f"2026-03-04T10:{second // 60:02d}:{second % 60:02d}Z",
            "intuitentityid": entity_id, "intuitaccountid": realm_id, "data": {}}


def test_a_valid_delivery_of_a_burst_is_stored_and_turned_into_one_run(tmp_path: Any) -> None:
    """Issue 11: a burst of 100 events is one run, of the realm and specs they name."""
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with state.sessions().begin() as session:
        upsert_realm(session, "4620816")
    burst = [cloud_event("4620816", "Item", str(n), n) for n in range(100)]
    body = json.dumps(burst).encode()
    with DagsterInstance.ephemeral() as instance, WebhookServer(state.sessions(),
                                                                TOKEN) as receiver:
        answer = requests.post(receiver.url, data=body, timeout=5,
                               headers={"intuit-signature": signature_of(body, TOKEN)})
        assert answer.json()["stored"] == 100
        result = evaluate(state, instance)
        assert isinstance(result, SensorResult)
        [request] = result.run_requests or []
        assert request.tags[REALM_TAG] == "4620816"
        assert {key.path[0] for key in request.asset_selection or []} == {"service"}
        # The company's partition is added with the run, if the realm sensor has not yet.
        [added] = result.dynamic_partitions_requests or []
        assert list(added.partition_keys) == ["4620816"]
        # Not seen in the instance yet: asked again under the same key (Dagster runs it once).
        again = evaluate(state, instance)
        assert isinstance(again, SensorResult)
        assert [r.run_key for r in again.run_requests or []] == [request.run_key]
    with state.sessions().begin() as session:
        events = list_webhook_events(session)
    assert {(e.outcome, e.run_key) for e in events} == {("run", request.run_key)}


def test_nothing_stored_is_nothing_to_do(tmp_path: Any) -> None:
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with DagsterInstance.ephemeral() as instance:
        result = evaluate(state, instance)
    assert isinstance(result, SkipReason) and "no new webhook events" in (result.skip_message
                                                                          or "")


def test_the_sensor_and_the_reconciliation_are_in_the_definitions() -> None:
    defs = build_defs(SPECS)
    assert defs.get_sensor_def(WEBHOOK_SENSOR_NAME).minimum_interval_seconds == 15
    assert defs.get_schedule_def(RECONCILIATION_SCHEDULE_NAME).cron_schedule == "0 3 * * *"


# --- against the emulator --------------------------------------------------------------------


@pytest.fixture
def receiver(pipeline: PipelineUnderTest) -> Iterator[WebhookServer]:
    """The receiver on the pipeline's state DB; the emulator's webhooks pointed at it."""
    with WebhookServer(pipeline.state.sessions(), TOKEN) as server:
        yield server
        point_webhooks(pipeline, None)


def point_webhooks(pipeline: PipelineUnderTest, url: str | None) -> None:
    answer = requests.put(f"{pipeline.realm.base_url}/admin/webhooks", timeout=5, json={
        "url": url, "verifier_token": TOKEN, "coalesce_seconds": 0.2})
    assert answer.status_code == 200, answer.text


def run_requested(pipeline: PipelineUnderTest, request: RunRequest) -> ExecuteInProcessResult:
    """The run as the daemon launches it: the request's partition, tags and assets."""
    return materialize(
        pipeline_assets(), partition_key=request.partition_key, instance=pipeline.instance,
        tags={**request.tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})},
        selection=request.asset_selection,
        resources={"source_db": SourceDatabase(url=pipeline.source_url),
                   "state_db": pipeline.state, "qbo": pipeline.qbo})


def service_name(pipeline: PipelineUnderTest, qbo_id: str) -> str:
    engine = sa.create_engine(pipeline.source_url)
    with engine.connect() as connection:
        name = connection.execute(sa.text("SELECT name FROM services WHERE qbo_id = :i"),
                                  {"i": qbo_id}).scalar_one()
    engine.dispose()
    return str(name)


def edit_item(pipeline: PipelineUnderTest, qbo_id: str, name: str) -> None:
    answer = requests.post(f"{pipeline.realm.base_url}/admin/realms/{pipeline.realm.realm_id}"
                           f"/Item/{qbo_id}/edit", json={"Name": name}, timeout=10)
    assert answer.status_code == 200, answer.text


def a_service(pipeline: PipelineUnderTest) -> str:
    return next(i["Id"] for i in pipeline.qbo_records()["Item"] if i["Type"] == "Service")


def stored_events(pipeline: PipelineUnderTest) -> list[Any]:
    with pipeline.sessions.begin() as session:
        return list_webhook_events(session, pipeline.realm.realm_id)


def test_a_change_made_in_qbo_is_in_the_source_within_a_minute(
        pipeline: PipelineUnderTest, receiver: WebhookServer) -> None:
    assert pipeline.run().success
    qbo_id = a_service(pipeline)
    point_webhooks(pipeline, receiver.url)
    started = time.monotonic()
    edit_item(pipeline, qbo_id, "Payroll (webhook)")
    while not stored_events(pipeline) and time.monotonic() - started < 20:
        time.sleep(0.1)
    result = evaluate(pipeline.state, pipeline.instance)
    assert isinstance(result, SensorResult), result
    [request] = result.run_requests or []
    assert run_requested(pipeline, request).success
    assert service_name(pipeline, qbo_id) == "Payroll (webhook)"
    assert time.monotonic() - started < 60
    # The run is seen now: its id is recorded on the events, and nothing is left to do.
    assert isinstance(evaluate(pipeline.state, pipeline.instance), SkipReason)
    [event] = [e for e in stored_events(pipeline) if e.qbo_id == qbo_id]
    assert event.run_id is not None and event.run_key == request.run_key


def test_a_missed_webhook_is_caught_by_the_daily_reconciliation(
        pipeline: PipelineUnderTest) -> None:
    """Webhooks off when the edit is made; and the spec's read already passed the moment of
    the change (as when a change reaches QBO's change feed after a read), so no ordinary run
    sees it: the reconciliation re-reads the last day and brings it in."""
    assert pipeline.run().success
    qbo_id = a_service(pipeline)
    point_webhooks(pipeline, None)
    edit_item(pipeline, qbo_id, "Payroll (missed)")
    with pipeline.sessions.begin() as session:
        # Past the change by more than the reads' overlap: an ordinary run reads after it.
        set_cursor(session, pipeline.realm.realm_id, "service",
                   snapshot_cursor=datetime.now(UTC) + timedelta(minutes=10))
    assert isinstance(evaluate(pipeline.state, pipeline.instance), SkipReason)

    tick = datetime.now(UTC).replace(microsecond=0)
    schedule = build_reconciliation_schedule(sync_start_date(), SPECS.settings)
    # A schedule's context needs an instance with a reference, as the daemon's has.
    with instance_for_test() as scheduling, build_schedule_context(
            instance=scheduling, scheduled_execution_time=tick,
            resources={"state_db": pipeline.state}) as context:
        scheduling.add_dynamic_partitions(REALM_DIMENSION, [pipeline.realm.realm_id])
        [request] = list(schedule(context))
    assert isinstance(request, RunRequest)
    assert request.tags[RECONCILE_SINCE_TAG] == (tick - timedelta(hours=25)).isoformat()
    assert run_requested(pipeline, request).success
    assert service_name(pipeline, qbo_id) == "Payroll (missed)"
