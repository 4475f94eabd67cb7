"""The state DB on real databases: a SQLite file always, PostgreSQL when a server answers.

PostgreSQL is found as for the source tests (QBO_TEST_POSTGRES_URL); each test gets its own
schema through `schema_translate_map`, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import create_state_engine, init_state_db, state_sessions
from qbo_pipeline_tests.source.conftest import POSTGRES_URL, postgres_unavailable_reason


@pytest.fixture
def sqlite_state(tmp_path: Path) -> Iterator[Engine]:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    init_state_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_state() -> Iterator[Engine]:
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"qbo_state_test_{uuid.uuid4().hex[:12]}"
    admin = create_state_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_state_engine(POSTGRES_URL, schema=schema)
    try:
        init_state_db(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_engine(request: pytest.FixtureRequest) -> Engine:
    """The test runs once per backend."""
    name = "sqlite_state" if request.param == "sqlite" else "postgres_state"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def sessions(state_engine: Engine) -> sessionmaker[Session]:
    return state_sessions(state_engine)
