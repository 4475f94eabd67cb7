from __future__ import annotations

from sqlalchemy import Date, DateTime, Engine, Integer, Numeric, inspect

from qbo_pipeline.source import demo_schema

# The contract mapping specs are written against: exact tables and columns.
EXPECTED_COLUMNS = {
    "clients": "id name email phone contact_first_name contact_last_name address_line1 "
    "address_line2 city state postal_code active created_at updated_at deleted_at",
    "projects": "id client_id number name email phone contact_first_name contact_last_name "
    "job_address_line1 job_city job_state job_postal_code active created_at updated_at deleted_at",
    "employees": "id first_name last_name email phone active created_at updated_at deleted_at",
    "time_entries": "id employee_id project_id work_date hours description billable approved "
    "hourly_rate created_at updated_at deleted_at",
    "invoices": "id project_id number issue_date due_date notes tax_rate tax_amount status "
    "created_at updated_at deleted_at",
    "invoice_lines": "id invoice_id line_no description quantity unit_price amount service_name",
    "payments": "id invoice_id amount paid_on method created_at updated_at",
    "expenses": "id vendor_id spent_on amount category payment_method description created_at "
    "updated_at deleted_at",
    "vendors": "id name email phone active created_at updated_at deleted_at",
}
BUSINESS_DATES = {
    "time_entries": "work_date",
    "invoices": "issue_date",
    "payments": "paid_on",
    "expenses": "spent_on",
}
MONEY_COLUMNS = [
    ("time_entries", "hourly_rate"),
    ("invoices", "tax_amount"),
    ("invoice_lines", "unit_price"),
    ("invoice_lines", "amount"),
    ("payments", "amount"),
    ("expenses", "amount"),
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
        ("expenses", "vendor_id"): "vendors",
    }
    load_order = [table.name for table in demo_schema.TABLES_IN_LOAD_ORDER]
    for (child, _column), parent in parents.items():
        assert load_order.index(parent) < load_order.index(child)
