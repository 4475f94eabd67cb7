"""The sync job, the 15-minute schedule that runs it for every connected realm, and the daily
reconciliation that also re-reads the last day of QBO's changes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    schedule,
)

from qbo_pipeline.defs.partitions import (
    INCREMENTAL_MODE,
    MODE_TAG,
    REALM_DIMENSION,
    REALM_TAG,
    RECONCILE_SINCE_TAG,
    sync_run_partitions,
)
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.specs.company_settings import CompanySetting
from qbo_pipeline.state import list_realms, synced_realms
from qbo_pipeline.sync.events import reconciliation_start
from qbo_pipeline.sync.scope import sync_start
from qbo_pipeline.sync.settings import effective, syncs_by_itself

SYNC_EVERY_15_MINUTES = "*/15 * * * *"
SCHEDULE_NAME = "incremental_sync_every_15_minutes"

# One process runs a sync, its steps one after the other: they share the company's rate
# limiter (QBO's limits are per company) and the run starts in seconds, not one process per
# step. A run still going after MAX_RUNTIME is ended by run monitoring (dagster.yaml).
MAX_RUNTIME_SECONDS = 6 * 3600

sync_job = define_asset_job(
    "sync_job", selection=AssetSelection.all(), executor_def=in_process_executor,
    tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
    description="Sync every mapping spec of one QBO company, over one month partition or a "
                "range of them.",
)


@dataclass(frozen=True)
class RealmHistory:
    """What the schedule needs of each realm: its own start date, whether it synced, and
    whether it syncs by itself (not on manual sync)."""

    starts: Mapping[str, date | None]
    synced: set[str]
    manual: set[str] = field(default_factory=set)


def realm_history(state_db: StateDatabase,
                  catalog: Mapping[str, CompanySetting] | None = None) -> RealmHistory:
    with state_db.sessions().begin() as session:
        realms = list_realms(session)
        return RealmHistory(
            {realm.realm_id: realm.sync_start_date for realm in realms}, synced_realms(session),
            {realm.realm_id for realm in realms
             if not syncs_by_itself(effective(catalog or {}, realm.settings))})


def incremental_run_requests(context: ScheduleEvaluationContext, history: RealmHistory,
                             default_start: date, *,
                             reconcile: bool = False) -> Iterator[RunRequest | SkipReason]:
    """One incremental run per connected realm: on today's month, or, for a realm that has
    never synced, over every month since its start date (its first sync reads them all). The
    run key makes a tick's request unique, and the `qbo/realm` tag lets the run queue allow
    one run per realm. A reconciliation's runs (`reconcile`) also re-read QBO's changes of the
    last day (tag `qbo/reconcile_since`)."""
    moment = context.scheduled_execution_time or datetime.now(UTC)
    extra = {RECONCILE_SINCE_TAG: reconciliation_start(moment).isoformat()} if reconcile else {}
    prefix = "reconcile:" if reconcile else ""
    realms = context.instance.get_dynamic_partitions(REALM_DIMENSION)
    if not realms:
        yield SkipReason("no QBO company is connected yet: connect one to start syncing")
        return
    today = moment.astimezone(UTC).date()
    if set(realms) <= history.manual:
        yield SkipReason("every connected company syncs manually (setting sync_mode): a "
                         "person syncs their records one at a time")
        return
    for realm_id in realms:
        if realm_id in history.manual:
            continue  # a person syncs it, record by record
        yield realm_run_request(realm_id, history, default_start, today,
                                f"{prefix}{realm_id}:{moment.isoformat()}", extra)


def realm_run_request(realm_id: str, history: RealmHistory, default_start: date, today: date,
                      run_key: str, tags: Mapping[str, str] | None = None,
                      asset_selection: Sequence[AssetKey] | None = None) -> RunRequest:
    """An incremental sync run of one realm, on the partitions its sync covers."""
    start = max(sync_start(history.starts.get(realm_id), default_start), default_start)
    partitions = sync_run_partitions(realm_id, first_sync=realm_id not in history.synced,
                                     start=start, today=today)
    return RunRequest(
        run_key=run_key, partition_key=partitions.key,
        tags={REALM_TAG: realm_id, MODE_TAG: INCREMENTAL_MODE, **partitions.tags, **(tags or {})},
        asset_selection=list(asset_selection) if asset_selection is not None else None,
    )


def build_incremental_schedule(default_start: date, catalog: Mapping[str, CompanySetting]
                               | None = None) -> ScheduleDefinition:
    @schedule(name=SCHEDULE_NAME, cron_schedule=SYNC_EVERY_15_MINUTES, job=sync_job,
              execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
              description="Every 15 minutes, sync what changed since the last sync, for each "
                          "realm (a realm's first sync covers every month since its start).")
    def incremental_sync(context: ScheduleEvaluationContext,
                         state_db: StateDatabase) -> Iterator[RunRequest | SkipReason]:
        yield from incremental_run_requests(context, realm_history(state_db, catalog),
                                            default_start)

    return incremental_sync


RECONCILE_DAILY = "0 3 * * *"
RECONCILIATION_SCHEDULE_NAME = "daily_cdc_reconciliation"


def build_reconciliation_schedule(default_start: date, catalog: Mapping[str, CompanySetting]
                                  | None = None) -> ScheduleDefinition:
    @schedule(name=RECONCILIATION_SCHEDULE_NAME, cron_schedule=RECONCILE_DAILY, job=sync_job,
              execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
              description="Daily at 03:00 UTC, an incremental sync of each realm that also "
                          "re-reads QBO's changes of the last 25 hours (CDC): what webhooks "
                          "missed, as Intuit asks of apps that use them.")
    def daily_cdc_reconciliation(context: ScheduleEvaluationContext,
                                 state_db: StateDatabase) -> Iterator[RunRequest | SkipReason]:
        yield from incremental_run_requests(context, realm_history(state_db, catalog),
                                            default_start, reconcile=True)

    return daily_cdc_reconciliation
