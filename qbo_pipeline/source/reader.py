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

One bad value never fails a page. SQLite stores anything in any column (text in a REAL
column, `2026-02-30` in a DATE one, invalid UTF-8 in TEXT), and where the driver or the column
type cannot convert a stored value, the reader hands it on as stored (undecodable text as
bytes): the sync core quarantines that row with the reason, and the page's other rows go on.
A boolean column gives True or False only for 0 and 1, never for 2 or 'maybe'; a NaN the
database holds comes back as `Decimal("NaN")`, which no one takes for pandas' "no value".
Rows sharing a page boundary's (window, key) values are read whole, so a source that repeats
a key shows every repeat; rows without a key are read after the others.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Dialect,
    Engine,
    FromClause,
    MetaData,
    Select,
    Table,
    and_,
    column,
    create_engine,
    func,
    literal,
    literal_column,
    make_url,
    not_,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

Source = str | FromClause
Row = dict[str, Any]

DELETED_FLAG = "_deleted"
_QUERY_START = re.compile(r"^[\s(]*(select|with)\b", re.IGNORECASE)
_CHILD_IDS_PER_QUERY = 500
_KEYSET_LABEL = "__qbo_keyset_"  # hidden columns: a page's last (window, key) as stored
# The stamps a change window can hold: a stored stamp outside them (or none) is "unstamped".
_EARLIEST_STAMP = datetime(1, 1, 1, tzinfo=UTC)
_LATEST_STAMP = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


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
    """Pages of the rows with `since < updated_at <= until` (from the earliest time when
    `since` is None), in (updated_at, primary key) order. Rows whose updated_at is NULL or
    no time are not in any window: `read_unstamped` reads them.

    Consecutive windows (`since` = the previous `until`) read every change exactly once,
    provided `until` lies far enough in the past that no transaction still in flight will
    commit a row stamped before it.
    """
    keys = _key_names(primary_key)
    source = _resolve(engine, table_or_query, {updated_at: DateTime()})
    changed = source.column(updated_at)
    # Not what `read_unstamped` reads: no row is returned by both (it would look like a
    # repeated key).
    conditions = [changed <= _as_column_time(until, changed), not_(_unstamped(engine, changed))]
    if since is not None:
        conditions.append(changed > _as_column_time(since, changed))
    yield from _keyset_pages(
        engine,
        source,
        conditions=conditions,
        window=updated_at,
        keys=keys,
        page_size=page_size,
        where=where,
        params=params,
        soft_delete=soft_delete,
    )


def read_unstamped(
    engine: Engine,
    table_or_query: Source,
    *,
    primary_key: str | Sequence[str],
    updated_at: str,
    page_size: int,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    soft_delete: str | None = None,
) -> Iterator[list[Row]]:
    """Pages of the rows no change window reads: `updated_at` NULL, or a stored value that
    compares outside every possible time (SQLite keeps `0000-00-00`, numbers and words in a
    DATETIME column), in primary-key order. Read every run, they are quarantined until fixed
    instead of never being read."""
    keys = _key_names(primary_key)
    source = _resolve(engine, table_or_query, {updated_at: DateTime()})
    unstamped = _unstamped(engine, source.column(updated_at))
    yield from _keyset_pages(engine, source, conditions=[unstamped], window=None, keys=keys,
                             page_size=page_size, where=where, params=params,
                             soft_delete=soft_delete)


def _unstamped(engine: Engine, stamp: ColumnElement[Any]) -> ColumnElement[bool]:
    """The stamps no change window holds: none, or one that compares outside every time."""
    outside = or_(stamp.is_(None), stamp < _as_column_time(_EARLIEST_STAMP, stamp),
                  stamp > _as_column_time(_LATEST_STAMP, stamp))
    if engine.dialect.name != "sqlite":
        return outside
    # SQLite keeps any text in a DATETIME column, and text it cannot read as a time ('2:',
    # '2026-99-01') can sort among the times, after every window yet. Other databases type it.
    return or_(outside, func.datetime(stamp).is_(None))


def read_matching(
    engine: Engine,
    table_or_query: Source,
    *,
    primary_key: str | Sequence[str],
    page_size: int,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    soft_delete: str | None = None,
) -> Iterator[list[Row]]:
    """Pages of the rows `where` selects, whatever their stamps (rows by key), in primary-key
    order."""
    source = _resolve(engine, table_or_query, {})
    yield from _keyset_pages(engine, source, conditions=[], window=None,
                             keys=_key_names(primary_key), page_size=page_size, where=where,
                             params=params, soft_delete=soft_delete)


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
        window=business_date,
        keys=keys,
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
        statement = _filtered(select(*_output_columns(source.selectable, [])), where)
        statement = statement.where(parent.in_(chunk)).order_by(parent, *ordering)
        for row in _fetch(engine, statement, params):
            child = _flagged(row, soft_delete)
            children.setdefault(child[parent_key], []).append(child)
    return children


class _Raw(TypeDecorator[Any]):
    """The driver's own value, both ways: a page's last (window, key) is compared with the
    stored values exactly as stored, whatever they hold."""

    impl = NullType
    cache_ok = True


