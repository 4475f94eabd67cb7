"""The asset factory: the assets of each mapping spec, grouped by spec, partitioned by
(month, realm), made by one step per spec, by the way its data flows:

- push: source -> validated -> qbo_snapshot -> diff -> synced (written to QBO);
- pull: qbo_snapshot -> diff -> applied (written into the source);
- both (two_way, or a pushed spec with pulled fields): source -> validated -> qbo_snapshot ->
  diff -> synced -> applied, one diff deciding both sides.

The last asset of a referenced spec (`client/synced`, or `<spec>/applied` for a spec that
only pulls) comes before the first asset of a spec that refers to it (a project's ParentRef
to a client), so references resolve through links already written.
The validation check rides on `<spec>/validated` (a check spec the step itself reports), so it
sees exactly the rows that stage held back, and a bad row never fails the step.
"""

# No `from __future__ import annotations` here: Dagster reads the asset functions' annotations
# (context and resource types) when the assets are defined.

import functools
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    PartitionsDefinition,
    multi_asset,
)
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.defs.alerts import alert_metadata
from qbo_pipeline.defs.partitions import (
    DAYS_TAG,
    IMPORT_MODE,
    INCREMENTAL_MODE,
    MODE_TAG,
    MONTH_DIMENSION,
    REALM_DIMENSION,
    RECONCILE_SINCE_TAG,
    month_of,
    month_partition_key,
    parse_reconcile_tag,
    run_dates,
)
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.qbo import QBOClient
from qbo_pipeline.review.links import find_duplicates
from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.specs.company_settings import ENABLED
from qbo_pipeline.state import (
    OpenReview,
    get_realm,
    mark_decisions_applied,
    open_quarantine_after_runs,
    open_review,
    record_run_result,
)
from qbo_pipeline.steps.common import (
    COUNT_NAMES,
    Fetched,
    PlanStage,
    Stage,
    SyncScope,
    record_key_for,
    run_record_of,
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
    unlinked_qbo_records,
    validate_and_quarantine,
)
from qbo_pipeline.sync.alerts import GROWING_RUNS, Alert, conflict_alert, quarantine_alert
from qbo_pipeline.sync.plan import import_only
from qbo_pipeline.sync.results import outcomes_by_day
from qbo_pipeline.sync.scope import CHANGE_WINDOW_LAG, change_window_end
from qbo_pipeline.sync.settings import effective, for_company, spec_enabled, switched_off_by
from qbo_pipeline.sync.validation import ValidationResult

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
# Of the `created` and `updated`, those given another DisplayName than the source's (taken in
# QBO by another customer, vendor or employee), and the line naming each (`sync.names`).
RENAMED_METADATA = "renamed"
RENAMED_RECORDS_METADATA = "renamed_records"
# Records deleted in the app that QBO keeps until a person deletes or voids them there
# (`on_source_delete: report`), one line each.
REPORTED_METADATA = "reported"
REPORTED_RECORDS_METADATA = "reported_records"
PREVIEW_ROWS = 5
VALIDATION_CHECK = "no_quarantined_rows"
CONFLICTS_CHECK = "no_open_conflicts"
DUPLICATES_CHECK = "no_likely_duplicates"
SWITCHED_OFF_METADATA = "switched_off"
# A spec that pulls, made push only for a company by its setting (`by_setting`).
NOT_PULLED_METADATA = "not_pulled"
NOT_IN_QBO_METADATA = "not_in_qbo"  # import on connect: source records QBO has no match for
MATCHED_METADATA = "matched"  # import on connect: source records linked to their QBO record
# import on connect: QBO records of the entity that no source record matched (reported only)
UNMATCHED_IN_QBO_METADATA = "unmatched_in_qbo"
IMPORT_METADATA = (MATCHED_METADATA, NOT_IN_QBO_METADATA, UNMATCHED_IN_QBO_METADATA)
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
        # The tags let the UI's asset lists filter by stage or QBO entity
        # (`tag:qbo/stage=synced`).
        return {"key": asset_key(stage, spec.name), "group_name": spec.name,
                "kinds": STAGE_KINDS[stage], "owners": list(self.owners),
                "tags": {"qbo/stage": stage, "qbo/entity": spec.qbo_entity}}


