"""Three-way diff of one record: the source payload, the base last pushed, the QBO record.

Per mapped field, with s = source, b = base and q = QBO:
- s == q: nothing to do;
- q == b (only the source moved, or QBO never had a value): update QBO;
- otherwise QBO moved: the field's conflict policy decides (source_wins -> update,
  qbo_wins -> keep QBO's value, review -> a conflict showing s, q and b side by side).

Only the leaves the source or the base hold are compared: what QBO adds on its own (a
reference's `name`, defaults, line ids, the subtotal line) is not a change. Values are
compared after normalising (10.50 == "10.5", "" == missing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import ConflictPolicy, DeleteAction, EntitySpec
from qbo_pipeline.sync.mapping import LINES_FIELD
from qbo_pipeline.sync.values import get_path, values_equal

SUBTOTAL_DETAIL = "SubTotalLineDetail"


class FieldOutcome(StrEnum):
    SAME = "same"
    UPDATE = "update"
    KEEP_QBO = "keep_qbo"
    CONFLICT = "conflict"


class RecordAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    DELETE = "delete"


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
    """What one record needs, with the per-field detail behind it."""

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
            qbo: Mapping[str, Any] | None) -> tuple[Any, Any, Any]:
    if path == LINES_FIELD:
        return (_line_views(source, base, source), _line_views(source, base, base),
                _line_views(source, base, qbo))
    leaves = _field_leaves(path, source, base)
    if not leaves:
        # We never sent this field: whatever QBO holds there (a default) is not a change.
        return None, None, None
    return _project(source, leaves), _project(base, leaves), _project(qbo, leaves)


def _outcome(policy: ConflictPolicy, source: Any, base: Any, qbo: Any) -> FieldOutcome:
    if values_equal(source, qbo):
        return FieldOutcome.SAME
    if values_equal(qbo, base):
        return FieldOutcome.UPDATE
    return {
        ConflictPolicy.SOURCE_WINS: FieldOutcome.UPDATE,
        ConflictPolicy.QBO_WINS: FieldOutcome.KEEP_QBO,
        ConflictPolicy.REVIEW: FieldOutcome.CONFLICT,
    }[policy]


def diff_fields(spec: EntitySpec, source: Mapping[str, Any], base: Mapping[str, Any] | None,
                qbo: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """The per-field three-way comparison of a record that exists on both sides."""
    diffs = []
    for path in compared_fields(spec):
        s, b, q = _values(path, source, base, qbo)
        outcome = _outcome(spec.conflict.policy_for(path), s, b, q)
        diffs.append(FieldDiff(path, s, b, q, outcome))
    return tuple(diffs)


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
                delete_applied: bool = False) -> RecordDiff:
    """Compare one record three ways; `source` None means the source record was deleted.

    `delete_applied` says the delete action already ran for this record (the link knows).
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
    fields = diff_fields(spec, source, base, qbo)
    outcomes = {f.outcome for f in fields}
    if FieldOutcome.CONFLICT in outcomes:
        action = RecordAction.CONFLICT
    elif FieldOutcome.UPDATE in outcomes:
        action = RecordAction.UPDATE
    else:
        action = RecordAction.UNCHANGED
    return RecordDiff(source_key, action, fields)
