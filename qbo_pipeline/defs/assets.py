"""The asset factory: the assets of each mapping spec, grouped by spec, partitioned by
(realm, day), by the way its data flows:

- push: source -> validated -> qbo_snapshot -> diff -> synced (written to QBO);
- pull: qbo_snapshot -> diff -> applied (written into the source);
- both (two_way, or a pushed spec with pulled fields): source -> validated -> qbo_snapshot ->
  diff -> synced -> applied, one diff deciding both sides.

The last asset of a referenced spec (`client/synced`, or `<spec>/applied` for a spec that
only pulls) comes before the first asset of a spec that refers to it (a project's ParentRef
to a client), so references resolve through links already written.
The validation check rides on `<spec>/validated` (a check spec the asset itself reports), so it
sees exactly the rows that asset held back, and a bad row never fails the step.
"""

# No `from __future__ import annotations` here: Dagster reads the asset functions' annotations
# (context and resource types) when the assets are defined.

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    Output,
    PartitionsDefinition,
    asset,
)
from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.defs.partitions import (
    DAYS_TAG,
    INCREMENTAL_MODE,
    MODE_TAG,
    MONTH_DIMENSION,
    REALM_DIMENSION,
    month_of,
    month_partition_key,
    run_dates,
)
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import record_run_result
from qbo_pipeline.steps.common import (
    COUNT_NAMES,
    Fetched,
    PlanStage,
    Stage,
    SyncScope,
    record_key_for,
)
from qbo_pipeline.steps.pull import (
    applied_rows,
    apply_source_writes,
    plan_pulled,
    pull_quarantine_name,
)
from qbo_pipeline.steps.push import (
    execute_plan,
    plan_spec,
    read_source,
    refresh_snapshots,
    validate_and_quarantine,
)
from qbo_pipeline.sync.results import outcomes_by_day
from qbo_pipeline.sync.scope import CHANGE_WINDOW_LAG, change_window_end

# Backfill policies are Dagster's way to run a backfill in one run; they are marked beta, and
# the warning would repeat for every asset of every build.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy")

PUSH_STAGES = ("source", "validated", "qbo_snapshot", "diff", "synced")
# What the UI shows on each node beside its stage: the technology at work there.
STAGE_KINDS = {"source": {"sql", "pandas"}, "validated": {"pandera"},
               "qbo_snapshot": {"quickbooks"}, "diff": {"python"}, "synced": {"quickbooks"},
               "applied": {"sql"}}
PULL_STAGES = ("qbo_snapshot", "diff", "applied")
# Of the `failed` records, those held back with QBO's reason (tried again when they change).
REFUSED_METADATA = "held_back"
PREVIEW_ROWS = 5
VALIDATION_CHECK = "no_quarantined_rows"
# The per-day status a run records on each month partition it covered.
DAYS_METADATA = "days"


def asset_key(stage: str, spec_name: str) -> AssetKey:
    """`client/validated`: the graph labels a node by the key's last part, so the stage is
    what each node shows, inside the group of its spec."""
    return AssetKey([spec_name, stage])


@dataclass(frozen=True)
class AssetContext:
    """What every asset of a build shares: the specs, the partitions, the default start, and
    who owns the pipeline's assets (shown on every asset in the UI)."""

    specs: SpecSet
    partitions: PartitionsDefinition
    default_start: date
    owners: tuple[str, ...] = ()

    def common(self, spec: EntitySpec, stage: str) -> dict[str, Any]:
        # One run for a backfill of many months of a company, not one run per month. The tags
        # let the UI's asset lists filter by stage or QBO entity (`tag:qbo/stage=synced`).
        return {"key": asset_key(stage, spec.name), "group_name": spec.name,
                "partitions_def": self.partitions, "kinds": STAGE_KINDS[stage],
                "backfill_policy": BackfillPolicy.single_run(), "owners": list(self.owners),
                "tags": {"qbo/stage": stage, "qbo/entity": spec.qbo_entity}}


