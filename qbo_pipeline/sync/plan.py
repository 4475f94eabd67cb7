"""Turn record states into a plan of QBO writes: creates, sparse updates, voids, inactivations.

Before a create, the record is looked for in QBO by the spec's match keys: a single match
becomes a link to that record (then diffed like any linked record) instead of a duplicate.
Two matches, or two new records with the same match key, block the record with a reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import DeleteAction, Direction, EntitySpec
from qbo_pipeline.sync.diff import FieldDiff, RecordAction, RecordDiff, diff_record
from qbo_pipeline.sync.ids import payload_hash, request_id
from qbo_pipeline.sync.values import comparable, get_path, set_path


@dataclass(frozen=True)
class RecordState:
    """Everything known about one record: its payload now, as last pushed, and in QBO.

    `source` is None when the source record is deleted; `qbo` is None when the record is not
    linked (or no longer in QBO); `delete_applied` says its delete action already ran.
    """

    source_key: str
    source: Mapping[str, Any] | None
    base: Mapping[str, Any] | None = None
    qbo: Mapping[str, Any] | None = None
    delete_applied: bool = False


class WriteKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    VOID = "void"
    INACTIVATE = "inactivate"
    DELETE = "delete"


@dataclass(frozen=True)
class Write:
    """One QBO write with the request id that makes a retry of it harmless."""

    kind: WriteKind
    source_key: str
    qbo_id: str | None
    payload: dict[str, Any]
    request_id: str


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
class Blocked:
    """A record the plan cannot write safely, with what to do about it."""

    source_key: str
    reason: str


@dataclass
class Plan:
    """What one sync of one spec in one QBO company will do."""

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
    blocked: list[Blocked] = field(default_factory=list)
    diffs: list[RecordDiff] = field(default_factory=list)

    def writes(self) -> list[Write]:
        """Every write, creates first."""
        return [*self.creates, *self.updates, *self.voids, *self.inactivations, *self.deletes]

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in (
            "creates", "updates", "voids", "inactivations", "deletes", "links", "conflicts",
            "unchanged", "blocked")}


def _match_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = value.get("value")
    value = comparable(value)
    # QBO names are unique whatever their case and spacing.
    return " ".join(value.casefold().split()) if isinstance(value, str) else value


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
                if (key := self._key(candidate, group)) is not None:
                    by_key.setdefault(key, []).append(candidate)
            self.index.append(by_key)
        self.new: list[dict[tuple[Any, ...], str]] = [{} for _ in self.groups]

    @staticmethod
    def _key(record: Mapping[str, Any], group: tuple[str, ...]) -> tuple[Any, ...] | None:
        values = tuple(_match_value(get_path(record, path)) for path in group)
        return None if any(v is None for v in values) else values

    def _describe(self, record: Mapping[str, Any], group: tuple[str, ...]) -> str:
        return " and ".join(f"{path} '{get_path(record, path)}'" for path in group)

    def find(self, source_key: str, source: Mapping[str, Any]) -> Match | Blocked | None:
        """The one QBO record matching `source`, a Blocked when several do, else None."""
        label, entity = self.spec.record_label, self.spec.qbo_entity
        for group, by_key in zip(self.groups, self.index, strict=True):
            key = self._key(source, group)
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
        keys = [self._key(source, group) for group in self.groups]
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

    A nested field is sent inside its whole QBO object (QBO replaces `BillAddr` as one),
    starting from QBO's current object so that its other parts are kept.
    """
    payload: dict[str, Any] = {"Id": str(qbo["Id"]), "SyncToken": str(qbo["SyncToken"]),
                               "sparse": True}
    for diff in updates:
        value = copy.deepcopy(get_path(source, diff.path))
        top, _, rest = diff.path.partition(".")
        if not rest:
            payload[top] = value
            continue
        if top not in payload:
            current = qbo.get(top)
            payload[top] = copy.deepcopy(dict(current)) if isinstance(current, Mapping) else {}
        set_path(payload[top], rest, value)
    return payload


