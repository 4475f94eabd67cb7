from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.reader import (
    SourceError,
    read_business_window,
    read_changed,
    read_children,
)

DAY = date(2025, 3, 14)
EVENING = datetime(2025, 3, 14, 23, 0)


def at(hour: int, minute: int, *, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def insert_rows(engine: Engine, table_name: str, rows: Iterable[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(schema.metadata.tables[table_name]), list(rows))


def add_clients(engine: Engine, stamps: dict[int, datetime], **columns: Any) -> None:
    schema.metadata.create_all(engine)
    insert_rows(
        engine,
        "clients",
        (
            {
                "id": client_id,
                "name": f"Client {client_id}",
                "active": True,
                "created_at": EVENING - timedelta(days=30),
                "updated_at": stamp,
                **columns,
            }
            for client_id, stamp in stamps.items()
        ),
    )


def add_project_with_team(engine: Engine) -> None:
    """Client 1, project 1 and employee 1: the parents time entries and invoices need."""
    add_clients(engine, {1: EVENING})
    stamps = {"created_at": EVENING, "updated_at": EVENING}
    insert_rows(
        engine,
        "employees",
        [{"id": 1, "first_name": "Ava", "last_name": "Xu", "active": True, **stamps}],
    )
    insert_rows(
        engine,
        "projects",
        [{"id": 1, "client_id": 1, "number": "P-1", "name": "Audit", "active": True, **stamps}],
    )


def add_time_entries(engine: Engine, entries: dict[int, date], **columns: Any) -> None:
    rows = [
        {
            "id": entry_id,
            "employee_id": 1,
            "project_id": 1,
            "work_date": work_date,
            "hours": Decimal("1.50"),
            "billable": True,
            "approved": True,
            "hourly_rate": Decimal("100.00"),
            "created_at": EVENING,
            "updated_at": EVENING,
            **columns,
        }
        for entry_id, work_date in entries.items()
    ]
    insert_rows(engine, "time_entries", rows)


def ids(pages: Iterable[list[dict[str, Any]]]) -> list[list[Any]]:
    return [[row["id"] for row in page] for page in pages]


# Three rows share T1, three share T2: page boundaries fall inside runs of equal timestamps.
T1, T2, T3, LATE = at(21, 0), at(22, 0), at(22, 30), at(23, 30)
TIED_STAMPS = {5: T1, 2: T1, 8: T1, 1: T2, 9: T2, 3: T2, 7: T3, 4: T3, 6: LATE}
TIED_ORDER = [2, 5, 8, 1, 3, 9, 4, 7]


@pytest.mark.parametrize("page_size", [1, 2, 3, 100])
def test_change_window_pages_never_skip_or_repeat_rows_with_equal_timestamps(
    engine: Engine, page_size: int
) -> None:
    add_clients(engine, TIED_STAMPS)
    pages = ids(
        read_changed(
            engine,
            "clients",
            primary_key="id",
            updated_at="updated_at",
            since=None,
            until=at(23, 0),
            page_size=page_size,
        )
    )
    assert [row_id for page in pages for row_id in page] == TIED_ORDER
    assert all(len(page) <= page_size for page in pages)
    assert len(pages) == -(-len(TIED_ORDER) // page_size)


def test_window_excludes_since_and_includes_until(engine: Engine) -> None:
    add_clients(engine, TIED_STAMPS)
    pages = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=T1,
        until=T3,
        page_size=2,
    )
    assert [row_id for page in ids(pages) for row_id in page] == [1, 3, 9, 4, 7]


def test_a_window_across_midnight_reads_the_change_at_23_58(engine: Engine) -> None:
    next_day = DAY + timedelta(days=1)
    add_clients(
        engine,
        {
            1: at(23, 44),
            2: at(23, 45),  # exactly `since`: read by the previous window
            3: at(23, 58),
            4: at(0, 0, day=next_day),
            5: at(0, 5, day=next_day),  # exactly `until`: read by this window
            6: at(0, 6, day=next_day),
        },
    )
    since, until = at(23, 45), at(0, 5, day=next_day)
    pages = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=since,
        until=until,
        page_size=10,
    )
    assert ids(pages) == [[3, 4, 5]]
    # The same instants given in another time zone select the same rows.
    eastern = timezone(timedelta(hours=-5))
    pages = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=since.replace(tzinfo=UTC).astimezone(eastern),
        until=until.replace(tzinfo=UTC).astimezone(eastern),
        page_size=10,
    )
    assert ids(pages) == [[3, 4, 5]]


def test_soft_deleted_rows_are_returned_flagged_not_skipped(engine: Engine) -> None:
    add_clients(engine, {1: T1, 2: T2})
    add_clients(engine, {3: T3}, deleted_at=T3, active=False)
    (page,) = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=None,
        until=LATE,
        page_size=10,
        soft_delete="deleted_at",
    )
    assert [(row["id"], row["_deleted"]) for row in page] == [(1, False), (2, False), (3, True)]
    assert page[2]["deleted_at"] == T3