def stages_of(spec: EntitySpec) -> tuple[str, ...]:
    """The assets a spec has, in the order they run."""
    if not spec.pushes:
        return PULL_STAGES
    return (*PUSH_STAGES, "applied") if spec.pulls else PUSH_STAGES


def last_stage(spec: EntitySpec) -> AssetKey:
    return asset_key(stages_of(spec)[-1], spec.name)


def build_entity_assets(spec: EntitySpec, build: AssetContext) -> list[AssetsDefinition]:
    """The assets of one spec, after the last asset of each spec it refers to."""
    upstream = [last_stage(build.specs[name])
                for name in sorted(set(spec.references().values()))]
    factories: dict[str, Any] = {
        "source": lambda: _source_asset(spec, build, upstream),
        "validated": lambda: _validated_asset(spec, build),
        "qbo_snapshot": lambda: _snapshot_asset(spec, build, upstream),
        "diff": lambda: _diff_asset(spec, build),
        "synced": lambda: _synced_asset(spec, build),
        "applied": lambda: _applied_asset(spec, build),
    }
    return [factories[stage]() for stage in stages_of(spec)]


def build_all_assets(specs: SpecSet, partitions: PartitionsDefinition, default_start: date,
                     owners: Sequence[str] = ()) -> list[AssetsDefinition]:
    build = AssetContext(specs, partitions, default_start, tuple(owners))
    return [a for spec in specs.in_dependency_order() for a in build_entity_assets(spec, build)]


class SourceClock(Config):
    """When a `<spec>/source` asset reads changes up to (its run config)."""

    as_of: str | None = Field(default=None, description=(
        "read source changes as of this moment, ISO 8601 (UTC unless it names an offset), "
        "e.g. to re-run a past tick; default: the clock"))
    change_window_lag_seconds: float = Field(
        default=CHANGE_WINDOW_LAG.total_seconds(), ge=0, description=(
            "the change window ends this long before `as_of`, so rows stamped by transactions "
            "still committing are read by the next run instead of missed"))

    def now(self) -> datetime | None:
        if self.as_of is None:
            return None
        try:
            moment = datetime.fromisoformat(self.as_of)
        except ValueError:
            raise ValueError(f"run config as_of={self.as_of!r} is not a moment: write it as "
                             "ISO 8601, e.g. 2024-05-02T00:05:00Z") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def scope_of(context: AssetExecutionContext, clock: SourceClock | None = None) -> SyncScope:
    """The realm and months of the run's partitions (one, or a backfill's range), whether it
    syncs changes or those dates, and where its change window ends."""
    realm_id, months = realm_and_months(context)
    incremental = context.run.tags.get(MODE_TAG) == INCREMENTAL_MODE
    clock = clock or SourceClock()
    until = change_window_end(clock.now() or datetime.now(UTC),
                              timedelta(seconds=clock.change_window_lag_seconds))
    return SyncScope(realm_id, incremental, run_dates(months, context.run.tags.get(DAYS_TAG)),
                     until)


def realm_and_months(context: AssetExecutionContext) -> tuple[str, list[str]]:
    """(realm, first and last month) of the run's partitions; a run syncs one company.

    Read from the range's ends: listing a range's keys needs the instance's dynamic partitions,
    which a launched run's step may not reach."""
    keys = context.partition_key_range
    first, last = _dimensions(keys.start), _dimensions(keys.end)
    if first[REALM_DIMENSION] != last[REALM_DIMENSION]:
        raise ValueError(f"a sync run covers one company, this one {first[REALM_DIMENSION]} to "
                         f"{last[REALM_DIMENSION]}: launch one run (or backfill) per company")
    return first[REALM_DIMENSION], sorted({first[MONTH_DIMENSION], last[MONTH_DIMENSION]})


