from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)

from qbo_pipeline.source import (
    RowUpdate,
    RowUpsert,
    SourceError,
    SourceWriteError,
    read_changed,
    update_rows,
    upsert_rows,
)

OLD = datetime(2025, 3, 1, 8, 0)
NOW = datetime(2025, 3, 14, 12, 30)

metadata = MetaData()

services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(20), unique=True),
    Column("name", String(30), nullable=False),
    Column("rate", Numeric(12, 2)),
    Column("taxable", Boolean),
    Column("starts_on", Date),
    Column("notes", Text),
    Column("created_at", DateTime()),
    Column("updated_at", DateTime()),
)


def make_services(engine: Engine, rows: dict[int, str]) -> None:
    """The services table with rows `{id: name}`, each stamped OLD."""
    metadata.create_all(engine)
    if rows:
        with engine.begin() as connection:
            connection.execute(
                insert(services),
                [
                    {
                        "id": key,
                        "name": name,
                        "rate": Decimal("10.00"),
                        "taxable": False,
                        "notes": f"note {key}",
                        "created_at": OLD,
                        "updated_at": OLD,
                    }
                    for key, name in rows.items()
                ],
            )


def all_rows(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        result = connection.execute(select(services).order_by(services.c.id)).mappings()
        return {row["id"]: dict(row) for row in result}


def test_update_sets_the_named_columns_and_leaves_the_others(engine: Engine) -> None:
    make_services(engine, {1: "Audit", 2: "Payroll"})

    found = update_rows(engine, "services", "id", [RowUpdate("1", {"name": "Audit+"})])

    assert found == ["1"]
    rows = all_rows(engine)
    assert rows[1] == {**rows[1], "name": "Audit+", "notes": "note 1", "updated_at": OLD}
    assert rows[1]["rate"] == Decimal("10.00")
    assert rows[2]["name"] == "Payroll"


def test_update_finds_an_integer_key_given_as_text_and_reports_only_found_keys(
    engine: Engine,
) -> None:
    make_services(engine, {17: "Audit"})

    found = update_rows(
        engine,
        "services",
        "id",
        [RowUpdate("999", {"notes": "gone"}), RowUpdate("17", {"notes": "kept"})],
    )

    assert found == ["17"]
    assert all_rows(engine)[17]["notes"] == "kept"
    assert set(all_rows(engine)) == {17}


def test_update_without_values_only_reports_whether_the_row_exists(engine: Engine) -> None:
    make_services(engine, {1: "Audit"})

    assert update_rows(engine, "services", "id", [RowUpdate(1, {}), RowUpdate(2, {})]) == ["1"]
    assert all_rows(engine)[1]["updated_at"] == OLD


def test_upsert_inserts_then_updates_the_same_row(engine: Engine) -> None:
    make_services(engine, {})

    first = upsert_rows(
        engine, "services", "qbo_id", "id", [RowUpsert("42", {"name": "Audit", "rate": "90"})]
    )
    second = upsert_rows(
        engine, "services", "qbo_id", "id", [RowUpsert("42", {"name": "Audit 2", "rate": "95"})]
    )

    assert first == second
    assert list(first) == ["42"]
    rows = all_rows(engine)
    assert list(rows) == [int(first["42"])]
    assert rows[int(first["42"])]["name"] == "Audit 2"
    assert rows[int(first["42"])]["rate"] == Decimal("95.00")


def test_upsert_updates_existing_rows_and_links_every_match_value(engine: Engine) -> None:
    make_services(engine, {5: "Audit"})
    with engine.begin() as connection:
        connection.execute(services.update().values(qbo_id="7"))

    linked = upsert_rows(
        engine,
        "services",
        "qbo_id",
        "id",
        [
            RowUpsert("7", {"name": "Audit (QBO)"}),
            RowUpsert("8", {"name": "Payroll"}),
            RowUpsert("8", {"name": "Payroll, renamed"}),
        ],
    )

    assert linked["7"] == "5"
    rows = all_rows(engine)
    assert len(rows) == 2
    assert rows[5]["name"] == "Audit (QBO)"
    assert rows[5]["notes"] == "note 5"
    assert rows[int(linked["8"])]["name"] == "Payroll, renamed"


def test_touch_stamps_every_written_row_so_the_reader_sees_the_change(engine: Engine) -> None:
    # Ids clear of those PostgreSQL's sequence hands out to the inserted row.
    make_services(engine, {101: "Audit", 102: "Payroll", 103: "Tax"})

    update_rows(
        engine, "services", "id", [RowUpdate("102", {"notes": "x"})], touch="updated_at", now=NOW
    )
    linked = upsert_rows(
        engine,
        "services",
        "qbo_id",
        "id",
        [RowUpsert("50", {"name": "Advice"})],
        touch="updated_at",
        created="created_at",
        now=NOW.replace(tzinfo=UTC),
    )

    pages = read_changed(
        engine,
        "services",
        primary_key="id",
        updated_at="updated_at",
        since=OLD,
        until=NOW + timedelta(seconds=1),
        page_size=10,
    )
    changed = {row["id"]: row for page in pages for row in page}
    assert set(changed) == {102, int(linked["50"])}
    assert {row["updated_at"] for row in changed.values()} == {NOW}
    assert changed[int(linked["50"])]["created_at"] == NOW
    assert changed[102]["created_at"] == OLD
    assert all_rows(engine)[101]["updated_at"] == OLD


def test_touch_defaults_to_the_utc_clock_stored_naive(engine: Engine) -> None:
    make_services(engine, {1: "Audit"})
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    update_rows(engine, "services", "id", [RowUpdate(1, {"notes": "x"})], touch="updated_at")

    stamp = all_rows(engine)[1]["updated_at"]
    assert stamp.tzinfo is None
    assert before <= stamp <= datetime.now(UTC).replace(tzinfo=None)


def test_touch_stores_an_aware_time_on_a_timezone_aware_column(postgres_engine: Engine) -> None:
    aware = Table(
        "aware_items",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("updated_at", DateTime(timezone=True)),
    )
    aware.create(postgres_engine)
    with postgres_engine.begin() as connection:
        connection.execute(insert(aware).values(id=1, updated_at=OLD.replace(tzinfo=UTC)))

    update_rows(
        postgres_engine, "aware_items", "id", [RowUpdate("1", {})], touch="updated_at", now=NOW
    )

    with postgres_engine.connect() as connection:
        stamp = connection.execute(select(aware.c.updated_at)).scalar_one()
    assert stamp == NOW.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("column", "value"),
    [("rate", "ninety"), ("id", "abc"), ("starts_on", "2025-02-30"), ("taxable", "maybe")],
)
def test_a_value_the_column_cannot_take_fails_the_whole_batch(
    engine: Engine, column: str, value: str
) -> None:
    make_services(engine, {1: "Audit", 2: "Payroll"})
    good = RowUpdate("1", {"name": "Changed"})
    bad = RowUpdate("2", {"name": "Changed", column: value})

    with pytest.raises(SourceWriteError) as raised:
        update_rows(engine, "services", "id", [good, bad], touch="updated_at", now=NOW)

    message = str(raised.value)
    assert "'services'" in message and "id='2'" in message and repr(column) in message
    assert (raised.value.table, raised.value.row, raised.value.column) == (
        "services",
        "id='2'",
        column,
    )
    assert {row["name"] for row in all_rows(engine).values()} == {"Audit", "Payroll"}


