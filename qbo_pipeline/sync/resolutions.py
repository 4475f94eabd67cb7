"""What a person's decision on a conflict does to the next run of its record.

A conflict lists, per field, the source value, the QBO value and the last agreed one. Its
decision is applied by the next run, field by field, while the record still holds the values
the person decided on (`DecidedField.outcome`):

- keep_source: the source's value is pushed to QBO, with QBO's SyncToken of then;
- apply_qbo: QBO's value is written into the source (a field that pulls; one that only pushes
  has no way back into the source, and the decision is refused when it is made:
  `apply_qbo_problems`);
- dismiss: nothing is written either way, and the difference is not raised again while both
  sides hold the dismissed values; once one side changes, the field is diffed as usual.

A side that changed again after the decision makes the field diff as usual: most often a new
conflict, decided anew on the values of now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import Direction, EntitySpec
from qbo_pipeline.sync.values import values_equal


class Decision(StrEnum):
    KEEP_SOURCE = "keep_source"
    APPLY_QBO = "apply_qbo"
    DISMISS = "dismiss"


class DecidedOutcome(StrEnum):
    """What a decided field does (the diff's own outcomes, named here to keep this module
    free of the diff's)."""

    UPDATE = "update"
    PULL = "pull"
    SAME = "same"


@dataclass(frozen=True)
class DecidedField:
    """One field of a decided conflict: the decision, and the values it was made on."""

    decision: Decision
    source: Any
    qbo: Any

    def outcome(self, source: Any, qbo: Any) -> DecidedOutcome | None:
        """The field's outcome now, or None when a side changed since the decision."""
        if not values_equal(qbo, self.qbo):
            return None
        if self.decision is Decision.KEEP_SOURCE:
            # The source may have moved on since: its value now is what is kept.
            return DecidedOutcome.SAME if values_equal(source, qbo) else DecidedOutcome.UPDATE
        if not values_equal(source, self.source):
            return None
        return DecidedOutcome.PULL if self.decision is Decision.APPLY_QBO else DecidedOutcome.SAME


def decided_fields(decision: Decision, fields: Iterable[Mapping[str, Any]]
                   ) -> dict[str, DecidedField]:
    """path -> DecidedField, from a conflict's fields as stored (`path`, `source`, `qbo`)."""
    return {str(f["path"]): DecidedField(decision, f.get("source"), f.get("qbo"))
            for f in fields}


def apply_qbo_problems(spec: EntitySpec, paths: Iterable[str]) -> list[str]:
    """Why QBO's values of these fields cannot be written into the source, if they cannot:
    only a field that pulls (`two_way`, `pull`) has a way back into the source."""
    problems = []
    for path in paths:
        mapping = spec.fields.get(path)
        if mapping is None or not spec.flow_of(mapping).pulls:
            flow = Direction.PUSH if mapping is None else spec.flow_of(mapping)
            problems.append(
                f"{spec.name}: {path} is a {flow.value} field, so QuickBooks' value cannot be "
                f"written into {spec.source.table or 'the source'}: change the source row to "
                "QuickBooks' value (the next sync then finds both sides agree), or keep the "
                "source's value")
    return problems
