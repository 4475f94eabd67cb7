"""Turn record states into a plan: QBO writes (creates, sparse updates, voids, inactivations)
and, for specs that pull, source writes (`pull.py`).

Before a create, the record is looked for in QBO by the spec's match keys: a single match
becomes a link to that record (then diffed like any linked record) instead of a duplicate.
Two matches, or two new records with the same match key, block the record with a reason.

Two entry points:

- `plan_changes`, for a spec that pushes: the QBO writes, and when the spec also pulls (two_way,
  or push with pulled fields) the source writes of the same diff;
- `plan_pull`, for a spec that pulls: the source writes only (a `direction: pull` spec).

No echo: every write carries `settles`, the fields both sides hold once it is done; the link's
base after it is `settle_base(base, settles)` (after a push: what was pushed; after a pull:
QBO's value). Re-planning the same states after applying the plan writes nothing either way.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import DeleteAction, EntitySpec, QboDeleteAction
from qbo_pipeline.sync.diff import (
    FieldDiff,
    FieldOutcome,
    RecordAction,
    RecordDiff,
    diff_new_in_qbo,
    diff_record,
    flow_of_path,
)
from qbo_pipeline.sync.ids import payload_hash, request_id
from qbo_pipeline.sync.names import DISPLAY_NAME, GivenName, as_wanted
from qbo_pipeline.sync.pull import (
    PullPlanner,
    SourceWrite,
    SourceWriteKind,
    is_deleted_in_qbo,
    settle_base,
)
from qbo_pipeline.sync.resolutions import DecidedField
from qbo_pipeline.sync.reverse import (
    ResolveSourceKey,
    UnmappedRecord,
    qbo_id_of,
    qbo_record_key,
    record_key,
    resolve_no_source_key,
)
from qbo_pipeline.sync.validation import QuarantinedRow
from qbo_pipeline.sync.values import (
    comparable,
    drop_path,
    get_path,
    set_path,
    top_field,
    values_equal,
)


@dataclass(frozen=True)
class RecordState:
    """Everything known about one record: its payload now, the base, and the QBO record.

    - `source_key`: the source row's key; None for a QBO record no source row is linked to
      or found for (pull only: `target: upsert` imports it);
    - `source`: the row's forward-mapped payload (`map_row`); None when the source record is
      deleted. Ignored by a spec that pushes nothing (`direction: pull`);
    - `base`: the link's base, the payload both sides agreed on at the last sync;
    - `qbo`: the linked QBO record; None when not linked (or no longer in QBO). For a spec that
      pulls, a record CDC reports deleted is passed as CDC gives it (`"status": "Deleted"`);
    - `delete_applied`: the delete action already ran (the link knows);
    - `source_updated_at`: when the source row last changed (last_modified_wins; None = unknown,
      which makes a tie);
    - `source_row`: the raw source columns, needed by a spec that pulls wherever there is a row
      (pull-only fields and auto-apply rules compare against it); None when there is none;
    - `decided`: path -> a person's decision on the record's conflict, applied while both
      sides still hold the values decided on (`sync.resolutions`);
    - `given_name`: the DisplayName the pipeline gave the record in QBO because the source's
      was taken (`sync.names`): `source` carries it already (`names.as_given`); a pull reads
      it back as the source's name.
    """

    source_key: str | None
    source: Mapping[str, Any] | None
    base: Mapping[str, Any] | None = None
    qbo: Mapping[str, Any] | None = None
    delete_applied: bool = False
    source_updated_at: dt.datetime | None = None
    source_row: Mapping[str, Any] | None = None
    decided: Mapping[str, DecidedField] | None = None
    given_name: GivenName | None = None


class WriteKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    VOID = "void"
    INACTIVATE = "inactivate"
    DELETE = "delete"


@dataclass(frozen=True)
class Write:
    """One QBO write with the request id that makes a retry of it harmless.

    `settles` (QBO path -> value) is what both sides hold once the write is done: after it,
    the link's base is `settle_base(base, settles)`; None (voids, inactivations, deletes)
    leaves the base as it is.
    """

    kind: WriteKind
    source_key: str
    qbo_id: str | None
    payload: dict[str, Any]
    request_id: str
    settles: dict[str, Any] | None = None


@dataclass(frozen=True)
class Link:
    """A source record found in QBO by its match keys: link it instead of creating it."""

    source_key: str
    qbo_id: str
    sync_token: str | None
    matched_on: tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    """Fields changed on both sides, for review: source, QBO and base values per field."""

    source_key: str
    qbo_id: str | None
    fields: tuple[FieldDiff, ...]
    reason: str = ""


@dataclass(frozen=True)
class Rebase:
    """A linked record both sides hold alike, whose base lags behind on some fields (a run
    wrote them and died before recording its link): the link's new base and QBO's SyncToken.
    Left as it was, the next change of those fields in the source would look like a change
    of both sides (a conflict, or QBO kept under qbo_wins): the pipeline's own write echoed."""

    source_key: str
    qbo_id: str
    sync_token: str | None
    base: dict[str, Any]
    delete_applied: bool = False


