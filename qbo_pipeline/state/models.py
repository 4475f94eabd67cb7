"""The state DB's tables: what the pipeline remembers between runs, every row keyed by realm.

- `links`: a source record and the QBO record it was pushed to, with the payload last pushed
  (the base of the three-way diff) and the SyncToken of that write;
- `given_names`: the DisplayName given in QBO to a record whose own name another QBO record
  holds ("Acme (Vendor)"), sent again by every later run (`sync.names`);
- `snapshots`: the QBO side as last fetched (query or CDC);
- `conflicts`: fields changed on both sides, waiting for a bookkeeper's decision;
  `conflict_resolutions` records each decision (who, when, what) and the run that applied it;
  `conflict_sightings` when each side last changed and which runs found the conflict;
- `quarantine`: source rows held back (failed validation, refused by QBO for good, or not
  plannable), with the reasons, until they pass; `held_references` lists the records each
  refers to, so that a row is tried again when one of them syncs;
- `cursors`: where the incremental sync and the CDC pull of each spec stopped;
- `rows_due`: source rows a person asked the next run to read again although they did not
  change (a conflict decided, a record unlinked or relinked), until their outcome is recorded;
- `run_results`: the counts of each run;
- `write_log`: each QBO write's request id, recorded before the batch is sent, so that a run
  killed between the write and its link can be recovered without a duplicate;
- `realms` and `tokens`: connected QBO companies and their OAuth tokens, encrypted;
- `webhook_events`: the changes QBO's webhooks notified, and the sync run each asked for.

The schema is managed by Alembic (`migrations/`, applied by `db.init_state_db`): a change to
a table here needs a new revision there. Every table's name starts with `qbo_`, so that the
state can live in a database that holds other tables too: Dagster's own storage, for one, has
a `snapshots` table and its own `alembic_version` (ours is `qbo_alembic_version`).

Timestamps are stored in UTC and come back timezone-aware on every backend. JSON columns
accept Decimal, date and datetime values (stored as strings).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine


def utc_now() -> datetime:
    return datetime.now(UTC)


def _plain_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} value cannot be stored as JSON in the state DB")


class JsonValue(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL); Decimal and dates are stored as strings, None as SQL NULL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(json.dumps(value, default=_plain_json))


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC timestamp. Naive values are taken as UTC; results are always timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite keeps no offset: store naive UTC so that text comparisons order correctly.
        return aware if dialect.name == "postgresql" else aware.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ConflictStatus(StrEnum):
    OPEN = "open"
    KEPT_SOURCE = "kept_source"
    APPLIED_QBO = "applied_qbo"
    DISMISSED = "dismissed"


class WriteStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Sent by a run that died before the answer; a later run found the record linked and
    # planned it from QBO's current state, so the answer no longer matters.
    SUPERSEDED = "superseded"


def _enum_column(enum: type[StrEnum]) -> Enum:
    # Stored as its value in a VARCHAR with a CHECK, so adding a status needs no type change.
    return Enum(enum, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class StateBase(DeclarativeBase):
    type_annotation_map = {
        datetime: UtcDateTime(),
        dict[str, Any]: JsonValue(),
        list[Any]: JsonValue(),
        str: String(255),
    }


class LinkRecord(StateBase):
    """A source record and the QBO record it is synced with."""

    __tablename__ = "qbo_links"
    __table_args__ = (
        UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_links_source"),
        UniqueConstraint("realm_id", "qbo_entity", "qbo_id", name="uq_links_qbo"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    qbo_entity: Mapped[str] = mapped_column(String(64))
    qbo_id: Mapped[str] = mapped_column(String(64))
    sync_token: Mapped[str | None] = mapped_column(String(32))
    base_payload: Mapped[dict[str, Any] | None]
    base_hash: Mapped[str | None] = mapped_column(String(64))
    delete_applied: Mapped[bool] = mapped_column(default=False)
    last_synced_at: Mapped[datetime] = mapped_column(default=utc_now)


class GivenNameRecord(StateBase):
    """The DisplayName a record was given in QBO because the source's was taken there (6240):
    later runs send it again while the source keeps the name it was given for."""

    __tablename__ = "qbo_given_names"
    __table_args__ = (
        UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_given_names_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    wanted_name: Mapped[str] = mapped_column(Text)  # the source's name
    given_name: Mapped[str] = mapped_column(Text)  # the name in QBO
    qbo_id: Mapped[str] = mapped_column(String(64))
    taken_by: Mapped[str | None] = mapped_column(String(64))  # the QBO record holding `wanted`
    given_at: Mapped[datetime] = mapped_column(default=utc_now)


class SnapshotRecord(StateBase):
    """A QBO record as last fetched."""

    __tablename__ = "qbo_snapshots"
    __table_args__ = (
        UniqueConstraint("realm_id", "qbo_entity", "qbo_id", name="uq_snapshots_record"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    qbo_entity: Mapped[str] = mapped_column(String(64))
    qbo_id: Mapped[str] = mapped_column(String(64))
    sync_token: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    deleted: Mapped[bool] = mapped_column(default=False)
    last_updated_time: Mapped[datetime | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utc_now)


class ConflictRecord(StateBase):
    """Fields changed both in the source and in QBO since the last sync, for review."""

    __tablename__ = "qbo_conflicts"
    __table_args__ = (
        # At most one open conflict per record: a re-run refreshes it instead of adding one.
        Index("uq_conflicts_open_record", "realm_id", "spec_name", "source_key", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_conflicts_status", "realm_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    qbo_id: Mapped[str | None] = mapped_column(String(64))
    # [{"path": ..., "source": ..., "qbo": ..., "base": ...}, ...]
    fields: Mapped[list[Any]]
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ConflictStatus] = mapped_column(_enum_column(ConflictStatus),
                                                   default=ConflictStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]


class ConflictResolutionRecord(StateBase):
    """A person's decision on a conflict, and the run that applied it (None until a run has)."""

    __tablename__ = "qbo_conflict_resolutions"
    __table_args__ = (Index("ix_conflict_resolutions_pending", "realm_id", "spec_name",
                            "applied_run_id"),)

    conflict_id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    decision: Mapped[ConflictStatus] = mapped_column(_enum_column(ConflictStatus))
    decided_by: Mapped[str]
    decided_at: Mapped[datetime] = mapped_column(default=utc_now)
    applied_run_id: Mapped[str | None] = mapped_column(String(64))
    applied_at: Mapped[datetime | None]


