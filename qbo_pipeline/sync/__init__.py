"""The pure sync core: map rows (and QBO records back to rows), validate them, diff three ways
and plan the QBO writes and the source writes.

No I/O and no Dagster here: every function takes and returns plain data.
"""

from qbo_pipeline.sync.diff import (
    ChangedLast,
    FieldDiff,
    FieldOutcome,
    RecordAction,
    RecordDiff,
    changed_last,
    compared_fields,
    diff_record,
    field_outcome,
)
from qbo_pipeline.sync.ids import payload_hash, request_id
from qbo_pipeline.sync.mapping import (
    MappedRow,
    ResolveLookup,
    ResolveRef,
    RowIssue,
    map_frame,
    map_row,
    mapped_columns,
)
from qbo_pipeline.sync.plan import (
    Blocked,
    Conflict,
    Link,
    Plan,
    RecordState,
    Write,
    WriteKind,
    plan_changes,
    plan_pull,
    plan_qbo_side,
    sparse_update,
)
from qbo_pipeline.sync.pull import (
    PullQuery,
    SourceWrite,
    SourceWriteKind,
    in_pull_window,
    is_deleted_in_qbo,
    pull_query,
    settle_base,
)
from qbo_pipeline.sync.reverse import (
    ResolveSourceKey,
    UnmappedRecord,
    qbo_record_key,
    unmap_record,
)
from qbo_pipeline.sync.selection import active_conditions, row_selected, select_frame
from qbo_pipeline.sync.stale import StaleResolution, resolve_stale
from qbo_pipeline.sync.validation import (
    QuarantinedRow,
    ValidationResult,
    build_line_schema,
    build_pull_schema,
    build_schema,
    pulled_frame,
    validate_frame,
    validate_pulled,
)

__all__ = [
    "Blocked",
    "ChangedLast",
    "Conflict",
    "FieldDiff",
    "FieldOutcome",
    "Link",
    "MappedRow",
    "Plan",
    "PullQuery",
    "QuarantinedRow",
    "RecordAction",
    "RecordDiff",
    "RecordState",
    "ResolveLookup",
    "ResolveRef",
    "ResolveSourceKey",
    "RowIssue",
    "SourceWrite",
    "SourceWriteKind",
    "StaleResolution",
    "UnmappedRecord",
    "ValidationResult",
    "Write",
    "WriteKind",
    "active_conditions",
    "build_line_schema",
    "build_pull_schema",
    "build_schema",
    "changed_last",
    "compared_fields",
    "diff_record",
    "field_outcome",
    "in_pull_window",
    "is_deleted_in_qbo",
    "map_frame",
    "map_row",
    "mapped_columns",
    "payload_hash",
    "plan_changes",
    "plan_pull",
    "plan_qbo_side",
    "pull_query",
    "pulled_frame",
    "qbo_record_key",
    "request_id",
    "resolve_stale",
    "row_selected",
    "select_frame",
    "settle_base",
    "sparse_update",
    "unmap_record",
    "validate_frame",
    "validate_pulled",
]
