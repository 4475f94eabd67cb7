"""The run launcher and run coordinator that `dagster.yaml` names: one sync per company at a
time, and no sync left STARTED after its process died.

- `CompanyRunCoordinator` is Dagster's queued run coordinator that first tags each run with its
  company (`qbo/realm`), read from its partition or its backfill range, so that the queue's
  per-company limit holds for every run: the schedule's, the CLI's, and a backfill's launched
  from the UI (whose runs Dagster tags with their partition range only).
- `SyncRunLauncher` is Dagster's default launcher that can tell run monitoring whether a run's
  worker is alive (the default one cannot, so monitoring never fails a run whose process was
  killed): a run the CLI executes carries `qbo/worker` = host:pid; a run launched through a code
  server is alive while that server lists it among its current runs.
- `fail_dead_runs` is the same check, for the CLI: it runs before every `qbo-pipeline sync`, so
  that a killed sync's run is failed even where no daemon runs.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import GetCurrentRunsResult
from dagster._serdes import deserialize_value

from qbo_pipeline.defs.partitions import (
    RANGE_START_TAG,
    REALM_DIMENSION,
    REALM_TAG,
)

WORKER_TAG = "qbo/worker"
PARTITION_REALM_TAG = f"dagster/partition/{REALM_DIMENSION}"


def this_worker() -> str:
    """The `qbo/worker` tag of a run executed in this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def realm_of_run(tags: Mapping[str, str]) -> str | None:
    """The company a run syncs: its own tag, its partition's realm, or its range's."""
    if REALM_TAG in tags:
        return tags[REALM_TAG]
    if PARTITION_REALM_TAG in tags:
        return tags[PARTITION_REALM_TAG]
    if RANGE_START_TAG in tags:
        # `2024-01|<realm>`: a multi-partition key lists its dimensions by name.
        return tags[RANGE_START_TAG].rpartition("|")[2] or None
    return None


class CompanyRunCoordinator(QueuedRunCoordinator):
    """Dagster's run queue, with every sync run tagged with its company first."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        realm_id = realm_of_run(run.tags)
        if realm_id is not None and REALM_TAG not in run.tags:
            self._instance.add_run_tags(run.run_id, {REALM_TAG: realm_id})
            context = SubmitRunContext(run.with_tags({**run.tags, REALM_TAG: realm_id}),
                                       context.workspace)
        return super().submit_run(context)


# --- is the run's worker alive? --------------------------------------------------------------

ProcessAlive = Callable[[int], bool]
ServerRuns = Callable[[Mapping[str, object]], set[str] | None]


def worker_health(run: DagsterRun, *, host: str, process_alive: ProcessAlive,
                  server_runs: ServerRuns) -> CheckRunHealthResult:
    """RUNNING while the run's worker lives, FAILED once it is gone; RUNNING when it cannot
    be told (another host's process), so that max_runtime still bounds the run."""
    worker = run.tags.get(WORKER_TAG)
    if worker is not None:
        worker_host, _, pid = worker.rpartition(":")
        if worker_host != host or not pid.isdigit():
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"runs on {worker_host}")
        if process_alive(int(pid)):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the process {pid} on {host} that ran this sync is gone "
            "(killed or crashed); the next sync re-reads what it had not finished")
    if GRPC_INFO_TAG in run.tags:
        current = server_runs(json.loads(run.tags[GRPC_INFO_TAG]))
        if current is None:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, "the code server that ran this sync no longer answers")
        if run.run_id in current:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, "the code server that launched this sync no longer runs it")
    return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker to check")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child not yet reaped by its parent still answers signal 0.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def code_server_runs(grpc_info: Mapping[str, object]) -> set[str] | None:
    """The run ids a code server executes now, or None when it does not answer."""
    port = grpc_info.get("port")
    socket_path = grpc_info.get("socket")
    client = DagsterGrpcClient(port=int(str(port)) if port is not None else None,
                               socket=str(socket_path) if socket_path is not None else None,
                               host=str(grpc_info.get("host", "localhost")),
                               use_ssl=bool(grpc_info.get("use_ssl", False)))
    try:
        result = deserialize_value(client.get_current_runs(), GetCurrentRunsResult)
    except Exception:  # noqa: BLE001 - any failure to reach the server means it is gone
        return None
    return set(result.current_runs)


def check_worker(run: DagsterRun) -> CheckRunHealthResult:
    return worker_health(run, host=socket.gethostname(), process_alive=process_alive,
                         server_runs=code_server_runs)


class SyncRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher, able to answer run monitoring's worker-health check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return check_worker(run)


def fail_dead_runs(instance: DagsterInstance, realm_ids: Iterable[str] | None = None,
                   check: Callable[[DagsterRun], CheckRunHealthResult] = check_worker
                   ) -> list[str]:
    """Fail the runs (of these realms) whose worker is gone; their ids. A run the CLI was
    killed in before it started (NOT_STARTED, STARTING) is one too: its worker tag names the
    process that would have run it. A queued or launched run without one is the daemon's."""
    wanted = None if realm_ids is None else set(realm_ids)
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=[
            DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED])):
        run = record.dagster_run
        if wanted is not None and realm_of_run(run.tags) not in wanted:
            continue
        if run.status is not DagsterRunStatus.STARTED and WORKER_TAG not in run.tags:
            continue
        health = check(run)
        if health.status is WorkerStatus.FAILED:
            instance.report_run_failed(run, f"Run worker is gone: {health.msg}")
            failed.append(run.run_id)
    return failed
