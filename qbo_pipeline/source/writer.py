"""Writing pulled QBO data into source tables with SQLAlchemy Core, one transaction per call.

This module decides nothing about sync: the pure core plans what to write and hands over plain
instructions, which are executed here as they are.

- `update_rows` sets some columns of existing rows found by primary key (linked rows);
- `upsert_rows` updates the row whose match column (such as `services.qbo_id`) holds the QBO
  Id, or inserts it, and tells the caller each row's primary key so it can link the two.

Tables are named as the reader names them (`"services"`, `"sales.services"`) and reflected
once per call. Every value is converted to what its column takes before anything is written
(SQLite would otherwise store a date string in a DATE column or text in an INTEGER one, and
read it back wrong); a value that does not fit raises `SourceWriteError` naming the table, the
row and the column. A failure while writing rolls the whole call back: nothing is half-written.

Given `touch` (the source's updated_at column), every written row is stamped with `now`, so the
application sees the change, stored as the reader compares it: naive UTC on a column without
timezone, aware on a timezone-aware one. Given `created` (upserts only), inserted rows get their
created_at stamped too.

Conversions: text to int, Decimal, date, datetime, time or bool where the column is of that
type (ISO formats; "true"/"false"); numbers to the column's scale, rounded half away from zero
as PostgreSQL rounds; numbers and dates to text for a text column. Refused everywhere, as
PostgreSQL refuses them (SQLite would store them): text longer than the column, more digits
than the precision, NULL into a NOT NULL column, a datetime into a DATE column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    Time,
    insert,
    select,
    update,
)
from sqlalchemy.exc import StatementError

from qbo_pipeline.source.reader import (
    SourceError,
    _as_column_time,
    _reflect_table,
)

_MATCH_VALUES_PER_QUERY = 500
_TRUE_TEXT = {"true", "t", "yes", "1"}
_FALSE_TEXT = {"false", "f", "no", "0"}

_Parsed = TypeVar("_Parsed")


@dataclass(frozen=True)
class RowUpdate:
    """Set `values` (column name -> value) on the existing row whose primary key is `key`.

    The key may be given as text (`"17"`), the form source keys take throughout the pipeline,
    even when the column is an INTEGER.
    """

    key: Any
    values: Mapping[str, Any]


@dataclass(frozen=True)
class RowUpsert:
    """Write `values` on the row whose match column holds `match_value` (the QBO Id), inserting
    that row when there is none."""

    match_value: str
    values: Mapping[str, Any]


class SourceWriteError(SourceError):
    """A write into the source was refused; nothing of the call was written.

    `table`, `row` (such as `"id='17'"`) and `column` say where, when known, so the caller can
    quarantine or report that row.
    """

    def __init__(
        self, message: str, *, table: str, row: str | None = None, column: str | None = None
    ) -> None:
        super().__init__(message)
        self.table = table
        self.row = row
        self.column = column


class _Unfit(ValueError):
    """A value its column cannot take; the reason is turned into a SourceWriteError."""


def update_rows(
    engine: Engine,
    table: str,
    primary_key: str,
    updates: Sequence[RowUpdate],
    *,
    touch: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Apply `updates` in one transaction and return the keys (as `str(update.key)`, in order)
    of the rows that exist.

    A key with no row is not an error: it is left out of the result, so the caller can report
    the missing rows (a link to a row deleted in the source) without losing the batch.
    Columns not named in an update, other than `touch`, are never written.
    """
    if not updates:
        return []
    target = _Target.reflect(engine, table)
    key_column = target.column(primary_key)
    target.check_columns(_named_columns([u.values for u in updates], touch))
    stamp = _stamp(now)
    planned = [target.plan(key_column, u.key, u.values, touch, stamp) for u in updates]
    found = []
    with engine.begin() as connection:
        for write in planned:
            with target.writing(write.row):
                if _update_one(connection, target.table, key_column, write.where, write.values):
                    found.append(write.given)
    return found


