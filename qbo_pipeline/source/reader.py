"""Reading source rows with SQLAlchemy, page by page, by change window or business-date window.

A source is a table name (`"clients"`, `"sales.clients"`), a SQL SELECT (wrapped as a
subquery, so it may join and compute columns) or a SQLAlchemy selectable. Options shared by
every reader:

- `where`: an extra SQL filter on the source's columns, such as `"approved"`; values belong in
  `params` (`where="status = :status", params={"status": "sent"}`), never formatted into it;
- `soft_delete`: a column whose non-null value marks a deleted row. Such rows are returned,
  not skipped, because deletes must sync too. Every row carries `_deleted` (True or False).

Pages are keyset-paged on (window column, primary key), each page in its own short
connection, so no row is skipped or repeated even when many rows share a timestamp, and no
transaction stays open while the caller works on a page.

Timestamps are UTC. Naive datetimes passed in are taken as UTC; aware ones are converted.
A query's window columns are typed for the comparison; its other columns come back as the
driver returns them (SQLite gives dates as strings): read a table when types matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Engine,
    FromClause,
    MetaData,
    Select,
    Table,
    and_,
    column,
    create_engine,
    literal_column,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeEngine

Source = str | FromClause
Row = dict[str, Any]

DELETED_FLAG = "_deleted"
_QUERY_START = re.compile(r"^[\s(]*(select|with)\b", re.IGNORECASE)
_CHILD_IDS_PER_QUERY = 500


class SourceError(Exception):
    """A source (table, query or column) named in a spec does not exist or cannot be read."""


def create_source_engine(url: str) -> Engine:
    """An engine for a source or demo database URL (any SQLAlchemy URL)."""
    return create_engine(make_url(url))


def describe_url(engine: Engine) -> str:
    """The engine's URL for messages, with any password hidden."""
    return engine.url.render_as_string(hide_password=True)


def read_changed(
    engine: Engine,
    table_or_query: Source,
    *,
    primary_key: str | Sequence[str],
    updated_at: str,
    since: datetime | None,
    until: datetime,
    page_size: int,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    soft_delete: str | None = None,
) -> Iterator[list[Row]]:
    """Pages of the rows with `since < updated_at <= until` (no lower bound when `since` is
    None), in (updated_at, primary key) order. Rows whose updated_at is NULL are never read.

    Consecutive windows (`since` = the previous `until`) read every change exactly once,
    provided `until` lies far enough in the past that no transaction still in flight will
    commit a row stamped before it.
    """
    keys = _key_names(primary_key)
    source = _resolve(engine, table_or_query, {updated_at: DateTime()})
    changed = source.column(updated_at)
    conditions = [changed <= _as_column_time(until, changed)]
    if since is not None:
        conditions.append(changed > _as_column_time(since, changed))
    yield from _keyset_pages(
        engine,
        source,
        conditions=conditions,
        order=[updated_at, *keys],
        page_size=page_size,
        where=where,
        params=params,
        soft_delete=soft_delete,
    )


def read_business_window(
    engine: Engine,
    table_or_query: Source,
    *,
    primary_key: str | Sequence[str],
    business_date: str,
    start: date,
    end: date,
    page_size: int,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    soft_delete: str | None = None,
) -> Iterator[list[Row]]:
    """Pages of the rows with `start <= business_date < end` (a day partition is
    `end = start + 1 day`), in (business_date, primary key) order."""
    keys = _key_names(primary_key)
    source = _resolve(engine, table_or_query, {business_date: Date()})
    dated = source.column(business_date)
    conditions = [dated >= _as_column_date(start, dated), dated < _as_column_date(end, dated)]
    yield from _keyset_pages(
        engine,
        source,
        conditions=conditions,
        order=[business_date, *keys],
        page_size=page_size,
        where=where,
        params=params,
        soft_delete=soft_delete,
    )


def read_children(
    engine: Engine,
    table: Source,
    parent_key: str,
    parent_ids: Iterable[Any],
    order_by: str | Sequence[str],
    *,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    soft_delete: str | None = None,
) -> dict[Any, list[Row]]:
    """The child rows of each parent (such as an invoice's lines), in `order_by` order.

    Every requested parent id is a key of the result, with an empty list when it has no
    children, so that "no lines" is explicit.
    """
    source = _resolve(engine, table, {})
    parent = source.column(parent_key)
    ordering = [source.column(name) for name in _key_names(order_by)]
    children: dict[Any, list[Row]] = {parent_id: [] for parent_id in parent_ids}
    wanted = list(children)
    for offset in range(0, len(wanted), _CHILD_IDS_PER_QUERY):
        chunk = wanted[offset : offset + _CHILD_IDS_PER_QUERY]
        statement = _filtered(select(source.selectable), where).where(parent.in_(chunk))
        with engine.connect() as connection:
            result = connection.execute(statement.order_by(parent, *ordering), dict(params or {}))
            for row in result.mappings():
                child = _flagged(dict(row), soft_delete)
                children[child[parent_key]].append(child)
    return children


