"""Three-way diff of one record: the source payload, the base both sides last agreed on, the
QBO record.

Per mapped field, with s = source (forward mapped), b = base and q = QBO, by the field's flow:

- s == q: SAME, nothing to do (whatever the flow);
- push-only: q == b (only the source moved, or QBO never had a value): UPDATE QBO; otherwise
  QBO moved and the field's policy decides: source_wins -> UPDATE, qbo_wins -> KEEP_QBO,
  review -> CONFLICT (s, q and b side by side), last_modified_wins -> UPDATE when the source
  changed later, KEEP_QBO when QBO did, CONFLICT on a tie;
- pull-only: PULL, QBO's value is written into the source (QBO is the authority: no conflict);
- two_way: q == b -> UPDATE (only the source moved); s == b -> PULL (only QBO moved);
  otherwise both moved (or neither value is the base's, as when there is no base yet):
  review -> CONFLICT, source_wins -> UPDATE, qbo_wins -> PULL, last_modified_wins -> the side
  changed last (a tie -> CONFLICT).

"Changed last" compares the source row's `updated_at` with QBO's `MetaData.LastUpdatedTime`
in UTC (a naive time is taken as UTC); when either is unknown it counts as a tie.

No echo: after a push the base is what was pushed, after a pull it is QBO's value and the
source then holds that value too; so the next diff sees s == b == q and writes nothing either
way. A value just written to one side is never read back as a change of the other.

Only the leaves the source or the base hold are compared: what QBO adds on its own (a
reference's `name`, defaults, line ids, the subtotal line) is not a change. A field that
pulls is also compared where only QBO holds a value (at its `compared_leaf`): QBO filling it
in is a change for the source. Values are compared after normalising (10.50 == "10.5",
"" == missing). `Line` is always push-only.

A pull-only field has no forward-mapped value (it is never sent), so the plan compares it in
column space (QBO's value read back vs the source row's columns) and passes the fields found
equal as `pull_only_same`; without it they are compared as payloads like the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import ConflictPolicy, DeleteAction, Direction, EntitySpec
from qbo_pipeline.sync.mapping import LINES_FIELD
from qbo_pipeline.sync.resolutions import DecidedField
from qbo_pipeline.sync.reverse import compared_leaf
from qbo_pipeline.sync.values import get_path, values_equal

SUBTOTAL_DETAIL = "SubTotalLineDetail"


class FieldOutcome(StrEnum):
    SAME = "same"
    UPDATE = "update"
    KEEP_QBO = "keep_qbo"
    CONFLICT = "conflict"
    PULL = "pull"  # write QBO's value into the source


class RecordAction(StrEnum):
    """What a record needs. A CONFLICT or UPDATE record may also have fields to pull
    (`RecordDiff.pulls`); PULL means only source writes are due."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    DELETE = "delete"
    PULL = "pull"
    DELETED_IN_QBO = "deleted_in_qbo"  # deleted in QBO: the spec's pull.on_qbo_delete applies


class ChangedLast(StrEnum):
    """Which side changed a record last (None stands for a tie, or an unknown time)."""

    SOURCE = "source"
    QBO = "qbo"


@dataclass(frozen=True)
class FieldDiff:
    """One mapped field: its source, base and QBO values and what the sync does with it."""

    path: str
    source: Any
    base: Any
    qbo: Any
    outcome: FieldOutcome


@dataclass(frozen=True)
class RecordDiff:
    """What one record needs, with the per-field detail behind it. `source_key` is the
    record's key: its source key, or `qbo:<Id>` for a QBO record with no source row."""

    source_key: str
    action: RecordAction
    fields: tuple[FieldDiff, ...] = ()
    delete_action: DeleteAction | None = None
    reason: str = ""

    @property
    def updates(self) -> list[FieldDiff]:
        return [f for f in self.fields if f.outcome is FieldOutcome.UPDATE]

    @property
    def conflicts(self) -> list[FieldDiff]:
        return [f for f in self.fields if f.outcome is FieldOutcome.CONFLICT]

    @property
    def pulls(self) -> list[FieldDiff]:
        return [f for f in self.fields if f.outcome is FieldOutcome.PULL]


def compared_fields(spec: EntitySpec) -> list[str]:
    """The field paths the diff looks at: every mapped field, and `Line` with lines."""
    return [*spec.fields, *([LINES_FIELD] if spec.lines is not None else [])]