@dataclass(frozen=True)
class DeleteReport:
    """A record deleted in the source whose spec says `on_source_delete: report`: nothing is
    written to QBO; a person is told, once, to delete or void it there by hand. The link keeps
    its base and learns that the delete was handled, so that no later run reports it again."""

    source_key: str
    qbo_id: str
    sync_token: str | None
    base: dict[str, Any] | None
    message: str


@dataclass(frozen=True)
class Blocked:
    """A record the plan cannot write safely, with what to do about it."""

    source_key: str
    reason: str


@dataclass
class Plan:
    """What one sync of one spec in one QBO company will do.

    QBO side: creates ... deletes, links, conflicts, blocked. Source side (specs that pull):
    `source_writes`; `quarantined`, the pulled records held back whole with their reasons
    (keyed by source key, or `qbo:<Id>` without a source row); `skipped`, the QBO records
    the pull leaves alone (not linked under target linked, out of the modified_within_days
    window, deleted with no row). `unchanged` lists the records needing nothing either way,
    `rebases` those of them whose link's base must learn what both sides hold.
    `qbo_unchanged` lists the records whose QBO side needs nothing, whatever their source side
    gets (a row matched under target upsert still learns its QBO Id): what the push side counts
    as unchanged, so that its counts add up whatever the pull writes.
    """

    spec_name: str
    realm_id: str
    creates: list[Write] = field(default_factory=list)
    updates: list[Write] = field(default_factory=list)
    voids: list[Write] = field(default_factory=list)
    inactivations: list[Write] = field(default_factory=list)
    deletes: list[Write] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    qbo_unchanged: list[str] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    rebases: list[Rebase] = field(default_factory=list)
    reports: list[DeleteReport] = field(default_factory=list)
    diffs: list[RecordDiff] = field(default_factory=list)
    source_writes: list[SourceWrite] = field(default_factory=list)
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def writes(self) -> list[Write]:
        """Every QBO write, creates first."""
        return [*self.creates, *self.updates, *self.voids, *self.inactivations, *self.deletes]

    def counts(self) -> dict[str, int]:
        """The QBO side's counts (see `pull_counts` for the source side)."""
        return {name: len(getattr(self, name)) for name in (
            "creates", "updates", "voids", "inactivations", "deletes", "links", "conflicts",
            "unchanged", "blocked")}

    def pull_counts(self) -> dict[str, int]:
        """The source side's counts: writes by kind, auto-applied, quarantined, skipped."""
        kinds = [write.kind for write in self.source_writes]
        return {
            "source_updates": kinds.count(SourceWriteKind.UPDATE),
            "source_upserts": kinds.count(SourceWriteKind.UPSERT),
            "marked_inactive": kinds.count(SourceWriteKind.MARK_INACTIVE),
            "set_deleted": kinds.count(SourceWriteKind.SET_DELETED),
            "auto_applied": sum(1 for write in self.source_writes if write.auto_applied),
            "quarantined": len(self.quarantined),
            "skipped": len(self.skipped),
        }


def _match_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = value.get("value")
    value = comparable(value)
    # QBO names are unique whatever their case and spacing.
    return " ".join(value.casefold().split()) if isinstance(value, str) else value


def match_key(record: Mapping[str, Any], group: tuple[str, ...]) -> tuple[Any, ...] | None:
    """A record's values of one group of match keys, as they are compared; None when one is
    missing (a record without them matches nothing by that group)."""
    values = tuple(_match_value(get_path(record, path)) for path in group)
    return None if any(v is None for v in values) else values


