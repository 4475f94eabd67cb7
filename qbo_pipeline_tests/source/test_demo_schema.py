from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    Numeric,
    String,
    Text,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from qbo_pipeline.source import demo_schema

# The contract mapping specs are written against: exact tables and columns.
EXPECTED_COLUMNS = {
    "clients": "id name email phone contact_first_name contact_last_name address_line1 "
    "address_line2 city state postal_code active created_at updated_at deleted_at",
    "projects": "id client_id number name email phone contact_first_name contact_last_name "
    "job_address_line1 job_city job_state job_postal_code active created_at updated_at deleted_at",
    "employees": "id first_name last_name email phone employment_type active created_at "
    "updated_at deleted_at",
    "time_entries": "id employee_id project_id work_date hours description billable approved "
    "hourly_rate service_name created_at updated_at deleted_at",
    "invoices": "id project_id number issue_date due_date notes tax_rate tax_amount status "
    "balance created_at updated_at deleted_at",
    "invoice_lines": "id invoice_id line_no description quantity unit_price amount service_name",
    "payments": "id invoice_id amount payment_date method reference deposit_account created_at "
    "updated_at deleted_at",
    "write_offs": "id invoice_id amount write_off_date reason created_at updated_at deleted_at",
    "expenses": "id vendor_id spent_on amount category payment_method description paid approved "
    "paid_from created_at updated_at deleted_at",
    "bills": "id vendor_id number bill_date due_date memo created_at updated_at deleted_at",
    "bill_lines": "id bill_id line_no project_id category description amount",
    "imported_bills": "id qbo_id vendor_id project_id number bill_date due_date amount balance "
    "created_at updated_at deleted_at",
    "vendors": "id name email phone active created_at updated_at deleted_at",
    "services": "id qbo_id name description rate active income_account created_at updated_at "
    "deleted_at",
    "classes": "id qbo_id name active created_at updated_at deleted_at",
    "terms": "id qbo_id name due_days day_of_month_due discount_percent discount_days active "
    "created_at updated_at deleted_at",
    "accounts": "id qbo_id name account_type account_sub_type classification account_number "
    "description active created_at updated_at deleted_at",
    "tax_codes": "id qbo_id name description taxable tax_group active created_at updated_at "
    "deleted_at",
    "bank_accounts": "id name kind account_number bank_name account_last4 active created_at "
    "updated_at deleted_at",
    "deposit_slips": "id bank_account_id deposit_date memo created_at updated_at deleted_at",
    "deposit_slip_lines": "id deposit_slip_id line_no amount from_account description "
    "check_number",
    "hard_costs": "id project_id vendor_id bank_account_id incurred_on amount description "
    "expense_account check_number created_at updated_at deleted_at",
}
# The lists QBO records are imported into: rows keyed by qbo_id too, ids the database's.
IMPORTED_LISTS = ("services", "classes", "terms", "accounts", "tax_codes")
BUSINESS_DATES = {
    "time_entries": "work_date",
    "invoices": "issue_date",
    "payments": "payment_date",
    "write_offs": "write_off_date",
    "expenses": "spent_on",
    "bills": "bill_date",
    "deposit_slips": "deposit_date",
    "hard_costs": "incurred_on",
}
MONEY_COLUMNS = [
    ("time_entries", "hourly_rate"),
    ("invoices", "tax_amount"),
    ("invoices", "balance"),
    ("invoice_lines", "unit_price"),
    ("invoice_lines", "amount"),
    ("payments", "amount"),
    ("write_offs", "amount"),
    ("expenses", "amount"),
    ("bill_lines", "amount"),
    ("imported_bills", "amount"),
    ("imported_bills", "balance"),
    ("services", "rate"),
    ("deposit_slip_lines", "amount"),
    ("hard_costs", "amount"),
]


def test_metadata_declares_exactly_the_agreed_tables_and_columns() -> None:
    declared = {
        name: [column.name for column in table.columns]
        for name, table in demo_schema.metadata.tables.items()
    }
    assert declared == {table: columns.split() for table, columns in EXPECTED_COLUMNS.items()}
    assert {table.name for table in demo_schema.TABLES_IN_LOAD_ORDER} == set(EXPECTED_COLUMNS)