def _leaves(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif value is not None:
        yield prefix


def _lines(record: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    lines = get_path(record, LINES_FIELD) or []
    return [line for line in lines if get_path(line, "DetailType") != SUBTOTAL_DETAIL]


def _project(record: Any, leaves: Sequence[str]) -> Any:
    """The part of `record` at `leaves`: a scalar for one leaf, else leaf -> value."""
    if len(leaves) == 1:
        return get_path(record, leaves[0])
    return {leaf: get_path(record, leaf) for leaf in leaves}


def _field_leaves(path: str, source: Mapping[str, Any] | None,
                  base: Mapping[str, Any] | None) -> list[str]:
    found = dict.fromkeys([*_leaves(get_path(source, path), path),
                           *_leaves(get_path(base, path), path)])
    return list(found)


def _line_views(source: Mapping[str, Any] | None, base: Mapping[str, Any] | None,
                other: Mapping[str, Any] | None) -> list[Any]:
    """`other`'s lines, each projected on the leaves of the same source or base line."""
    source_lines, base_lines, lines = _lines(source), _lines(base), _lines(other)
    views = []
    for index, line in enumerate(lines):
        leaves = dict.fromkeys([
            *(_leaves(source_lines[index]) if index < len(source_lines) else ()),
            *(_leaves(base_lines[index]) if index < len(base_lines) else ()),
        ])
        views.append({leaf: get_path(line, leaf) for leaf in leaves})
    return views


def _values(path: str, source: Mapping[str, Any] | None, base: Mapping[str, Any] | None,
            qbo: Mapping[str, Any] | None, pulled_leaf: str | None = None
            ) -> tuple[Any, Any, Any]:
    if path == LINES_FIELD:
        return (_line_views(source, base, source), _line_views(source, base, base),
                _line_views(source, base, qbo))
    leaves = _field_leaves(path, source, base)
    if not leaves and pulled_leaf is not None:
        # A pulled field that neither the source nor the base holds: QBO's value is news.
        leaves = [pulled_leaf]
    if not leaves:
        # We never sent this field: whatever QBO holds there (a default) is not a change.
        return None, None, None
    return _project(source, leaves), _project(base, leaves), _project(qbo, leaves)


def _policy_outcome(flow: Direction, policy: ConflictPolicy,
                    last: ChangedLast | None) -> FieldOutcome:
    """Both sides moved: the field's policy says whose value stands."""
    qbo_side = FieldOutcome.PULL if flow is Direction.TWO_WAY else FieldOutcome.KEEP_QBO
    if policy is ConflictPolicy.SOURCE_WINS:
        return FieldOutcome.UPDATE
    if policy is ConflictPolicy.QBO_WINS:
        return qbo_side
    if policy is ConflictPolicy.LAST_MODIFIED_WINS and last is not None:
        return FieldOutcome.UPDATE if last is ChangedLast.SOURCE else qbo_side
    return FieldOutcome.CONFLICT


def field_outcome(flow: Direction, policy: ConflictPolicy, source: Any, base: Any, qbo: Any,
                  last: ChangedLast | None = None) -> FieldOutcome:
    """One field's outcome by its flow and policy (the table at the top of this module)."""
    if values_equal(source, qbo):
        return FieldOutcome.SAME
    if flow is Direction.PULL:
        return FieldOutcome.PULL
    if values_equal(qbo, base):
        return FieldOutcome.UPDATE
    if flow is Direction.TWO_WAY and values_equal(source, base):
        return FieldOutcome.PULL
    return _policy_outcome(flow, policy, last)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware time in UTC; a naive one is taken to be in UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def qbo_updated_at(qbo: Mapping[str, Any] | None) -> dt.datetime | None:
    """QBO's `MetaData.LastUpdatedTime` (ISO 8601 with an offset) in UTC, or None."""
    text = get_path(qbo, "MetaData.LastUpdatedTime")
    if not isinstance(text, str):
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def changed_last(source_updated_at: dt.datetime | None,
                 qbo: Mapping[str, Any] | None) -> ChangedLast | None:
    """The side that changed the record last; None on a tie or when a time is unknown."""
    qbo_time = qbo_updated_at(qbo)
    if source_updated_at is None or qbo_time is None:
        return None
    source_time = as_utc(source_updated_at)
    if source_time == qbo_time:
        return None
    return ChangedLast.SOURCE if source_time > qbo_time else ChangedLast.QBO


def flow_of_path(spec: EntitySpec, path: str) -> Direction:
    """The flow of a compared field; `Line` is always pushed."""
    mapping = spec.fields.get(path)
    return Direction.PUSH if mapping is None else spec.flow_of(mapping)


def diff_fields(spec: EntitySpec, source: Mapping[str, Any], base: Mapping[str, Any] | None,
                qbo: Mapping[str, Any], *, last: ChangedLast | None = None,
                pull_only_same: Set[str] | None = None,
                decided: Mapping[str, DecidedField] | None = None
                ) -> tuple[FieldDiff, ...]:
    """The per-field three-way comparison of a record that exists on both sides.

    `last` is the side that changed the record last (for last_modified_wins);
    `pull_only_same`, when given, decides the pull-only fields (see the module docstring);
    `decided` (path -> a person's decision on the record's conflict) decides a field while
    both sides still hold the values decided on (`sync.resolutions`).
    """
    diffs = []
    for path in compared_fields(spec):
        flow = flow_of_path(spec, path)
        mapping = spec.fields.get(path)
        pulled_leaf = compared_leaf(mapping, path) if mapping and flow.pulls else None
        s, b, q = _values(path, source, base, qbo, pulled_leaf)
        ruled = decided[path].outcome(s, q) if decided and path in decided else None
        if ruled is not None:
            outcome = FieldOutcome(ruled.value)
        elif flow is Direction.PULL and pull_only_same is not None:
            outcome = FieldOutcome.SAME if path in pull_only_same else FieldOutcome.PULL
        else:
            outcome = field_outcome(flow, spec.conflict.policy_for(path), s, b, q, last)
        diffs.append(FieldDiff(path, s, b, q, outcome))
    return tuple(diffs)


def _record_action(fields: Sequence[FieldDiff]) -> RecordAction:
    outcomes = {f.outcome for f in fields}
    for outcome, action in ((FieldOutcome.CONFLICT, RecordAction.CONFLICT),
                            (FieldOutcome.UPDATE, RecordAction.UPDATE),
                            (FieldOutcome.PULL, RecordAction.PULL)):
        if outcome in outcomes:
            return action
    return RecordAction.UNCHANGED


def _delete_diff(spec: EntitySpec, source_key: str, qbo: Mapping[str, Any] | None,
                 delete_applied: bool) -> RecordDiff:
    action = spec.on_source_delete
    already_inactive = (action is DeleteAction.INACTIVATE
                        and values_equal(get_path(qbo, "Active"), False))
    if qbo is None or action is DeleteAction.IGNORE or delete_applied or already_inactive:
        return RecordDiff(source_key, RecordAction.UNCHANGED)
    return RecordDiff(source_key, RecordAction.DELETE, delete_action=action)


def diff_record(spec: EntitySpec, source_key: str, source: Mapping[str, Any] | None,
                base: Mapping[str, Any] | None, qbo: Mapping[str, Any] | None,
                delete_applied: bool = False, *, source_updated_at: dt.datetime | None = None,
                pull_only_same: Set[str] | None = None,
                decided: Mapping[str, DecidedField] | None = None) -> RecordDiff:
    """Compare one record three ways; `source` None means the source record was deleted.

    `delete_applied` says the delete action already ran for this record (the link knows);
    `source_updated_at` is when the source row last changed (for last_modified_wins);
    `pull_only_same` the pull-only fields the source row already holds (column space);
    `decided` the fields of a decided conflict (see `diff_fields`).
    """
    if source is None:
        return _delete_diff(spec, source_key, qbo, delete_applied)
    if qbo is None:
        if base is None:
            return RecordDiff(source_key, RecordAction.CREATE)
        return RecordDiff(source_key, RecordAction.CONFLICT, reason=(
            f"{spec.record_label} {source_key} was synced, but its QuickBooks "
            f"{spec.qbo_entity} is gone (deleted or merged in QuickBooks) - clear the link "
            "to create it again, or dismiss"))
    fields = diff_fields(spec, source, base, qbo, last=changed_last(source_updated_at, qbo),
                         pull_only_same=pull_only_same, decided=decided)
    return RecordDiff(source_key, _record_action(fields), fields)


def diff_new_in_qbo(spec: EntitySpec, record_key: str, qbo: Mapping[str, Any]) -> RecordDiff:
    """A QBO record with no source row: each pulled field QBO holds a value for is a PULL."""
    fields = []
    for path, mapping in spec.pulled_fields.items():
        value = get_path(qbo, compared_leaf(mapping, path))
        outcome = FieldOutcome.SAME if value is None else FieldOutcome.PULL
        fields.append(FieldDiff(path, None, None, value, outcome))
    return RecordDiff(record_key, _record_action(fields), tuple(fields))