Match = tuple[Mapping[str, Any], tuple[str, ...]]
"""A QBO record found by match keys, and the keys it was found by."""


class _Matcher:
    """Finds QBO candidates by match keys and spots new records that would collide."""

    def __init__(self, spec: EntitySpec, candidates: Sequence[Mapping[str, Any]],
                 taken_ids: set[str]) -> None:
        self.spec = spec
        self.groups = spec.match_key_groups
        self.taken = taken_ids
        self.index: list[dict[tuple[Any, ...], list[Mapping[str, Any]]]] = []
        for group in self.groups:
            by_key: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
            for candidate in candidates:
                if (key := match_key(candidate, group)) is not None:
                    by_key.setdefault(key, []).append(candidate)
            self.index.append(by_key)
        self.new: list[dict[tuple[Any, ...], str]] = [{} for _ in self.groups]

    def _describe(self, record: Mapping[str, Any], group: tuple[str, ...]) -> str:
        return " and ".join(f"{path} '{get_path(record, path)}'" for path in group)

    def find(self, source_key: str, source: Mapping[str, Any]) -> Match | Blocked | None:
        """The one QBO record matching `source`, a Blocked when several do, else None."""
        label, entity = self.spec.record_label, self.spec.qbo_entity
        for group, by_key in zip(self.groups, self.index, strict=True):
            key = match_key(source, group)
            matching = by_key.get(key, []) if key is not None else []
            found = [c for c in matching if str(c.get("Id")) not in self.taken]
            if len(found) == 1:
                self.taken.add(str(found[0].get("Id")))
                return found[0], group
            if len(found) > 1:
                return Blocked(source_key, (
                    f"{label} {source_key}: {len(found)} QuickBooks {entity} records match "
                    f"{self._describe(source, group)} (Ids {_ids(found)}) - merge or rename "
                    "the duplicates in QuickBooks"))
            if matching:
                return Blocked(source_key, (
                    f"{label} {source_key}: {self._describe(source, group)} is already used "
                    f"by QuickBooks {entity} {_ids(matching)}, which is linked to another "
                    f"{label} - make them different"))
        return None

    def claim(self, source_key: str, source: Mapping[str, Any]) -> Blocked | None:
        """Reserve `source`'s match keys for a create; Blocked if another create has them."""
        keys = [match_key(source, group) for group in self.groups]
        for group, key, claimed in zip(self.groups, keys, self.new, strict=True):
            if key is not None and key in claimed:
                label = self.spec.record_label
                return Blocked(source_key, (
                    f"{label} {source_key}: {self._describe(source, group)} is also used by "
                    f"{label} {claimed[key]} - QuickBooks would get a duplicate; "
                    f"make them different"))
        for key, claimed in zip(keys, self.new, strict=True):
            if key is not None:
                claimed[key] = source_key
        return None


