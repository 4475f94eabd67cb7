"""The state DB's schema revisions (Alembic): a new DB and one made before Alembic managed it
both end at the latest revision, on SQLite files and in a PostgreSQL schema of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from qbo_pipeline.state import StateBase, create_state_engine, init_state_db
from qbo_pipeline.state.db import MIGRATIONS, upgrade_state_db
from qbo_pipeline_tests.postgres import POSTGRES_URL, temporary_schema

BASELINE = "0001_baseline"
VERSION_TABLE = "qbo_alembic_version"
EXPIRES = datetime(2027, 1, 2, 3, 4, tzinfo=UTC)


def head_revision() -> str:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A state DB with no table at all, once per backend."""
    if request.param == "sqlite":
        engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
        yield engine
        engine.dispose()
        return
    with temporary_schema("qbo_migrations_test") as schema:
        engine = create_state_engine(POSTGRES_URL, schema=schema)
        yield engine
        engine.dispose()


def schema_of(engine: Engine) -> str | None:
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def version_of(engine: Engine) -> list[str]:
    schema = schema_of(engine)
    table = VERSION_TABLE if schema is None else f'"{schema}".{VERSION_TABLE}'
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())


def differences_from_the_models(engine: Engine) -> list[object]:
    """What autogenerate would change to make the DB match the models (the version table
    aside): nothing, when the revisions and the models agree."""
    schema = schema_of(engine)
    with engine.connect() as connection:
        if schema is not None:
            # Autogenerate reflects the default schema: make it the test's own.
            connection.execute(text(f'SET search_path TO "{schema}"'))
        context = MigrationContext.configure(connection, opts={
            "include_name": lambda name, kind, _parent: kind != "table" or name != VERSION_TABLE})
        return list(compare_metadata(context, StateBase.metadata))


def make_pre_alembic_db(engine: Engine) -> None:
    """A DB as an earlier release left it: the baseline's tables, no version table."""
    upgrade_state_db(engine, BASELINE)
    schema = schema_of(engine)
    table = VERSION_TABLE if schema is None else f'"{schema}".{VERSION_TABLE}'
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {table}"))


def test_a_new_state_db_is_created_at_the_latest_revision(empty_engine: Engine) -> None:
    init_state_db(empty_engine)
    assert version_of(empty_engine) == [head_revision()]
    assert differences_from_the_models(empty_engine) == []
    columns = {column["name"] for column in inspect(empty_engine).get_columns(
        "qbo_tokens", schema=schema_of(empty_engine))}
    assert "refresh_token_hard_expires_at" in columns


def test_upgrading_again_changes_nothing(empty_engine: Engine) -> None:
    init_state_db(empty_engine)
    init_state_db(empty_engine)
    assert version_of(empty_engine) == [head_revision()]


def test_a_db_made_before_alembic_keeps_its_rows_and_gets_the_new_column(
        empty_engine: Engine) -> None:
    make_pre_alembic_db(empty_engine)
    schema = schema_of(empty_engine)
    assert VERSION_TABLE not in inspect(empty_engine).get_table_names(schema=schema)
    tokens = "qbo_tokens" if schema is None else f'"{schema}".qbo_tokens'
    with empty_engine.begin() as connection:
        connection.execute(text(
            f"INSERT INTO {tokens} (realm_id, refresh_token_encrypted, "
            "refresh_token_expires_at, updated_at) VALUES ('r1', 'sealed', :expires, :now)"),
            {"expires": EXPIRES.replace(tzinfo=None), "now": datetime(2026, 1, 1)})

    init_state_db(empty_engine)

    assert version_of(empty_engine) == [head_revision()]
    assert differences_from_the_models(empty_engine) == []
    with empty_engine.connect() as connection:
        row = connection.execute(text(
            f"SELECT refresh_token_encrypted, refresh_token_hard_expires_at FROM {tokens}")).one()
    assert tuple(row) == ("sealed", None)


def test_a_db_made_before_alembic_gets_the_tables_it_lacked(empty_engine: Engine) -> None:
    """An earlier release's `create_all` made only the tables it knew: a DB from before the
    webhook events is given that table on the way to the baseline, the others are kept."""
    make_pre_alembic_db(empty_engine)
    schema = schema_of(empty_engine)
    events = "qbo_webhook_events" if schema is None else f'"{schema}".qbo_webhook_events'
    with empty_engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {events}"))

    init_state_db(empty_engine)

    assert "qbo_webhook_events" in inspect(empty_engine).get_table_names(schema=schema)
    assert differences_from_the_models(empty_engine) == []


def test_the_migrations_ship_with_the_package() -> None:
    """Alembic reads the revisions as files: pyproject's package data lists them."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    for pattern in ("migrations/*.py", "migrations/versions/*.py"):
        assert pattern in pyproject
    shipped = {path.name for path in (MIGRATIONS / "versions").glob("*.py")}
    assert {"0001_baseline.py", "0002_refresh_token_hard_expiry.py"} <= shipped
