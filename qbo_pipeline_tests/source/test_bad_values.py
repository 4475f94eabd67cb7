"""The source reader under bad stored values: one bad row never fails a page, every row is read
(rows without a stamp, rows without a key, every repeat of a key), and what the column type
cannot convert comes back as stored, for the sync core to quarantine with the reason."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    text,
)

from qbo_pipeline.source.by_spec import read, read_keys
from qbo_pipeline.source.demo_data import generate_demo_data
from qbo_pipeline.source.reader import read_changed, read_unstamped
from qbo_pipeline.sync.mapping import map_frame
from qbo_pipeline.sync.scope import ReadMode, ReadScope
from qbo_pipeline.sync.validation import validate_frame
from qbo_pipeline_tests.source.test_reader import T1, T2, T3, add_clients
from qbo_pipeline_tests.sync.sample_specs import make_spec

FAR = dt.datetime(9999, 12, 31, 23, 59, 59)  # every time: the rest is unstamped
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def every_row(pages: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page]


def all_changed(engine: Engine, source: str | Table, page_size: int = 2,
                **options: Any) -> list[dict[str, Any]]:
    return every_row(read_changed(engine, source, primary_key="id", updated_at="updated_at",
                                  since=None, until=FAR, page_size=page_size, **options))


def run_sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


# --- values the column type cannot convert (SQLite keeps anything anywhere) ----------------


def test_invalid_utf8_in_one_row_does_not_fail_the_page(sqlite_engine: Engine) -> None:
    add_clients(sqlite_engine, {1: T1, 2: T1, 3: T2})
    run_sql(sqlite_engine, "UPDATE clients SET name = CAST(X'4142FF43' AS TEXT) WHERE id = 2")
    rows = all_changed(sqlite_engine, "clients", page_size=10)
    assert [(row["id"], row["name"]) for row in rows] == [
        (1, "Client 1"), (2, b"AB\xffC"), (3, "Client 3")]


@pytest.mark.parametrize(("column", "stored", "read_back"), [
    ("name", "CAST(X'FF' AS TEXT)", b"\xff"),
    ("created_at", "'2026-02-30 10:00:00'", "2026-02-30 10:00:00"),
    ("created_at", "'0000-00-00 00:00:00'", "0000-00-00 00:00:00"),
    ("active", "'maybe'", "maybe"),
    ("active", "2", 2),
])
def test_a_value_its_column_type_cannot_convert_comes_back_as_stored(
        sqlite_engine: Engine, column: str, stored: str, read_back: Any) -> None:
    add_clients(sqlite_engine, {1: T1, 2: T1})
    run_sql(sqlite_engine, f"UPDATE clients SET {column} = {stored} WHERE id = 2")
    rows = all_changed(sqlite_engine, "clients", page_size=1)
    assert [row["id"] for row in rows] == [1, 2]
    assert rows[1][column] == read_back and type(rows[1][column]) is type(read_back)
    assert rows[0]["active"] is True  # a clear flag is still a bool


DEMO_CORRUPTIONS = [
    ("invoices", "due_date", "'2026-02-30'", "2026-02-30"),
    ("invoices", "issue_date", "'0000-00-00'", "0000-00-00"),
    ("time_entries", "hours", "'abc'", "abc"),
    ("time_entries", "hours", "'NaN'", "NaN"),
    ("time_entries", "hourly_rate", "9e999", Decimal("Infinity")),
]


@pytest.mark.parametrize(("table", "column", "stored", "read_back"), DEMO_CORRUPTIONS)
def test_bad_dates_and_numbers_come_back_as_stored(sqlite_engine: Engine, table: str,
                                                    column: str, stored: str,
                                                    read_back: Any) -> None:
    url = sqlite_engine.url.render_as_string()
    generate_demo_data(url, clients=4)
    run_sql(sqlite_engine, f"UPDATE {table} SET {column} = {stored} "
                           f"WHERE id = (SELECT MIN(id) FROM {table})")
    rows = all_changed(sqlite_engine, table, page_size=50)
    with sqlite_engine.connect() as connection:
        count = connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    assert len(rows) == count
    first = min(rows, key=lambda row: row["id"])
    assert first[column] == read_back


THINGS = MetaData()
things = Table(
    "things", THINGS,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(50)),
    Column("amount", Float),
    Column("price", Numeric(12, 2)),
    Column("flag", Boolean),
    Column("due", Date),
    Column("updated_at", DateTime, nullable=True),
)


def add_things(engine: Engine, rows: list[dict[str, Any]]) -> None:
    THINGS.create_all(engine)
    defaults = {"name": "thing", "amount": 1.0, "price": Decimal(1), "flag": True,
                "due": dt.date(2024, 5, 1), "updated_at": T1}
    insert_rows_into(engine, [{**defaults, **row} for row in rows])


def insert_rows_into(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(things), rows)


def test_a_nan_the_database_holds_is_a_value_not_pandas_no_value(
        postgres_engine: Engine) -> None:
    """PostgreSQL only: SQLite stores a NaN as NULL."""
    add_things(postgres_engine, [{"id": 1, "amount": math.nan}, {"id": 2}])
    run_sql(postgres_engine, "UPDATE things SET price = 'NaN' WHERE id = 1")
    rows = all_changed(postgres_engine, "things")
    assert [row["amount"].is_nan() if isinstance(row["amount"], Decimal) else row["amount"]
            for row in rows] == [True, 1.0]
    assert rows[0]["price"].is_nan()


# --- rows no window holds, rows without a key, repeated keys ---------------------------------


def test_rows_without_a_usable_stamp_are_read_by_the_unstamped_read(engine: Engine) -> None:
    add_things(engine, [{"id": 1}, {"id": 2, "updated_at": None}, {"id": 3},
                        {"id": 4, "updated_at": None}, {"id": 5, "updated_at": None}])
    unstamped_values = [] if engine.dialect.name != "sqlite" else [
        "UPDATE things SET updated_at = '0000-00-00 00:00:00' WHERE id = 3",
        "UPDATE things SET updated_at = 'yesterday' WHERE id = 1"]
    run_sql(engine, *unstamped_values)
    stamped = [row["id"] for row in all_changed(engine, "things", page_size=1)]
    unstamped = [row["id"] for row in every_row(read_unstamped(
        engine, "things", primary_key="id", updated_at="updated_at", page_size=1))]
    expected = [1, 2, 3, 4, 5] if engine.dialect.name == "sqlite" else [2, 4, 5]
    assert unstamped == expected
    assert sorted(stamped + unstamped) == [1, 2, 3, 4, 5]  # every row is read exactly once


def test_rows_without_a_key_are_read_and_keys_after_them_are_not_lost(
        sqlite_engine: Engine) -> None:
    add_clients(sqlite_engine, {1: T1, 2: T1, 3: T1, 4: T1})
    query = ("SELECT CASE WHEN id = 2 THEN NULL ELSE id END AS id, name, updated_at "
             "FROM clients")
    rows = all_changed(sqlite_engine, query, page_size=1)
    assert [row["id"] for row in rows] == [1, 3, 4, None]


@pytest.mark.parametrize("page_size", [1, 2, 3, 10])
def test_every_repeat_of_a_key_is_read_even_across_a_page_boundary(
        engine: Engine, page_size: int) -> None:
    add_clients(engine, {1: T1, 2: T1, 3: T2, 4: T3})
    query = ("SELECT id, name, updated_at FROM clients UNION ALL "
             "SELECT id, name, updated_at FROM clients WHERE id IN (2, 3) UNION ALL "
             "SELECT id, name, updated_at FROM clients WHERE id = 3")
    rows = all_changed(engine, query, page_size=page_size)
    assert sorted(row["id"] for row in rows) == [1, 2, 2, 3, 3, 3, 4]


THING_SPEC = """
name: thing
qbo_entity: TimeActivity
source: {table: things, primary_key: id, updated_at: updated_at, business_date: due,
         column_types: {flag: boolean}}