def test_business_window_includes_start_and_excludes_end(engine: Engine) -> None:
    add_project_with_team(engine)
    add_time_entries(engine, {1: DAY - timedelta(days=1), 4: DAY, 2: DAY, 3: DAY + timedelta(1)})
    add_time_entries(engine, {5: DAY}, deleted_at=EVENING)
    pages = read_business_window(
        engine,
        "time_entries",
        primary_key="id",
        business_date="work_date",
        start=DAY,
        end=DAY + timedelta(days=1),
        page_size=1,
        soft_delete="deleted_at",
    )
    rows = [row for page in pages for row in page]
    assert [(row["id"], row["_deleted"]) for row in rows] == [(2, False), (4, False), (5, True)]
    assert all(row["work_date"] == DAY for row in rows)
    two_days = read_business_window(
        engine,
        "time_entries",
        primary_key="id",
        business_date="work_date",
        start=DAY - timedelta(days=1),
        end=DAY + timedelta(days=1),
        page_size=2,
    )
    assert ids(two_days) == [[1, 2], [4, 5]]


def test_business_window_over_a_timestamp_column_uses_utc_day_bounds(engine: Engine) -> None:
    next_day = DAY + timedelta(days=1)
    add_clients(engine, {1: EVENING, 2: EVENING, 3: EVENING})
    with engine.begin() as connection:
        clients = schema.clients
        for client_id, created in [(1, at(0, 0)), (2, at(23, 59)), (3, at(0, 0, day=next_day))]:
            statement = clients.update().where(clients.c.id == client_id)
            connection.execute(statement.values(created_at=created))
    pages = read_business_window(
        engine,
        "clients",
        primary_key="id",
        business_date="created_at",
        start=DAY,
        end=next_day,
        page_size=10,
    )
    assert ids(pages) == [[1, 2]]


PROJECTS_QUERY = """
    SELECT p.id, p.number || ' - ' || p.name AS display_name, c.name AS client_name,
           p.updated_at, p.deleted_at
    FROM projects p JOIN clients c ON c.id = p.client_id
"""


def test_a_query_source_is_read_by_change_window_with_typed_timestamps(engine: Engine) -> None:
    add_project_with_team(engine)
    stamps = {"client_id": 1, "active": True, "created_at": EVENING}
    insert_rows(
        engine,
        "projects",
        [
            {
                "id": 2,
                "number": "P-2",
                "name": "Survey",
                "updated_at": at(23, 58),
                "deleted_at": None,  # executemany takes its columns from the first row
                **stamps,
            },
            {
                "id": 3,
                "number": "P-3",
                "name": "Roof",
                "updated_at": at(23, 58),
                "deleted_at": T3,
                **stamps,
            },
        ],
    )
    for query in (PROJECTS_QUERY, f"WITH joined AS ({PROJECTS_QUERY}) SELECT * FROM joined;"):
        pages = list(
            read_changed(
                engine,
                query,
                primary_key="id",
                updated_at="updated_at",
                since=at(23, 45),
                until=at(23, 59),
                page_size=1,
                soft_delete="deleted_at",
            )
        )
        rows = [row for page in pages for row in page]
        assert [(row["display_name"], row["client_name"], row["_deleted"]) for row in rows] == [
            ("P-2 - Survey", "Client 1", False),
            ("P-3 - Roof", "Client 1", True),
        ]
        assert rows[0]["updated_at"] == at(23, 58)


def test_a_query_source_is_read_by_business_window_with_typed_dates(engine: Engine) -> None:
    add_project_with_team(engine)
    add_time_entries(engine, {1: DAY, 2: DAY + timedelta(days=1)})
    query = (
        "SELECT t.id, t.work_date, e.first_name FROM time_entries t JOIN employees e "
        "ON e.id = t.employee_id"
    )
    (page,) = read_business_window(
        engine,
        query,
        primary_key="id",
        business_date="work_date",
        start=DAY,
        end=DAY + timedelta(days=1),
        page_size=5,
    )
    assert page == [{"id": 1, "work_date": DAY, "first_name": "Ava", "_deleted": False}]


def test_a_composite_key_pages_rows_sharing_one_timestamp(engine: Engine) -> None:
    """Invoice lines take their invoice's updated_at, so keys alone must order them."""
    add_project_with_team(engine)
    invoice = {
        "project_id": 1,
        "issue_date": DAY,
        "due_date": DAY,
        "tax_rate": Decimal(0),
        "tax_amount": Decimal(0),
        "status": "sent",
        "created_at": T1,
        "updated_at": T1,
    }
    insert_rows(
        engine,
        "invoices",
        [{"id": 1, "number": "INV-1", **invoice}, {"id": 2, "number": "INV-2", **invoice}],
    )
    line = {"quantity": 1, "unit_price": Decimal(5), "amount": Decimal(5), "service_name": "S"}
    keys = [(2, 1), (1, 2), (1, 1), (2, 3), (2, 2)]
    insert_rows(
        engine,
        "invoice_lines",
        [
            {"id": row_id, "invoice_id": invoice_id, "line_no": line_no, **line}
            for row_id, (invoice_id, line_no) in enumerate(keys, start=1)
        ],
    )
    query = (
        "SELECT l.invoice_id, l.line_no, i.updated_at FROM invoice_lines l "
        "JOIN invoices i ON i.id = l.invoice_id"
    )
    pages = read_changed(
        engine,
        query,
        primary_key=("invoice_id", "line_no"),
        updated_at="updated_at",
        since=None,
        until=T2,
        page_size=2,
    )
    read_keys = [(row["invoice_id"], row["line_no"]) for page in pages for row in page]
    assert read_keys == sorted(keys)