def _dimensions(key: str) -> Mapping[str, str]:
    if isinstance(key, MultiPartitionKey):
        return key.keys_by_dimension
    # A multi-partition key in text: the dimensions' values in the order of their names.
    month, _, realm = key.partition("|")
    return {MONTH_DIMENSION: month, REALM_DIMENSION: realm}


def _source_asset(spec: EntitySpec, build: AssetContext,
                  upstream: Sequence[AssetKey]) -> AssetsDefinition:
    @asset(**build.common(spec, "source"), deps=list(upstream),
           description=f"{spec.source.table or 'query'} rows in scope, mapped to QBO "
                       f"{spec.qbo_entity} fields")
    def source(context: AssetExecutionContext, config: SourceClock, source_db: SourceDatabase,
               state_db: StateDatabase, qbo: QBOConnection) -> Output[Stage]:
        scope = replace(scope_of(context, config),
                        record_key=record_key_for(spec.name, context.run.tags))
        sessions = state_db.sessions()
        client = qbo.client(scope.realm_id, sessions)
        try:
            stage = read_source(spec, build.specs, source_db.engine(), sessions, client, scope,
                                build.default_start)
        finally:
            client.close()
        return Output(stage, metadata=_metadata(stage.counted(), stage.frame, spec))

    return source


def _validated_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    source_key = asset_key("source", spec.name)
    check = AssetCheckSpec(VALIDATION_CHECK, asset=asset_key("validated", spec.name),
                           description="rows held back in quarantine, with their reasons")

    @asset(**build.common(spec, "validated"), ins={"source": AssetIn(source_key)},
           check_specs=[check],
           description="rows that pass the spec's rules; the others quarantined with reasons")
    def validated(source: Stage, state_db: StateDatabase) -> Iterator[Output[Stage] |
                                                                       AssetCheckResult]:
        stage, result = validate_and_quarantine(spec, source, state_db.sessions())
        yield Output(stage, metadata=_metadata(stage.counted(), stage.frame, spec))
        problems = result.quarantine_frame()
        yield AssetCheckResult(
            check_name=VALIDATION_CHECK, passed=problems.empty,
            severity=AssetCheckSeverity.WARN,
            metadata={"quarantined": len(result.quarantined),
                      "rows": MetadataValue.md(markdown_table(problems, limit=50, width=300))})

    return validated


def _snapshot_asset(spec: EntitySpec, build: AssetContext,
                    upstream: Sequence[AssetKey]) -> AssetsDefinition:
    """After the rows are validated when the spec pushes; a spec that only pulls starts here,
    after the specs it refers to."""
    common = {**build.common(spec, "qbo_snapshot"),
              "description": f"QBO {spec.qbo_entity} records changed since the last fetch"}

    def fetch(scope: SyncScope, config: SourceClock, state_db: StateDatabase,
              qbo: QBOConnection, counts: Mapping[str, int]) -> Output[Fetched]:
        sessions = state_db.sessions()
        client = qbo.client(scope.realm_id, sessions)
        try:
            fetched = refresh_snapshots(spec, client, sessions, scope,
                                        config.now() or datetime.now(UTC))
        finally:
            client.close()
        rows = pd.DataFrame([{"Id": r.get("Id"), "SyncToken": r.get("SyncToken"),
                              "LastUpdatedTime": r.get("MetaData", {}).get("LastUpdatedTime"),
                              "status": r.get("status", "")} for r in fetched.records])
        # A spec that only pulls has no source counts to carry: it read what QBO sent.
        shown = counts or {"read": len(fetched.records), "valid": len(fetched.records)}
        return Output(fetched, metadata={
            **_counts(shown), "fetched": len(fetched.records),
            "preview": MetadataValue.md(markdown_table(rows))})

    if not spec.pushes:
        @asset(**common, deps=list(upstream))
        def qbo_snapshot_of_pull(context: AssetExecutionContext, config: SourceClock,
                                 state_db: StateDatabase,
                                 qbo: QBOConnection) -> Output[Fetched]:
            return fetch(scope_of(context, config), config, state_db, qbo, {})

        return qbo_snapshot_of_pull

    @asset(**common, ins={"validated": AssetIn(asset_key("validated", spec.name))})
    def qbo_snapshot(validated: Stage, config: SourceClock, state_db: StateDatabase,
                     qbo: QBOConnection) -> Output[Fetched]:
        return fetch(validated.scope, config, state_db, qbo, validated.counted())

    return qbo_snapshot


