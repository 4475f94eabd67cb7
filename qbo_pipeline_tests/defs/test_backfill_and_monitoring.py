"""Against a real `dagster-daemon` and the repository's dagster.yaml:

- a `qbo-pipeline sync` killed with SIGKILL leaves its run STARTED, holding its company's run
  slot; run monitoring (the pipeline's launcher tells it the run's worker is gone) fails it
  within a poll interval, and the company's queued runs go on;
- a backfill of three months of one company, made as the UI makes it (a PartitionBackfill of
  the assets' partitions, run by the daemon), is one run over the range, tagged with its
  company by the run coordinator, and marks those months materialized.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

from qbo_pipeline.defs.definitions import build_defs
from qbo_pipeline.defs.instance import WORKER_TAG, fail_dead_runs
from qbo_pipeline.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    REALM_DIMENSION,
    REALM_TAG,
    month_of,
)
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.source.demo_data import generate_demo_data
from qbo_pipeline.state import StateTokenStore, StoredTokens, load_cipher, upsert_realm
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.defs.test_run_queue import ROOT, command

DEADLINE_SECONDS = 240
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _environment(realm: ConnectedRealm, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The repository's settings, polled every 2 s instead of 30 so that the test is short.
    settings = (ROOT / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(settings.replace("poll_interval_seconds: 30",
                                                        "poll_interval_seconds: 2"))
    environment = {**os.environ, "DAGSTER_HOME": str(home),
                   "QBO_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
                   "QBO_SOURCE_URL": f"sqlite:///{tmp_path / 'source.sqlite'}",
                   "QBO_BASE_URL": realm.base_url, "QBO_SYNC_START_DATE": "2024-01-01",
                   SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}
    generate_demo_data(environment["QBO_SOURCE_URL"], clients=6)
    seed_demo_items(realm.base_url, realm.realm_id)
    state = StateDatabase(url=environment["QBO_STATE_URL"])
    os.environ[SECRET_KEY_VARIABLE] = environment[SECRET_KEY_VARIABLE]
    try:
        StateTokenStore(state.sessions(), load_cipher()).save(realm.realm_id, StoredTokens(
            realm.refresh_token, realm.access_token, datetime.now(UTC) + timedelta(hours=1)))
    finally:
        del os.environ[SECRET_KEY_VARIABLE]
    with state.sessions().begin() as session:
        upsert_realm(session, realm.realm_id, sync_start_date=date(2024, 1, 1))
    return environment


def _kill_a_sync_once_it_runs(environment: dict[str, str], home: Path) -> tuple[DagsterRun, int]:
    sync = subprocess.Popen([sys.executable, "-m", "qbo_pipeline.cli", "sync"], env=environment,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and sync.poll() is None:
            with DagsterInstance.from_config(str(home)) as instance:
                started = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
            if started:
                sync.send_signal(signal.SIGKILL)
                sync.wait(timeout=30)
                return started[0], sync.pid
            time.sleep(0.05)
    finally:
        if sync.poll() is None:
            sync.kill()
    raise AssertionError("the sync's run never started (or finished before it was killed)")


def _ui_backfill(home: Path, realm_id: str, months: list[str]) -> str:
    """The backfill the UI's "Materialize" of these partitions of every asset creates."""
    graph = build_defs().resolve_asset_graph()
    backfill_id = uuid.uuid4().hex[:8]
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_backfill(PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id, asset_graph=graph,
            partition_names=[f"{month}|{realm_id}" for month in months],
            asset_selection=list(graph.materializable_asset_keys),
            backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance,
            all_partitions=False, title=None, description=None, run_config=None))
    return backfill_id


def test_a_killed_sync_is_failed_and_a_ui_backfill_is_one_run_per_company(
        realm: ConnectedRealm, tmp_path: Path) -> None:
    environment = _environment(realm, tmp_path)
    home = Path(environment["DAGSTER_HOME"])
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(REALM_DIMENSION, [realm.realm_id])
    killed, pid = _kill_a_sync_once_it_runs(environment, home)
    assert killed.tags[WORKER_TAG] == f"{socket.gethostname()}:{pid}"
    today = datetime.now(UTC).date()
    months = [month_of(today - timedelta(days=days)) for days in (62, 31, 0)]
    backfill_id = _ui_backfill(home, realm.realm_id, months)

    daemon = subprocess.Popen(command("dagster-daemon", "run", "-w",
                                      str(ROOT / "workspace.yaml")),
                              env=environment, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        killed_after, backfill_runs = _wait_for(home, killed.run_id, backfill_id)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)

    # The killed run was failed by run monitoring, with the reason.
    assert killed_after.status is DagsterRunStatus.FAILURE
    with DagsterInstance.from_config(str(home)) as instance:
        messages = [event.message for event in instance.all_logs(
            killed.run_id, of_type=DagsterEventType.RUN_FAILURE)]
        materialized = instance.get_materialized_partitions(AssetKey(["invoice", "synced"]))
    assert any("is gone" in (message or "") for message in messages), messages
    # The backfill: one run over the three months, tagged with its company, succeeded.
    [run] = backfill_runs
    assert run.status is DagsterRunStatus.SUCCESS
    assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (
        f"{months[0]}|{realm.realm_id}", f"{months[-1]}|{realm.realm_id}")
    assert run.tags[REALM_TAG] == realm.realm_id
    assert {f"{month}|{realm.realm_id}" for month in months} <= materialized


def _wait_for(home: Path, killed_run_id: str, backfill_id: str
              ) -> tuple[DagsterRun, list[DagsterRun]]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with DagsterInstance.from_config(str(home)) as instance:
            killed = instance.get_run_by_id(killed_run_id)
            backfill = instance.get_backfill(backfill_id)
            runs = instance.get_runs(RunsFilter.for_backfill(backfill_id))
        done = backfill is not None and backfill.status in (
            BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS,
            BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED)
        if killed is not None and killed.status in FINISHED and done and runs and all(
                r.status in FINISHED for r in runs):
            return killed, list(runs)
        time.sleep(1)
    raise AssertionError(f"the daemon did not fail the killed run and finish the backfill in "
                         f"{DEADLINE_SECONDS} s")


def test_fail_dead_runs_fails_only_runs_whose_worker_is_gone(tmp_path: Path) -> None:
    """What `qbo-pipeline sync` does first, where no daemon monitors runs: a STARTED run of
    a process that is gone is failed; one whose process lives is left alone."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    host = socket.gethostname()
    try:
        with DagsterInstance.local_temp(str(tmp_path)) as instance:
            job = build_defs().resolve_job_def("sync_job")
            runs = {}
            for name, process in (("alive", alive), ("gone", gone)):
                run = instance.create_run_for_job(job, tags={
                    WORKER_TAG: f"{host}:{process.pid}", REALM_TAG: "R"})
                runs[name] = run
                _mark_started(instance, run)
            assert fail_dead_runs(instance, ["R"]) == [runs["gone"].run_id]
            statuses = {name: instance.get_run_by_id(run.run_id).status  # type: ignore[union-attr]
                        for name, run in runs.items()}
    finally:
        alive.kill()
        alive.wait(timeout=30)
    assert statuses == {"alive": DagsterRunStatus.STARTED, "gone": DagsterRunStatus.FAILURE}


def _mark_started(instance: DagsterInstance, run: DagsterRun) -> None:
    from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData

    instance.report_dagster_event(DagsterEvent(
        event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name,
        event_specific_data=EngineEventData()), run_id=run.run_id)