def upsert_rows(
    engine: Engine,
    table: str,
    match_column: str,
    primary_key: str,
    upserts: Sequence[RowUpsert],
    *,
    touch: str | None = None,
    created: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Update or insert each row keyed by `match_column = match_value`, in one transaction, and
    return `{match_value: primary key as str}` for every upsert.

    Existing rows are looked up first (in chunks), then updated or inserted, so a second call
    with the same data finds and updates the rows the first inserted: no duplicates, same keys.
    An inserted row's primary key is whatever the database assigns (an autoincrement integer)
    unless `values` give it. `created` names a created_at column set to `now` on inserted rows
    only; `touch` stamps every written row.
    """
    if not upserts:
        return {}
    target = _Target.reflect(engine, table)
    match = target.column(match_column)
    key_column = target.column(primary_key)
    target.check_columns(_named_columns([u.values for u in upserts], touch, created))
    _refuse_match_column_in_values(target, match_column, upserts)
    stamp = _stamp(now)
    planned = [target.plan(match, u.match_value, u.values, touch, stamp) for u in upserts]
    on_insert = target.row_values({}, "new rows", created, stamp)
    with engine.begin() as connection:
        _write_upserts(connection, target, match, key_column, planned, on_insert)
        keys = _keys_by_match(connection, target.table, match, key_column, planned)
        # Inside the transaction: an ambiguous match column rolls the call back.
        return _linked_keys(target, planned, keys)


@dataclass(frozen=True)
class _PlannedWrite:
    """One row's write, converted and checked before anything is written.

    `given` is the key or match value as the caller gave it, `row` names the row in messages,
    `where` is that value converted for its column, `values` the converted column values.
    """

    given: str
    row: str
    where: Any
    values: dict[str, Any]


def _write_upserts(
    connection: Connection,
    target: _Target,
    match: Column[Any],
    key_column: Column[Any],
    planned: Sequence[_PlannedWrite],
    on_insert: Mapping[str, Any],
) -> None:
    """Update the rows already present, insert the others; a match value repeated in the batch
    updates the row its first occurrence inserted."""
    present = set(_keys_by_match(connection, target.table, match, key_column, planned))
    for write in planned:
        with target.writing(write.row):
            if write.where in present:
                _update_one(connection, target.table, match, write.where, write.values)
            else:
                new_row = {**on_insert, **write.values, match.name: write.where}
                connection.execute(insert(target.table).values(new_row))
                present.add(write.where)


@dataclass(frozen=True)
class _Target:
    """A reflected table and the conversions and messages that name it."""

    table: Table
    name: str

    @classmethod
    def reflect(cls, engine: Engine, name: str) -> _Target:
        return cls(_reflect_table(engine, name), name)

    def column(self, name: str) -> Column[Any]:
        try:
            return self.table.c[name]
        except KeyError:
            available = ", ".join(self.table.c.keys())
            raise SourceWriteError(
                f"source table {self.name!r} has no column {name!r} (its columns: {available}); "
                "fix the column name in the mapping spec",
                table=self.name,
                column=name,
            ) from None

    def check_columns(self, names: Sequence[str]) -> None:
        for name in names:
            self.column(name)

    def convert(self, target: Column[Any], value: Any, row: str) -> Any:
        try:
            return _column_value(value, target)
        except _Unfit as unfit:
            raise SourceWriteError(
                f"cannot write {value!r} into source table {self.name!r}, row {row}, column "
                f"{target.name!r}: {unfit}",
                table=self.name,
                row=row,
                column=target.name,
            ) from None

    def plan(
        self,
        where: Column[Any],
        given: Any,
        values: Mapping[str, Any],
        stamped: str | None,
        stamp: datetime,
    ) -> _PlannedWrite:
        row = _row_label(where.name, given)
        converted = self.row_values(values, row, stamped, stamp)
        return _PlannedWrite(str(given), row, self.convert(where, given, row), converted)

    def row_values(
        self, values: Mapping[str, Any], row: str, stamped: str | None, stamp: datetime
    ) -> dict[str, Any]:
        """The values converted for their columns, plus the `stamped` column set to `stamp`
        (it wins over a value given for the same column: the application must see the write)."""
        converted = {
            name: self.convert(self.table.c[name], value, row) for name, value in values.items()
        }
        if stamped is not None:
            converted[stamped] = self.convert(self.table.c[stamped], stamp, row)
        return converted

    @contextmanager
    def writing(self, row: str) -> Iterator[None]:
        """Turn what the database refuses (a NOT NULL, unique or foreign key violation...) into
        a SourceWriteError naming the row; leaving the transaction rolls the call back."""
        try:
            yield
        except StatementError as error:
            reason = str(error.orig if error.orig is not None else error).strip().splitlines()
            raise SourceWriteError(
                f"the database refused the write into source table {self.name!r}, row {row}: "
                f"{reason[0] if reason else type(error).__name__}; nothing of this batch was "
                "written",
                table=self.name,
                row=row,
            ) from error


def _update_one(
    connection: Connection, table: Table, where: Column[Any], value: Any, values: Mapping[str, Any]
) -> bool:
    """Whether a row has `where = value`; its columns are set to `values` when there are any."""
    if not values:
        found = connection.execute(select(where).where(where == value).limit(1)).first()
        return found is not None
    result = connection.execute(update(table).where(where == value).values(dict(values)))
    return result.rowcount > 0


def _keys_by_match(
    connection: Connection,
    table: Table,
    match: Column[Any],
    key: Column[Any],
    planned: Sequence[_PlannedWrite],
) -> dict[Any, list[Any]]:
    """The primary keys of the rows holding each planned match value, in chunks so that a large
    batch stays under the backends' limits on bound parameters."""
    values = list(dict.fromkeys(write.where for write in planned))
    keys: dict[Any, list[Any]] = {}
    for offset in range(0, len(values), _MATCH_VALUES_PER_QUERY):
        chunk = values[offset : offset + _MATCH_VALUES_PER_QUERY]
        for found, found_key in connection.execute(select(match, key).where(match.in_(chunk))):
            keys.setdefault(found, []).append(found_key)
    return keys


def _linked_keys(
    target: _Target, planned: Sequence[_PlannedWrite], keys: Mapping[Any, list[Any]]
) -> dict[str, str]:
    linked = {}
    for write in planned:
        found = keys.get(write.where, [])
        if len(found) != 1:
            raise SourceWriteError(
                f"source table {target.name!r} holds {len(found)} rows with {write.row} after "
                "the upsert; the match column must hold each QBO Id once (give it a unique "
                "constraint)",
                table=target.name,
                row=write.row,
            )
        linked[write.given] = str(found[0])
    return linked


def _refuse_match_column_in_values(
    target: _Target, match_column: str, upserts: Sequence[RowUpsert]
) -> None:
    """The match column holds `match_value`; a second value for it in `values` is a bug."""
    for upsert in upserts:
        if match_column in upsert.values:
            raise SourceWriteError(
                f"upsert into source table {target.name!r} for {match_column}="
                f"{upsert.match_value!r} also sets {match_column!r} in its values; the match "
                "value alone decides that column",
                table=target.name,
                row=_row_label(match_column, upsert.match_value),
                column=match_column,
            )


def _named_columns(values: Sequence[Mapping[str, Any]], *stamped: str | None) -> list[str]:
    names = dict.fromkeys(name for row in values for name in row)
    names.update(dict.fromkeys(name for name in stamped if name is not None))
    return list(names)


def _stamp(now: datetime | None) -> datetime:
    """One moment for the whole call, so every row of a batch carries the same stamp."""
    return now if now is not None else datetime.now(UTC)


def _row_label(column_name: str, value: Any) -> str:
    return f"{column_name}={value!r}"


def _column_value(value: Any, target: Column[Any]) -> Any:
    """`value` as the column's type takes it; raises `_Unfit` saying why it cannot.

    Types not known here (JSON, UUID, ...) get the value unchanged, for the driver to handle.
    """
    if value is None:
        if not target.nullable and not target.primary_key:
            raise _Unfit("the column does not accept NULL")
        return None
    kind = target.type
    if isinstance(kind, Boolean):
        return _as_bool(value)
    if isinstance(kind, Integer):
        return _as_int(value)
    if isinstance(kind, Float):
        return float(_as_decimal(value))
    if isinstance(kind, Numeric):
        return _as_fixed_point(_as_decimal(value), kind.precision, kind.scale)
    if isinstance(kind, DateTime):
        return _as_column_time(_as_datetime(value), target)
    if isinstance(kind, Date):
        return _as_date(value)
    if isinstance(kind, Time):
        return _parsed(value, time, time.fromisoformat, "a time such as 09:30:00")
    if isinstance(kind, String):
        return _as_text(value, kind.length)
    return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_TEXT | _FALSE_TEXT:
        return value.strip().lower() in _TRUE_TEXT
    raise _Unfit("expected a boolean (true/false)")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Unfit("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str | float | Decimal):
        number = _as_decimal(value, expected="an integer")
        if number == number.to_integral_value():
            return int(number)
    raise _Unfit("expected an integer")


def _as_decimal(value: Any, expected: str = "a number") -> Decimal:
    """A finite Decimal; a float goes through its shortest repr (0.1 stays 0.1)."""
    if isinstance(value, bool):
        raise _Unfit(f"expected {expected}, got a boolean")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise _Unfit(f"expected {expected}") from None
    if not number.is_finite():
        raise _Unfit(f"expected {expected}, got {number}")
    return number


def _as_fixed_point(number: Decimal, precision: int | None, scale: int | None) -> Decimal:
    """Rounded to the column's scale, half away from zero, as PostgreSQL rounds; too many
    digits for the precision are refused, as PostgreSQL refuses them (SQLite would store
    them)."""
    if scale is None:
        return number
    rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if precision is not None and rounded.adjusted() >= precision - scale:
        raise _Unfit(f"more than {precision - scale} digits before the decimal point")
    return rounded


def _as_datetime(value: Any) -> datetime:
    """A datetime (naive means UTC); a bare date is midnight UTC of that day."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time.min)
    return _parsed(value, datetime, datetime.fromisoformat, "an ISO datetime")


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise _Unfit("expected a date, got a datetime (with a time of day)")
    return _parsed(value, date, date.fromisoformat, "a date such as 2025-03-14")


def _parsed(
    value: Any, kind: type[_Parsed], parse: Callable[[str], _Parsed], expected: str
) -> _Parsed:
    """`value` when it already is a `kind`, else `parse(value)` for text."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return parse(value.strip())
        except ValueError:
            pass
    raise _Unfit(f"expected {expected}")


def _as_text(value: Any, length: int | None) -> str:
    if isinstance(value, bool):
        raise _Unfit("expected text, got a boolean")
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float | Decimal):
        text = str(value)
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        raise _Unfit(f"expected text, got {type(value).__name__}")
    if length is not None and len(text) > length:
        raise _Unfit(f"{len(text)} characters, more than the column's {length}")
    return text
