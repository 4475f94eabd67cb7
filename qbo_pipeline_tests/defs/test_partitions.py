"""Partitions that tell the truth: a company's first sync marks every month since its start
as synced, a later incremental run its current month, and a backfill of a range of days is one
run over their months that re-syncs exactly those days and reports each day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from dagster import AssetKey, MultiPartitionKey

from qbo_pipeline.defs.assets import DAYS_METADATA
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.partitions import (
    DAYS_TAG,
    MONTH_DIMENSION,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REALM_DIMENSION,
    month_of,
    parse_days_tag,
    run_dates,
    sync_run_partitions,
)
from qbo_pipeline.defs.resources import SourceDatabase
from qbo_pipeline.defs.runner import SyncResources, run_sync
from qbo_pipeline.sync.results import WriteRow, outcomes_by_day
from qbo_pipeline.sync.scope import BusinessDates
from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_sync import busiest_invoice_day

SPECS = load_pipeline_specs()


def resources_of(pipeline: PipelineUnderTest) -> SyncResources:
    return SyncResources(SourceDatabase(url=pipeline.source_url), pipeline.state, pipeline.qbo)


def months_between(first: date, last: date) -> list[str]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(month_of(day))
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def materialized_months(pipeline: PipelineUnderTest, key: AssetKey) -> set[str]:
    partitions = pipeline.instance.get_materialized_partitions(key)
    realm_id = pipeline.realm.realm_id
    # A (month, realm) key in text: `2025-03|<realm>`.
    return {key.partition("|")[0] for key in partitions if key.endswith(f"|{realm_id}")}


def test_run_dates_cover_whole_months_or_the_days_asked_for() -> None:
    assert run_dates(["2025-02"], None) == BusinessDates(date(2025, 2, 1), date(2025, 2, 28))
    assert run_dates(["2024-12", "2024-02"], None) == BusinessDates(date(2024, 2, 1),
                                                                   date(2024, 12, 31))
    assert run_dates(["2025-03"], "2025-03-04..2025-03-09") == BusinessDates(
        date(2025, 3, 4), date(2025, 3, 9))
    assert run_dates(["2025-03"], "2025-02-20..2025-03-02") == BusinessDates(
        date(2025, 3, 1), date(2025, 3, 2))
    with pytest.raises(ValueError, match="outside the run's months 2025-03..2025-03"):
        run_dates(["2025-03"], "2025-05-01")
    with pytest.raises(ValueError, match=f"{DAYS_TAG}='March'.*YYYY-MM-DD..YYYY-MM-DD"):
        parse_days_tag("March")
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_days_tag("2025-03-09..2025-03-04")


def test_a_first_sync_covers_every_month_since_the_start_and_later_ones_today() -> None:
    first = sync_run_partitions("R", first_sync=True, start=date(2025, 11, 20),
                                today=date(2026, 2, 3))
    assert first.key is None
    assert (first.tags[RANGE_START_TAG], first.tags[RANGE_END_TAG]) == ("2025-11|R", "2026-02|R")
    later = sync_run_partitions("R", first_sync=False, start=date(2025, 11, 20),
                                today=date(2026, 2, 3))
    assert later.key == MultiPartitionKey({REALM_DIMENSION: "R", MONTH_DIMENSION: "2026-02"})
    assert later.tags == {}


def test_outcomes_by_day_count_each_record_once_by_its_date() -> None:
    days = {"1": date(2025, 3, 4), "2": date(2025, 3, 4), "3": date(2025, 3, 5)}
    rows = [WriteRow("1", "10", "create", "created"), WriteRow("2", "11", "update", "written"),
            WriteRow("3", None, "create", "next run retries: 503"),
            WriteRow("9", None, "create", "created")]  # undated: not in any day
    assert outcomes_by_day(days, rows) == {
        date(2025, 3, 4): {"read": 2, "created": 1, "updated": 1, "failed": 0},
        date(2025, 3, 5): {"read": 1, "created": 0, "updated": 0, "failed": 1}}


def test_first_sync_marks_every_month_then_a_backfill_resyncs_exactly_its_days(
        pipeline: PipelineUnderTest) -> None:
    resources, realm_id = resources_of(pipeline), pipeline.realm.realm_id
    today = datetime.now(UTC).date()
    first = run_sync(SPECS, resources, pipeline.instance, realm_id)
    run = pipeline.instance.get_run_by_id(first.run_id)
    assert run is not None and run.tags[RANGE_END_TAG] == f"{month_of(today)}|{realm_id}"
    # Every month of every asset is materialized: nothing looks missing after a full sync.
    start = date.fromisoformat(run.tags[RANGE_START_TAG].split("|")[0] + "-01")
    all_months = set(months_between(start, today))
    for key in (AssetKey(["client", "source"]), AssetKey(["invoice", "synced"]),
                AssetKey(["time_entry", "synced"])):
        assert materialized_months(pipeline, key) == all_months, key

    # The per-day status of each month with invoices: one row per day, read = what was dated.
    observations = pipeline.instance.fetch_observations(
        AssetKey(["invoice", "synced"]), limit=100).records
    assert observations
    for record in observations:
        observation = record.asset_observation
        assert observation is not None and observation.partition is not None
        assert DAYS_METADATA in observation.metadata
        assert month_of(today) >= observation.partition.split("|")[0] >= month_of(start)

    # An incremental run is recorded on the current month only.
    later = run_sync(SPECS, resources, pipeline.instance, realm_id)
    later_run = pipeline.instance.get_run_by_id(later.run_id)
    assert later_run is not None and RANGE_START_TAG not in later_run.tags
    assert later_run.tags["dagster/partition"] == f"{month_of(today)}|{realm_id}"

    # A backfill of the three days before the busiest invoice day, and that day: one run.
    busiest = busiest_invoice_day(pipeline.source_url)
    dates = BusinessDates(busiest - timedelta(days=3), busiest)
    backfill = run_sync(SPECS, resources, pipeline.instance, realm_id, dates=dates)
    backfill_run = pipeline.instance.get_run_by_id(backfill.run_id)
    assert backfill_run is not None and backfill_run.tags[DAYS_TAG] == str(dates)
    invoices = backfill.counts["invoice"]
    assert invoices["read"] == _invoices_dated(pipeline.source_url, dates) >= 1
    assert invoices["unchanged"] == invoices["valid"]  # already in QBO: nothing written
    assert invoices["read"] == invoices["skipped"] + invoices["valid"] + invoices["quarantined"]


def _invoices_dated(source_url: str, dates: BusinessDates) -> int:
    engine = sa.create_engine(source_url)
    with engine.connect() as connection:
        count = connection.execute(sa.text(
            "SELECT COUNT(*) FROM invoices WHERE issue_date >= :first AND issue_date < :end"),
            {"first": dates.first.isoformat(), "end": dates.end.isoformat()}).scalar_one()
    engine.dispose()
    return int(count)