def _diff_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    common = {**build.common(spec, "diff"),
              "description": "three-way diff of source, last synced and QBO: the plan of writes"}
    snapshot = AssetIn(asset_key("qbo_snapshot", spec.name))

    if not spec.pushes:
        @asset(**common, ins={"qbo_snapshot": snapshot})
        def diff_of_pull(qbo_snapshot: Fetched, source_db: SourceDatabase,
                         state_db: StateDatabase) -> Output[PlanStage]:
            return _plan_output(spec, plan_pulled(spec, build.specs, qbo_snapshot,
                                                  source_db.engine(), state_db.sessions()))

        return diff_of_pull

    @asset(**common, ins={"validated": AssetIn(asset_key("validated", spec.name)),
                          "qbo_snapshot": snapshot})
    def diff(validated: Stage, qbo_snapshot: Fetched, source_db: SourceDatabase,
             state_db: StateDatabase, qbo: QBOConnection) -> Output[PlanStage]:
        sessions = state_db.sessions()
        client = qbo.client(validated.scope.realm_id, sessions)
        try:
            planned = plan_spec(spec, build.specs, validated, client, sessions,
                                source_db.engine(), qbo_snapshot, qbo_snapshot.fetched_at)
        finally:
            client.close()
        return _plan_output(spec, planned)

    return diff


def _plan_output(spec: EntitySpec, planned: PlanStage) -> Output[PlanStage]:
    plan_rows = pd.DataFrame(
        [{"source_key": w.source_key, "write": w.kind.value, "qbo_id": w.qbo_id}
         for w in planned.plan.writes()]
        + [{"source_key": w.source_key or "(new)", "write": f"source {w.kind.value}",
            "qbo_id": w.qbo_id} for w in planned.plan.source_writes])
    metadata: dict[str, Any] = {**_counts(planned.counts), **planned.plan.counts(),
                                "preview": MetadataValue.md(markdown_table(plan_rows))}
    if spec.pulls:
        metadata.update(planned.plan.pull_counts())
    return Output(planned, metadata=metadata)


def _synced_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    @asset(**build.common(spec, "synced"), ins={"diff": AssetIn(asset_key("diff", spec.name))},
           description=f"the plan written to QBO {spec.qbo_entity} in batches, links recorded")
    def synced(context: AssetExecutionContext, diff: PlanStage, state_db: StateDatabase,
               qbo: QBOConnection) -> MaterializeResult:
        sessions = state_db.sessions()
        client = qbo.client(diff.scope.realm_id, sessions)
        started = pd.Timestamp.now(tz="UTC").to_pydatetime()
        try:
            counts, tally = execute_plan(spec, diff, client, sessions)
        finally:
            client.close()
        _record(context, sessions, diff, spec.name, counts, started)
        for error in tally.errors:
            context.log.warning(error)
        if diff.stage is not None and diff.stage.days:
            _report_days(context, spec, outcomes_by_day(diff.stage.days, tally.rows))
        # What was written: source key, QBO Id, operation and result, failures first.
        written = pd.DataFrame([asdict(row) for row in sorted(
            tally.rows, key=lambda row: row.result in ("created", "written"))],
            columns=["source_key", "qbo_id", "operation", "result"])
        return MaterializeResult(metadata={
            **_counts(counts), REFUSED_METADATA: len(tally.refusals),
            "preview": MetadataValue.md(markdown_table(written, limit=20, width=80))})

    return synced