def stages_of(spec: EntitySpec) -> tuple[str, ...]:
    """The assets a spec has, in the order they run."""
    if not spec.pushes:
        return PULL_STAGES
    return (*PUSH_STAGES, "applied") if spec.pulls else PUSH_STAGES


def spec_asset_keys(specs: SpecSet, names: Collection[str]) -> list[AssetKey]:
    """Every asset of the named specs, in dependency order."""
    return [asset_key(stage, spec.name) for spec in specs.in_dependency_order()
            if spec.name in names for stage in stages_of(spec)]


def last_stage(spec: EntitySpec) -> AssetKey:
    return asset_key(stages_of(spec)[-1], spec.name)


def stage_parents(spec: EntitySpec, stage: str,
                  upstream: Sequence[AssetKey]) -> list[AssetKey]:
    """What a stage's asset is made from, as the graph shows it: the stage before it, and for
    a spec's first stage the last asset of each spec it refers to."""
    key = functools.partial(asset_key, spec_name=spec.name)
    parents: dict[str, list[AssetKey]] = {
        "source": list(upstream),
        "validated": [key("source")],
        "qbo_snapshot": [key("validated")] if spec.pushes else list(upstream),
        "diff": [key("validated"), key("qbo_snapshot")] if spec.pushes else [key("qbo_snapshot")],
        "synced": [key("diff")],
        "applied": [key("diff"), key("synced")] if spec.pushes else [key("diff")],
    }
    return parents[stage]


def stage_description(spec: EntitySpec, stage: str) -> str:
    table = spec.source.table
    return {
        "source": f"{table or 'query'} rows in scope, mapped to QBO {spec.qbo_entity} fields",
        "validated": "rows that pass the spec's rules; the others quarantined with reasons",
        "qbo_snapshot": f"QBO {spec.qbo_entity} records changed since the last fetch",
        "diff": "three-way diff of source, last synced and QBO: the plan of writes",
        "synced": f"the plan written to QBO {spec.qbo_entity} in batches, links recorded",
        "applied": f"QBO {spec.qbo_entity} changes written into {table or 'the source'} in "
                   "batches, links and bases recorded",
    }[stage]


def build_entity_assets(spec: EntitySpec, build: AssetContext) -> AssetsDefinition:
    """The assets of one spec, after the last asset of each spec it refers to.

    One step makes them all, in order, each stage handing the next its rows in memory: a
    run's cost is mostly Dagster's per step (its events, its reads of the instance), and a
    stage alone has nothing to start from. The graph still shows a node per stage, and each
    stage's materialization is reported the moment it is done."""
    upstream = [last_stage(build.specs[name])
                for name in sorted(set(spec.references().values()))]
    stages = stages_of(spec)
    checks = [AssetCheckSpec(VALIDATION_CHECK, asset=asset_key("validated", spec.name),
                             description="rows held back in quarantine, with their reasons"),
              AssetCheckSpec(CONFLICTS_CHECK, asset=asset_key("synced", spec.name),
                             description="conflicts waiting for a person's decision, the "
                                         "oldest first (`qbo-pipeline conflicts list`)")]
    if spec.match_key_groups:
        checks.append(AssetCheckSpec(
            DUPLICATES_CHECK, asset=asset_key("synced", spec.name),
            description="QBO records linked to nothing that match a linked one by the match "
                        "keys (`qbo-pipeline links duplicates`)"))

    # One run for a backfill of many months of a company, not one run per month.
    @multi_asset(
        name=spec.name, partitions_def=build.partitions, can_subset=False,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=checks if spec.pushes else [],
        specs=[AssetSpec(deps=stage_parents(spec, stage, upstream),
                         description=stage_description(spec, stage), **build.common(spec, stage))
               for stage in stages])
    def sync_spec(context: AssetExecutionContext, config: SourceClock,
                  source_db: SourceDatabase, state_db: StateDatabase,
                  qbo: QBOConnection) -> Iterator[MaterializeResult | AssetCheckResult]:
        run = SpecRun(spec, build.specs, context, config, state_db.sessions(), source_db.engine())
        client = qbo.client(run.scope.realm_id, run.sessions)
        try:
            yield from run.stages(client, build.default_start)
        finally:
            client.close()

    return sync_spec