def _identity(qbo: Mapping[str, Any]) -> dict[str, Any]:
    return {"Id": str(qbo["Id"]), "SyncToken": str(qbo["SyncToken"])}


_DELETE_WRITES = {
    DeleteAction.VOID: (WriteKind.VOID, "voids"),
    DeleteAction.INACTIVATE: (WriteKind.INACTIVATE, "inactivations"),
    DeleteAction.DELETE: (WriteKind.DELETE, "deletes"),
}


@dataclass
class _Planner:
    spec: EntitySpec
    plan: Plan

    def write(self, kind: WriteKind, source_key: str, qbo_id: str | None,
              payload: dict[str, Any]) -> Write:
        change = payload_hash({"operation": kind.value, "body": payload})
        rid = request_id(self.plan.realm_id, self.spec.name, source_key, change)
        return Write(kind, source_key, qbo_id, payload, rid)

    def add(self, state: RecordState, qbo: Mapping[str, Any] | None, diff: RecordDiff) -> None:
        self.plan.diffs.append(diff)
        key = diff.source_key
        qbo_id = str(qbo["Id"]) if qbo is not None else None
        if diff.action is RecordAction.UNCHANGED:
            self.plan.unchanged.append(key)
        elif diff.action is RecordAction.CREATE:
            assert state.source is not None
            self.plan.creates.append(
                self.write(WriteKind.CREATE, key, None, copy.deepcopy(dict(state.source))))
        elif diff.action is RecordAction.DELETE:
            assert qbo is not None and diff.delete_action is not None
            self._add_delete(key, qbo, diff.delete_action)
        else:
            if diff.action is RecordAction.CONFLICT:
                self.plan.conflicts.append(
                    Conflict(key, qbo_id, tuple(diff.conflicts), diff.reason))
            # Fields that are not in conflict still go ahead.
            if diff.updates and qbo is not None and state.source is not None:
                payload = sparse_update(state.source, qbo, diff.updates)
                self.plan.updates.append(self.write(WriteKind.UPDATE, key, qbo_id, payload))

    def _add_delete(self, key: str, qbo: Mapping[str, Any], action: DeleteAction) -> None:
        kind, bucket = _DELETE_WRITES[action]
        payload = _identity(qbo)
        if kind is WriteKind.INACTIVATE:
            payload.update(sparse=True, Active=False)
        getattr(self.plan, bucket).append(self.write(kind, key, str(qbo["Id"]), payload))


def plan_changes(spec: EntitySpec, realm_id: str, records: Iterable[RecordState],
                 match_candidates: Sequence[Mapping[str, Any]] = ()) -> Plan:
    """Plan the pushes of one spec for one QBO company.

    `match_candidates` are QBO records not linked to any source record (found by querying
    the match keys); a record to create that matches exactly one of them is linked to it.
    """
    if spec.direction is Direction.PULL:
        raise ValueError(f"spec {spec.name} pulls from QuickBooks: there is nothing to push")
    states = list(records)
    taken = {str(s.qbo["Id"]) for s in states if s.qbo is not None}
    matcher = _Matcher(spec, match_candidates, taken)
    planner = _Planner(spec, Plan(spec.name, realm_id))
    for state in states:
        qbo = state.qbo
        diff = diff_record(spec, state.source_key, state.source, state.base, qbo,
                           state.delete_applied)
        if diff.action is RecordAction.CREATE:
            assert state.source is not None
            found = matcher.find(state.source_key, state.source)
            if found is None:
                found = matcher.claim(state.source_key, state.source)
            if isinstance(found, Blocked):
                planner.plan.blocked.append(found)
                continue
            if found is not None:
                qbo, matched_on = found
                planner.plan.links.append(Link(state.source_key, str(qbo["Id"]),
                                               _token(qbo), matched_on))
                diff = diff_record(spec, state.source_key, state.source, None, qbo)
        planner.add(state, qbo, diff)
    return planner.plan


def _token(qbo: Mapping[str, Any]) -> str | None:
    token = qbo.get("SyncToken")
    return None if token is None else str(token)
