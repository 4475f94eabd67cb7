"""What a sync costs as Dagster runs it: one partition run in a process of its own, and the
15-minute schedule's tick for many companies.

- A partition run of `sync_job` the way a launched run executes: the run created as the
  daemon creates a schedule's (its CPU timed apart), then the worker process the run launcher
  starts (`dagster api execute_run`): wall time and the CPU seconds of that process, for a
  first sync and for runs with nothing to do. Goal (issue figures): under 6 s and 6 CPU-s,
  with one rate limiter per company (the job runs in one process).
- The schedule's evaluation with N connected companies (run requests built), goal under 10 s
  for 1,000, and the CPU a tick's runs would cost in all for N companies with nothing to do,
  extrapolated from the measured no-op run and its creation (goal under 2 hours of CPU for
  1,000).

    python benchmarks/dagster_bench.py --clients 25 --companies 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from dagster import DagsterInstance, DagsterRunStatus, build_schedule_context, instance_for_test
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._grpc.types import ExecuteRunArgs

from qbo_pipeline.connections import connect_company
from qbo_pipeline.defs.jobs import RealmHistory, incremental_run_requests
from qbo_pipeline.defs.partitions import (
    INCREMENTAL_MODE,
    MODE_TAG,
    MONTH_DIMENSION,
    REALM_DIMENSION,
    REALM_TAG,
    month_of,
    sync_start_date,
)
from qbo_pipeline.demo import INSTANCE_SETTINGS, demo_resources, seed_demo_items
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.source.demo_data import generate_demo_data

GOAL_RUN_SECONDS = 6.0
GOAL_RUN_CPU_SECONDS = 6.0
GOAL_TICK_SECONDS = 10.0
GOAL_TICK_CPU_HOURS_PER_1000 = 2.0
NO_OP_RUNS = 5


@dataclass(frozen=True)
class RunCost:
    label: str
    wall_seconds: float
    cpu_seconds: float
    creation_cpu_seconds: float = 0.0  # creating the run, in the daemon or the webserver


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_partition(label: str, realm_id: str, home: Path) -> RunCost:
    """One incremental run of this month's partition, executed as a launched run is: the run
    is created in this process (the daemon's part, timed apart), then its worker process runs
    the command the run launcher starts (`dagster api execute_run`)."""
    month = month_of(datetime.now(UTC).date())
    # A job run names its partition by tags, as the schedule's run requests do.
    tags = {MODE_TAG: INCREMENTAL_MODE, REALM_TAG: realm_id,
            "dagster/partition": f"{month}|{realm_id}",
            f"dagster/partition/{MONTH_DIMENSION}": month,
            f"dagster/partition/{REALM_DIMENSION}": realm_id}
    job = ReconstructableRepository.for_module(
        "qbo_pipeline.defs.definitions", "defs").get_reconstructable_job("sync_job")
    created = time.process_time()
    with DagsterInstance.from_config(str(home)) as instance:
        run = instance.create_run_for_job(job.get_definition(), tags=tags,
                                          job_code_origin=job.get_python_origin())
        command = ExecuteRunArgs(job_origin=job.get_python_origin(), run_id=run.run_id,
                                 instance_ref=instance.get_ref(),
                                 set_exit_code_on_failure=True).get_command_args()
    creation = time.process_time() - created
    cpu, started = children_cpu_seconds(), time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              check=False)
    wall = time.perf_counter() - started
    with DagsterInstance.from_config(str(home)) as instance:
        status = instance.get_run_by_id(run.run_id)
    if finished.returncode != 0 or status is None or status.status != DagsterRunStatus.SUCCESS:
        sys.exit(f"{label}: the run failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")
    return RunCost(label, wall, children_cpu_seconds() - cpu, creation)


def partition_runs(clients: int, workdir: Path) -> list[RunCost]:
    os.environ["QBO_PIPELINE_SECRET_KEY"] = Fernet.generate_key().decode()
    with EmulatorServer(EmulatorConfig(state_file=workdir / "emulator.sqlite")) as server:
        resources = demo_resources(workdir, server.base_url)
        generate_demo_data(resources.source_db.url, clients=clients, reset=True)
        realm_id = connect_company(resources)
        seed_demo_items(server.base_url, realm_id)
        home = workdir / "dagster_home"
        home.mkdir()
        shutil.copy(INSTANCE_SETTINGS, home / "dagster.yaml")
        # The definitions' settings, for this process (which creates the runs) and the workers.
        os.environ.update({"DAGSTER_HOME": str(home), "QBO_SOURCE_URL": resources.source_db.url,
                           "QBO_STATE_URL": resources.state_db.url,
                           "QBO_BASE_URL": server.base_url, "QBO_SYNC_START_DATE": "2000-01-01"})
        with DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions(REALM_DIMENSION, [realm_id])
        # A run's cost varies by a few tenths of a second from one run to the next on a
        # shared machine: several runs with nothing to do, and their median.
        return [run_partition(label, realm_id, home)
                for label in ("first sync", *["no changes"] * NO_OP_RUNS)]


def schedule_tick_seconds(companies: int) -> float:
    # A schedule context needs an instance with a reference, as in the daemon.
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(REALM_DIMENSION,
                                        [f"9130{n:011d}" for n in range(companies)])
        context = build_schedule_context(instance=instance,
                                         scheduled_execution_time=datetime.now(UTC))
        started = time.perf_counter()
        # Every company synced before: one run each on the current month.
        realms = instance.get_dynamic_partitions(REALM_DIMENSION)
        history = RealmHistory(dict.fromkeys(realms), set(realms))
        requests = list(incremental_run_requests(context, history, sync_start_date()))
        elapsed = time.perf_counter() - started
    assert len(requests) == companies
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=25, help="demo clients per company")
    parser.add_argument("--companies", type=int, default=1000,
                        help="connected companies for the schedule tick")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        runs = partition_runs(args.clients, Path(workdir))
    print(f"\none partition run in its own process ({args.clients} demo clients)")
    print(f"{'run':<12}{'wall s':>9}{'CPU s':>9}   goal: under {GOAL_RUN_SECONDS:.0f} s and "
          f"{GOAL_RUN_CPU_SECONDS:.0f} CPU-s")
    for run in runs:
        print(f"{run.label:<12}{run.wall_seconds:>9.2f}{run.cpu_seconds:>9.2f}")
    no_ops = [run for run in runs if run.label == "no changes"]
    median = RunCost("median", statistics.median(run.wall_seconds for run in no_ops),
                     statistics.median(run.cpu_seconds for run in no_ops))
    print(f"{'median':<12}{median.wall_seconds:>9.2f}{median.cpu_seconds:>9.2f}   "
          f"of the {len(no_ops)} runs with no changes")
    tick = schedule_tick_seconds(args.companies)
    print(f"\nschedule tick for {args.companies} companies: {tick:.2f} s to build the run "
          f"requests (goal: under {GOAL_TICK_SECONDS:.0f} s for 1000)")
    creation = statistics.median(run.creation_cpu_seconds for run in no_ops)
    no_op_cpu = median.cpu_seconds + creation
    hours = no_op_cpu * args.companies / 3600
    goal = GOAL_TICK_CPU_HOURS_PER_1000 * args.companies / 1000
    print(f"a tick's runs for {args.companies} companies with nothing to do: about "
          f"{hours:.2f} CPU-hours (median {median.cpu_seconds:.2f} CPU-s per no-op run and "
          f"{creation:.2f} to create it; goal under "
          f"{goal:.1f})")


if __name__ == "__main__":
    main()
