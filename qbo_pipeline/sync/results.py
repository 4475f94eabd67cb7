"""What each QBO answer to a write means for the state: the new link and base, the tally.

After a create or update, the fields the write settled (what it sent, and what both sides
already held) go into the base of the next three-way diff, and the link records QBO's Id and
new SyncToken. After a void, inactivation or delete
the base stays what it was and the link records that the delete action ran, so it is not
sent again. A write QBO refused for good is held back with QBO's reason (`Refusal`): it is
counted as failed once, the cursor moves on, and it is retried when the row or a record it
refers to changes. A write refused as stale is re-diffed (`stale.py`). A write that failed
for a passing reason is retried by the next run.

`qbo_operation` names the QBO operation of each kind of write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from qbo_pipeline.specs import EntitySpec
from qbo_pipeline.sync.diff import RecordAction, compared_fields, diff_record
from qbo_pipeline.sync.ids import payload_hash
from qbo_pipeline.sync.plan import Write, WriteKind
from qbo_pipeline.sync.pull import settle_base
from qbo_pipeline.sync.values import get_path

QboOperation = Literal["create", "update", "void", "delete"]

_OPERATIONS: dict[WriteKind, QboOperation] = {
    WriteKind.CREATE: "create", WriteKind.UPDATE: "update",
    # QBO has no "inactivate": a names-list record is made inactive by a sparse update.
    WriteKind.INACTIVATE: "update", WriteKind.VOID: "void", WriteKind.DELETE: "delete",
}
_WRITES_PAYLOAD = frozenset({WriteKind.CREATE, WriteKind.UPDATE})


def qbo_operation(kind: WriteKind) -> QboOperation:
    return _OPERATIONS[kind]


class Fate(StrEnum):
    """What became of one write."""

    WRITTEN = "written"
    STALE = "stale"  # refused for a stale SyncToken: re-read and re-diff
    REFUSED = "refused"  # refused for its content: held back with QBO's reason
    FAILED = "failed"  # a passing failure: the next run tries again


@dataclass(frozen=True)
class Answer:
    """QBO's answer to one write, as plain data (the adapter classifies the error)."""

    record: Mapping[str, Any] | None = None
    error: str | None = None
    stale: bool = False
    refused: bool = False
    # QBO refused the DisplayName as taken (6240); `taken_by`: the Id of the record holding it.
    name_taken: bool = False
    taken_by: str | None = None
    # The company's QBO plan lacks the entity (5020): the plan to upgrade to. The record is
    # not bad: it waits, retried by every run, and one message says so for all of them.
    plan_needed: str | None = None

    @property
    def fate(self) -> Fate:
        if self.error is None and self.record is not None:
            return Fate.WRITTEN
        if self.stale:
            return Fate.STALE
        return Fate.REFUSED if self.refused else Fate.FAILED


@dataclass(frozen=True)
class LinkChange:
    """The link of one record after a write: QBO Id, SyncToken, the new base and its hash."""

    source_key: str
    qbo_id: str
    sync_token: str | None
    base: dict[str, Any] | None
    base_hash: str | None
    delete_applied: bool


def link_after(write: Write, record: Mapping[str, Any],
               previous_base: Mapping[str, Any] | None) -> LinkChange:
    """The link once QBO wrote `record` for `write`: the base learns what the write settled
    (the fields both sides now hold); `previous_base` is the link's base before the write."""
    base = previous_base if write.settles is None else settle_base(previous_base,
                                                                   write.settles)
    return link_for(write.source_key, record, base,
                    delete_applied=write.kind not in _WRITES_PAYLOAD)


def recovered_base(spec: EntitySpec, write: Write, record: Mapping[str, Any]) -> dict[str, Any]:
    """The base of a record linked from the answer to a batch a killed run sent. When QBO
    holds what `write` sends now (the row did not change since), the fields it settles, as
    after any create; else the values QBO holds of the compared fields: what the pipeline
    wrote then, which the re-diff updates to the source's values now."""
    if write.settles is not None:
        settled = settle_base(None, write.settles)
        same = diff_record(spec, write.source_key, settled, settled, record)
        if same.action is RecordAction.UNCHANGED:
            return settled
    return settle_base(None, {path: get_path(record, path) for path in compared_fields(spec)})


def link_for(source_key: str, record: Mapping[str, Any], base: Mapping[str, Any] | None,
             delete_applied: bool = False) -> LinkChange:
    """A link to the QBO `record` with `base` as the last agreed payload."""
    token = record.get("SyncToken")
    kept = None if base is None else dict(base)
    return LinkChange(source_key, str(record["Id"]), None if token is None else str(token),
                      kept, None if kept is None else payload_hash(kept), delete_applied)


@dataclass(frozen=True)
class Refusal:
    """A record QBO refused for good: held back with QBO's reason until it or a record it
    refers to changes."""

    source_key: str
    reason: str


@dataclass(frozen=True)
class Renamed:
    """A record written under another DisplayName than the source's, which QBO holds for
    another record (`sync.names`)."""

    source_key: str
    qbo_id: str
    wanted: str
    given: str
    taken_by: str | None = None
    taken_by_type: str | None = None

    def describe(self, record_label: str) -> str:
        holder = (f"QuickBooks {self.taken_by_type or 'record'} {self.taken_by}"
                  if self.taken_by else "another QuickBooks record")
        return (f"{record_label} {self.source_key}: named {self.given!r} in QuickBooks "
                f"(Id {self.qbo_id}), since {self.wanted!r} is taken by {holder}")


@dataclass(frozen=True)
class WriteRow:
    """One write as the run's preview lists it."""

    source_key: str
    qbo_id: str | None
    operation: str
    result: str


