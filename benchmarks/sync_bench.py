"""Time the end-to-end sync of a demo company: a full first sync, then a run with nothing to do.

It follows `qbo-pipeline demo` step by step (emulator with QBO's default rate limits, demo source
database, OAuth connection, demo Items, Dagster run) and prints, per run, the wall time, the
counts of each entity, the accounting requests the emulator received and the peak memory.

    python benchmarks/sync_bench.py --clients 50
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import requests
from dagster import DagsterInstance

from qbo_pipeline.connections import connect_company
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.runner import SyncReport, SyncResources, run_sync
from qbo_pipeline.demo import dagster_instance, demo_resources, seed_demo_items
from qbo_pipeline.emulator.limits import RateLimiter
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.source.demo_data import generate_demo_data

COUNT_COLUMNS = ("created", "updated", "unchanged", "quarantined", "conflicts", "failed")
AdmitCall = Callable[..., AbstractAsyncContextManager[None]]


class RequestCounter:
    """Counts every accounting request the emulator's limiter is asked to admit.

    The limiter's own usage is a sliding 60-second window, so a run longer than a minute would
    be undercounted by `GET /admin/limits`; counting at admission sees every request, throttled
    ones included.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.requests = 0
        self._admit: AdmitCall = limiter.admit
        limiter.admit = self._counted_admit  # type: ignore[method-assign,assignment]

    def _counted_admit(self, realm_id: str,
                       batch: bool = False) -> AbstractAsyncContextManager[None]:
        self.requests += 1
        return self._admit(realm_id, batch=batch)



@dataclass(frozen=True)
class RunFigures:
    label: str
    wall_seconds: float
    api_requests: int
    window_requests: int
    peak_rss_mb: float
    report: SyncReport

    @property
    def records(self) -> int:
        return sum(sum(numbers.get(name, 0) for name in COUNT_COLUMNS)
                   for numbers in self.report.counts.values())


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def window_requests(base_url: str, realm_id: str) -> int:
    """The limiter's own count for the realm over its current 60-second window."""
    usage = requests.get(f"{base_url}/admin/limits", timeout=30).json()["usage"]
    return int(usage.get(realm_id, {}).get("requests_in_window", 0))


def timed_run(label: str, resources: SyncResources, server: EmulatorServer,
              counter: RequestCounter, instance: DagsterInstance, realm_id: str) -> RunFigures:
    before = counter.requests
    started = time.perf_counter()
    report = run_sync(load_pipeline_specs(), resources, instance, realm_id)
    wall = time.perf_counter() - started
    return RunFigures(label, wall, counter.requests - before,
                      window_requests(server.base_url, realm_id), peak_rss_mb(), report)


def print_figures(runs: list[RunFigures]) -> None:
    print(f"\n{'run':<12}{'wall s':>9}{'records':>9}{'API req':>9}{'req/rec':>9}"
          f"{'win req':>9}{'peak MB':>9}")
    for run in runs:
        per_record = run.api_requests / run.records if run.records else 0.0
        print(f"{run.label:<12}{run.wall_seconds:>9.2f}{run.records:>9}{run.api_requests:>9}"
              f"{per_record:>9.2f}{run.window_requests:>9}{run.peak_rss_mb:>9.1f}")
    for run in runs:
        print(f"\n{run.label} (Dagster run {run.report.run_id}):")
        print(f"  {'entity':<12}" + "".join(f"{name:>12}" for name in COUNT_COLUMNS))
        for entity, numbers in run.report.counts.items():
            print(f"  {entity:<12}" + "".join(f"{numbers.get(name, 0):>12}"
                                             for name in COUNT_COLUMNS))


def benchmark(clients: int, workdir: Path) -> list[RunFigures]:
    with EmulatorServer(EmulatorConfig(state_file=workdir / "emulator.sqlite")) as server:
        counter = RequestCounter(server.emulator.limiter)
        resources = demo_resources(workdir, server.base_url)
        started = time.perf_counter()
        generate_demo_data(resources.source_db.url, clients=clients, reset=True)
        print(f"demo data for {clients} clients: {time.perf_counter() - started:.2f} s")
        realm_id = connect_company(resources)
        seed_demo_items(server.base_url, realm_id)
        limits = requests.get(f"{server.base_url}/admin/limits", timeout=30).json()["settings"]
        print(f"emulator rate limits: {limits}")
        setup_requests = counter.requests
        print(f"accounting requests before the first sync: {setup_requests}")
        with dagster_instance(workdir / "dagster_home") as instance:
            return [timed_run(label, resources, server, counter, instance, realm_id)
                    for label in ("first sync", "no changes")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200,
                        help="Number of demo clients (everything else scales from it).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        print_figures(benchmark(args.clients, Path(workdir)))


if __name__ == "__main__":
    main()

