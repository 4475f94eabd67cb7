"""Syncs started by hand (the `qbo-pipeline demo` and `sync` commands): registering a
company's partition and running the asset chains of chosen specs through the pipeline's own
`sync_job` (the same definitions the UI loads), reporting each step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from dagster import (
    AssetKey,
    DagsterEvent,
    DagsterInstance,
    InitLoggerContext,
    LoggerDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from qbo_pipeline.defs.assets import (
    IMPORT_METADATA,
    NOT_PULLED_METADATA,
    REFUSED_METADATA,
    RENAMED_METADATA,
    RENAMED_RECORDS_METADATA,
    REPORTED_RECORDS_METADATA,
    SWITCHED_OFF_METADATA,
    StageFailed,
    spec_asset_keys,
)
from qbo_pipeline.defs.definitions import build_defs
from qbo_pipeline.defs.instance import WORKER_TAG, this_worker
from qbo_pipeline.defs.jobs import sync_job
from qbo_pipeline.defs.partitions import (
    DAYS_TAG,
    IMPORT_MODE,
    INCREMENTAL_MODE,
    MODE_TAG,
    MONTH_DIMENSION,
    REALM_DIMENSION,
    REALM_TAG,
    WINDOW_MODE,
    RunPartitions,
    month_range_tags,
    sync_run_partitions,
)
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import (
    QuarantineRecord,
    get_realm,
    list_quarantine,
    list_realms,
    synced_realms,
)
from qbo_pipeline.steps.common import COUNT_NAMES, RECORD_TAG
from qbo_pipeline.sync.events import with_references
from qbo_pipeline.sync.scope import BusinessDates, imported_on_connect, sync_start

ProgressCallback = Callable[[str], None]


class SyncRunError(Exception):
    """A sync could not start or did not succeed; the message says why and what to do."""


@dataclass(frozen=True)
class SyncResources:
    source_db: SourceDatabase
    state_db: StateDatabase
    qbo: QBOConnection

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncResources:
        return cls(SourceDatabase.from_env(environ), StateDatabase.from_env(environ),
                   QBOConnection.from_env(environ))

    def as_dict(self) -> dict[str, Any]:
        return {"source_db": self.source_db, "state_db": self.state_db, "qbo": self.qbo}


@dataclass(frozen=True)
class SyncReport:
    """One realm's run: its Dagster run id and the counts of each spec's `synced` asset."""

    realm_id: str
    run_id: str
    counts: dict[str, dict[str, int]]  # written to QBO (`<spec>/synced`)
    applied: dict[str, dict[str, int]] = field(default_factory=dict)  # into the source
    # The records given another DisplayName than the source's, one line each.
    renamed: list[str] = field(default_factory=list)
    # The records deleted in the app for a person to delete or void in QuickBooks, one line
    # each (`on_source_delete: report`).
    reported: list[str] = field(default_factory=list)


# --- the company's partition ---------------------------------------------------------------


def register_realm(instance: DagsterInstance, realm_id: str) -> None:
    """Add the realm's partition (the realm sensor does the same on its next tick)."""
    if not instance.has_dynamic_partition(REALM_DIMENSION, realm_id):
        instance.add_dynamic_partitions(REALM_DIMENSION, [realm_id])


def connected_realms(state_db: StateDatabase) -> list[str]:
    with state_db.sessions().begin() as session:
        return [realm.realm_id for realm in list_realms(session)]


def quarantined_rows(state_db: StateDatabase, realm_id: str) -> list[QuarantineRecord]:
    with state_db.sessions().begin() as session:
        rows = list_quarantine(session, realm_id)
        session.expunge_all()
    return rows


# --- running ---------------------------------------------------------------------------------


def chain_keys(specs: SpecSet, spec_name: str | None = None) -> list[AssetKey]:
    """Every asset of the spec and of the specs it refers to, directly or not (all specs when
    no name is given), so the references resolve through links this run writes."""
    names = {spec.name for spec in specs}
    if spec_name is not None and spec_name not in names:
        raise SyncRunError(f"unknown entity {spec_name!r}: the mapping specs define "
                           f"{', '.join(sorted(names))}")
    return spec_asset_keys(specs, names if spec_name is None
                           else with_references(specs, [spec_name]))


