"""The source side: reading and writing the business app's rows, and the demo database.

`by_spec` reads a spec's rows by window (changes, a business day, one record); `reader` is the
paged reader under it; `writer` writes pulled QBO data into source tables; `demo_schema` and
`demo_data` define and fill the demo practice-management database.
"""

from qbo_pipeline.source.by_spec import read, read_by, read_keys, read_lines
from qbo_pipeline.source.reader import (
    DELETED_FLAG,
    SourceError,
    create_source_engine,
    read_business_window,
    read_changed,
    read_children,
)
from qbo_pipeline.source.writer import (
    RowUpdate,
    RowUpsert,
    SourceWriteError,
    update_rows,
    upsert_rows,
)

__all__ = [
    "DELETED_FLAG",
    "RowUpdate",
    "RowUpsert",
    "SourceError",
    "SourceWriteError",
    "create_source_engine",
    "read",
    "read_by",
    "read_business_window",
    "read_changed",
    "read_children",
    "read_keys",
    "read_lines",
    "update_rows",
    "upsert_rows",
]
