"""Keeping the emulator's companies in a SQLite file, so a restart finds everything again.

The backend keeps its working state in memory and writes every change through to a store:
``MemoryStore`` (the default) forgets everything on exit, ``SQLiteStore`` writes each change
set in one SQLite transaction and loads all companies at start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool


@dataclass
class StoredRealm:
    """One company as stored: settings (counters, preferences) and everything in it."""

    realm_id: str
    settings: dict[str, Any]
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, str]] = field(default_factory=dict)
    responses: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class ChangeSet:
    """The writes of one backend operation, applied together."""

    realms: dict[str, dict[str, Any]] = field(default_factory=dict)  # realm -> settings
    dropped_realms: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str, str], dict[str, Any] | None] = field(default_factory=dict)
    tombstones: dict[tuple[str, str, str], str] = field(default_factory=dict)
    responses: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.realms or self.dropped_realms or self.objects or self.tombstones
                    or self.responses)


class MemoryStore:
    """No file: the state lives only as long as the process."""

    def load(self) -> dict[str, StoredRealm]:
        return {}

    def write(self, changes: ChangeSet) -> None:
        return None

    def close(self) -> None:
        return None


_metadata = MetaData()
_realms = Table(
    "realms", _metadata,
    Column("realm_id", String(64), primary_key=True),
    Column("settings", Text, nullable=False),
)
_objects = Table(
    "objects", _metadata,
    Column("realm_id", String(64), primary_key=True),
    Column("entity", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)
_tombstones = Table(
    "tombstones", _metadata,
    Column("realm_id", String(64), primary_key=True),
    Column("entity", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("deleted_at", String(40), nullable=False),
)
_responses = Table(
    "idempotent_responses", _metadata,
    Column("realm_id", String(64), primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
)


class SQLiteStore:
    """Companies in a SQLite file through SQLAlchemy; every change set is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One shared connection: the backend already serialises writes under its lock.
        self._engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False},
            poolclass=StaticPool,
        )
        _metadata.create_all(self._engine)

    def load(self) -> dict[str, StoredRealm]:
        with self._engine.connect() as connection:
            realms = {
                row.realm_id: StoredRealm(row.realm_id, json.loads(row.settings))
                for row in connection.execute(select(_realms))
            }
            for row in connection.execute(select(_objects)):
                realms[row.realm_id].objects.setdefault(row.entity, {})[row.id] = json.loads(
                    row.body
                )
            for row in connection.execute(select(_tombstones)):
                realms[row.realm_id].tombstones.setdefault(row.entity, {})[row.id] = (
                    row.deleted_at
                )
            for row in connection.execute(select(_responses)):
                realms[row.realm_id].responses[row.request_id] = (row.status,
                                                                  json.loads(row.body))
        return realms

    def write(self, changes: ChangeSet) -> None:
        if not changes:
            return
        with self._engine.begin() as connection:
            for realm_id in changes.dropped_realms:
                for table in (_realms, _objects, _tombstones, _responses):
                    connection.execute(delete(table).where(table.c.realm_id == realm_id))
            for realm_id, settings in changes.realms.items():
                _replace(connection, _realms, {"realm_id": realm_id},
                         {"settings": json.dumps(settings)})
            for (realm_id, entity, object_id), body in changes.objects.items():
                key = {"realm_id": realm_id, "entity": entity, "id": object_id}
                if body is None:
                    _remove(connection, _objects, key)
                else:
                    _replace(connection, _objects, key, {"body": json.dumps(body)})
            for (realm_id, entity, object_id), deleted_at in changes.tombstones.items():
                _replace(connection, _tombstones,
                         {"realm_id": realm_id, "entity": entity, "id": object_id},
                         {"deleted_at": deleted_at})
            for (realm_id, request_id), (status, body) in changes.responses.items():
                _replace(connection, _responses, {"realm_id": realm_id, "request_id": request_id},
                         {"status": status, "body": json.dumps(body)})

    def close(self) -> None:
        self._engine.dispose()


def _remove(connection: Connection, table: Table, key: dict[str, str]) -> None:
    condition = [table.c[name] == value for name, value in key.items()]
    connection.execute(delete(table).where(*condition))


def _replace(connection: Connection, table: Table, key: dict[str, str],
             values: dict[str, Any]) -> None:
    _remove(connection, table, key)
    connection.execute(insert(table).values(**key, **values))


StateStore = MemoryStore | SQLiteStore


def open_store(state_file: Path | None) -> StateStore:
    return SQLiteStore(state_file) if state_file is not None else MemoryStore()