def build_all_assets(specs: SpecSet, partitions: PartitionsDefinition, default_start: date,
                     owners: Sequence[str] = ()) -> list[AssetsDefinition]:
    build = AssetContext(specs, partitions, default_start, tuple(owners))
    return [build_entity_assets(spec, build) for spec in specs.in_dependency_order()]


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
    mode = context.run.tags.get(MODE_TAG)
    incremental = mode in (INCREMENTAL_MODE, IMPORT_MODE)
    clock = clock or SourceClock()
    until = change_window_end(clock.now() or datetime.now(UTC),
                              timedelta(seconds=clock.change_window_lag_seconds))
    # The run's assets, when it names them (a run of the whole job, or `materialize` of a
    # list of assets, names none: every asset of the job runs).
    selection = context.run.asset_selection or None
    return SyncScope(realm_id, incremental, run_dates(months, context.run.tags.get(DAYS_TAG)),
                     until, run_id=context.run.run_id, importing=mode == IMPORT_MODE,
                     selected=None if selection is None else frozenset(
                         key.path[0] for key in selection),
                     run_record=run_record_of(context.run.tags),
                     qbo_reread_since=parse_reconcile_tag(
                         context.run.tags.get(RECONCILE_SINCE_TAG)))


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


class StageFailed(Exception):
    """A stage's error, named by its asset (`client/source: ...`): the step runs every stage
    of its spec, so its own name does not say which one failed."""


