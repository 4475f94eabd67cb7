"""What a source row carries besides its fields, checked before the sync relies on it.

A field reads its columns through `values.coerce` (see `mapping.py`); this module checks the
rest of what the sync relies on, column by column:

- the primary key: present and readable;
- `updated_at`: a time. A row whose stamp is empty or no time cannot be read by change window
  (no window holds it), so it is read every run by `source.by_spec` and quarantined here
  until its stamp is set; a held row without a stamp is read again by key every run
  (`scope.due_again`), so the fix is seen whatever time it sets;
- `business_date`, when no field converts it itself: a date;
- the soft-delete column: a time or a yes/no flag (anything else could void a record in QBO);
- the columns of `source.column_types` (a query's inputs, a setting's flag): their type;
- one row per key: rows sharing a key in one read are each quarantined, never merged.

Each problem is a `RowIssue` whose path is the column, e.g.
`time entry 5: hours: 'abc' is not a number - correct hours on the time entry`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from qbo_pipeline.specs import EntitySpec, MappingKind, ValueType
from qbo_pipeline.sync.issues import RowIssue, column_issue
from qbo_pipeline.sync.values import (
    coerce,
    deleted_mark,
    is_missing,
    quoted,
    read_source_value,
    to_date,
    to_moment,
)


def source_row_issues(spec: EntitySpec, row: Mapping[str, Any],
                      source_key: str) -> list[RowIssue]:
    """Every problem of the row's key, stamp, business date, soft-delete flag and typed
    columns; empty when the sync can rely on all of them."""
    checks = (_key_issue, _stamp_issue, _business_date_issue, _deleted_issue)
    issues = [issue for check in checks if (issue := check(spec, row, source_key))]
    issues.extend(_typed_column_issues(spec, row, source_key))
    return issues


def _key_issue(spec: EntitySpec, row: Mapping[str, Any], key: str) -> RowIssue | None:
    column = spec.source.primary_key
    try:
        value = read_source_value(row.get(column))
    except ValueError as error:
        return column_issue(spec, key, column, str(error))
    if is_missing(value):
        return column_issue(spec, key, column, "empty",
                            f"fill in {column} on the {spec.record_label} in the source")
    return None


def _stamp_issue(spec: EntitySpec, row: Mapping[str, Any], key: str) -> RowIssue | None:
    column = spec.source.updated_at
    fix = (f"set {column} on the {spec.record_label} to the time it last changed: the sync "
           f"reads a row when its {column} moves")
    try:
        value = read_source_value(row.get(column))
    except ValueError as error:
        return column_issue(spec, key, column, str(error), fix)
    if is_missing(value):
        return column_issue(spec, key, column, "empty, so no sync can tell when it changed", fix)
    if to_moment(value) is None:
        return column_issue(spec, key, column,
                            f"{quoted(value)} is not a date and time (YYYY-MM-DD HH:MM:SS)", fix)
    return None


def _business_date_issue(spec: EntitySpec, row: Mapping[str, Any],
                         key: str) -> RowIssue | None:
    column = spec.source.business_date
    if column is None or _converted_by_a_field(spec, column):
        return None
    try:
        value = read_source_value(row.get(column))
    except ValueError as error:
        return column_issue(spec, key, column, str(error))
    if is_missing(value) or to_date(value) is not None:
        return None
    return column_issue(spec, key, column, f"{quoted(value)} is not a date (YYYY-MM-DD)")


def _converted_by_a_field(spec: EntitySpec, column: str) -> bool:
    """True when a pushed field reads the column as a date, and so reports it itself."""
    return any(m.kind is MappingKind.COLUMN and m.column == column and m.type is ValueType.DATE
               for m in spec.pushed_fields.values())


def _deleted_issue(spec: EntitySpec, row: Mapping[str, Any], key: str) -> RowIssue | None:
    column = spec.source.deleted
    if column is None:
        return None
    try:
        deleted_mark(row.get(column))
    except ValueError as error:
        return column_issue(spec, key, column, str(error))
    return None


def _typed_column_issues(spec: EntitySpec, row: Mapping[str, Any],
                         key: str) -> list[RowIssue]:
    issues = []
    for column, value_type in spec.source.column_types.items():
        if column not in row:
            issues.append(column_issue(spec, key, column, "is not among the source's columns",
                                       "fix source.column_types or the source query"))
            continue
        try:
            coerce(row[column], value_type)
        except ValueError as error:
            issues.append(column_issue(spec, key, column, str(error)))
    return issues


def duplicate_key_issues(spec: EntitySpec, keys: Sequence[str]) -> dict[int, RowIssue]:
    """Position -> issue for every row whose key another row of the same read has too: which
    of them is the record is not the sync's to guess, so none is synced."""
    counts = Counter(keys)
    column = spec.source.primary_key
    return {position: column_issue(
        spec, key, column, f"{quoted(key)} is the key of {counts[key]} rows read together",
        f"make the source return one row per {column} (check its query's joins)")
        for position, key in enumerate(keys) if counts[key] > 1}
