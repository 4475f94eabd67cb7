"""The sync job and the 15-minute schedule that runs it for every connected realm."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
)

from qbo_pipeline.defs.partitions import (
    INCREMENTAL_MODE,
    MODE_TAG,
    REALM_DIMENSION,
    REALM_TAG,
    sync_partition_key,
)

SYNC_EVERY_15_MINUTES = "*/15 * * * *"

# One process runs a sync, its steps one after the other: they share the company's rate
# limiter (QBO's limits are per company) and the run starts in seconds, not one process per
# step. A run still going after MAX_RUNTIME is ended by run monitoring (dagster.yaml).
MAX_RUNTIME_SECONDS = 6 * 3600

sync_job = define_asset_job(
    "sync_job", selection=AssetSelection.all(), executor_def=in_process_executor,
    tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
    description="Sync every mapping spec of one QBO company (a (realm, day) partition).",
)


def incremental_run_requests(context: ScheduleEvaluationContext
                             ) -> Iterator[RunRequest | SkipReason]:
    """One incremental run per connected realm, on today's day partition. The run key makes a
    tick's request unique, and the `qbo/realm` tag lets the run queue allow one run per realm."""
    moment = context.scheduled_execution_time or datetime.now(UTC)
    realms = context.instance.get_dynamic_partitions(REALM_DIMENSION)
    if not realms:
        yield SkipReason("no QBO company is connected yet: connect one to start syncing")
        return
    for realm_id in realms:
        yield RunRequest(
            run_key=f"{realm_id}:{moment.isoformat()}",
            partition_key=sync_partition_key(realm_id, moment.astimezone(UTC).date()),
            tags={REALM_TAG: realm_id, MODE_TAG: INCREMENTAL_MODE},
        )


incremental_sync_schedule = ScheduleDefinition(
    name="incremental_sync_every_15_minutes",
    cron_schedule=SYNC_EVERY_15_MINUTES,
    job=sync_job,
    execution_fn=incremental_run_requests,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every 15 minutes, sync what changed since the last sync, for each realm.",
)