def run_sync(specs: SpecSet, resources: SyncResources, instance: DagsterInstance,
             realm_id: str, *, spec_name: str | None = None, record_key: str | None = None,
             dates: BusinessDates | None = None, importing: bool = False,
             progress: ProgressCallback | None = None) -> SyncReport:
    """Materialize the chain of one spec (or every spec) for one realm: every change since
    its cursor (recorded on today's month, or on every month for its first sync), or, given
    `dates`, a backfill of the transactions dated then (recorded on their months), or
    (`importing`) the import on connect of the names lists (recorded on today's month)."""
    if record_key is not None and spec_name is None:
        raise SyncRunError("a single record needs its entity: give --entity with --id")
    register_realm(instance, realm_id)
    mode = IMPORT_MODE if importing else INCREMENTAL_MODE if dates is None else WINDOW_MODE
    tags = {REALM_TAG: realm_id, MODE_TAG: mode, WORKER_TAG: this_worker()}
    if record_key is not None:
        tags[RECORD_TAG] = f"{spec_name}/{record_key}"
    defs = build_defs(specs, resources.as_dict())
    partitions = _run_partitions(resources.state_db, realm_id, dates,
                                 defs.resolve_job_def(sync_job.name).partitions_def, importing)
    # The job the UI shows, so that the run can be found and re-executed there; our logger
    # instead of Dagster's console one: one line per materialization, no debug.
    run_job = defs.resolve_job_def(sync_job.name).with_logger_defs(
        {"progress": _progress_logger(progress)})
    result = run_job.execute_in_process(
        run_config={"loggers": {"progress": {}}}, partition_key=partitions.key,
        instance=instance, tags={**tags, **partitions.tags}, raise_on_error=False,
        asset_selection=import_keys(specs) if importing else chain_keys(specs, spec_name))
    if not result.success:
        raise SyncRunError(f"the sync run {result.run_id} of realm {realm_id} failed: "
                           + "; ".join(_step_failures(result.all_events)))
    return SyncReport(realm_id, result.run_id, synced_counts(result.all_events),
                      synced_counts(result.all_events, "applied"),
                      renamed_records(result.all_events),
                      metadata_lines(result.all_events, REPORTED_RECORDS_METADATA))


def import_keys(specs: SpecSet) -> list[AssetKey]:
    """The assets of the import on connect: the names lists, none of the transactions."""
    imported = {spec.name for spec in specs if imported_on_connect(spec)}
    return [key for key in chain_keys(specs) if key.path[0] in imported]


def _run_partitions(state_db: StateDatabase, realm_id: str, dates: BusinessDates | None,
                    partitions_def: PartitionsDefinition | None,
                    importing: bool = False) -> RunPartitions:
    """The months a run is recorded on: a backfill's, or those its sync covers (an import
    syncs no month: it is recorded on today's)."""
    if dates is not None:
        return RunPartitions(None, {**month_range_tags(realm_id, dates.first, dates.last),
                                    DAYS_TAG: str(dates)})
    assert isinstance(partitions_def, MultiPartitionsDefinition)
    first_month = partitions_def.get_partitions_def_for_dimension(MONTH_DIMENSION)
    assert isinstance(first_month, TimeWindowPartitionsDefinition)
    earliest = first_month.start.date()
    with state_db.sessions().begin() as session:
        realm = get_realm(session, realm_id)
        first_sync = realm_id not in synced_realms(session) and not importing
        start = sync_start(realm.sync_start_date if realm is not None else None, earliest)
    return sync_run_partitions(realm_id, first_sync=first_sync, start=max(start, earliest),
                               today=datetime.now(UTC).date())


def _step_failures(events: Sequence[DagsterEvent]) -> list[str]:
    """Each failed step with its real cause: Dagster wraps the exception our code raised
    (a missing source table, an expired connection) in its own execution error."""
    failures = []
    for event in events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            failures.append(_root_cause(error) if error is not None
                            else f"{event.step_key}: failed, see its logs")
    return failures


