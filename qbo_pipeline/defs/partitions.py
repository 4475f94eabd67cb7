"""Partitions: a QBO company (realm) per dynamic partition, crossed with calendar months.

Every asset is partitioned by `build_sync_partitions(start)`, a MultiPartitionsDefinition of
`realm` (dynamic: connecting a company adds one) and `month` (monthly, from the month of the
sync start date to the current month). A partition (month, realm) is materialized when a run
has synced that company's records of that month, so the partitions page tells the truth:

- the first sync of a company (no cursor yet: it reads every record from the start date) is one
  run over the range of every month of that company, and marks them all;
- every later incremental run (the 15-minute schedule, `qbo-pipeline sync`) syncs every change
  since the company's cursor, whatever its date, and is recorded on the current month;
- a backfill (the run tag `qbo/mode` = `window`, Dagster's default for a run without it) of a
  range of months re-syncs the transactions dated in those months, in one run: every asset has
  `BackfillPolicy.single_run()`, so a backfill launched from the UI is one run per company.
  The run tag `qbo/days` (`2025-03-04..2025-03-09`, as `qbo-pipeline backfill --from --to`
  sets it) narrows the run to exactly those days. Names-list records (customers, employees)
  are synced by change window in every run, since the transactions refer to them.

Why months and not days: Dagster records a planned and a materialized event per asset and per
partition (about 15 ms each on its SQLite storage), so two years of days on thirty assets is
about 23,000 events (six minutes) before any work; by month it is about 800. The days inside a
month are reported all the same: each run logs its progress per day, and records a per-day
status on each month it covered (`month_days` in DAYS_METADATA).

The sync start date is `QBO_SYNC_START_DATE` (YYYY-MM-DD), default `DEFAULT_SYNC_START_DATE`.
A realm can have a later one of its own in the state DB; records dated before the start that
applies are never pushed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dagster import (
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from qbo_pipeline.sync.scope import BusinessDates

REALM_DIMENSION = "realm"
MONTH_DIMENSION = "month"
MONTH_FORMAT = "%Y-%m"
SYNC_START_DATE_VARIABLE = "QBO_SYNC_START_DATE"
DEFAULT_SYNC_START_DATE = "2024-01-01"

REALM_TAG = "qbo/realm"
MODE_TAG = "qbo/mode"
DAYS_TAG = "qbo/days"
# A reconciliation run (the daily schedule) re-reads QBO's changes since this moment (ISO 8601).
RECONCILE_SINCE_TAG = "qbo/reconcile_since"
# The tags Dagster gives the one run of a backfill over a range of partitions.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WINDOW_MODE = "window"
INCREMENTAL_MODE = "incremental"
IMPORT_MODE = "import"  # the import on connect (qbo-pipeline connect)


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
    """(month, realm) partitions; the current month is one too (`end_offset=1`)."""
    months = MonthlyPartitionsDefinition(start_date=month_of(start),
                                         fmt=MONTH_FORMAT, end_offset=1)
    return MultiPartitionsDefinition({REALM_DIMENSION: realm_partitions,
                                      MONTH_DIMENSION: months})


def month_of(day: date) -> str:
    return day.strftime(MONTH_FORMAT)


def sync_partition_key(realm_id: str, day: date) -> MultiPartitionKey:
    """The partition of `realm_id` for the month of `day`."""
    return month_partition_key(realm_id, month_of(day))


def month_partition_key(realm_id: str, month: str) -> MultiPartitionKey:
    return MultiPartitionKey({REALM_DIMENSION: realm_id, MONTH_DIMENSION: month})


def month_range_tags(realm_id: str, first_day: date, last_day: date) -> dict[str, str]:
    """The tags of one run over the months of `first_day` to `last_day` of one company:
    the range tags a backfill with `BackfillPolicy.single_run()` gives its run."""
    return {RANGE_START_TAG: str(sync_partition_key(realm_id, first_day)),
            RANGE_END_TAG: str(sync_partition_key(realm_id, last_day))}


def parse_days_tag(text: str) -> BusinessDates:
    """`2025-03-04..2025-03-09` (or one day) -> the dates; a bad tag is an error naming it."""
    first, _, last = text.strip().partition("..")
    try:
        first_day, last_day = date.fromisoformat(first), date.fromisoformat(last or first)
    except ValueError:
        raise ValueError(f"run tag {DAYS_TAG}={text!r} is not a date range: write it as "
                         "YYYY-MM-DD..YYYY-MM-DD, e.g. 2025-03-04..2025-03-09") from None
    if last_day < first_day:
        raise ValueError(f"run tag {DAYS_TAG}={text!r} ends before it starts")
    return BusinessDates(first_day, last_day)


def parse_reconcile_tag(text: str | None) -> datetime | None:
    """The moment of a `qbo/reconcile_since` tag (UTC unless it names an offset), or None."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"run tag {RECONCILE_SINCE_TAG}={text!r} is not a moment: write it as "
                         "ISO 8601, e.g. 2025-03-04T03:00:00+00:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def run_dates(months: Sequence[str], days_tag: str | None) -> BusinessDates:
    """The dates of a run over `months` (YYYY-MM), narrowed by its `qbo/days` tag if any."""
    first = date.fromisoformat(f"{min(months)}-01")
    last_month = date.fromisoformat(f"{max(months)}-01")
    last = (last_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    if days_tag is None:
        return BusinessDates(first, last)
    wanted = parse_days_tag(days_tag)
    if wanted.last < first or wanted.first > last:
        raise ValueError(f"run tag {DAYS_TAG}={days_tag!r} lies outside the run's months "
                         f"{min(months)}..{max(months)}: backfill the months of those days")
    return BusinessDates(max(first, wanted.first), min(last, wanted.last))


@dataclass(frozen=True)
class RunPartitions:
    """The partitions a sync run is recorded on: one `key`, or the range in `tags`."""

    key: MultiPartitionKey | None
    tags: dict[str, str]


def sync_run_partitions(realm_id: str, *, first_sync: bool, start: date,
                        today: date) -> RunPartitions:
    """A company's first sync reads every record from its start date, so its run covers
    every month from there to today; a later incremental run is recorded on today's month.
    `start` is the company's start date (never before the partitions' first month)."""
    if first_sync and month_of(start) < month_of(today):
        return RunPartitions(None, month_range_tags(realm_id, start, today))
    return RunPartitions(sync_partition_key(realm_id, today), {})
