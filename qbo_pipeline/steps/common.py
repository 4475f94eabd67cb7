"""What the assets of a sync hand each other, and the lookups both directions share.

`Stage` (the source rows read), `Fetched` (the QBO records fetched) and `PlanStage` (the plan
and its inputs) are plain data: each asset's function in `push.py` or `pull.py` takes one and
returns the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.specs import EntitySpec, SpecSet
from qbo_pipeline.state import ConflictStatus, get_links
from qbo_pipeline.sync import Plan
from qbo_pipeline.sync.names import CollisionRule, GivenName
from qbo_pipeline.sync.resolutions import Decision
from qbo_pipeline.sync.reverse import ResolveSourceKey
from qbo_pipeline.sync.scope import BusinessDates, ReadScope

# `skipped`: read but out of scope (dated before the sync start date, or left out by a spec
# setting such as approved-only time), so that read = skipped + valid + quarantined.
COUNT_NAMES = ("read", "skipped", "valid", "quarantined", "created", "updated", "unchanged",
               "conflicts", "failed")
RECORD_TAG = "qbo/record"


@dataclass(frozen=True)
class SyncScope:
    """The run's parameters: which company, changes or a range of dates, the clock, one
    record, and the run's id (None outside a Dagster run)."""

    realm_id: str
    incremental: bool
    dates: BusinessDates  # the business dates a backfill re-syncs (its partitions' months)
    until: datetime  # the change window's end: the run's clock less the lag
    record_key: str | None = None  # one source record only: a per-record sync
    run_id: str | None = None  # the Dagster run, recorded with the conflicts it finds
    importing: bool = False  # the import on connect: match and link, write nothing to QBO
    # The specs this run syncs (None: every spec), and the one record a per-record sync
    # names (spec name, key), whichever spec's step reads it: what says which records of the
    # run use an `only_when_used` spec's rows.
    selected: frozenset[str] | None = None
    run_record: tuple[str, str] | None = None
    # A reconciliation run re-reads QBO's changes from here too (`sync.events.qbo_read_since`).
    qbo_reread_since: datetime | None = None

    def runs(self, spec_name: str) -> bool:
        return self.selected is None or spec_name in self.selected

    def record_of(self, spec_name: str) -> str | None:
        """The key a per-record sync names of this spec, if it names one of its records."""
        if self.run_record is None or self.run_record[0] != spec_name:
            return None
        return self.run_record[1]


@dataclass(frozen=True)
class Stage:
    """What one asset hands the next: the rows in play, how they were read, the counts."""

    scope: SyncScope
    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    read: ReadScope | None = None
    # Every row the change window read (quarantined and skipped ones too): key -> stamp,
    # for the cursor rule; and key -> the records it refers to, for held rows.
    stamps: dict[str, datetime] = field(default_factory=dict)
    references: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # raw rows, for pulls
    days: dict[str, date] = field(default_factory=dict)  # key -> business date, for progress

    def counted(self, **counts: int) -> dict[str, int]:
        merged = {name: self.counts.get(name, 0) for name in COUNT_NAMES}
        merged.update(counts)
        return merged


@dataclass(frozen=True)
class Fetched:
    """The QBO records one run fetched for a spec, and when it fetched them: a spec that
    pulls moves its QBO-side cursor there only once they are applied to the source."""

    scope: SyncScope
    records: list[dict[str, Any]]
    fetched_at: datetime


@dataclass(frozen=True)
class PlanStage:
    """The plan of one spec's writes (to QBO, to the source or both), and its inputs."""

    scope: SyncScope
    plan: Plan
    sources: dict[str, dict[str, Any]]
    counts: dict[str, int]
    stage: Stage | None = None  # the source rows read (None for a spec that only pulls)
    fetched: Fetched | None = None
    # The decided conflicts this plan applies: (conflict id, source key).
    decisions: tuple[tuple[int, str], ...] = ()
    # The source stamp of every row in play (those read because QBO changed too): key -> stamp.
    stamps: dict[str, datetime] = field(default_factory=dict)
    # The DisplayNames given in QBO instead of the source's (already in `sources`), and what
    # the company does when QBO refuses one as taken (`sync.names`).
    given_names: dict[str, GivenName] = field(default_factory=dict)
    collision_rule: CollisionRule = CollisionRule.HOLD_BACK


# What a person decides on a conflict, as the state records it and as the core names it.
STATUS_OF = {Decision.KEEP_SOURCE: ConflictStatus.KEPT_SOURCE,
             Decision.APPLY_QBO: ConflictStatus.APPLIED_QBO,
             Decision.DISMISS: ConflictStatus.DISMISSED}
DECISION_OF = {status: decision for decision, status in STATUS_OF.items()}


def record_key_for(spec_name: str, tags: Mapping[str, str]) -> str | None:
    """The one source key a run syncs of this spec (tag `qbo/record` = `<spec>/<key>`)."""
    record = run_record_of(tags)
    return record[1] if record is not None and record[0] == spec_name else None


def run_record_of(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(spec name, source key) of the record a per-record sync names, if it names one."""
    name, _, key = tags.get(RECORD_TAG, "").partition("/")
    return (name, key) if name and key else None


def linked_qbo_ids(specs: SpecSet, session: Session, realm_id: str, qbo_entity: str) -> set[str]:
    """The QBO Ids of `qbo_entity` that any spec links: a record linked by one spec is not free
    for another to match, nor a stray copy."""
    return {link.qbo_id for other in specs.in_dependency_order() if other.qbo_entity == qbo_entity
            for link in get_links(session, realm_id, other.name).values()}


def source_key_resolver(spec: EntitySpec, specs: SpecSet, sessions: sessionmaker[Session],
                        realm_id: str) -> ResolveSourceKey:
    """(spec name, QBO Id) -> the source key linked to it, for pulled references."""
    targets = set(spec.references().values())
    with sessions.begin() as session:
        linked = {(name, link.qbo_id): key for name in targets
                  for key, link in get_links(session, realm_id, name).items()}

    def resolve(spec_name: str, qbo_id: str) -> str | None:
        return linked.get((spec_name, qbo_id))

    return resolve


def ref_entities(specs: SpecSet) -> dict[str, str]:
    return {spec.name: spec.qbo_entity for spec in specs.in_dependency_order()}
