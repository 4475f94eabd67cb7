"""dagster.yaml: the run queue allows one sync run per realm at a time, many realms at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance

ROOT = Path(__file__).resolve().parents[2]


def test_run_queue_limits_one_run_per_realm(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs > 1  # many realms side by side
    limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
    for key in ("qbo/realm", "dagster/partition/realm"):
        assert limits[key]["limit"] == 1
        assert limits[key]["value"] == {"applyLimitPerUniqueValue": True}
