"""Found by the chaos harness (issue 8): a `qbo-pipeline sync` SIGKILLed after its Dagster run
was created and before it started left the run NOT_STARTED for ever: `fail_dead_runs` (run by
every `qbo-pipeline sync`) looked at STARTED runs only. It now also fails a NOT_STARTED or
STARTING run whose `qbo/worker` process is gone.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from qbo_pipeline_tests.chaos.pipeline import ChaosPipeline
from qbo_pipeline_tests.chaos.processes import Command

ATTEMPTS = 5

CLIENTS = 4  # the demo's size for these tests



def test_a_sync_killed_before_its_run_started_leaves_no_run_behind(
        pipeline: ChaosPipeline) -> None:
    if not any(_kill_when_a_run_is_created(pipeline) for _ in range(ATTEMPTS)):
        pytest.skip(f"in {ATTEMPTS} tries no kill landed between a run's creation and start")
    code, output = pipeline.run_sync()
    assert code == 0, output[-5:]
    left = {run_id: status for run_id, status in _runs(pipeline).items()
            if status not in ("SUCCESS", "FAILURE", "CANCELED")}
    assert left == {}, f"runs left unfinished after the next sync: {left}"


def _kill_when_a_run_is_created(pipeline: ChaosPipeline) -> bool:
    """Start a sync and SIGKILL it the moment its run is NOT_STARTED; False if that moment
    was missed (the run had started, or the sync ended)."""
    known = set(_runs(pipeline))
    sync: Command = pipeline.sync()
    try:
        while sync.running():
            new = {run_id: status for run_id, status in _runs(pipeline).items()
                   if run_id not in known}
            if new:
                sync.kill()
                return _runs(pipeline)[next(iter(new))] == "NOT_STARTED"
            time.sleep(0.005)
        return False
    finally:
        sync.kill()


def _runs(pipeline: ChaosPipeline) -> dict[str, str]:
    path = pipeline.dagster_home / "history" / "runs.db"
    if not path.exists():
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(connection.execute("SELECT run_id, status FROM runs"))
    except sqlite3.OperationalError:
        return {}  # created by the sync's Dagster instance in a moment
    finally:
        connection.close()