@dataclass(frozen=True)
class _ResolvedSource:
    selectable: FromClause
    label: str

    def column(self, name: str) -> ColumnElement[Any]:
        try:
            return self.selectable.c[name]
        except KeyError:
            available = ", ".join(self.selectable.c.keys())
            raise SourceError(
                f"source {self.label} has no column {name!r} (its columns: {available}); "
                "fix the column name in the mapping spec's source section"
            ) from None


def _resolve(
    engine: Engine, source: Source, types: Mapping[str, TypeEngine[Any]]
) -> _ResolvedSource:
    """The source as a selectable; a query's columns named in `types` get those types."""
    if not isinstance(source, str):
        return _ResolvedSource(source, repr(getattr(source, "name", str(source))))
    if _QUERY_START.match(source):
        return _ResolvedSource(_query_subquery(engine, source, types), "query")
    return _ResolvedSource(_reflect_table(engine, source), repr(source))


def _reflect_table(engine: Engine, name: str) -> Table:
    schema, _, table_name = name.rpartition(".")
    try:
        return Table(table_name, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        raise SourceError(
            f"source table {name!r} does not exist in {describe_url(engine)}; "
            "fix the table name in the mapping spec or create the table"
        ) from None


def _query_subquery(engine: Engine, sql: str, types: Mapping[str, TypeEngine[Any]]) -> FromClause:
    """Wrap a SELECT as a subquery whose columns are discovered by running it for no rows.

    Declared types matter on SQLite, which returns dates and times of raw SQL as strings.
    """
    query = sql.strip().rstrip(";")
    probe: Select[Any] = select(literal_column("*")).select_from(
        text(query).columns().subquery("probe")
    )
    try:
        with engine.connect() as connection:
            names = list(connection.execute(probe.where(literal_column("1") == 0)).keys())
    except Exception as error:
        raise SourceError(
            f"source query failed in {describe_url(engine)}: {error}; fix the query in the "
            "mapping spec's source section"
        ) from error
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SourceError(
            f"source query returns column(s) {', '.join(duplicates)} more than once; "
            "give each selected column a distinct alias"
        )
    columns = [column(name, types.get(name, NullType())) for name in names]
    return text(query).columns(*columns).subquery("source_query")


def _keyset_pages(
    engine: Engine,
    source: _ResolvedSource,
    *,
    conditions: list[ColumnElement[bool]],
    order: list[str],
    page_size: int,
    where: str | None,
    params: Mapping[str, Any] | None,
    soft_delete: str | None,
) -> Iterator[list[Row]]:
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    order_columns = [source.column(name) for name in order]
    if soft_delete is not None:
        source.column(soft_delete)  # fail before reading when the column does not exist
    base = _filtered(select(source.selectable), where).where(*conditions)
    last_seen: list[Any] | None = None
    while True:
        statement = base if last_seen is None else base.where(_after(order_columns, last_seen))
        statement = statement.order_by(*order_columns).limit(page_size)
        with engine.connect() as connection:
            rows = [
                dict(row) for row in connection.execute(statement, dict(params or {})).mappings()
            ]
        if not rows:
            return
        yield [_flagged(row, soft_delete) for row in rows]
        if len(rows) < page_size:
            return
        last_seen = [rows[-1][name] for name in order]


def _after(columns: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the lexicographic order of `columns`.

    Spelled as OR of ANDs rather than a row-value comparison: every backend supports it and
    it uses the (updated_at, id) index.
    """
    alternatives = []
    for position, (current, value) in enumerate(zip(columns, values, strict=True)):
        equal_before = [
            earlier == earlier_value
            for earlier, earlier_value in zip(columns[:position], values[:position], strict=True)
        ]
        alternatives.append(and_(*equal_before, current > value))
    return or_(*alternatives)


def _filtered(statement: Select[Any], where: str | None) -> Select[Any]:
    return statement if where is None else statement.where(text(where))


def _flagged(row: Row, soft_delete: str | None) -> Row:
    row[DELETED_FLAG] = soft_delete is not None and row[soft_delete] is not None
    return row


def _key_names(names: str | Sequence[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _as_column_time(moment: datetime, target: ColumnElement[Any]) -> datetime:
    """UTC, naive for a naive (UTC-holding) column, aware for a timezone-aware one."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return utc if getattr(target.type, "timezone", False) else utc.replace(tzinfo=None)


def _as_column_date(day: date, target: ColumnElement[Any]) -> date | datetime:
    """A date for a Date column, midnight UTC for a DateTime one."""
    if isinstance(target.type, DateTime):
        return _as_column_time(datetime.combine(day, time.min), target)
    return day
