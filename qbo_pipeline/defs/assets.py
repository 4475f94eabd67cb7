"""The asset factory: five assets per mapping spec, source -> validated -> qbo_snapshot -> diff
-> synced, grouped by spec, partitioned by (realm, day).

`synced/<upstream>` comes before `source/<spec>` when the spec refers to the upstream spec
(a project's ParentRef to a client), so references resolve through links already written.
The validation check rides on `validated/<spec>` (a check spec the asset itself reports), so it
sees exactly the rows that asset held back, and a bad row never fails the step.
"""

# No `from __future__ import annotations` here: Dagster reads the asset functions' annotations
# (context and resource types) when the assets are defined.

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
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
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    Output,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from qbo_pipeline.defs.partitions import (
    DAY_DIMENSION,
    INCREMENTAL_MODE,
    MODE_TAG,
    REALM_DIMENSION,
)
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import record_run_result
from qbo_pipeline.steps.push import (
    COUNT_NAMES,
    PlanStage,
    Stage,
    SyncScope,
    execute_plan,
    plan_spec,
    read_source,
    record_key_for,
    refresh_snapshots,
    validate_and_quarantine,
)
from qbo_pipeline.sync.scope import CHANGE_WINDOW_LAG, change_window_end

STAGES = ("source", "validated", "qbo_snapshot", "diff", "synced")
# Of the `failed` records, those held back with QBO's reason (tried again when they change).
REFUSED_METADATA = "held_back"
PREVIEW_ROWS = 5
VALIDATION_CHECK = "no_quarantined_rows"


def asset_key(stage: str, spec_name: str) -> AssetKey:
    return AssetKey([stage, spec_name])


@dataclass(frozen=True)
class AssetContext:
    """What every asset of a build shares: the specs, the partitions, the default start."""

    specs: SpecSet
    partitions: PartitionsDefinition
    default_start: date

    def common(self, spec: EntitySpec, stage: str) -> dict[str, Any]:
        return {"key": asset_key(stage, spec.name), "group_name": spec.name,
                "partitions_def": self.partitions}


def build_entity_assets(spec: EntitySpec, build: AssetContext) -> list[AssetsDefinition]:
    """The five assets of one spec, wired to the `synced` assets of the specs it refers to."""
    upstream = [asset_key("synced", name) for name in sorted(set(spec.references().values()))]
    return [_source_asset(spec, build, upstream), _validated_asset(spec, build),
            _snapshot_asset(spec, build), _diff_asset(spec, build), _synced_asset(spec, build)]


def build_all_assets(specs: SpecSet, partitions: PartitionsDefinition,
                     default_start: date) -> list[AssetsDefinition]:
    pulling = sorted(spec.name for spec in specs.in_dependency_order() if spec.pulls)
    if pulling:
        # The spec format and the sync core know pulls; their assets (qbo_snapshot -> diff ->
        # applied) are not built yet, and a spec must never be accepted and silently ignored.
        raise ValueError(f"mapping spec(s) {', '.join(pulling)} pull from QuickBooks (a pull "
                         "or two_way direction, or fields with direction: pull): the pull "
                         "assets are not built yet, so these specs cannot run; keep them "
                         "push-only for now")
    build = AssetContext(specs, partitions, default_start)
    return [a for spec in specs.in_dependency_order() for a in build_entity_assets(spec, build)]


class SourceClock(Config):
    """When a `source/<spec>` asset reads changes up to (its run config)."""

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
    """The realm and day of the run's partition, whether it syncs changes or a day, and
    where its change window ends."""
    key = context.partition_key
    assert isinstance(key, MultiPartitionKey), f"expected a (realm, day) key, got {key!r}"
    dimensions = key.keys_by_dimension
    incremental = context.run.tags.get(MODE_TAG) == INCREMENTAL_MODE
    clock = clock or SourceClock()
    until = change_window_end(clock.now() or datetime.now(UTC),
                              timedelta(seconds=clock.change_window_lag_seconds))
    return SyncScope(dimensions[REALM_DIMENSION], incremental,
                     date.fromisoformat(dimensions[DAY_DIMENSION]), until)


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


def _snapshot_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    @asset(**build.common(spec, "qbo_snapshot"),
           ins={"validated": AssetIn(asset_key("validated", spec.name))},
           description=f"QBO {spec.qbo_entity} records changed since the last fetch")
    def qbo_snapshot(validated: Stage, state_db: StateDatabase,
                     qbo: QBOConnection) -> MaterializeResult:
        realm_id = validated.scope.realm_id
        sessions = state_db.sessions()
        client = qbo.client(realm_id, sessions)
        try:
            fetched = refresh_snapshots(spec, client, sessions, realm_id, datetime.now(UTC))
        finally:
            client.close()
        rows = pd.DataFrame([{"Id": r.get("Id"), "SyncToken": r.get("SyncToken"),
                              "LastUpdatedTime": r.get("MetaData", {}).get("LastUpdatedTime")}
                             for r in fetched])
        return MaterializeResult(metadata={
            **_counts(validated.counted()), "fetched": len(fetched),
            "preview": MetadataValue.md(markdown_table(rows))})

    return qbo_snapshot


def _diff_asset(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    @asset(**build.common(spec, "diff"),
           ins={"validated": AssetIn(asset_key("validated", spec.name))},
           deps=[asset_key("qbo_snapshot", spec.name)],
           description="three-way diff of source, last synced and QBO: the plan of writes")
    def diff(context: AssetExecutionContext, validated: Stage, state_db: StateDatabase,
             qbo: QBOConnection) -> Output[PlanStage]:
        sessions = state_db.sessions()
        client = qbo.client(validated.scope.realm_id, sessions)
        try:
            planned = plan_spec(spec, build.specs, validated, client, sessions)
        finally:
            client.close()
        plan_rows = pd.DataFrame([{"source_key": w.source_key, "write": w.kind.value,
                                   "qbo_id": w.qbo_id} for w in planned.plan.writes()])
        metadata: dict[str, Any] = {**_counts(planned.counts), **planned.plan.counts(),
                                    "preview": MetadataValue.md(markdown_table(plan_rows))}
        return Output(planned, metadata=metadata)

    return diff


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
        with sessions.begin() as session:
            record_run_result(session, diff.scope.realm_id, spec.name, context.run.run_id, counts,
                              started_at=started, partition_key=context.partition_key)
        for error in tally.errors:
            context.log.warning(error)
        failures = pd.DataFrame({"problem": tally.errors})
        return MaterializeResult(metadata={
            **_counts(counts), REFUSED_METADATA: len(tally.refusals),
            "preview": MetadataValue.md(markdown_table(failures))})

    return synced


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
