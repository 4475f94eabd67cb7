"""The state DB on real databases: a SQLite file always, PostgreSQL when a server answers.

PostgreSQL is found as for the source tests (QBO_TEST_POSTGRES_URL); each test gets its own
schema through `schema_translate_map`, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import create_state_engine, init_state_db, state_sessions
from qbo_pipeline_tests.postgres import POSTGRES_URL, temporary_schema


@pytest.fixture
def sqlite_state(tmp_path: Path) -> Iterator[Engine]:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    init_state_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_state() -> Iterator[Engine]:
    with temporary_schema("qbo_state_test") as schema:
        engine = create_state_engine(POSTGRES_URL, schema=schema)
        init_state_db(engine)
        yield engine
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_engine(request: pytest.FixtureRequest) -> Engine:
    """The test runs once per backend."""
    name = "sqlite_state" if request.param == "sqlite" else "postgres_state"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def sessions(state_engine: Engine) -> sessionmaker[Session]:
    return state_sessions(state_engine)
