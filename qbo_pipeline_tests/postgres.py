"""The PostgreSQL server the tests use when one answers, and a throwaway schema per test.

The server is found at QBO_TEST_POSTGRES_URL (default: the local `test` database with trust
auth). Other tests share that database, so each test works in a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("QBO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def postgres_unavailable_reason() -> str | None:
    """None when PostgreSQL answers within 2 seconds, else why the tests are skipped."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return f"no PostgreSQL at {engine.url.render_as_string()}: {first_line}"
    finally:
        engine.dispose()
    return None


@contextmanager
def temporary_schema(prefix: str) -> Iterator[str]:
    """A new schema on the test server, dropped with everything in it afterwards.

    Skips the calling test, saying why, when no server answers.
    """
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
