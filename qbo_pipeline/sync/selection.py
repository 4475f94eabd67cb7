"""Which source rows a company syncs, from the spec's named settings (`approved_only`...).

A setting is a per-company switch with a default; when it is on, only the rows meeting its
`when` condition are synced. The runner applies this to the rows it reads. A row whose
condition column does not hold its declared type (`source.column_types`: an `approved` of
'maybe') is let through, so that validation quarantines it with the reason instead of it
being skipped without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from qbo_pipeline.specs import Condition, EntitySpec, ValueType
from qbo_pipeline.sync.values import coerce, values_equal


def active_conditions(spec: EntitySpec,
                      overrides: Mapping[str, bool] | None = None) -> list[Condition]:
    """The conditions of the settings that are on: the defaults, changed by `overrides`."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.settings))
    if unknown:
        known = ", ".join(sorted(spec.settings)) or "none"
        raise ValueError(f"spec {spec.name} has no setting {', '.join(unknown)} "
                         f"(its settings: {known})")
    return [setting.when for name, setting in spec.settings.items()
            if overrides.get(name, setting.default)]


def meets(condition: Condition, row: Mapping[str, Any]) -> bool:
    """True when the row's value equals one of the condition's accepted values."""
    value = row.get(condition.column)
    return any(values_equal(value, accepted) for accepted in condition.accepted)


def row_selected(spec: EntitySpec, row: Mapping[str, Any],
                 overrides: Mapping[str, bool] | None = None) -> bool:
    """True when the row meets every condition of the settings that are on."""
    return all(meets(condition, row) for condition in active_conditions(spec, overrides))


def select_frame(spec: EntitySpec, frame: pd.DataFrame,
                 overrides: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """The rows of a source frame that the settings that are on let through."""
    conditions = active_conditions(spec, overrides)
    missing = sorted({c.column for c in conditions} - set(frame.columns))
    if missing:
        raise ValueError(f"spec {spec.name}: its settings read the column(s) "
                         f"{', '.join(missing)}, which the source rows do not have")
    keep = pd.Series(True, index=frame.index)
    unreadable = pd.Series(False, index=frame.index)
    types = spec.source.column_types
    for condition in conditions:
        keep &= frame[condition.column].map(
            lambda value, c=condition: any(values_equal(value, a) for a in c.accepted))
        if condition.column in types:
            unreadable |= frame[condition.column].map(
                lambda value, c=condition: not _reads_as(value, types[c.column]))
    return frame[keep | unreadable]


def _reads_as(value: Any, value_type: ValueType) -> bool:
    try:
        coerce(value, value_type)
    except ValueError:
        return False
    return True