fields:
  Description: {column: name, required: true}
  HourlyRate: {column: amount, type: number}
  Hours: {column: price, type: integer, min: 0}
  TxnDate: {column: due, type: date, required: true}
on_source_delete: delete
"""


def test_a_change_window_and_a_read_by_key_find_rows_whatever_their_stamp(
        engine: Engine) -> None:
    add_things(engine, [{"id": 1}, {"id": 2, "updated_at": None}, {"id": 3}])
    spec = make_spec(THING_SPEC)
    window = ReadScope(ReadMode.CHANGED, NOW)
    assert sorted(row["id"] for row in read(engine, spec, window)) == [1, 2, 3]
    assert [row["id"] for row in read_keys(engine, spec, ["2"])] == [2]


# --- any stored value: read, then synced or quarantined ---------------------------------------

# What sqlite3 can bind: None, int64, float (NaN becomes NULL), text, blobs; and undecodable text.
STORABLE = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(),
    st.text(max_size=12), st.binary(max_size=6),
    st.sampled_from(["NaN", "inf", "abc", "0000-00-00", "2026-02-30", "2024-05-01",
                     "2024-05-01 10:00:00", "maybe", "yes", "2", "\u202eabc", "a\x00b", ""]),
)
UNDECODABLE = st.binary(min_size=1, max_size=6).filter(lambda data: not _decodes(data))
STORED = st.one_of(STORABLE.map(lambda value: ("plain", value)),
                   UNDECODABLE.map(lambda data: ("text", data)))
COLUMNS = ["name", "amount", "price", "flag", "due", "updated_at"]


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def memory_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")  # one connection per thread: the data stays
    THINGS.create_all(engine)
    yield engine
    engine.dispose()


def store(engine: Engine, rows: list[dict[str, tuple[str, Any]]]) -> None:
    """Insert with raw SQL, as another application would: no type converts anything."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM things"))
        for row_id, row in enumerate(rows, start=1):
            values = [f"CAST(:{name} AS TEXT)" if row[name][0] == "text" else f":{name}"
                      for name in COLUMNS]
            connection.execute(
                text(f"INSERT INTO things (id, {', '.join(COLUMNS)}) "
                     f"VALUES (:id, {', '.join(values)})"),
                {"id": row_id, **{name: value for name, (_, value) in row.items()}})


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({name: STORED for name in COLUMNS}), min_size=1,
                     max_size=6),
       page_size=st.integers(1, 4))
def test_any_stored_values_are_read_whole_then_synced_or_quarantined(
        memory_engine: Engine, rows: list[dict[str, tuple[str, Any]]], page_size: int) -> None:
    store(memory_engine, rows)
    spec = make_spec(THING_SPEC)
    stamped = all_changed(memory_engine, "things", page_size=page_size)
    unstamped = every_row(read_unstamped(memory_engine, "things", primary_key="id",
                                         updated_at="updated_at", page_size=page_size))
    read_rows = stamped + unstamped
    # Every row once: none failed its page, none is missing, none is read twice.
    assert sorted(row["id"] for row in read_rows) == list(range(1, len(rows) + 1))
    frame = pd.DataFrame(read_rows, dtype=object)
    result = validate_frame(spec, map_frame(spec, frame))
    assert len(result.valid) + len(result.quarantined) == len(rows)
    assert all(held.reasons for held in result.quarantined)
