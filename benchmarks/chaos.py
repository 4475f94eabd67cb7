"""Chaos at scale: the harness of `qbo_pipeline_tests/chaos` (real `qbo-pipeline sync`
subprocesses against the bundled emulator, SIGKILLs at chosen moments, faults, source and QBO
edits, bad rows) on a demo of about 10,000 source rows, 10% of accounting requests faulted,
20 kills and two emulator restarts; then clean syncs until one writes nothing, and the checks.

It prints progress while it runs (each cycle, each edit, a line every 30 s of a sync), then
the duplicates, lost rows, lost updates and runs needed to converge, and every problem found.

    python benchmarks/chaos.py [--rows 10000] [--kills 20] [--faults 0.1] [--seed 1]

At 10,000 rows a first sync alone sends some 270 batches, and QBO allows 40 a minute: expect
half an hour or more on a 2-core machine. `--rows 2500` runs in about a quarter of that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the harness lives with the tests, not in the package

from qbo_pipeline.source.demo_data import clients_for_rows  # noqa: E402
from qbo_pipeline_tests.chaos.harness import ChaosConfig, ChaosReport, run_chaos  # noqa: E402


def config(args: argparse.Namespace, workdir: Path) -> ChaosConfig:
    clients = clients_for_rows(args.rows)
    return ChaosConfig(
        workdir=workdir, clients=clients, seed=args.seed, kills=args.kills,
        cycles=args.kills + 6,  # the kills, and runs left to finish under faults
        emulator_restarts=2, fault_share=args.faults, slow_past_timeout=1,
        edits_per_cycle=8, edit_horizon_seconds=60.0,
        # A write kill after one of the first batches of a run, wherever its entity's are.
        kill_batch_max=max(3, clients // 4), max_converge_runs=8,
        progress=lambda line: print(line, flush=True))


def print_figures(report: ChaosReport) -> None:
    print("\n" + "=" * 72)
    print(f"duplicates:              {report.duplicates}")
    print(f"lost rows:               {report.lost_rows}")
    print(f"lost updates:            {report.lost_updates}")
    print(f"runs needed to converge: {report.runs_to_converge}")
    print("=" * 72)
    print(report.summary())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000,
                        help="Approximate number of demo source rows.")
    parser.add_argument("--kills", type=int, default=20, help="Syncs SIGKILLed.")
    parser.add_argument("--faults", type=float, default=0.1,
                        help="Share of accounting requests answered with a fault.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path,
                        help="Keep the databases and logs here (default: a temporary folder).")
    args = parser.parse_args()
    if args.workdir is not None:
        print_figures(run_chaos(config(args, args.workdir)))
        return
    with tempfile.TemporaryDirectory() as workdir:
        print_figures(run_chaos(config(args, Path(workdir))))


if __name__ == "__main__":
    main()
