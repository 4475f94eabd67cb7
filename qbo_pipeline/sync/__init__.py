"""The pure sync core: map rows, validate them, diff three ways and plan the QBO writes.

No I/O and no Dagster here: every function takes and returns plain data.
"""

from qbo_pipeline.sync.diff import (
    FieldDiff,
    FieldOutcome,
    RecordAction,
    RecordDiff,
    compared_fields,
    diff_record,
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
    sparse_update,
)
from qbo_pipeline.sync.selection import active_conditions, row_selected, select_frame
from qbo_pipeline.sync.stale import StaleResolution, resolve_stale
from qbo_pipeline.sync.validation import (
    QuarantinedRow,
    ValidationResult,
    build_line_schema,
    build_schema,
    validate_frame,
)

__all__ = [
    "Blocked",
    "Conflict",
    "FieldDiff",
    "FieldOutcome",
    "Link",
    "MappedRow",
    "Plan",
    "QuarantinedRow",
    "RecordAction",
    "RecordDiff",
    "RecordState",
    "ResolveLookup",
    "ResolveRef",
    "RowIssue",
    "StaleResolution",
    "ValidationResult",
    "Write",
    "WriteKind",
    "active_conditions",
    "build_line_schema",
    "build_schema",
    "compared_fields",
    "diff_record",
    "map_frame",
    "map_row",
    "mapped_columns",
    "payload_hash",
    "plan_changes",
    "request_id",
    "resolve_stale",
    "row_selected",
    "select_frame",
    "sparse_update",
    "validate_frame",
]