def _applied_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    # After the QBO writes of a spec that also pushes: both update the same links.
    deps = [asset_key("synced", spec.name)] if spec.pushes else []

    @asset(**build.common(spec, "applied"), ins={"diff": AssetIn(asset_key("diff", spec.name))},
           deps=deps, description=(
               f"QBO {spec.qbo_entity} changes written into {spec.source.table or 'the source'}"
               " in batches, links and bases recorded"))
    def applied(context: AssetExecutionContext, diff: PlanStage, source_db: SourceDatabase,
                state_db: StateDatabase) -> MaterializeResult:
        sessions = state_db.sessions()
        started = pd.Timestamp.now(tz="UTC").to_pydatetime()
        counts, tally = apply_source_writes(spec, diff, source_db.engine(), sessions)
        _record(context, sessions, diff, pull_quarantine_name(spec), counts, started)
        for error in tally.errors:
            context.log.warning(error)
        return MaterializeResult(metadata={
            **_counts(counts), **diff.plan.pull_counts(),
            "preview": MetadataValue.md(markdown_table(pd.DataFrame(applied_rows(diff, tally)),
                                                       width=60))})

    return applied


def _record(context: AssetExecutionContext, sessions: sessionmaker[Session], stage: PlanStage,
            name: str, counts: Mapping[str, int], started: datetime) -> None:
    with sessions.begin() as session:
        record_run_result(session, stage.scope.realm_id, name, context.run.run_id, counts,
                          started_at=started, partition_key=_partitions_label(context))


def _report_days(context: AssetExecutionContext, spec: EntitySpec,
                 by_day: Mapping[date, Mapping[str, int]]) -> None:
    """A backfill's progress and status per business day: a log line per month, and on each
    month partition of the run an observation whose `days` table has a row per day."""
    realm_id, months = realm_and_months(context)
    first, last = months[0], months[-1]
    for month in sorted({month_of(day) for day in by_day}):
        days = {day: row for day, row in by_day.items() if month_of(day) == month}
        context.log.info(f"{spec.name} {month}: " + "; ".join(
            f"{day.isoformat()} " + ", ".join(f"{name} {n}" for name, n in row.items() if n)
            for day, row in days.items()))
        if not first <= month <= last:
            continue  # an incremental run's change of an older record: in the log only
        table = pd.DataFrame([{"day": day.isoformat(), **row} for day, row in days.items()])
        context.log_event(AssetObservation(
            asset_key=context.asset_key, partition=str(month_partition_key(realm_id, month)),
            metadata={DAYS_METADATA: MetadataValue.md(markdown_table(table, limit=31)),
                      "days_with_failures": int((table["failed"] > 0).sum())}))


def _partitions_label(context: AssetExecutionContext) -> str:
    """`2025-03|R`, or `2024-01|R..2025-12|R` for a run over a range of months."""
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"


def _counts(counts: Mapping[str, int]) -> dict[str, int]:
    return {name: int(counts.get(name, 0)) for name in COUNT_NAMES}


def _metadata(counts: Mapping[str, int], frame: pd.DataFrame,
              spec: EntitySpec) -> dict[str, Any]:
    shown = [column for column in ("source_key", *spec.fields) if column in frame.columns]
    return {**_counts(counts),
            "preview": MetadataValue.md(markdown_table(frame[shown[:6]]))}


def markdown_table(frame: pd.DataFrame, limit: int = PREVIEW_ROWS, width: int = 40) -> str:
    """The first rows of a frame as a Markdown table (values cut to `width` characters)."""
    if frame.empty:
        return "_no rows_"
    columns = [str(column) for column in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in frame.head(limit).itertuples(index=False):
        cells = [_cell(value, width) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows_")
    return "\n".join(lines)


def _cell(value: Any, width: int) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"