def test_text_into_an_integer_key_is_refused_before_reaching_the_database(
    engine: Engine,
) -> None:
    make_services(engine, {1: "Audit"})

    with pytest.raises(SourceWriteError, match=r"id='x1'.*column 'id'.*expected an integer"):
        update_rows(engine, "services", "id", [RowUpdate("x1", {"name": "Changed"})])


def test_what_the_database_refuses_rolls_the_batch_back(engine: Engine) -> None:
    make_services(engine, {1: "Audit"})
    with engine.begin() as connection:
        connection.execute(services.update().values(qbo_id="7"))

    with pytest.raises(SourceWriteError, match=r"'services', row qbo_id='8'") as raised:
        upsert_rows(
            engine,
            "services",
            "qbo_id",
            "id",
            [RowUpsert("7", {"name": "Renamed"}), RowUpsert("8", {"rate": 5})],  # no name
        )

    assert raised.value.row == "qbo_id='8'"
    assert [row["name"] for row in all_rows(engine).values()] == ["Audit"]


def test_null_into_a_not_null_column_names_the_column(engine: Engine) -> None:
    make_services(engine, {1: "Audit"})

    with pytest.raises(SourceWriteError, match=r"row id=1, column 'name'.*NULL"):
        update_rows(engine, "services", "id", [RowUpdate(1, {"name": None})])


