"""What a write QBO refused for a stale SyncToken (fault 5010) becomes.

QBO refuses a write whose SyncToken is not the record's current one: someone saved the record
after the snapshot the plan was made from. Sending the same body with the new token would
overwrite their change, so the record is re-read and diffed again by the rules of every diff
(`diff.py`): a field only the source changed is written (on the new SyncToken, hence under a
new request id), a field QBO changed follows the field's conflict policy, and a field QBO
already holds as the source has it needs nothing. A field the spec does not map is never sent,
so a bookkeeper's edit there survives the retry.

For a spec that also pulls, only the QBO side is re-planned: what QBO changed and the
source should take is the next run's pull, from the snapshot this re-read just refreshed.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbo_pipeline.specs import EntitySpec
from qbo_pipeline.sync.plan import Conflict, RecordState, Write, WriteKind, plan_qbo_side


@dataclass(frozen=True)
class StaleResolution:
    """The re-diff of one refused write: a write to retry, a conflict, both, or neither
    (QBO already holds every value the write would have sent)."""

    source_key: str
    retry: Write | None = None
    conflict: Conflict | None = None


def resolve_stale(spec: EntitySpec, realm_id: str, state: RecordState) -> StaleResolution:
    """Re-diff a record whose write was refused as stale; `state.qbo` is the record re-read
    from QBO, `state.source` and `state.base` are what the refused write was planned from."""
    if state.source_key is None:
        raise ValueError(f"spec {spec.name}: a write refused as stale belongs to a source "
                         "record; pass its source key")
    if state.qbo is None:
        raise ValueError(f"{spec.record_label} {state.source_key}: re-read the QuickBooks "
                         f"{spec.qbo_entity} before re-diffing a write refused as stale")
    plan = plan_qbo_side(spec, realm_id, [state])
    writes = plan.writes()
    # With the QBO record at hand the plan never creates: that would be a duplicate.
    assert all(write.kind is not WriteKind.CREATE for write in writes), writes
    return StaleResolution(state.source_key, writes[0] if writes else None,
                           plan.conflicts[0] if plan.conflicts else None)
