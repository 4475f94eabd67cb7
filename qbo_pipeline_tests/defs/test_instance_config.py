"""dagster.yaml: the run queue allows one sync run per realm at a time, many realms at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance

from qbo_pipeline.demo import dagster_instance

ROOT = Path(__file__).resolve().parents[2]


def test_run_queue_limits_one_run_per_realm(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs > 1  # many realms side by side
    [limit] = queue.tag_concurrency_limits  # every run is tagged with its company
    assert limit == {"key": "qbo/realm", "value": {"applyLimitPerUniqueValue": True},
                     "limit": 1}


def test_run_monitoring_is_on_so_a_killed_sync_does_not_hold_its_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0


def test_the_demos_instance_has_the_same_limits(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`qbo-pipeline demo` records its runs in an instance of its own: the run queue's
    one-run-per-company limit and run monitoring apply there too."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with dagster_instance(tmp_path / "dagster_home") as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert instance.run_monitoring_enabled
    assert queue is not None
    assert {limit["key"] for limit in queue.tag_concurrency_limits} == {"qbo/realm"}
