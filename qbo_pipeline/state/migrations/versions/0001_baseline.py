"""The state DB as it was before Alembic managed it: every table `init_state_db` created.

A state DB made by an earlier release has these tables (or most of them: each release's
`create_all` added the tables it knew) and no version table. This revision creates only the
tables that are missing and leaves the others as they are, so such a DB is brought to the
baseline (recorded as this revision) without touching its data, and a new DB gets them all.

Frozen: the columns are spelled out here, never read from the models, which move on with
later revisions.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from qbo_pipeline.state.models import JsonValue, UtcDateTime

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_CONFLICT_STATUSES = ("open", "kept_source", "applied_qbo", "dismissed")
_WRITE_STATUSES = ("pending", "succeeded", "failed", "superseded")
# At most one open conflict per record: a partial unique index on both backends.
_OPEN_ONLY: dict[str, Any] = {"sqlite_where": sa.text("status = 'open'"),
                              "postgresql_where": sa.text("status = 'open'")}


class _Index(NamedTuple):
    name: str
    columns: list[str]
    options: dict[str, Any]


class _Table(NamedTuple):
    name: str
    # A function, not a list: a Column belongs to one Table, and one process may upgrade
    # several state DBs (each test's).
    items: Callable[[], list[SchemaItem]]
    indexes: list[_Index]


def _index(name: str, columns: list[str], **options: Any) -> _Index:
    return _Index(name, columns, options)


def _table(name: str, items: Callable[[], list[SchemaItem]],
           indexes: list[_Index] | None = None) -> _Table:
    return _Table(name, items, indexes or [])


def _status(values: tuple[str, ...], name: str) -> sa.Enum:
    # A VARCHAR, no native enum and no CHECK: the models' `_enum_column`.
    return sa.Enum(*values, name=name, native_enum=False, length=20)


def _tables() -> list[_Table]:
    return [
        _table("qbo_conflict_resolutions", lambda: [
            sa.Column("conflict_id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("decision", _status(_CONFLICT_STATUSES, "conflictstatus"), nullable=False),
            sa.Column("decided_by", sa.String(length=255), nullable=False),
            sa.Column("decided_at", UtcDateTime(), nullable=False),
            sa.Column("applied_run_id", sa.String(length=64), nullable=True),
            sa.Column("applied_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("conflict_id"),
        ], [
            _index("ix_conflict_resolutions_pending",
                   ["realm_id", "spec_name", "applied_run_id"], unique=False),
        ]),
        _table("qbo_conflict_sightings", lambda: [
            sa.Column("conflict_id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("first_run_id", sa.String(length=64), nullable=True),
            sa.Column("first_seen_at", UtcDateTime(), nullable=False),
            sa.Column("last_run_id", sa.String(length=64), nullable=True),
            sa.Column("last_seen_at", UtcDateTime(), nullable=False),
            sa.Column("source_changed_at", UtcDateTime(), nullable=True),
            sa.Column("qbo_changed_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("conflict_id"),
        ]),
        _table("qbo_conflicts", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=True),
            sa.Column("fields", JsonValue(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("status", _status(_CONFLICT_STATUSES, "conflictstatus"), nullable=False),
            sa.Column("created_at", UtcDateTime(), nullable=False),
            sa.Column("resolved_at", UtcDateTime(), nullable=True),
            sa.Column("resolved_by", sa.String(length=255), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        ], [
            _index("ix_conflicts_status", ["realm_id", "status"], unique=False),
            _index("uq_conflicts_open_record", ["realm_id", "spec_name", "source_key"],
                   unique=True, **_OPEN_ONLY),
        ]),
        _table("qbo_cursors", lambda: [
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("change_window_end", UtcDateTime(), nullable=True),
            sa.Column("snapshot_cursor", UtcDateTime(), nullable=True),
            sa.Column("updated_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("realm_id", "spec_name"),
        ]),
        _table("qbo_given_names", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("wanted_name", sa.Text(), nullable=False),
            sa.Column("given_name", sa.Text(), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=False),
            sa.Column("taken_by", sa.String(length=64), nullable=True),
            sa.Column("given_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "spec_name", "source_key",
                                name="uq_given_names_source"),
        ]),
        _table("qbo_held_references", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("target_spec", sa.String(length=255), nullable=False),
            sa.Column("target_key", sa.String(length=255), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        ], [
            _index("ix_held_references_row", ["realm_id", "spec_name", "source_key"], unique=False),
        ]),
        _table("qbo_links", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("qbo_entity", sa.String(length=64), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=False),
            sa.Column("sync_token", sa.String(length=32), nullable=True),
            sa.Column("base_payload", JsonValue(), nullable=True),
            sa.Column("base_hash", sa.String(length=64), nullable=True),
            sa.Column("delete_applied", sa.Boolean(), nullable=False),
            sa.Column("last_synced_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "qbo_entity", "qbo_id", name="uq_links_qbo"),
            sa.UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_links_source"),
        ]),
        _table("qbo_quarantine", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("reasons", JsonValue(), nullable=False),
            sa.Column("row", JsonValue(), nullable=True),
            sa.Column("source_updated_at", UtcDateTime(), nullable=True),
            sa.Column("first_seen", UtcDateTime(), nullable=False),
            sa.Column("last_seen", UtcDateTime(), nullable=False),
            sa.Column("released_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_quarantine_source"),
        ]),
        _table("qbo_realms", lambda: [
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("sync_start_date", sa.Date(), nullable=True),
            sa.Column("connected_at", UtcDateTime(), nullable=False),
            sa.Column("disconnected_at", UtcDateTime(), nullable=True),
            sa.Column("settings", JsonValue(), nullable=False),
            sa.PrimaryKeyConstraint("realm_id"),
        ]),
        _table("qbo_rows_due", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("requested_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_rows_due_source"),
        ]),
        _table("qbo_run_results", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("run_id", sa.String(length=64), nullable=False),
            sa.Column("partition_key", sa.String(length=255), nullable=True),
            sa.Column("counts", JsonValue(), nullable=False),
            sa.Column("started_at", UtcDateTime(), nullable=False),
            sa.Column("finished_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        ], [
            _index("ix_run_results_realm_spec", ["realm_id", "spec_name"], unique=False),
        ]),
        _table("qbo_snapshots", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("qbo_entity", sa.String(length=64), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=False),
            sa.Column("sync_token", sa.String(length=32), nullable=True),
            sa.Column("payload", JsonValue(), nullable=False),
            sa.Column("deleted", sa.Boolean(), nullable=False),
            sa.Column("last_updated_time", UtcDateTime(), nullable=True),
            sa.Column("fetched_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "qbo_entity", "qbo_id", name="uq_snapshots_record"),
        ]),
        _table("qbo_tokens", lambda: [
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("refresh_token_encrypted", sa.Text(), nullable=False),
            sa.Column("access_token_encrypted", sa.Text(), nullable=True),
            sa.Column("access_token_expires_at", UtcDateTime(), nullable=True),
            sa.Column("refresh_token_expires_at", UtcDateTime(), nullable=True),
            sa.Column("updated_at", UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("realm_id"),
        ]),
        _table("qbo_webhook_events", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("qbo_entity", sa.String(length=64), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=False),
            sa.Column("operation", sa.String(length=20), nullable=False),
            sa.Column("last_updated", UtcDateTime(), nullable=True),
            sa.Column("event_id", sa.String(length=255), nullable=True),
            sa.Column("received_at", UtcDateTime(), nullable=False),
            sa.Column("outcome", sa.String(length=20), nullable=True),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("run_key", sa.String(length=255), nullable=True),
            sa.Column("run_id", sa.String(length=64), nullable=True),
            sa.Column("handled_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "qbo_entity", "qbo_id", "last_updated",
                                name="uq_webhook_events_change"),
        ], [
            _index("ix_webhook_events_outcome", ["outcome"], unique=False),
            _index("ix_webhook_events_run_key", ["run_key"], unique=False),
        ]),
        _table("qbo_write_log", lambda: [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("realm_id", sa.String(length=64), nullable=False),
            sa.Column("spec_name", sa.String(length=255), nullable=False),
            sa.Column("source_key", sa.String(length=255), nullable=False),
            sa.Column("request_id", sa.String(length=64), nullable=False),
            sa.Column("operation", sa.String(length=20), nullable=False),
            sa.Column("status", _status(_WRITE_STATUSES, "writestatus"), nullable=False),
            sa.Column("qbo_id", sa.String(length=64), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("created_at", UtcDateTime(), nullable=False),
            sa.Column("completed_at", UtcDateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("realm_id", "request_id", name="uq_write_log_request"),
        ], [
            _index("ix_write_log_status", ["realm_id", "status"], unique=False),
        ]),
    ]


def upgrade() -> None:
    schema = op.get_context().version_table_schema
    existing = set(sa.inspect(op.get_bind()).get_table_names(schema=schema))
    for table in _tables():
        if table.name in existing:
            continue
        op.create_table(table.name, *table.items(), schema=schema)
        for index in table.indexes:
            op.create_index(index.name, table.name, index.columns, schema=schema,
                            **index.options)


def downgrade() -> None:
    schema = op.get_context().version_table_schema
    for table in reversed(_tables()):
        op.drop_table(table.name, schema=schema)
