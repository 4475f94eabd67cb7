"""The webhook sensor: stored webhook events become sync runs of the realms and specs they name.

Every 15 seconds it hands the events no tick has handled yet to the core
(`sync.events.plan_notice_runs`), records each event's outcome in the state DB, and requests one
run per realm for all of that realm's events (a burst of a hundred is one run), of the specs
that sync the changed entities and those they refer to. The run key is the batch's, so a tick
evaluated twice requests the run once. A run requested but not seen in the instance on a
later tick (the tick's run was never created) is requested again under the same key; one seen
gets its run id recorded on its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy.orm import Session

from qbo_pipeline.defs.assets import spec_asset_keys
from qbo_pipeline.defs.jobs import RealmHistory, realm_history, realm_run_request, sync_job
from qbo_pipeline.defs.partitions import realm_partitions
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.specs.company_settings import CompanySetting
from qbo_pipeline.state import (
    WebhookEventRecord,
    get_cursor,
    pending_webhook_events,
    run_keys_without_run_id,
    set_webhook_run_id,
    settle_webhook_events,
    webhook_events_of_run,
)
from qbo_pipeline.state.webhook_events import RUN_OUTCOME
from qbo_pipeline.sync.events import (
    ChangeNotice,
    NoticePlan,
    PendingNotice,
    RealmRun,
    RealmsNow,
    plan_notice_runs,
    specs_by_entity,
    with_references,
)

WEBHOOK_SENSOR_NAME = "webhook_sync_sensor"
WEBHOOK_SENSOR_INTERVAL_SECONDS = 15  # a change in QBO is synced within a minute
RUN_KEY_TAG = "dagster/run_key"  # the tag Dagster gives a run requested with a run key
# A requested run not seen after this long is not requested again (it was deleted, say).
RE_REQUEST_WITHIN = timedelta(hours=1)


def notice_of(record: WebhookEventRecord) -> PendingNotice:
    return PendingNotice(record.id, ChangeNotice(
        record.realm_id, record.qbo_entity, record.qbo_id, record.operation,
        record.last_updated, record.event_id))


def _qbo_cursors(session: Session, pending: list[PendingNotice],
                 entity_specs: Mapping[str, tuple[str, ...]]) -> dict[tuple[str, str],
                                                                   datetime | None]:
    wanted = {(item.notice.realm_id, name) for item in pending
              for name in entity_specs.get(item.notice.entity, ())}
    cursors: dict[tuple[str, str], datetime | None] = {}
    for realm_id, name in wanted:
        cursor = get_cursor(session, realm_id, name)
        cursors[(realm_id, name)] = cursor.snapshot_cursor if cursor is not None else None
    return cursors


def plan_pending(state_db: StateDatabase, specs: SpecSet, history: RealmHistory) -> NoticePlan:
    """Plan the pending events and record each one's outcome, in one transaction."""
    entity_specs = specs_by_entity(specs)
    with state_db.sessions().begin() as session:
        pending = [notice_of(record) for record in pending_webhook_events(session)]
        realms = RealmsNow(frozenset(history.starts), frozenset(history.manual),
                           _qbo_cursors(session, pending, entity_specs))
        plan = plan_notice_runs(pending, entity_specs, realms)
        for item in plan.settled:
            settle_webhook_events(session, [item.row_id], item.outcome, reason=item.reason)
        for run in plan.runs:
            settle_webhook_events(session, list(run.row_ids), RUN_OUTCOME, run_key=run.run_key,
                                  reason=f"sync of {', '.join(run.spec_names)}")
    return plan


def unseen_runs(state_db: StateDatabase, instance: DagsterInstance, specs: SpecSet,
                now: datetime) -> list[RealmRun]:
    """Runs requested on earlier ticks: those the instance has get their run id recorded; the
    others (requested lately) are returned to be requested again under their key."""
    entity_specs = specs_by_entity(specs)
    again = []
    with state_db.sessions().begin() as session:
        for run_key in run_keys_without_run_id(session):
            runs = instance.get_runs(RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
            if runs:
                set_webhook_run_id(session, run_key, runs[0].run_id)
                continue
            events = webhook_events_of_run(session, run_key)
            handled = min((e.handled_at for e in events if e.handled_at is not None),
                          default=now)
            if events and now - handled < RE_REQUEST_WITHIN:
                names = {name for e in events for name in entity_specs.get(e.qbo_entity, ())}
                again.append(RealmRun(events[0].realm_id, tuple(sorted(names)),
                                      tuple(e.id for e in events)))
    return again


def run_request(run: RealmRun, specs: SpecSet, history: RealmHistory,
                default_start: date, today: date) -> RunRequest:
    selection = spec_asset_keys(specs, with_references(specs, run.spec_names))
    return realm_run_request(run.realm_id, history, default_start, today, run.run_key,
                             asset_selection=selection)


def build_webhook_sensor(specs: SpecSet, default_start: date,
                         catalog: Mapping[str, CompanySetting] | None = None) -> SensorDefinition:
    @sensor(name=WEBHOOK_SENSOR_NAME, job=sync_job,
            minimum_interval_seconds=WEBHOOK_SENSOR_INTERVAL_SECONDS,
            default_status=DefaultSensorStatus.RUNNING,
            description="Turns the events the webhook receiver stored into sync runs: one per "
                        "realm for a burst, of the specs of the changed entities.")
    def webhook_sync_sensor(context: SensorEvaluationContext,
                            state_db: StateDatabase) -> SensorResult | SkipReason:
        now = datetime.now(UTC)
        history = realm_history(state_db, catalog)
        again = unseen_runs(state_db, context.instance, specs, now)
        plan = plan_pending(state_db, specs, history)
        runs = [*again, *plan.runs]
        if not runs:
            return SkipReason(f"no webhook event asks for a sync ({len(plan.settled)} handled "
                              "without one)" if plan.settled else "no new webhook events")
        requests = [run_request(run, specs, history, default_start, now.date()) for run in runs]
        assert realm_partitions.name is not None
        known = set(context.instance.get_dynamic_partitions(realm_partitions.name))
        missing = sorted({run.realm_id for run in runs} - known)
        # A company connected since the realm sensor's last tick gets its partition now.
        adds = [realm_partitions.build_add_request(missing)] if missing else []
        return SensorResult(run_requests=requests, dynamic_partitions_requests=adds)

    return webhook_sync_sensor