class ConflictSightingRecord(StateBase):
    """When each side of a conflict changed, and the runs that found it: the first one, and
    the last one that still saw it open."""

    __tablename__ = "qbo_conflict_sightings"

    conflict_id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    first_run_id: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    last_run_id: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime]
    # The source row's change stamp and QBO's MetaData.LastUpdatedTime, as the last run saw
    # them (None when unknown).
    source_changed_at: Mapped[datetime | None]
    qbo_changed_at: Mapped[datetime | None]


class RowDueRecord(StateBase):
    """A source row the next run reads again by key, and why."""

    __tablename__ = "qbo_rows_due"
    __table_args__ = (
        UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_rows_due_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(default=utc_now)


class QuarantineRecord(StateBase):
    """A source row held back by validation; released once it passes."""

    __tablename__ = "qbo_quarantine"
    __table_args__ = (
        UniqueConstraint("realm_id", "spec_name", "source_key", name="uq_quarantine_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    reasons: Mapped[list[Any]]
    row: Mapped[dict[str, Any] | None]
    source_updated_at: Mapped[datetime | None]
    first_seen: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen: Mapped[datetime] = mapped_column(default=utc_now)
    released_at: Mapped[datetime | None]


class HeldReferenceRecord(StateBase):
    """A record that a held-back row refers to: when that record syncs, the row is tried
    again (a project held back because its client was not in QBO yet)."""

    __tablename__ = "qbo_held_references"
    __table_args__ = (
        Index("ix_held_references_row", "realm_id", "spec_name", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    target_spec: Mapped[str]
    target_key: Mapped[str]


class CursorRecord(StateBase):
    """Where the incremental sync of one spec in one realm stopped."""

    __tablename__ = "qbo_cursors"

    realm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec_name: Mapped[str] = mapped_column(primary_key=True)
    # The end of the last change window synced without failure: the next window starts here.
    change_window_end: Mapped[datetime | None]
    # The time the last CDC / LastUpdatedTime pull covered up to.
    snapshot_cursor: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class RunResultRecord(StateBase):
    """The counts of one run of one spec (read, valid, quarantined, created, ...)."""

    __tablename__ = "qbo_run_results"
    __table_args__ = (Index("ix_run_results_realm_spec", "realm_id", "spec_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    run_id: Mapped[str] = mapped_column(String(64))
    partition_key: Mapped[str | None]
    counts: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class WriteLogRecord(StateBase):
    """A QBO write, recorded as pending before its batch is sent and completed after."""

    __tablename__ = "qbo_write_log"
    __table_args__ = (
        UniqueConstraint("realm_id", "request_id", name="uq_write_log_request"),
        Index("ix_write_log_status", "realm_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    spec_name: Mapped[str]
    source_key: Mapped[str]
    request_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(20))
    status: Mapped[WriteStatus] = mapped_column(_enum_column(WriteStatus),
                                                default=WriteStatus.PENDING)
    qbo_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    completed_at: Mapped[datetime | None]


class RealmRecord(StateBase):
    """A connected QBO company and its per-company settings."""

    __tablename__ = "qbo_realms"

    realm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sync_start_date: Mapped[date | None]
    connected_at: Mapped[datetime] = mapped_column(default=utc_now)
    disconnected_at: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TokenRecord(StateBase):
    """A realm's OAuth tokens, each encrypted (Fernet) before it reaches the database.

    A refresh token has two expiries: the rolling one (100 days from its last rotation,
    `x_refresh_token_expires_in`) and Intuit's hard maximum (`x_refresh_token_hard_expires_in`,
    None when the token endpoint did not say); it dies at the earlier.
    """

    __tablename__ = "qbo_tokens"

    realm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_expires_at: Mapped[datetime | None]
    refresh_token_hard_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class WebhookEventRecord(StateBase):
    """A change QBO notified by webhook, stored before the delivery is answered; one row per
    change (realm, entity, Id, lastUpdated), however often it is delivered. `outcome` is None
    until the webhook sensor handles it (see `sync.events`): then the run it asked for
    (`run_key`, and the run's id once Dagster has it) or why it needed none."""

    __tablename__ = "qbo_webhook_events"
    __table_args__ = (
        UniqueConstraint("realm_id", "qbo_entity", "qbo_id", "last_updated",
                         name="uq_webhook_events_change"),
        Index("ix_webhook_events_outcome", "outcome"),
        Index("ix_webhook_events_run_key", "run_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(64))
    qbo_entity: Mapped[str] = mapped_column(String(64))
    qbo_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(20))
    last_updated: Mapped[datetime | None]
    event_id: Mapped[str | None]
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    outcome: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    run_key: Mapped[str | None]
    run_id: Mapped[str | None] = mapped_column(String(64))
    handled_at: Mapped[datetime | None]
