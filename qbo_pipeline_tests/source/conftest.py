"""Real databases for the source tests: a SQLite file always, PostgreSQL when a server answers.

PostgreSQL is found at QBO_TEST_POSTGRES_URL (default: the local `test` database with trust
auth). Each test gets its own schema, dropped afterwards, because other tests share the
database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from qbo_pipeline.source.reader import create_source_engine

POSTGRES_URL = os.environ.get("QBO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def postgres_unavailable_reason() -> str | None:
    """None when PostgreSQL answers within 2 seconds, else why the tests are skipped."""
    engine = create_source_engine(POSTGRES_URL)
    try:
        engine = create_engine(engine.url, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return f"no PostgreSQL at {engine.url.render_as_string()}: {first_line}"
    finally:
        engine.dispose()
    return None


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"qbo_source_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(create_source_engine(POSTGRES_URL).url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Unqualified names (tables, raw SQL sources) resolve to this test's schema only.
    engine = create_engine(admin.url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The test runs once per backend."""
    fixture_name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    backend: Engine = request.getfixturevalue(fixture_name)
    return backend