class _ErrorInfo(Protocol):
    """The shape of Dagster's serialized error (its message, class and the error it wraps)."""

    @property
    def message(self) -> str: ...

    @property
    def cls_name(self) -> str | None: ...

    @property
    def cause(self) -> _ErrorInfo | None: ...


def _root_cause(error: _ErrorInfo) -> str:
    """The message of the stage that failed (`client/source: the source table ...`), which
    names its asset and the real cause; else the innermost error's."""
    while error.cause is not None and error.cls_name != StageFailed.__name__:
        error = error.cause
    message = error.message.strip()
    # Dagster's message starts with the error's class (`qbo_pipeline....StageFailed: `).
    prefix, _, rest = message.partition(": ")
    return rest if rest and prefix.endswith(str(error.cls_name)) else message


def synced_counts(events: Sequence[DagsterEvent],
                  stage: str = "synced") -> dict[str, dict[str, int]]:
    """The counts each `<spec>/synced` (or other stage's) materialization recorded, by spec."""
    counts: dict[str, dict[str, int]] = {}
    for event in events:
        if not event.is_step_materialization:
            continue
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[-1] == stage:
            metadata = materialization.metadata
            counts[materialization.asset_key.path[0]] = {
                name: int(metadata[name].value)  # type: ignore[arg-type]
                for name in (*COUNT_NAMES, REFUSED_METADATA, RENAMED_METADATA,
                             *IMPORT_METADATA)
                if name in metadata}
    return counts


def renamed_records(events: Sequence[DagsterEvent]) -> list[str]:
    """The lines of the `<spec>/synced` materializations naming each record given another
    DisplayName than the source's (a run over many months records them on each)."""
    return metadata_lines(events, RENAMED_RECORDS_METADATA)


def metadata_lines(events: Sequence[DagsterEvent], name: str) -> list[str]:
    """The lines of one text metadata entry over the run's materializations, each once."""
    lines: dict[str, None] = {}
    for event in events:
        if event.is_step_materialization:
            metadata = event.step_materialization_data.materialization.metadata
            if name in metadata:
                lines.update(dict.fromkeys(str(metadata[name].value).splitlines()))
    return list(lines)


def _progress_logger(progress: ProgressCallback | None) -> LoggerDefinition:
    """A Dagster logger that reports each materialization as one line, and nothing else."""

    def build(_: InitLoggerContext) -> logging.Logger:
        log = logging.Logger("qbo_pipeline.sync", logging.DEBUG)
        if progress is not None:
            log.addHandler(_MaterializationHandler(progress))
        return log

    return LoggerDefinition(build)


class _MaterializationHandler(logging.Handler):
    def __init__(self, progress: ProgressCallback) -> None:
        super().__init__(logging.DEBUG)
        self._progress = progress
        # A run over many months materializes each asset once per partition, all with the
        # same figures (they are the run's, not a month's): one line per asset is enough.
        self._shown: set[AssetKey] = set()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", {})
        event = meta.get("dagster_event")
        if isinstance(event, DagsterEvent) and event.is_step_materialization:
            key = event.step_materialization_data.materialization.asset_key
            if key not in self._shown:
                self._shown.add(key)
                self._progress(describe_materialization(event))
        elif event is None and record.levelno >= logging.INFO:
            # What the assets log themselves: a backfill's progress per day (info), a record
            # QBO refused or a step's error (warnings).
            self._progress(f"    {meta.get('step_key') or ''}: {meta.get('orig_message', '')}")


def describe_materialization(event: DagsterEvent) -> str:
    materialization = event.step_materialization_data.materialization
    metadata = materialization.metadata
    shown = ", ".join(f"{name} {metadata[name].value}" for name in COUNT_NAMES
                      if name in metadata and metadata[name].value)
    if SWITCHED_OFF_METADATA in metadata:
        shown = "switched off for this company"
    elif NOT_PULLED_METADATA in metadata:
        shown = "push only for this company"
    return f"  {materialization.asset_key.to_user_string():<28} {shown or 'nothing to do'}"