class SpecRun:
    """One spec's stages in one step, in order: each hands the next what it made, and each is
    materialized (its counts and a preview) as soon as it is done."""

    def __init__(self, spec: EntitySpec, specs: SpecSet, context: AssetExecutionContext,
                 config: SourceClock, sessions: sessionmaker[Session], engine: Engine) -> None:
        self.spec, self.specs, self.context, self.config = spec, specs, context, config
        self.sessions, self.engine = sessions, engine
        scope = scope_of(context, config)
        # `sync --id`: the record named by the run's tags, when it is one of this spec's.
        self.scope = (replace(scope, record_key=record_key_for(spec.name, context.run.tags))
                      if spec.pushes else scope)
        with sessions.begin() as session:
            realm = get_realm(session, scope.realm_id)
        self.settings = effective(specs.settings, realm.settings if realm else None)
        # The company's own templates (a name format it chose) in place of the choices, and
        # what its `by_setting` choice makes of the spec; the assets stay the spec's own.
        self.declared = spec
        self.spec = for_company(spec, self.settings)

    def stages(self, client: QBOClient,
               default_start: date) -> Iterator[MaterializeResult | AssetCheckResult]:
        spec, counts = self.spec, {}
        validated: Stage | None = None
        if not self.enabled():
            yield from self.switched_off()
            return
        if spec.pushes:
            with self.failing_as("source"):
                source = read_source(spec, self.specs, self.engine, self.sessions, client,
                                     self.scope, default_start)
            yield self.materialized("source", _metadata(source.counted(), source.frame, spec))
            with self.failing_as("validated"):
                validated, result = validate_and_quarantine(spec, source, self.sessions)
            counts = validated.counted()
            yield self.materialized("validated", _metadata(counts, validated.frame, spec))
            yield _validation_check(spec, result, self.quarantine_alert())
        with self.failing_as("qbo_snapshot"):
            fetched = refresh_snapshots(spec, client, self.sessions,
                                        validated.scope if validated else self.scope,
                                        self.config.now() or datetime.now(UTC))
        yield self.materialized("qbo_snapshot", _snapshot_metadata(fetched, counts))
        with self.failing_as("diff"):
            planned = (plan_spec(spec, self.specs, validated, client, self.sessions,
                                 self.engine, fetched, fetched.fetched_at)
                       if validated is not None else
                       plan_pulled(spec, self.specs, fetched, self.engine, self.sessions))
        imported: dict[str, int] = {}
        if spec.pushes and self.scope.importing:
            # The import on connect links what matched and reports the rest; it writes nothing.
            imported = {MATCHED_METADATA: len(planned.plan.links),
                        NOT_IN_QBO_METADATA: len(planned.plan.creates)}
            planned = replace(planned, plan=import_only(planned.plan))
        yield self.materialized("diff", _plan_metadata(spec, planned))
        if spec.pushes:
            with self.failing_as("synced"):
                metadata = {**self.write_to_qbo(planned, client), **imported}
                if self.scope.importing:
                    metadata[UNMATCHED_IN_QBO_METADATA] = self.unmatched_in_qbo()
                review = self.open_review()
            yield self.materialized("synced", {**metadata, **_open_metadata(review)})
            yield _conflicts_check(spec, review, self.scope.realm_id)
            if spec.match_key_groups:
                yield self.duplicates_check()
        if spec.pulls:
            with self.failing_as("applied"):
                metadata = self.write_to_source(planned)
            yield self.materialized("applied", metadata)
        elif self.declared.pulls:
            yield self.materialized("applied", {
                **_counts({}), NOT_PULLED_METADATA: self.not_pulled_note(),
                "preview": MetadataValue.md(markdown_table(pd.DataFrame()))})

    def enabled(self) -> bool:
        return spec_enabled(self.spec, self.settings)

    def not_pulled_note(self) -> str:
        chosen = self.declared.by_setting
        setting = f"setting {chosen.setting}" if chosen is not None else "settings"
        return (f"nothing comes back from QuickBooks for company {self.scope.realm_id}: its "
                f"{setting} makes {self.spec.name} push only")

    def switched_off(self) -> Iterator[MaterializeResult | AssetCheckResult]:
        """A spec the company does not sync: each stage says so, nothing is read or written;
        what still waits for a person is checked as on any run."""
        spec = self.spec
        key = switched_off_by(spec, self.settings) or f"{spec.name}.{ENABLED}"
        note = (f"not synced: {key} is off for company {self.scope.realm_id} "
                f"(turn it on with `qbo-pipeline settings --realm {self.scope.realm_id} set "
                f"{key} true`)")
        # An empty preview too: every stage's materialization shows one (a spec off by
        # default, such as the credit memos, is switched off on most runs).
        empty = MetadataValue.md(markdown_table(pd.DataFrame()))
        for stage in stages_of(self.declared):
            yield self.materialized(stage, {**_counts({}), SWITCHED_OFF_METADATA: note,
                                            "preview": empty})
        if spec.pushes:
            yield AssetCheckResult(asset_key=asset_key("validated", spec.name),
                                   check_name=VALIDATION_CHECK, passed=True,
                                   severity=AssetCheckSeverity.WARN,
                                   metadata={"quarantined": 0, SWITCHED_OFF_METADATA: note})
            yield _conflicts_check(spec, self.open_review(), self.scope.realm_id)
            if spec.match_key_groups:
                yield self.duplicates_check()

    def materialized(self, stage: str, metadata: Mapping[str, Any]) -> MaterializeResult:
        return MaterializeResult(asset_key=asset_key(stage, self.spec.name), metadata=metadata)

    @contextmanager
    def failing_as(self, stage: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            key = asset_key(stage, self.spec.name).to_user_string()
            raise StageFailed(f"{key}: {error}") from error

    def write_to_qbo(self, diff: PlanStage, client: QBOClient) -> dict[str, Any]:
        spec, context = self.spec, self.context
        started = pd.Timestamp.now(tz="UTC").to_pydatetime()
        counts, tally = execute_plan(spec, diff, client, self.sessions)
        _record(context, self.sessions, diff, spec.name, counts, started)
        # The conflicts a person decided, applied by this run (a write that failed for a
        # passing reason leaves its decision to the next run).
        settled = set(tally.settled(key for _, key in diff.decisions))
        if settled:
            with self.sessions.begin() as session:
                mark_decisions_applied(session, diff.scope.realm_id, [
                    conflict for conflict, key in diff.decisions if key in settled],
                    context.run.run_id)
        for error in tally.errors:
            context.log.warning(error)
        renamed = [record.describe(spec.record_label) for record in tally.renamed]
        for line in renamed:
            context.log.info(line)
        for line in tally.reported:
            context.log.warning(line)
        if diff.stage is not None and diff.stage.days:
            _report_days(context, asset_key("synced", spec.name),
                         outcomes_by_day(diff.stage.days, tally.rows))
        # What was written: source key, QBO Id, operation and result, failures first.
        written = pd.DataFrame([asdict(row) for row in sorted(
            tally.rows, key=lambda row: row.result in ("created", "written"))],
            columns=["source_key", "qbo_id", "operation", "result"])
        return {**_counts(counts), REFUSED_METADATA: len(tally.refusals),
                RENAMED_METADATA: len(renamed),
                **({RENAMED_RECORDS_METADATA: MetadataValue.text("\n".join(renamed))}
                   if renamed else {}),
                REPORTED_METADATA: len(tally.reported),
                **({REPORTED_RECORDS_METADATA: MetadataValue.text("\n".join(tally.reported))}
                   if tally.reported else {}),
                "preview": MetadataValue.md(markdown_table(written, limit=20, width=80))}

    def unmatched_in_qbo(self) -> int:
        with self.sessions.begin() as session:
            return len(unlinked_qbo_records(self.spec, self.specs, session,
                                            self.scope.realm_id))

    def quarantine_alert(self) -> Alert | None:
        """Whether the spec's quarantine keeps growing or is too big, after this validation
        (this run's own result is recorded later, at `synced`)."""
        realm_id = self.scope.realm_id
        with self.sessions.begin() as session:
            before = open_quarantine_after_runs(session, realm_id, self.spec.name,
                                                GROWING_RUNS)
            now = open_review(session, realm_id, self.spec.name).quarantined
        return quarantine_alert(realm_id, self.spec.name, before, now)

    def open_review(self) -> OpenReview:
        with self.sessions.begin() as session:
            return open_review(session, self.scope.realm_id, self.spec.name)

    def duplicates_check(self) -> AssetCheckResult:
        """Likely duplicates of the spec's records among those fetched, for a person to void
        or relink (nothing is done to them)."""
        spec = self.spec
        found = pd.DataFrame([view.to_json() for view in find_duplicates(
            self.sessions, self.specs, realm_id=self.scope.realm_id, entity=spec.name)],
            columns=["source_key", "qbo_id", "duplicate_qbo_id", "duplicate_name"])
        return AssetCheckResult(
            asset_key=asset_key("synced", spec.name), check_name=DUPLICATES_CHECK,
            passed=found.empty, severity=AssetCheckSeverity.WARN,
            metadata={"likely_duplicates": len(found),
                      "where_to_repair": f"qbo-pipeline links duplicates --entity {spec.name}",
                      "rows": MetadataValue.md(markdown_table(found, limit=50, width=80))})

    def write_to_source(self, diff: PlanStage) -> dict[str, Any]:
        started = pd.Timestamp.now(tz="UTC").to_pydatetime()
        counts, tally = apply_source_writes(self.spec, diff, self.engine, self.sessions)
        _record(self.context, self.sessions, diff, pull_quarantine_name(self.spec), counts,
                started)
        for error in tally.errors:
            self.context.log.warning(error)
        return {**_counts(counts), **diff.plan.pull_counts(),
                "preview": MetadataValue.md(markdown_table(pd.DataFrame(applied_rows(diff, tally)),
                                                           width=60))}


def _validation_check(spec: EntitySpec, result: ValidationResult,
                      alert: Alert | None = None) -> AssetCheckResult:
    """A warning when this run held rows back; an error (an alert) when the quarantine keeps
    growing or is over its threshold."""
    problems = result.quarantine_frame()
    metadata: dict[str, Any] = {
        "quarantined": len(result.quarantined),
        "rows": MetadataValue.md(markdown_table(problems, limit=50, width=300))}
    return _alerting_check(asset_key("validated", spec.name), VALIDATION_CHECK,
                           problems.empty, metadata, alert)


def _alerting_check(key: AssetKey, name: str, passed: bool, metadata: dict[str, Any],
                    alert: Alert | None) -> AssetCheckResult:
    """The check's own warning, raised to a failed error carrying the alert when its rule
    says so: the UI shows it red, and the `check_alerts` sensor sends it on."""
    if alert is None:
        return AssetCheckResult(asset_key=key, check_name=name, passed=passed,
                                severity=AssetCheckSeverity.WARN, metadata=metadata)
    return AssetCheckResult(asset_key=key, check_name=name, passed=False,
                            severity=AssetCheckSeverity.ERROR, description=alert.text(),
                            metadata={**metadata, **alert_metadata(alert)})


def _open_metadata(review: OpenReview) -> dict[str, int]:
    """Not only this run's news: everything of the spec still waiting for a person."""
    return {"open_conflicts": review.conflicts, "open_quarantined": review.quarantined}


def _conflicts_check(spec: EntitySpec, review: OpenReview, realm_id: str) -> AssetCheckResult:
    """A warning while conflicts wait; an error (an alert) once one waited too long."""
    now = datetime.now(UTC)
    metadata: dict[str, Any] = {
        "open_conflicts": review.conflicts,
        "where_to_decide": f"qbo-pipeline conflicts list --entity {spec.name}"}
    if review.oldest_conflict is not None:
        age = now - review.oldest_conflict
        metadata["oldest_age_hours"] = round(age.total_seconds() / 3600, 1)
    alert = conflict_alert(realm_id, spec.name, review.conflicts, review.oldest_conflict, now)
    return _alerting_check(asset_key("synced", spec.name), CONFLICTS_CHECK,
                           review.conflicts == 0, metadata, alert)


def _snapshot_metadata(fetched: Fetched, counts: Mapping[str, int]) -> dict[str, Any]:
    rows = pd.DataFrame([{"Id": r.get("Id"), "SyncToken": r.get("SyncToken"),
                          "LastUpdatedTime": r.get("MetaData", {}).get("LastUpdatedTime"),
                          "status": r.get("status", "")} for r in fetched.records])
    # A spec that only pulls has no source counts to carry: it read what QBO sent.
    shown = counts or {"read": len(fetched.records), "valid": len(fetched.records)}
    return {**_counts(shown), "fetched": len(fetched.records),
            "preview": MetadataValue.md(markdown_table(rows))}


def _plan_metadata(spec: EntitySpec, planned: PlanStage) -> dict[str, Any]:
    plan_rows = pd.DataFrame(
        [{"source_key": w.source_key, "write": w.kind.value, "qbo_id": w.qbo_id}
         for w in planned.plan.writes()]
        + [{"source_key": w.source_key or "(new)", "write": f"source {w.kind.value}",
            "qbo_id": w.qbo_id} for w in planned.plan.source_writes])
    metadata: dict[str, Any] = {**_counts(planned.counts), **planned.plan.counts(),
                                "preview": MetadataValue.md(markdown_table(plan_rows))}
    if spec.pulls:
        metadata.update(planned.plan.pull_counts())
    return metadata


def _record(context: AssetExecutionContext, sessions: sessionmaker[Session], stage: PlanStage,
            name: str, counts: Mapping[str, int], started: datetime) -> None:
    with sessions.begin() as session:
        record_run_result(session, stage.scope.realm_id, name, context.run.run_id, counts,
                          started_at=started, partition_key=_partitions_label(context))


def _report_days(context: AssetExecutionContext, key: AssetKey,
                 by_day: Mapping[date, Mapping[str, int]]) -> None:
    """A backfill's progress and status per business day: a log line per month, and on each
    month partition of the run an observation whose `days` table has a row per day."""
    realm_id, months = realm_and_months(context)
    first, last = months[0], months[-1]
    for month in sorted({month_of(day) for day in by_day}):
        days = {day: row for day, row in by_day.items() if month_of(day) == month}
        context.log.info(f"{key.path[0]} {month}: " + "; ".join(
            f"{day.isoformat()} " + ", ".join(f"{name} {n}" for name, n in row.items() if n)
            for day, row in days.items()))
        if not first <= month <= last:
            continue  # an incremental run's change of an older record: in the log only
        table = pd.DataFrame([{"day": day.isoformat(), **row} for day, row in days.items()])
        context.log_event(AssetObservation(
            asset_key=key, partition=str(month_partition_key(realm_id, month)),
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