def test_where_filter_takes_bound_parameters(engine: Engine) -> None:
    add_clients(engine, {1: T1, 2: T2})
    add_clients(engine, {3: T1}, name="O'Brien: it's -- ; DROP TABLE clients")
    add_clients(engine, {4: T1}, active=False)
    read = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=None,
        until=T3,
        page_size=10,
        where="name = :name",
        params={"name": "O'Brien: it's -- ; DROP TABLE clients"},
    )
    assert ids(read) == [[3]]
    active_only = read_changed(
        engine,
        "clients",
        primary_key="id",
        updated_at="updated_at",
        since=None,
        until=T3,
        page_size=10,
        where="active",
    )
    assert ids(active_only) == [[1, 3, 2]]


def test_read_children_groups_rows_by_parent_in_order(engine: Engine) -> None:
    add_project_with_team(engine)
    invoice = {
        "project_id": 1,
        "issue_date": DAY,
        "due_date": DAY,
        "tax_rate": Decimal(0),
        "tax_amount": Decimal(0),
        "status": "sent",
        "created_at": T1,
        "updated_at": T1,
    }
    # More parents than one IN list holds, so the lookup runs in several chunks.
    insert_rows(
        engine,
        "invoices",
        [
            {"id": invoice_id, "number": f"INV-{invoice_id}", **invoice}
            for invoice_id in range(1, 1202)
        ],
    )
    line = {"quantity": 1, "unit_price": Decimal(5), "amount": Decimal(5), "service_name": "S"}
    insert_rows(
        engine,
        "invoice_lines",
        [
            {"id": 1, "invoice_id": 1, "line_no": 2, **line},
            {"id": 2, "invoice_id": 1201, "line_no": 1, **line},
            {"id": 3, "invoice_id": 1, "line_no": 1, **line},
            {"id": 4, "invoice_id": 600, "line_no": 1, **line},
        ],
    )
    children = read_children(engine, "invoice_lines", "invoice_id", range(1, 1202), "line_no")
    assert list(children) == list(range(1, 1202))
    assert [line["id"] for line in children[1]] == [3, 1]
    assert [line["id"] for line in children[600]] == [4]
    assert [line["id"] for line in children[1201]] == [2]
    assert children[2] == []
    assert children[1][0]["amount"] == Decimal("5.00")


def test_unknown_sources_and_columns_are_clear_errors(engine: Engine) -> None:
    add_clients(engine, {1: T1})
    window: dict[str, Any] = {"since": None, "until": T2, "page_size": 10}
    with pytest.raises(SourceError, match="source table 'clientz' does not exist"):
        next(read_changed(engine, "clientz", primary_key="id", updated_at="updated_at", **window))
    with pytest.raises(SourceError, match="'clients' has no column 'modified_at'.*updated_at"):
        next(read_changed(engine, "clients", primary_key="id", updated_at="modified_at", **window))
    with pytest.raises(SourceError, match="source query failed"):
        next(
            read_changed(
                engine,
                "SELECT nope FROM clients",
                primary_key="id",
                updated_at="updated_at",
                **window,
            )
        )
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        next(
            read_changed(
                engine,
                "clients",
                primary_key="id",
                updated_at="updated_at",
                since=None,
                until=T2,
                page_size=0,
            )
        )


def test_a_query_repeating_a_column_name_is_a_clear_error(postgres_engine: Engine) -> None:
    """PostgreSQL only: SQLite itself renames the second `id` of a subquery to `id:1`."""
    add_clients(postgres_engine, {1: T1})
    with pytest.raises(SourceError, match="id more than once"):
        next(
            read_changed(
                postgres_engine,
                "SELECT id, updated_at, id FROM clients",
                primary_key="id",
                updated_at="updated_at",
                since=None,
                until=T2,
                page_size=10,
            )
        )


def test_a_sqlalchemy_table_is_a_source_too(engine: Engine) -> None:
    add_clients(engine, TIED_STAMPS)
    pages = read_changed(
        engine,
        schema.clients,
        primary_key="id",
        updated_at="updated_at",
        since=T2,
        until=LATE,
        page_size=10,
    )
    assert ids(pages) == [[4, 7, 6]]
