"""Creating the state DB on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import Engine, inspect

from qbo_pipeline.state import create_state_engine, init_state_db, state_sessions, upsert_realm

TABLES = {f"qbo_{name}" for name in (
    "links", "snapshots", "conflicts", "quarantine", "held_references", "cursors",
    "run_results", "write_log", "realms", "tokens")}


def test_every_table_is_created_in_its_own_schema(state_engine: Engine) -> None:
    schema = state_engine.get_execution_options().get("schema_translate_map", {}).get(None)
    assert set(inspect(state_engine).get_table_names(schema=schema)) >= TABLES


def test_init_keeps_existing_state(state_engine: Engine) -> None:
    with state_sessions(state_engine).begin() as session:
        upsert_realm(session, "r1")
    init_state_db(state_engine)
    with state_sessions(state_engine).begin() as session:
        assert upsert_realm(session, "r1").realm_id == "r1"


def test_sqlite_file_folder_is_created_and_uses_wal(tmp_path: Path) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'state.db'}")
    init_state_db(engine)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert (tmp_path / "new" / "folder" / "state.db").exists()
    assert mode == "wal"


def test_a_new_sqlite_state_db_is_its_owners_alone(tmp_path: Path) -> None:
    """Found from outside: the state DB (encrypted tokens, every link) was created readable by
    everyone. Its folder, its file and SQLite's -wal and -shm files are now the owner's only."""
    folder = tmp_path / "state"
    engine = create_state_engine(f"sqlite:///{folder / 'state.db'}")
    init_state_db(engine)
    with state_sessions(engine).begin() as session:
        upsert_realm(session, "r1")
        written = sorted(path.name for path in folder.iterdir())
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    engine.dispose()
    assert {"state.db", "state.db-wal", "state.db-shm"} <= set(written)
    assert modes == {name: 0o600 for name in written}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
