"""Generate about a million demo rows into a SQLite file; print rows/s and peak memory.

    python benchmarks/demo_data_bench.py [--rows 1000000] [--file demo_bench.db]

Peak memory is the process's maximum resident set size. `--trace-heap` also reports the
Python heap peak traced by tracemalloc (what the chunked inserts keep bounded), at the cost
of running about three times slower, so rows/s is then not representative.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from qbo_pipeline.source.demo_data import clients_for_rows, generate_demo_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="about how many rows")
    parser.add_argument("--file", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--trace-heap", action="store_true", help="also trace the Python heap")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database = arguments.file or Path(scratch) / "demo_bench.db"
        run(arguments.rows, database, trace_heap=arguments.trace_heap)


def run(rows: int, database: Path, *, trace_heap: bool) -> None:
    clients = clients_for_rows(rows)
    print(f"generating ~{rows:,} rows ({clients:,} clients) into {database}")
    if trace_heap:
        tracemalloc.start()
    started = time.perf_counter()
    summary = generate_demo_data(
        f"sqlite:///{database}", clients=clients, reset=True, progress=_every_tenth_chunk()
    )
    elapsed = time.perf_counter() - started
    print(summary.describe())
    rate = summary.total_rows / elapsed
    print(f"{summary.total_rows:,} rows in {elapsed:.1f} s: {rate:,.0f} rows/s")
    if trace_heap:
        _current, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak Python heap (tracemalloc): {heap_peak / 2**20:.1f} MiB")
    print(f"peak resident set size: {_max_rss_mib():.1f} MiB")
    print(f"database file: {database.stat().st_size / 2**20:.1f} MiB")


def _every_tenth_chunk() -> Callable[[str], None]:
    calls = 0

    def report(message: str) -> None:
        nonlocal calls
        calls += 1
        if calls % 10 == 1 or message.startswith("done"):
            print(message, flush=True)

    return report


def _max_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


if __name__ == "__main__":
    main()
