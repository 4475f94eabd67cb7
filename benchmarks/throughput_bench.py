"""Writes per minute at QBO's limits, time-scaled (issue 12's "writes per minute" row).

    python benchmarks/throughput_bench.py [--clients 4000] [--scale 0.1] [--latency 2.0]
                                          [--write-concurrency 4]

QBO allows 40 batch requests of 30 items a minute per company: 1,200 writes a minute. The
emulator keeps QBO's limits with its minute shrunk to `--scale` of 60 s (the client's pacing
shrinks with it), and a demo company's clients are pushed by `qbo-pipeline sync --entity
client` as a Dagster run. Twice: QBO answering at once, then each batch taking `--latency`
seconds of QBO's time (also scaled), as a real QBO does. The rate is read at the emulator: 40
batches over the mean time from each batch it admitted to the 40th after it, in QBO minutes.
Goal: at least 97% of the ceiling both times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from dagster import DagsterInstance

from qbo_pipeline.connections import connect_company
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.resources import QBOConnection
from qbo_pipeline.defs.runner import SyncResources, run_sync
from qbo_pipeline.demo import demo_resources
from qbo_pipeline.emulator.latency import LatencySettings
from qbo_pipeline.emulator.limits import RateLimiter, RateLimitSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.source.demo_data import generate_demo_data

BATCH_ITEMS = 30
BATCHES_A_MINUTE = 40
CEILING = BATCHES_A_MINUTE * BATCH_ITEMS  # writes a minute
AdmitCall = Callable[..., AbstractAsyncContextManager[None]]


class BatchClock:
    """When the emulator admitted each batch request (throttled ones are refused after)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.admitted: list[float] = []
        self._admit: AdmitCall = limiter.admit
        limiter.admit = self._timed_admit  # type: ignore[method-assign,assignment]

    def _timed_admit(self, realm_id: str,
                     batch: bool = False) -> AbstractAsyncContextManager[None]:
        if batch:
            self.admitted.append(time.monotonic())
        return self._admit(realm_id, batch=batch)


def sustained_rate(admitted: list[float], minute: float) -> float:
    """Writes a QBO minute at the pace the run kept: QBO admits batch i + 40 no sooner than a
    minute after batch i, so the mean time from each batch to the 40th after it is a minute
    at the ceiling, and more when a client waits longer (ours counts a batch from its answer,
    not from when QBO counted it, so it waits a minute plus an answer's time)."""
    spans = [admitted[index + BATCHES_A_MINUTE] - admitted[index]
             for index in range(len(admitted) - BATCHES_A_MINUTE)]
    return BATCHES_A_MINUTE * BATCH_ITEMS / (sum(spans) / len(spans) / minute)


def measure(clients: int, scale: float, latency: float, workdir: Path,
            concurrency: int = 4) -> None:
    minute = 60.0 * scale
    config = EmulatorConfig(limits=RateLimitSettings(window_seconds=minute),
                            latency=LatencySettings.from_dict({"batch": latency * scale}))
    with EmulatorServer(config) as server:
        clock = BatchClock(server.emulator.limiter)
        demo = demo_resources(workdir, server.base_url)
        # Built anew, not copied: Dagster builds a run's resources from their configuration.
        qbo = QBOConnection(**{**demo.qbo.model_dump(), "rate_window_seconds": minute,
                               "write_concurrency": concurrency})
        resources = SyncResources(demo.source_db, demo.state_db, qbo)
        generate_demo_data(resources.source_db.url, clients=clients, reset=True)
        realm_id = connect_company(resources)
        started = time.perf_counter()
        with DagsterInstance.ephemeral() as instance:
            report = run_sync(load_pipeline_specs(), resources, instance, realm_id,
                              spec_name="client")
        took = time.perf_counter() - started
    created = report.counts["client"].get("created", 0)
    batches = clock.admitted
    if len(batches) < 3 * BATCHES_A_MINUTE:
        raise SystemExit(f"only {len(batches)} batches: give more --clients (a sustained rate "
                         f"needs three minutes' worth, {3 * BATCHES_A_MINUTE})")
    per_minute = sustained_rate(batches, minute)
    print(f"{latency:>10.1f} s {created:>9,} {len(batches):>8} {took:>9.1f} s "
          f"{per_minute:>10,.0f} {per_minute / CEILING:>8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4000)
    parser.add_argument("--scale", type=float, default=0.1,
                        help="QBO's minute as a share of 60 s (0.1: a 6 s minute)")
    parser.add_argument("--latency", type=float, default=2.0,
                        help="seconds of QBO's time each batch takes to answer, second run")
    parser.add_argument("--write-concurrency", type=int, default=4,
                        help="batches in flight at once (1: as the pipeline wrote before)")
    arguments = parser.parse_args()
    print(f"ceiling {CEILING:,} writes a minute (40 batches of 30); QBO's minute = "
          f"{60 * arguments.scale:g} s here; goal: at least 97% of the ceiling")
    print(f"{'batch answer':>12} {'created':>9} {'batches':>8} {'run':>11} {'writes/min':>10} "
          f"{'ceiling':>8}")
    for latency in (0.0, arguments.latency):
        with tempfile.TemporaryDirectory() as workdir:
            measure(arguments.clients, arguments.scale, latency, Path(workdir),
                    arguments.write_concurrency)


if __name__ == "__main__":
    main()