def test_column_types_follow_the_conventions() -> None:
    tables = demo_schema.metadata.tables
    for name, table in tables.items():
        assert isinstance(table.c.id.type, Integer), name
        for stamp in ("created_at", "updated_at", "deleted_at"):
            if stamp in table.c:
                stamp_type = table.c[stamp].type
                assert isinstance(stamp_type, DateTime), f"{name}.{stamp}"
                assert not stamp_type.timezone, f"{name}.{stamp} holds naive UTC"
    for table_name, column_name in MONEY_COLUMNS:
        money = tables[table_name].c[column_name].type
        assert isinstance(money, Numeric)
        assert (money.precision, money.scale) == (12, 2), f"{table_name}.{column_name}"
    for table_name, column_name in BUSINESS_DATES.items():
        assert isinstance(tables[table_name].c[column_name].type, Date)


def test_create_all_builds_tables_with_change_date_and_foreign_key_indexes(engine: Engine) -> None:
    demo_schema.metadata.create_all(engine)
    inspector = inspect(engine)
    assert set(EXPECTED_COLUMNS) <= set(inspector.get_table_names())
    for table_name in EXPECTED_COLUMNS:
        reflected = [column["name"] for column in inspector.get_columns(table_name)]
        assert reflected == EXPECTED_COLUMNS[table_name].split()
        indexed = [tuple(index["column_names"]) for index in inspector.get_indexes(table_name)]
        if "updated_at" in reflected:
            assert ("updated_at", "id") in indexed, table_name
        if table_name in BUSINESS_DATES:
            assert (BUSINESS_DATES[table_name],) in indexed, table_name
        for foreign_key in inspector.get_foreign_keys(table_name):
            assert tuple(foreign_key["constrained_columns"]) in indexed, table_name


def test_every_child_table_points_at_its_parent() -> None:
    parents = {
        (fk.parent.table.name, fk.parent.name): fk.column.table.name
        for table in demo_schema.metadata.tables.values()
        for fk in table.foreign_keys
    }
    assert parents == {
        ("projects", "client_id"): "clients",
        ("time_entries", "employee_id"): "employees",
        ("time_entries", "project_id"): "projects",
        ("invoices", "project_id"): "projects",
        ("invoice_lines", "invoice_id"): "invoices",
        ("payments", "invoice_id"): "invoices",
        ("write_offs", "invoice_id"): "invoices",
        ("expenses", "vendor_id"): "vendors",
        ("bills", "vendor_id"): "vendors",
        ("bill_lines", "bill_id"): "bills",
        ("bill_lines", "project_id"): "projects",
        ("imported_bills", "vendor_id"): "vendors",
        ("imported_bills", "project_id"): "projects",
        ("deposit_slips", "bank_account_id"): "bank_accounts",
        ("deposit_slip_lines", "deposit_slip_id"): "deposit_slips",
        ("hard_costs", "project_id"): "projects",
        ("hard_costs", "vendor_id"): "vendors",
        ("hard_costs", "bank_account_id"): "bank_accounts",
    }
    load_order = [table.name for table in demo_schema.TABLES_IN_LOAD_ORDER]
    for (child, _column), parent in parents.items():
        assert load_order.index(parent) < load_order.index(child)


