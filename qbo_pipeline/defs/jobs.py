"""The sync job and the 15-minute schedule that runs it for every connected realm."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from dagster import (
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
    sync_run_partitions,
)
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.specs.company_settings import CompanySetting
from qbo_pipeline.state import list_realms, synced_realms
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
                             default_start: date) -> Iterator[RunRequest | SkipReason]:
    """One incremental run per connected realm: on today's month, or, for a realm that has
    never synced, over every month since its start date (its first sync reads them all). The
    run key makes a tick's request unique, and the `qbo/realm` tag lets the run queue allow
    one run per realm."""
    moment = context.scheduled_execution_time or datetime.now(UTC)
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
        start = max(sync_start(history.starts.get(realm_id), default_start), default_start)
        partitions = sync_run_partitions(realm_id, first_sync=realm_id not in history.synced,
                                         start=start, today=today)
        yield RunRequest(
            run_key=f"{realm_id}:{moment.isoformat()}", partition_key=partitions.key,
            tags={REALM_TAG: realm_id, MODE_TAG: INCREMENTAL_MODE, **partitions.tags},
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
