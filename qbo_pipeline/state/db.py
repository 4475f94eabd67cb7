"""Connecting to the state DB: a SQLite file by default, PostgreSQL (or any URL) in production.

Repository functions never commit: a caller groups its writes in one transaction,
`with sessions.begin() as session: ...`, so that a batch's links and its write-log entries
land together or not at all.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

_SQLITE_BUSY_TIMEOUT_SECONDS = 30


def create_state_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for the state DB at `url`; tables go to `schema` when given (PostgreSQL).

    A SQLite file's folder is created if missing, and the file is opened in WAL mode so that
    runs of several realms can read while one writes.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        options["connect_args"] = {"timeout": _SQLITE_BUSY_TIMEOUT_SECONDS}
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def _create_private_file(path: Path) -> None:
    """The state DB holds (encrypted) tokens and every link: its file is its owner's alone,
    created so before SQLite opens it (SQLite gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every process of the pipeline: the key of the advisory lock that
# serializes upgrades of one PostgreSQL database.
_MIGRATION_LOCK_KEY = 0x71626F5F7374  # "qbo_st"


def init_state_db(engine: Engine) -> None:
    """Bring the state DB to the latest schema revision (Alembic, `state/migrations/`).

    A new DB gets every table; a DB an earlier release made (tables, no version table) is
    first brought to the baseline revision, which creates only the tables it lacks, then
    upgraded like any other. Existing data is kept.
    """
    upgrade_state_db(engine, "head")


def upgrade_state_db(engine: Engine, revision: str) -> None:
    """Upgrade the state DB to `revision`, in one transaction. Processes starting at once
    wait for each other, so that only the first one upgrades."""
    with engine.begin() as connection:
        _lock_for_upgrade(connection)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _lock_for_upgrade(connection: Connection) -> None:
    """Hold the DB's write lock until the upgrade's transaction ends."""
    if connection.dialect.name == "sqlite":
        # Taken now rather than at the first write, so that two processes never both read
        # "no version table" and both create the tables.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": _MIGRATION_LOCK_KEY})


def state_sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory; loaded records stay readable after their transaction commits."""
    return sessionmaker(engine, expire_on_commit=False)
