"""The run queue in force: two syncs of one company, launched through Dagster's queue and
dequeued by a real `dagster-daemon`, run one after the other (QBO allows 10 concurrent
requests per company), while a sync of another company does not wait for them. Neither run
carries the `qbo/realm` tag: the pipeline's run coordinator finds the company in a run's
partition, or in its partition range as a backfill's run has it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from qbo_pipeline.defs.partitions import (
    INCREMENTAL_MODE,
    MODE_TAG,
    MONTH_DIMENSION,
    REALM_DIMENSION,
    REALM_TAG,
    month_of,
    month_range_tags,
)

ROOT = Path(__file__).resolve().parents[2]
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
DAEMON_DEADLINE_SECONDS = 240


def command(name: str, *arguments: str) -> list[str]:
    """A command installed beside this Python (`dagster`, `dagster-daemon`)."""
    return [shutil.which(name) or str(Path(sys.executable).with_name(name)), *arguments]


def launch(realm_id: str, environment: dict[str, str], *, ranged: bool = False) -> None:
    """`dagster job launch` as an operator would: with run-queue limits, the run is queued.
    `ranged`: tagged as the one run of a backfill over this month and the last."""
    today = datetime.now(UTC).date()
    month = month_of(today)
    tags = {MODE_TAG: INCREMENTAL_MODE, **(
        month_range_tags(realm_id, today - timedelta(days=31), today) if ranged else {
            "dagster/partition": f"{month}|{realm_id}",
            f"dagster/partition/{MONTH_DIMENSION}": month,
            f"dagster/partition/{REALM_DIMENSION}": realm_id})}
    subprocess.run(command("dagster", "job", "launch", "-w", str(ROOT / "workspace.yaml"),
                           "-j", "sync_job", "--tags", json.dumps(tags)),
                   env=environment, cwd=ROOT, check=True, capture_output=True, timeout=120)


def test_two_syncs_of_one_company_run_one_after_the_other(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    # The runs need not reach QBO; what matters is when the queue lets each one start. Each
    # sync waits on a source database this test holds locked (SQLite's 5 s busy timeout, per
    # source read) and then fails: long enough for runs that overlap to show it.
    environment = {**os.environ, "DAGSTER_HOME": str(home),
                   "QBO_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
                   "QBO_SOURCE_URL": f"sqlite:///{tmp_path / 'source.sqlite'}",
                   "QBO_BASE_URL": "http://127.0.0.1:9", "QBO_SYNC_START_DATE": "2024-01-01"}
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(REALM_DIMENSION, ["111", "222"])
    for realm_id, ranged in (("111", False), ("111", True), ("222", False)):
        launch(realm_id, environment, ranged=ranged)
    with DagsterInstance.from_config(str(home)) as instance:
        queued = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
        assert len(queued) == 3  # nothing runs before the daemon dequeues it
        # The coordinator tagged each with its company, from its partition or its range.
        assert sorted(run.tags[REALM_TAG] for run in queued) == ["111", "111", "222"]
    source = sqlite3.connect(tmp_path / "source.sqlite")
    source.execute("CREATE TABLE clients (id INTEGER PRIMARY KEY)")
    source.commit()
    source.execute("BEGIN EXCLUSIVE")
    daemon = subprocess.Popen(command("dagster-daemon", "run", "-w",
                                      str(ROOT / "workspace.yaml")),
                              env=environment, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        records = _wait_until_finished(home)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        source.close()
    first, second = sorted((r for r in records if r.dagster_run.tags[REALM_TAG] == "111"),
                           key=lambda r: r.start_time or 0)
    [other] = [r for r in records if r.dagster_run.tags[REALM_TAG] == "222"]
    assert first.end_time is not None and second.start_time is not None
    assert second.start_time >= first.end_time  # the second sync of 111 waited
    # The other company's sync ran beside the first one.
    assert other.start_time is not None and other.start_time < first.end_time


def _wait_until_finished(home: Path) -> list[RunRecord]:
    deadline = time.monotonic() + DAEMON_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with DagsterInstance.from_config(str(home)) as instance:
            records = instance.get_run_records()
        if len(records) == 3 and all(r.dagster_run.status in FINISHED for r in records):
            return list(records)
        time.sleep(1)
    raise AssertionError(f"the daemon did not finish the 3 runs in {DAEMON_DEADLINE_SECONDS} s")
