"""Child rows combined into one line per group (seed 002's "Invoice Item Options: Aggregate
Time/Expense Items"): the lines of one service become one line with the summed hours and
amount, instead of one line per time or expense item.

A group is the rows whose `by` columns hold equal values (compared after normalising, so
"Design" and "Design " are one service), in the order each group first appears. Each `sum`
column is the group's total (empty values count as nothing; all empty stays empty); a value
that is not a number is kept as it is, so that the line's rules name it instead of a wrong
total going to QBO. Any other column keeps its value when the rows agree, else it is empty
(two rates of one service have no one rate: QBO gets the quantity and the amount).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from qbo_pipeline.specs.models import LineGroup
from qbo_pipeline.sync.values import is_missing, to_decimal, values_equal

Row = Mapping[str, Any]


def grouped_lines(group: LineGroup, children: Sequence[Row]) -> list[dict[str, Any]]:
    """One combined row per group of `children` (already in line order)."""
    groups: list[list[Row]] = []
    for child in children:
        for rows in groups:
            if all(values_equal(rows[0].get(c), child.get(c)) for c in group.by):
                rows.append(child)
                break
        else:
            groups.append([child])
    return [_combined(group, rows) for rows in groups]


def _combined(group: LineGroup, rows: Sequence[Row]) -> dict[str, Any]:
    combined = dict(rows[0])
    for column in combined:
        if column in group.sum:
            combined[column] = _total([row.get(column) for row in rows])
        elif column not in group.by and not all(
                values_equal(combined[column], row.get(column)) for row in rows[1:]):
            combined[column] = None
    return combined


def _total(values: Sequence[Any]) -> Any:
    present = [value for value in values if not is_missing(value)]
    if not present:
        return None
    numbers = [to_decimal(value) for value in present]
    for value, number in zip(present, numbers, strict=True):
        if number is None:
            return value  # not a number: the line's rules quarantine the record with it
    return sum((number for number in numbers if number is not None), Decimal(0))
