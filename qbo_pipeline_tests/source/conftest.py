"""Real databases for the source tests: a SQLite file always, PostgreSQL when a server answers
(see qbo_pipeline_tests/postgres.py), each test in a schema of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from qbo_pipeline_tests.postgres import POSTGRES_URL, temporary_schema


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    with temporary_schema("qbo_source_test") as schema:
        # Unqualified names (tables, raw SQL sources) resolve to this test's schema only.
        engine = create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
        yield engine
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The test runs once per backend."""
    fixture_name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    backend: Engine = request.getfixturevalue(fixture_name)
    return backend
