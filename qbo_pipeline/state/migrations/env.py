"""Alembic's environment for the state DB: run by `init_state_db`, on the connection it opens.

There is no alembic.ini: `qbo_pipeline.state.db` builds the configuration and hands over the
connection in `config.attributes`. The state's schema (PostgreSQL, `create_state_engine(...,
schema=)`) is the connection's schema translate map; the version table goes there too, and each
revision passes it to its operations (`op.get_context().version_table_schema`), so that several
state DBs can share one database, one schema each.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from qbo_pipeline.state.models import StateBase


def _state_schema(connection: Connection) -> str | None:
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(None)
    return None if schema is None else str(schema)


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("the state DB's migrations run through init_state_db(engine), "
                           "which hands them a connection")
    context.configure(connection=connection, target_metadata=StateBase.metadata,
                      version_table="qbo_alembic_version",
                      version_table_schema=_state_schema(connection))
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