def test_an_unknown_column_is_refused_before_anything_is_written(engine: Engine) -> None:
    make_services(engine, {1: "Audit"})
    updates = [RowUpdate("1", {"name": "Changed"}), RowUpdate("1", {"colour": "red"})]

    with pytest.raises(SourceWriteError, match=r"'services' has no column 'colour'") as raised:
        update_rows(engine, "services", "id", updates)

    assert "its columns: id, qbo_id, name, rate" in str(raised.value)
    assert raised.value.column == "colour"
    assert all_rows(engine)[1]["name"] == "Audit"


@pytest.mark.parametrize("misnamed", ["primary_key", "match_column", "touch"])
def test_unknown_key_match_and_touch_columns_are_refused(engine: Engine, misnamed: str) -> None:
    make_services(engine, {})
    names = {"primary_key": "id", "match_column": "qbo_id", "touch": "updated_at", misnamed: "nope"}

    with pytest.raises(SourceWriteError, match=r"has no column 'nope'"):
        upsert_rows(
            engine,
            "services",
            names["match_column"],
            names["primary_key"],
            [RowUpsert("1", {"name": "A"})],
            touch=names["touch"],
        )
    assert all_rows(engine) == {}


def test_an_unknown_table_is_a_source_error(engine: Engine) -> None:
    with pytest.raises(SourceError, match=r"source table 'nowhere' does not exist"):
        update_rows(engine, "nowhere", "id", [RowUpdate("1", {"name": "A"})])
    with pytest.raises(SourceError, match=r"source table 'nowhere' does not exist"):
        upsert_rows(engine, "nowhere", "qbo_id", "id", [RowUpsert("1", {"name": "A"})])


def test_the_match_column_in_the_values_is_refused(engine: Engine) -> None:
    make_services(engine, {})

    with pytest.raises(SourceWriteError, match=r"also sets 'qbo_id'"):
        upsert_rows(engine, "services", "qbo_id", "id", [RowUpsert("1", {"qbo_id": "2"})])


def test_values_are_converted_to_the_column_types(engine: Engine) -> None:
    make_services(engine, {1: "Audit", 2: "Payroll"})

    update_rows(
        engine,
        "services",
        "id",
        [
            RowUpdate(
                "1", {"rate": Decimal("123.45"), "taxable": True, "starts_on": date(2025, 3, 1)}
            ),
            RowUpdate("2", {"rate": "7.005", "taxable": "false", "starts_on": "2025-04-02"}),
        ],
    )

    rows = all_rows(engine)
    assert (rows[1]["rate"], rows[1]["taxable"], rows[1]["starts_on"]) == (
        Decimal("123.45"),
        True,
        date(2025, 3, 1),
    )
    assert (rows[2]["rate"], rows[2]["taxable"], rows[2]["starts_on"]) == (
        Decimal("7.01"),
        False,
        date(2025, 4, 2),
    )
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT starts_on, taxable FROM services WHERE id = 2"))
        assert stored.one() in {("2025-04-02", 0), (date(2025, 4, 2), False)}


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("rate", Decimal("12345678901.00"), "more than 10 digits before the decimal point"),
        ("name", "x" * 31, "31 characters, more than the column's 30"),
        ("starts_on", datetime(2025, 3, 1, 9), "expected a date, got a datetime"),
        ("taxable", 2, "expected a boolean"),
    ],
)
def test_values_sqlite_would_store_are_refused_on_every_backend(
    engine: Engine, column: str, value: Any, reason: str
) -> None:
    make_services(engine, {1: "Audit"})

    with pytest.raises(SourceWriteError, match=reason):
        update_rows(engine, "services", "id", [RowUpdate("1", {column: value})])


def test_a_schema_qualified_table_name(postgres_engine: Engine) -> None:
    make_services(postgres_engine, {1: "Audit"})
    with postgres_engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()

    found = update_rows(
        postgres_engine, f"{schema}.services", "id", [RowUpdate("1", {"notes": "q"})]
    )

    assert found == ["1"]
    assert all_rows(postgres_engine)[1]["notes"] == "q"


def test_empty_batches_write_nothing(engine: Engine) -> None:
    assert update_rows(engine, "services", "id", []) == []
    assert upsert_rows(engine, "services", "qbo_id", "id", []) == {}


def test_many_upserts_are_looked_up_in_chunks(engine: Engine) -> None:
    make_services(engine, {})
    upserts = [RowUpsert(str(qbo_id), {"name": f"S{qbo_id}"}) for qbo_id in range(1, 1202)]

    first = upsert_rows(engine, "services", "qbo_id", "id", upserts)
    second = upsert_rows(engine, "services", "qbo_id", "id", upserts)

    assert first == second and len(first) == 1201
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(services)).scalar_one() == 1201