def _ids(records: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(sorted(str(record.get("Id")) for record in records))


def sparse_update(source: Mapping[str, Any], qbo: Mapping[str, Any],
                  updates: Iterable[FieldDiff]) -> dict[str, Any]:
    """A sparse update carrying Id, SyncToken and only the fields to change.

    A nested field is sent inside its whole QBO object (QBO replaces `BillAddr` as one, and a
    list such as `Line` for `Line[0].Amount`), starting from QBO's current object or list so
    that its other parts (the line's LinkedTxn) are kept.
    """
    payload: dict[str, Any] = {"Id": str(qbo["Id"]), "SyncToken": str(qbo["SyncToken"]),
                               "sparse": True}
    for diff in updates:
        value = copy.deepcopy(get_path(source, diff.path))
        top = top_field(diff.path)
        if top != diff.path and top not in payload:
            payload[top] = _current_whole(qbo.get(top))
        set_path(payload, diff.path, value)
    return payload


def _current_whole(current: Any) -> Any:
    """A copy of QBO's object or list that a nested change is made inside of."""
    if isinstance(current, Mapping):
        return copy.deepcopy(dict(current))
    if isinstance(current, list):
        return copy.deepcopy(current)
    return {}


def planned_write(realm_id: str, spec_name: str, write: Write) -> Write:
    """`write` under the request id of its change: the same change, the same id."""
    change = payload_hash({"operation": write.kind.value, "body": write.payload})
    return replace(write, request_id=request_id(realm_id, spec_name, write.source_key, change))


def with_display_name(realm_id: str, spec_name: str, write: Write, name: str) -> Write:
    """A create or update sent again under another DisplayName (the source's is taken in
    QBO: `sync.names`), as a new change with its own request id; what it settles learns the
    name, so that the next diff finds both sides alike."""
    payload = {**write.payload, DISPLAY_NAME: name}
    settles = None if write.settles is None else {**write.settles, DISPLAY_NAME: name}
    return planned_write(realm_id, spec_name, replace(write, payload=payload, settles=settles))


def _identity(qbo: Mapping[str, Any]) -> dict[str, Any]:
    return {"Id": str(qbo["Id"]), "SyncToken": str(qbo["SyncToken"])}


_DELETE_WRITES = {
    DeleteAction.VOID: (WriteKind.VOID, "voids"),
    DeleteAction.INACTIVATE: (WriteKind.INACTIVATE, "inactivations"),
    DeleteAction.DELETE: (WriteKind.DELETE, "deletes"),
}


def _without_pull_only(spec: EntitySpec, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload to create, without the fields that only pull (they are never sent)."""
    created = copy.deepcopy(dict(payload))
    for path in spec.pull_only_fields:
        drop_path(created, path)
    return created


@dataclass
class _QboWriter:
    """Adds one record's QBO writes (or conflict, or nothing) to the plan."""

    spec: EntitySpec
    plan: Plan

    def write(self, kind: WriteKind, source_key: str, qbo_id: str | None,
              payload: dict[str, Any], settles: dict[str, Any] | None = None) -> Write:
        return planned_write(self.plan.realm_id, self.spec.name, Write(
            kind, source_key, qbo_id, payload, "", settles))

    def add(self, state: RecordState, qbo: Mapping[str, Any] | None, diff: RecordDiff) -> None:
        self.plan.diffs.append(diff)
        key = diff.source_key
        qbo_id = str(qbo["Id"]) if qbo is not None else None
        if diff.action is RecordAction.UNCHANGED:
            self.plan.unchanged.append(key)
            self.plan.qbo_unchanged.append(key)
            self._rebase(state, qbo, diff)
        elif diff.action is RecordAction.CREATE:
            assert state.source is not None
            payload = _without_pull_only(self.spec, state.source)
            self.plan.creates.append(
                self.write(WriteKind.CREATE, key, None, payload, copy.deepcopy(payload)))
        elif diff.action is RecordAction.DELETE:
            assert qbo is not None and diff.delete_action is not None
            if diff.delete_action is DeleteAction.REPORT:
                # QBO is left as it is: the record counts unchanged there.
                self.plan.reports.append(self._report(state, key, qbo))
                self.plan.unchanged.append(key)
                self.plan.qbo_unchanged.append(key)
            else:
                self._add_delete(key, qbo, diff.delete_action)
        else:
            if diff.action is RecordAction.CONFLICT:
                self.plan.conflicts.append(
                    Conflict(key, qbo_id, tuple(diff.conflicts), diff.reason))
            # Fields that are not in conflict still go ahead.
            if diff.updates and qbo is not None and state.source is not None:
                payload = sparse_update(state.source, qbo, diff.updates)
                # Both sides hold the fields written and the fields already the same: the base
                # learns both (a field the base lacks would look changed on both sides).
                agreed = [f for f in diff.fields
                          if f.outcome in (FieldOutcome.UPDATE, FieldOutcome.SAME)]
                settles = {f.path: copy.deepcopy(get_path(state.source, f.path))
                           for f in agreed}
                self.plan.updates.append(
                    self.write(WriteKind.UPDATE, key, qbo_id, payload, settles))
            elif diff.action is not RecordAction.CONFLICT:
                # Only the source side changes (QBO's values win, or are read back): the push
                # side has nothing to write, and counts the record unchanged.
                self.plan.qbo_unchanged.append(key)

    def _rebase(self, state: RecordState, qbo: Mapping[str, Any] | None,
                diff: RecordDiff) -> None:
        """The pushed fields both sides hold alike that the base holds otherwise: the base
        learns them, as after a write of them."""
        if qbo is None or state.base is None or state.source is None:
            return
        lagging = {f.path: copy.deepcopy(get_path(state.source, f.path)) for f in diff.fields
                   if f.outcome is FieldOutcome.SAME and not values_equal(f.base, f.source)
                   and flow_of_path(self.spec, f.path).pushes}
        if lagging:
            self.plan.rebases.append(Rebase(diff.source_key, str(qbo["Id"]), _token(qbo),
                                            settle_base(state.base, lagging),
                                            state.delete_applied))

    def _report(self, state: RecordState, key: str, qbo: Mapping[str, Any]) -> DeleteReport:
        label, entity, qbo_id = self.spec.record_label, self.spec.qbo_entity, str(qbo["Id"])
        return DeleteReport(key, qbo_id, _token(qbo), None if state.base is None
                            else dict(state.base),
                            f"{label} {key} was deleted in the app: delete or void {entity} "
                            f"{qbo_id} in QuickBooks by hand")

    def _add_delete(self, key: str, qbo: Mapping[str, Any], action: DeleteAction) -> None:
        kind, bucket = _DELETE_WRITES[action]
        payload = _identity(qbo)
        if kind is WriteKind.INACTIVATE:
            payload.update(sparse=True, Active=False)
        getattr(self.plan, bucket).append(self.write(kind, key, str(qbo["Id"]), payload))


@dataclass
class _Planner:
    """One plan: the QBO side (`record`) and, when `pull` is given, the source side."""

    spec: EntitySpec
    plan: Plan
    pull: PullPlanner | None
    matcher: _Matcher | None = None

    @property
    def qbo(self) -> _QboWriter:
        return _QboWriter(self.spec, self.plan)

    def record(self, state: RecordState) -> None:
        """Plan both sides of a record that has a source row (plan_changes)."""
        assert state.source_key is not None
        key, qbo = state.source_key, state.qbo
        if is_deleted_in_qbo(qbo):
            if self._handles_qbo_deletes() and state.source is not None:
                self._deleted_in_qbo(key, state)
                return
            qbo = None  # gone from QBO, as for a spec that only pushes
        diff, unmapped = self._diff(state, key, qbo, state.base)
        if diff.action is RecordAction.CREATE:
            matched = self._match(state, key)
            if matched is None:
                return
            qbo, diff, unmapped = matched
        self.qbo.add(state, qbo, diff)
        if qbo is not None and unmapped is not None and state.source is not None:
            self._pull_linked(key, state, qbo, diff, unmapped)

    def pulled(self, state: RecordState) -> None:
        """Plan the source side only of a record read from QBO (plan_pull)."""
        qbo = _qbo_of(self.spec, state)
        if state.source_key is None:
            self.new_in_qbo(state)
            return
        key = state.source_key
        assert self.pull is not None
        gone = state.source_row is None or (self.spec.pushes and state.source is None)
        if gone or not self.pull.in_window(qbo):
            # The row is gone or deleted in the source, or QBO's change is too old.
            self.plan.skipped.append(key)
            return
        if is_deleted_in_qbo(qbo):
            self._deleted_in_qbo(key, state)
            return
        source = state.source if self.spec.pushes and state.source is not None else {}
        diff, unmapped = self._diff(replace(state, source=source), key, qbo, state.base)
        self.plan.diffs.append(diff)
        assert unmapped is not None
        if diff.action is RecordAction.UNCHANGED:
            self.plan.unchanged.append(key)
        self._pull_linked(key, state, qbo, diff, unmapped)

    def new_in_qbo(self, state: RecordState) -> None:
        """A QBO record with no source row: imported under target upsert, else skipped."""
        qbo = _qbo_of(self.spec, state)
        key = qbo_record_key(qbo_id_of(qbo))
        if self.pull is None:
            raise ValueError(f"spec {self.spec.name}: a record without a source key is a QBO "
                             "record to pull, and the spec pulls nothing")
        if self.matcher is not None and qbo_id_of(qbo) in self.matcher.taken:
            # A source record matched it this run: not imported too, nor left alone; its row's
            # writes (its QBO Id under target upsert) count it.
            return
        if not self.pull.new_in_qbo(qbo):
            self.plan.skipped.append(key)
            return
        self.plan.diffs.append(diff_new_in_qbo(self.spec, key, qbo))

    def finish(self) -> Plan:
        if self.pull is not None:
            writes, quarantined = self.pull.finish()
            self.plan.source_writes, self.plan.quarantined = writes, quarantined
            pending = ({record_key(w.source_key, w.qbo_id) for w in writes}
                       | {q.source_key for q in quarantined})
            self.plan.unchanged = [key for key in self.plan.unchanged if key not in pending]
        return self.plan

    def _handles_qbo_deletes(self) -> bool:
        return (self.pull is not None
                and self.pull.pull.on_qbo_delete is not QboDeleteAction.IGNORE)

    def _row(self, state: RecordState) -> Mapping[str, Any]:
        if state.source_row is None:
            raise ValueError(f"spec {self.spec.name} pulls: RecordState.source_row of "
                             f"{self.spec.record_label} {state.source_key} is needed (the raw "
                             "source columns the pulled values are compared with)")
        return state.source_row

    def _diff(self, state: RecordState, key: str, qbo: Mapping[str, Any] | None,
              base: Mapping[str, Any] | None) -> tuple[RecordDiff, UnmappedRecord | None]:
        unmapped, same = None, None
        if self.pull is not None and qbo is not None and state.source is not None:
            # A name the pipeline gave the record in QBO reads back as the source's own.
            unmapped = self.pull.unmap(as_wanted(qbo, state.given_name), key)
            same = self.pull.pull_only_same(unmapped, self._row(state))
        diff = diff_record(self.spec, key, state.source, base, qbo, state.delete_applied,
                           source_updated_at=state.source_updated_at, pull_only_same=same,
                           decided=state.decided)
        return diff, unmapped

    def _match(self, state: RecordState, key: str
               ) -> tuple[Mapping[str, Any] | None, RecordDiff, UnmappedRecord | None] | None:
        """Match a record to create by its keys: (QBO record or None, diff, read back), or
        None when it is blocked."""
        assert state.source is not None and self.matcher is not None
        found = self.matcher.find(key, state.source)
        if found is None:
            found = self.matcher.claim(key, state.source)
        if isinstance(found, Blocked):
            self.plan.blocked.append(found)
            return None
        if found is None:
            return None, RecordDiff(key, RecordAction.CREATE), None
        qbo, matched_on = found
        self.plan.links.append(Link(key, str(qbo["Id"]), _token(qbo), matched_on))
        diff, unmapped = self._diff(state, key, qbo, None)
        return qbo, diff, unmapped

    def _pull_linked(self, key: str, state: RecordState, qbo: Mapping[str, Any],
                     diff: RecordDiff, unmapped: UnmappedRecord) -> None:
        if self.pull is None:
            return
        if not self.pull.in_window(qbo):
            # Last changed in QBO before the modified_within_days window: left alone.
            self.plan.skipped.append(key)
            return
        self.pull.linked(key, qbo, self._row(state), state.base, diff, unmapped)

    def _deleted_in_qbo(self, key: str, state: RecordState) -> None:
        assert self.pull is not None and state.qbo is not None
        write = self.pull.deleted(key, state.qbo, self._row(state))
        action = RecordAction.DELETED_IN_QBO if write is not None else RecordAction.UNCHANGED
        self.plan.diffs.append(RecordDiff(key, action, reason=(
            f"{self.spec.record_label} {key}: its QuickBooks {self.spec.qbo_entity} "
            f"{qbo_id_of(state.qbo)} was deleted in QuickBooks")))
        if write is None:
            self.plan.unchanged.append(key)


def _qbo_of(spec: EntitySpec, state: RecordState) -> Mapping[str, Any]:
    if state.qbo is None:
        raise ValueError(f"spec {spec.name}: a pulled record needs its QuickBooks record "
                         f"(RecordState.qbo of {state.source_key})")
    return state.qbo


def _pull_planner(spec: EntitySpec, now: dt.datetime | None,
                  resolve_source_key: ResolveSourceKey,
                  ref_entities: Mapping[str, str] | None) -> PullPlanner | None:
    if not spec.pulls:
        return None
    if now is None:
        raise ValueError(f"spec {spec.name} pulls from QuickBooks: pass the run's clock "
                         "(now) to plan its source writes")
    return PullPlanner(spec, now, resolve_source_key, ref_entities)


def import_only(plan: Plan) -> Plan:
    """The import on connect's part of a plan: link the records found in QBO by their match
    keys, write nothing to QBO (the first sync does, once a person has seen the links)."""
    return replace(plan, creates=[], updates=[], voids=[], inactivations=[], deletes=[])


def plan_changes(spec: EntitySpec, realm_id: str, records: Iterable[RecordState],
                 match_candidates: Sequence[Mapping[str, Any]] = (), *,
                 now: dt.datetime | None = None,
                 resolve_source_key: ResolveSourceKey = resolve_no_source_key,
                 ref_entities: Mapping[str, str] | None = None) -> Plan:
    """Plan the pushes of one spec for one QBO company, and, when the spec also pulls (two_way,
    or pulled fields), the source writes of the same diff.

    `match_candidates` are QBO records not linked to any source record (found by querying
    the match keys); a record to create that matches exactly one of them is linked to it.
    For a spec that pulls, `now` (the run's clock) is required; `resolve_source_key` reads
    pulled references back through the links; a state without a source key is a QBO record
    to import (target upsert), planned after every linked record so that one matched by a
    create this run is not imported too.
    """
    if not spec.pushes:
        raise ValueError(f"spec {spec.name} pulls from QuickBooks: there is nothing to push")
    pull = _pull_planner(spec, now, resolve_source_key, ref_entities)
    return _plan_records(spec, realm_id, records, match_candidates, pull)


def plan_qbo_side(spec: EntitySpec, realm_id: str, records: Iterable[RecordState],
                  match_candidates: Sequence[Mapping[str, Any]] = ()) -> Plan:
    """The QBO writes of `plan_changes` only, whatever the spec pulls (no source writes, no
    clock needed): what a stale-token retry re-plans."""
    if not spec.pushes:
        raise ValueError(f"spec {spec.name} pulls from QuickBooks: there is nothing to push")
    return _plan_records(spec, realm_id, records, match_candidates, None)


def _plan_records(spec: EntitySpec, realm_id: str, records: Iterable[RecordState],
                  match_candidates: Sequence[Mapping[str, Any]],
                  pull: PullPlanner | None) -> Plan:
    states = list(records)
    taken = {str(s.qbo["Id"]) for s in states if s.qbo is not None and s.source_key is not None}
    planner = _Planner(spec, Plan(spec.name, realm_id), pull,
                       _Matcher(spec, match_candidates, taken))
    for state in states:
        if state.source_key is not None:
            planner.record(state)
    for state in states:
        if state.source_key is None:
            planner.new_in_qbo(state)
    return planner.finish()


def plan_pull(spec: EntitySpec, realm_id: str, records: Iterable[RecordState], *,
              now: dt.datetime, resolve_source_key: ResolveSourceKey = resolve_no_source_key,
              ref_entities: Mapping[str, str] | None = None,
              linked_elsewhere: Set[str] = frozenset()) -> Plan:
    """Plan the source writes of one spec that pulls, for one QBO company; no QBO writes.

    One state per QBO record in scope (`pull_query`): `qbo` always; `source_key` and
    `source_row` when a source row is linked to it (target linked) or holds its Id (target
    upsert), else None; `base` the link's base; for two_way fields also `source`, the row's
    forward-mapped payload. `now` is the run's clock (set_deleted, modified_within_days).
    `linked_elsewhere`: the QBO Ids another spec of the entity links; those records are that
    spec's (the bills bill.yaml pushes are not imported by imported_bill.yaml): skipped.
    """
    pull = _pull_planner(spec, now, resolve_source_key, ref_entities)
    if pull is None:
        raise ValueError(f"spec {spec.name} pulls nothing from QuickBooks")
    planner = _Planner(spec, Plan(spec.name, realm_id), pull)
    for state in records:
        if (state.qbo is not None and state.source_key is None
                and qbo_id_of(state.qbo) in linked_elsewhere):
            planner.plan.skipped.append(record_key(None, qbo_id_of(state.qbo)))
            continue
        planner.pulled(state)
    return planner.finish()


def _token(qbo: Mapping[str, Any]) -> str | None:
    token = qbo.get("SyncToken")
    return None if token is None else str(token)
