"""Partitions: a QBO company (realm) per dynamic partition, crossed with days for backfills.

Every asset is partitioned by `build_sync_partitions(start)`, a MultiPartitionsDefinition of
`realm` (dynamic: connecting a company adds one) and `day` (daily, from the sync start date).
Dagster gives an asset exactly one partitions definition, so the two ways of syncing share it
and differ by the run tag `qbo/mode`:

- `window` (the default, so a backfill launched from the UI or CLI needs nothing else): the run
  of partition (realm, day) re-syncs the transactions whose business date falls on that day,
  and Dagster shows the status of every (realm, day). Names-list records (customers, employees)
  are synced by change window in every run, since the day's transactions refer to them;
- `incremental` (the 15-minute schedule): the run of partition (realm, today) syncs every change
  since the realm's cursor, whatever its date, so nothing is missed across midnight or after a
  failed tick; the day only records when the run happened.

The sync start date is `QBO_SYNC_START_DATE` (YYYY-MM-DD), default `DEFAULT_SYNC_START_DATE`.
A realm can have a later one of its own in the state DB; records dated before the start that
applies are never pushed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

REALM_DIMENSION = "realm"
DAY_DIMENSION = "day"
SYNC_START_DATE_VARIABLE = "QBO_SYNC_START_DATE"
DEFAULT_SYNC_START_DATE = "2024-01-01"

REALM_TAG = "qbo/realm"
MODE_TAG = "qbo/mode"
WINDOW_MODE = "window"
INCREMENTAL_MODE = "incremental"


def sync_start_date(environ: Mapping[str, str] | None = None) -> date:
    """The configured sync start date; a malformed value is an error naming the variable."""
    environ = os.environ if environ is None else environ
    text = environ.get(SYNC_START_DATE_VARIABLE, DEFAULT_SYNC_START_DATE).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{SYNC_START_DATE_VARIABLE}={text!r} is not a date: write it as "
                         f"YYYY-MM-DD, e.g. {DEFAULT_SYNC_START_DATE}") from None


realm_partitions = DynamicPartitionsDefinition(name=REALM_DIMENSION)


def build_sync_partitions(start: date) -> MultiPartitionsDefinition:
    """(realm, day) partitions; today is a partition too (`end_offset=1`), for the schedule."""
    days = DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)
    return MultiPartitionsDefinition({REALM_DIMENSION: realm_partitions, DAY_DIMENSION: days})


def sync_partition_key(realm_id: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({REALM_DIMENSION: realm_id, DAY_DIMENSION: day.isoformat()})