def test_services_and_invoice_balance_reflect_with_their_types_and_defaults(
    engine: Engine,
) -> None:
    demo_schema.metadata.create_all(engine)
    inspector = inspect(engine)
    columns = {column["name"]: column for column in inspector.get_columns("services")}
    expected: dict[str, tuple[type[Any], bool]] = {
        "id": (Integer, False),
        "qbo_id": (String, True),
        "name": (String, False),
        "description": (Text, True),
        "rate": (Numeric, True),
        "active": (Boolean, False),
        "income_account": (String, True),
        "created_at": (DateTime, False),
        "updated_at": (DateTime, False),
        "deleted_at": (DateTime, True),
    }
    for name, (type_, nullable) in expected.items():
        assert isinstance(columns[name]["type"], type_), (name, columns[name]["type"])
        assert columns[name]["nullable"] is nullable, name
    lengths = {name: columns[name]["type"].length for name in ("qbo_id", "name", "income_account")}
    assert lengths == {"qbo_id": 64, "name": 100, "income_account": 100}
    assert (columns["rate"]["type"].precision, columns["rate"]["type"].scale) == (12, 2)
    for stamp in ("created_at", "updated_at", "deleted_at"):
        assert not columns[stamp]["type"].timezone, stamp
    defaulted = {name for name, column in columns.items() if column["default"] is not None}
    assert defaulted - {"id"} == {"active", "created_at", "updated_at"}
    unique = [tuple(u["column_names"]) for u in inspector.get_unique_constraints("services")]
    assert unique == [("qbo_id",)]
    assert inspector.get_pk_constraint("services")["constrained_columns"] == ["id"]

    balance = {c["name"]: c for c in inspector.get_columns("invoices")}["balance"]
    assert isinstance(balance["type"], Numeric) and balance["nullable"]
    assert (balance["type"].precision, balance["type"].scale) == (12, 2)


@pytest.mark.parametrize("table_name", IMPORTED_LISTS)
def test_an_imported_list_takes_a_row_with_only_a_name_and_a_qbo_id(
    engine: Engine, table_name: str
) -> None:
    """The database assigns the id, `active` and both stamps, in UTC whatever the session's
    time zone (PostgreSQL's is set far from UTC here): what the pipeline's import inserts."""
    demo_schema.metadata.create_all(engine)
    table = demo_schema.metadata.tables[table_name]
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(seconds=5)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL timezone = 'Pacific/Kiritimati'"))  # UTC+14
        ids = [
            connection.execute(
                insert(table).values(name=name, qbo_id=qbo_id)
            ).inserted_primary_key[0]
            for name, qbo_id in [("Consulting", "1"), ("Design", "2")]
        ]
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    after = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=5)
    assert len(set(ids)) == 2 and all(isinstance(id_, int) for id_ in ids)
    assert [(row["id"], row["name"], row["qbo_id"]) for row in rows] == [
        (ids[0], "Consulting", "1"),
        (ids[1], "Design", "2"),
    ]
    for row in rows:
        assert row["active"] is True
        assert row["deleted_at"] is None
        assert all(row[column] is None for column in row
                   if column not in ("id", "name", "qbo_id", "active", "created_at",
                                     "updated_at")), row
        for stamp in ("created_at", "updated_at"):
            assert isinstance(row[stamp], datetime) and row[stamp].tzinfo is None
            assert before <= row[stamp] <= after, (stamp, row[stamp], before, after)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(table).values(name="Consulting again", qbo_id="1"))


def test_an_invoice_takes_status_paid_and_a_balance(engine: Engine) -> None:
    """No allowed list on `status`: the pipeline may write QBO's PAID back, with the balance."""
    demo_schema.metadata.create_all(engine)
    stamps = {"created_at": datetime(2025, 1, 2, 9), "updated_at": datetime(2025, 1, 2, 9)}
    invoices = demo_schema.invoices
    with engine.begin() as connection:
        connection.execute(
            insert(demo_schema.clients).values(id=1, name="Client", active=True, **stamps)
        )
        connection.execute(
            insert(demo_schema.projects).values(
                id=1, client_id=1, number="P-00001", name="Project", active=True, **stamps
            )
        )
        for invoice_id, status, balance in [(1, "PAID", Decimal("0.00")), (2, "sent", None)]:
            connection.execute(
                insert(invoices).values(
                    id=invoice_id,
                    project_id=1,
                    number=f"INV-{invoice_id:06d}",
                    issue_date=date(2025, 1, 2),
                    due_date=date(2025, 2, 1),
                    tax_rate=Decimal("0"),
                    tax_amount=Decimal("0.00"),
                    status=status,
                    balance=balance,
                    **stamps,
                )
            )
        rows = connection.execute(
            select(invoices.c.status, invoices.c.balance).order_by(invoices.c.id)
        ).all()
    assert [tuple(row) for row in rows] == [("PAID", Decimal("0.00")), ("sent", None)]