class _Tolerant(TypeDecorator[Any]):
    """A column read as its own type, except that a stored value the type cannot convert is
    handed on as stored, for the sync core to quarantine its row with the reason."""

    impl = NullType
    cache_ok = True

    def __init__(self, stored: TypeEngine[Any]) -> None:
        super().__init__()
        self.stored = stored

    def result_processor(self, dialect: Dialect, coltype: object
                         ) -> Callable[[Any], Any] | None:
        convert = self.stored.dialect_impl(dialect).result_processor(dialect, coltype)
        flag = isinstance(self.stored, Boolean)

        def process(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return Decimal("NaN")  # a value, not pandas' "no value"
            if convert is None or value is None:
                return value
            if flag and (isinstance(value, bool) or value not in (0, 1)):
                return value  # only 0 and 1 are clear; SQLite's bool(2) would say True
            try:
                return convert(value)
            except Exception:  # any conversion failure: the core says what is wrong
                return value

        return process


def _undecodable_as_bytes(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


@contextmanager
def _connected(engine: Engine) -> Iterator[Connection]:
    """A connection on which SQLite hands back text it cannot decode as bytes, instead of
    failing the whole statement."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection):
            raw.text_factory = _undecodable_as_bytes
        yield connection


def _output_columns(selectable: FromClause,
                    keyset: Sequence[ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    """Every column of the source read tolerantly, then the keyset columns as stored."""
    columns: list[ColumnElement[Any]] = [
        type_coerce(c, _Tolerant(c.type)).label(c.key) for c in selectable.c]
    columns.extend(type_coerce(c, _Raw()).label(f"{_KEYSET_LABEL}{position}")
                   for position, c in enumerate(keyset))
    return columns


def _fetch(engine: Engine, statement: Select[Any],
           params: Mapping[str, Any] | None) -> list[Row]:
    with _connected(engine) as connection:
        return [dict(row) for row in connection.execute(statement, dict(params or {})).mappings()]


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
        with _connected(engine) as connection:
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
    window: str | None,
    keys: list[str],
    page_size: int,
    where: str | None,
    params: Mapping[str, Any] | None,
    soft_delete: str | None,
) -> Iterator[list[Row]]:
    """Pages in (window, keys) order, then the rows without a key (which no keyset can page)."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    order = [source.column(name) for name in ([window] if window else []) + keys]
    key_columns = [source.column(name) for name in keys]
    if soft_delete is not None:
        source.column(soft_delete)  # fail before reading when the column does not exist
    chosen = _filtered(select(*_output_columns(source.selectable, order)), where).where(
        *conditions)
    keyed = chosen.where(*(c.is_not(None) for c in key_columns))
    last_seen: list[Any] | None = None
    while True:
        statement = keyed if last_seen is None else keyed.where(_after(engine, order, last_seen))
        rows = _fetch(engine, statement.order_by(*order).limit(page_size), params)
        full = len(rows) == page_size
        if full:
            rows = _with_ties(engine, keyed, order, rows, params)
        if rows:
            last_seen = _keyset_of(rows[-1], len(order))
            yield [_flagged(_visible(row), soft_delete) for row in rows]
        if not full:
            break
    unkeyed = _fetch(engine, chosen.where(or_(*(c.is_(None) for c in key_columns))), params)
    if unkeyed:
        yield [_flagged(_visible(row), soft_delete) for row in unkeyed]


def _with_ties(engine: Engine, keyed: Select[Any], order: Sequence[ColumnElement[Any]],
               rows: list[Row], params: Mapping[str, Any] | None) -> list[Row]:
    """The page with every row sharing its last row's (window, keys): a source that repeats a
    key must show each repeat, not lose those past the page's end."""
    last = _keyset_of(rows[-1], len(order))
    ties = _fetch(engine, keyed.where(*(c == _stored(value) for c, value in
                                        zip(order, last, strict=True))), params)
    before = [row for row in rows if _keyset_of(row, len(order)) != last]
    return before + ties


def _keyset_of(row: Row, size: int) -> list[Any]:
    return [row[f"{_KEYSET_LABEL}{position}"] for position in range(size)]


def _visible(row: Row) -> Row:
    return {name: value for name, value in row.items() if not name.startswith(_KEYSET_LABEL)}


def _stored(value: Any) -> ColumnElement[Any]:
    """A bound value compared as stored (no conversion by the column's type)."""
    return literal(value, _Raw())


def _after(engine: Engine, columns: Sequence[ColumnElement[Any]],
           values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the lexicographic order of `columns`.

    A row-value comparison, `(updated_at, id) > (?, ?)`, where the database has them: SQLite
    and PostgreSQL serve it from the (updated_at, id) index as one range, so every page costs
    the same. The OR of ANDs that other backends get is the same condition, but SQLite answers
    it with two index searches merged and the rest of the table sorted on every page (issue
    12 measured 17 -> 29 -> 74 us a row as a table grew); its leading bound on the first
    column at least keeps the scan to what is left.
    """
    stored = [_stored(value) for value in values]
    if len(columns) > 1 and engine.dialect.name in _ROW_VALUE_DIALECTS:
        return tuple_(*columns) > tuple_(*stored)
    alternatives = []
    for position, current in enumerate(columns):
        equal_before = [earlier == value for earlier, value
                        in zip(columns[:position], stored[:position], strict=True)]
        alternatives.append(and_(*equal_before, current > stored[position]))
    return and_(columns[0] >= stored[0], or_(*alternatives))


# Backends whose row values compare lexicographically and use a matching index (SQLite from
# 3.15, which every supported Python ships with).
_ROW_VALUE_DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})


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
