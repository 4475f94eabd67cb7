"""Reading a spec's source rows: `read(engine, spec, window)` and `read_lines`.

The window says which rows (the sync core's `ReadScope` fits it): `changed` reads the rows
stamped in `(since, until]`, `day` the rows whose business date is `day`, `record` the one row
whose key is `record_key`. Any read can add `also_keys`, rows read by key whatever their stamp
(held rows that are due again). The spec's `filter` applies to every read. Keys are compared as
text, since source keys are strings whatever the column's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from qbo_pipeline.source.reader import (
    Row,
    read_business_window,
    read_changed,
    read_children,
)
from qbo_pipeline.specs import EntitySpec

PAGE_SIZE = 1000
KEYS_PER_QUERY = 500
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class ReadWindow(Protocol):
    """Which rows to read; `mode` is "changed", "day" or "record"."""

    @property
    def mode(self) -> str: ...

    @property
    def until(self) -> datetime: ...

    @property
    def since(self) -> datetime | None: ...

    @property
    def day(self) -> date | None: ...

    @property
    def record_key(self) -> str | None: ...


def read(engine: Engine, spec: EntitySpec, window: ReadWindow,
         also_keys: Sequence[str] = ()) -> list[Row]:
    """The spec's rows in the window, then the rows of `also_keys` the window did not read."""
    rows = [row for page in _window_pages(engine, spec, window) for row in page]
    seen = {str(row[spec.source.primary_key]) for row in rows}
    wanted = [key for key in dict.fromkeys(also_keys) if key not in seen]
    return rows + read_keys(engine, spec, wanted)


def read_keys(engine: Engine, spec: EntitySpec, keys: Sequence[str]) -> list[Row]:
    """The rows with these keys, whatever their date or stamp."""
    return read_by(engine, spec, spec.source.primary_key, keys)


def read_by(engine: Engine, spec: EntitySpec, column: str, values: Sequence[str]) -> list[Row]:
    """The rows whose `column` holds one of `values` (compared as text), whatever their date
    or stamp: rows by key, or the rows holding these QBO Ids."""
    rows: list[Row] = []
    for start in range(0, len(values), KEYS_PER_QUERY):
        chunk = list(values[start:start + KEYS_PER_QUERY])
        names = [f"wanted_{index}" for index in range(len(chunk))]
        where = (f"CAST({column} AS VARCHAR(255)) IN "
                 f"({', '.join(':' + name for name in names)})")
        rows.extend(row for page in _pages_where(engine, spec, where, dict(zip(
            names, chunk, strict=True))) for row in page)
    return rows


def read_lines(engine: Engine, spec: EntitySpec, parent_keys: Sequence[Any]) -> list[Row]:
    """The line rows of these parents (an invoice's lines); none when the spec has no lines."""
    lines = spec.lines
    if lines is None:
        return []
    by_parent = read_children(engine, lines.table, lines.parent_key, parent_keys,
                              lines.order_by)
    return [row for children in by_parent.values() for row in children]


def _window_pages(engine: Engine, spec: EntitySpec,
                  window: ReadWindow) -> Iterator[list[Row]]:
    source = spec.source
    if window.mode == "record":
        assert window.record_key is not None, "a record read names its key"
        return iter([read_keys(engine, spec, [window.record_key])])
    if window.mode == "changed":
        return read_changed(engine, _table(spec), updated_at=source.updated_at,
                            since=window.since, until=window.until, **_common(spec))
    if window.mode == "day":
        assert window.day is not None and source.business_date is not None, \
            f"spec {spec.name}: a day read needs a day and a business date column"
        return read_business_window(engine, _table(spec), business_date=source.business_date,
                                    start=window.day, end=window.day + timedelta(days=1),
                                    **_common(spec))
    raise ValueError(f"unknown read mode {window.mode!r}")


def _pages_where(engine: Engine, spec: EntitySpec, where: str,
                 params: dict[str, Any]) -> Iterator[list[Row]]:
    # Every stamp up to the far future: a row is read by key whatever its updated_at.
    combined = where if spec.source.filter is None else f"({spec.source.filter}) AND {where}"
    common = {**_common(spec), "where": combined, "params": params}
    return read_changed(engine, _table(spec), updated_at=spec.source.updated_at, since=None,
                        until=FAR_FUTURE, **common)


def _common(spec: EntitySpec) -> dict[str, Any]:
    return {"primary_key": spec.source.primary_key, "page_size": PAGE_SIZE,
            "where": spec.source.filter, "soft_delete": spec.source.deleted}


def _table(spec: EntitySpec) -> str:
    table = spec.source.table or spec.source.query
    assert table is not None, f"spec {spec.name} names no source table or query"
    return table
