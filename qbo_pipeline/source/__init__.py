"""The source side: reading the business app's rows, and the demo source database.

`reader` reads rows in pages by change window or business-date window; `demo_schema` and
`demo_data` define and fill the demo practice-management database.
"""

from qbo_pipeline.source.reader import (
    DELETED_FLAG,
    SourceError,
    create_source_engine,
    read_business_window,
    read_changed,
    read_children,
)

__all__ = [
    "DELETED_FLAG",
    "SourceError",
    "create_source_engine",
    "read_business_window",
    "read_changed",
    "read_children",
]
