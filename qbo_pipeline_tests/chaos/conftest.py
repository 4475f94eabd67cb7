"""The pipeline the chaos tests kill and check: real `qbo-pipeline sync` processes, the
bundled emulator in a process of its own, SQLite source and state databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qbo_pipeline_tests.chaos.pipeline import ChaosPipeline

DEMO_CLIENTS = 6  # a module sets CLIENTS for another size


@pytest.fixture
def pipeline(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ChaosPipeline]:
    pipeline = ChaosPipeline(tmp_path, datetime.now(UTC).date())
    try:
        pipeline.set_up(clients=getattr(request.module, "CLIENTS", DEMO_CLIENTS), seed=7)
        yield pipeline
    finally:
        pipeline.close()
