"""Reading a spec's source rows: `read(engine, spec, window)` and `read_lines`.

The window says which rows (the sync core's `ReadScope` fits it): `changed` reads the rows
stamped in `(since, until]`, `dates` the rows whose business date is in `dates`, `record` the
one row whose key is `record_key`. Any read can add `also_keys`, rows read by key whatever
their stamp (held rows that are due again). The spec's `filter` applies to every read. Keys are
compared as text, since source keys are strings whatever the column's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from qbo_pipeline.source.reader import (
    Row,
    read_business_window,
    read_changed,
    read_children,
    read_matching,
    read_unstamped,
)
from qbo_pipeline.specs import EntitySpec

PAGE_SIZE = 1000
KEYS_PER_QUERY = 500


class DateRange(Protocol):
    """Business dates from `first` to the day before `end`."""

    @property
    def first(self) -> date: ...

    @property
    def end(self) -> date: ...


class ReadWindow(Protocol):
    """Which rows to read; `mode` is "changed", "dates" or "record"."""

    @property
    def mode(self) -> str: ...

    @property
    def until(self) -> datetime: ...

    @property
    def since(self) -> datetime | None: ...

    @property
    def dates(self) -> DateRange | None: ...

    @property
    def record_key(self) -> str | None: ...


def read(engine: Engine, spec: EntitySpec, window: ReadWindow,
         also_keys: Sequence[str] = ()) -> list[Row]:
    """The spec's rows in the window, then the rows of `also_keys` the window did not read.

    A change window also reads the rows no window can hold (`updated_at` empty or no time):
    every run, so that the sync core quarantines them with the reason until they are fixed,
    instead of them never being read at all.
    """
    rows = [row for page in _window_pages(engine, spec, window) for row in page]
    if window.mode == "changed":
        rows.extend(row for page in _unstamped_pages(engine, spec) for row in page)
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
    if window.mode == "dates":
        assert window.dates is not None and source.business_date is not None, \
            f"spec {spec.name}: a dates read needs dates and a business date column"
        return read_business_window(engine, _table(spec), business_date=source.business_date,
                                    start=window.dates.first, end=window.dates.end,
                                    **_common(spec))
    raise ValueError(f"unknown read mode {window.mode!r}")


def _unstamped_pages(engine: Engine, spec: EntitySpec) -> Iterator[list[Row]]:
    return read_unstamped(engine, _table(spec), updated_at=spec.source.updated_at,
                          **_common(spec))


def _pages_where(engine: Engine, spec: EntitySpec, where: str,
                 params: dict[str, Any]) -> Iterator[list[Row]]:
    # No window: a row is read by key whatever its updated_at holds, even nothing.
    combined = where if spec.source.filter is None else f"({spec.source.filter}) AND {where}"
    common = {**_common(spec), "where": combined, "params": params}
    return read_matching(engine, _table(spec), **common)


def _common(spec: EntitySpec) -> dict[str, Any]:
    return {"primary_key": spec.source.primary_key, "page_size": PAGE_SIZE,
            "where": spec.source.filter, "soft_delete": spec.source.deleted}


def _table(spec: EntitySpec) -> str:
    table = spec.source.table or spec.source.query
    assert table is not None, f"spec {spec.name} names no source table or query"
    return table