@dataclass
class Tally:
    """The writes of one spec's run, counted, with the reason of every failure.

    Each record is counted once, so that valid = created + updated + unchanged + conflicts +
    failed: a record in conflict counts as a conflict whatever its other fields' write does
    (that write still goes, and its failure is still listed and held back).
    """

    created: int = 0
    updated: int = 0
    failed: int = 0
    conflicts: int = 0  # found by re-diffing writes refused as stale
    unchanged: int = 0  # refused as stale, and QBO already holds what they would write
    conflicted: set[str] = field(default_factory=set)
    # Creates a killed run did, found by sending its batch again: counted as created, and not
    # again when the record is then updated to the source's current values.
    recovered: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # failed for a passing reason
    rows: list[WriteRow] = field(default_factory=list)
    # Of the created and updated, those written under another name than the source's.
    renamed: list[Renamed] = field(default_factory=list)
    # Records deleted in the source, left in QBO for a person (`on_source_delete: report`).
    reported: list[str] = field(default_factory=list)

    def blocked(self, source_key: str, reason: str) -> None:
        """A record the plan cannot write (two QBO records match it...): held back like a
        refusal, since planning it again gives the same answer until something changes."""
        self.failed += 1
        self.errors.append(reason)
        self.refusals.append(Refusal(source_key, reason))
        self.rows.append(WriteRow(source_key, None, "none", f"held back: {reason}"))

    def conflict(self, source_key: str) -> None:
        """A record found in conflict after the plan (a stale write's re-diff)."""
        if source_key not in self.conflicted:
            self.conflicted.add(source_key)
            self.conflicts += 1

    def count(self, spec: EntitySpec, write: Write, answer: Answer) -> Fate:
        """Count one answer (a stale one is left to the re-diff) and return its fate."""
        fate = answer.fate
        counted = write.source_key not in self.conflicted | self.recovered
        qbo_id = str(answer.record["Id"]) if answer.record and "Id" in answer.record \
            else write.qbo_id
        if fate is Fate.WRITTEN:
            if counted and write.kind is WriteKind.CREATE:
                self.created += 1
            elif counted:
                self.updated += 1
            result = "created" if write.kind is WriteKind.CREATE else "written"
        elif fate is Fate.STALE:
            result = "stale SyncToken: re-read and re-diffed"
        elif answer.plan_needed is not None:
            self.failed += counted
            self.retry.append(write.source_key)
            reason = plan_limit_reason(spec, answer.plan_needed, answer.error)
            if reason not in self.errors:  # one message for all the records that wait
                self.errors.append(reason)
            result = f"waits for a QuickBooks Online {answer.plan_needed} plan"
        else:
            self.failed += counted
            reason = (f"{spec.record_label} {write.source_key}: QuickBooks refused the "
                      f"{write.kind.value}: {answer.error}")
            self.errors.append(reason)
            if fate is Fate.REFUSED:
                self.refusals.append(Refusal(write.source_key, reason))
                result = f"held back: {answer.error}"
            else:
                self.retry.append(write.source_key)
                result = f"next run retries: {answer.error}"
        self.rows.append(WriteRow(write.source_key, qbo_id, write.kind.value, result))
        return fate

    def recovered_create(self, write: Write, record: Mapping[str, Any], *,
                         counted: bool) -> None:
        """A create a killed run did, answered again: `counted` when the record is one this
        run writes (a valid row), else only listed."""
        if counted and write.source_key not in self.recovered:
            self.created += 1
        self.recovered.add(write.source_key)
        self.rows.append(WriteRow(write.source_key, str(record.get("Id")), write.kind.value,
                                  "created by a run that died; linked now"))

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "failed": self.failed}

    def settled(self, keys: Iterable[str]) -> list[str]:
        """The records among `keys` whose outcome this run recorded (written, linked, found
        unchanged or in conflict): all but those refused or blocked (held back again with
        the reason) and those that failed for a passing reason (the next run tries again)."""
        unsettled = set(self.retry) | {refusal.source_key for refusal in self.refusals}
        return [key for key in keys if key not in unsettled]


def plan_limit_reason(spec: EntitySpec, plan: str, answer: str | None) -> str:
    """Why a spec's records wait for the company's plan (seed 003: time needs Essentials or
    better), and the two fixes: the upgrade, or that entity's sync switched off."""
    said = f" (QuickBooks: {answer})" if answer else ""
    return (f"{spec.name}: the company's QuickBooks Online plan does not include "
            f"{spec.qbo_entity}{said}; the {spec.record_label} records wait, none is held "
            f"back. Fix: upgrade to QuickBooks Online {plan} or better, or disable "
            f"{spec.name} sync (qbo-pipeline settings set {spec.name}.enabled false)")


DAY_COLUMNS = ("read", "created", "updated", "failed")


def outcomes_by_day(days: Mapping[str, date], rows: Iterable[WriteRow]
                    ) -> dict[date, dict[str, int]]:
    """Per business date, the records of that date a run read and how their writes ended:
    the per-day progress and status of a backfill. Rows with no known date are left out."""
    table: dict[date, dict[str, int]] = {}
    for day in days.values():
        table.setdefault(day, dict.fromkeys(DAY_COLUMNS, 0))["read"] += 1
    for row in rows:
        dated = days.get(row.source_key)
        outcome = _day_outcome(row.result)
        if dated is not None and outcome is not None:
            table[dated][outcome] += 1
    return dict(sorted(table.items()))


def _day_outcome(result: str) -> str | None:
    if result == "created":
        return "created"
    if result == "written":
        return "updated"
    # A stale write is re-diffed and counted by what that gives.
    return None if result.startswith("stale") else "failed"
