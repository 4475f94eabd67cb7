from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.demo_data import (
    CLASSES,
    MIN_CLIENTS,
    TERMS,
    UNKNOWN_CATEGORY,
    WINDOW_DAYS,
    DemoDataError,
    DemoSummary,
    clients_for_rows,
    generate_demo_data,
)

TODAY = date(2025, 3, 15)
MIDNIGHT_TODAY = datetime.combine(TODAY, time.min)

Rows = dict[str, list[dict[str, Any]]]


def read_all(engine: Engine) -> Rows:
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(select(table).order_by(table.c.id)).mappings()
            ]
            for table in schema.TABLES_IN_LOAD_ORDER
        }


def generate_sqlite(tmp_path: Path, name: str, **options: Any) -> tuple[DemoSummary, Rows]:
    url = f"sqlite:///{tmp_path / name}"
    summary = generate_demo_data(url, today=TODAY, **{"clients": 40, **options})
    engine = create_engine(url)
    try:
        return summary, read_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, Rows]:
    """One mid-sized database shared by the read-only checks below."""
    return generate_sqlite(tmp_path_factory.mktemp("demo"), "demo.db", clients=300)


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_same_seed_gives_the_same_rows_and_another_seed_other_rows(tmp_path: Path) -> None:
    first_summary, first = generate_sqlite(tmp_path, "first.db", seed=11)
    second_summary, second = generate_sqlite(tmp_path, "second.db", seed=11)
    _, other = generate_sqlite(tmp_path, "other.db", seed=12)
    assert first == second
    assert first_summary.invalid == second_summary.invalid
    assert first["clients"] != other["clients"]


def test_counts_scale_with_clients_and_match_the_database(
    demo: tuple[DemoSummary, Rows],
) -> None:
    summary, rows = demo
    assert dict(summary.counts) == {table: len(table_rows) for table, table_rows in rows.items()}
    assert summary.counts["clients"] == 300
    assert summary.counts["projects"] > 300
    assert summary.counts["time_entries"] > 8 * summary.counts["projects"] * 0.9
    # 60 employees, 30 users paid as 1099 vendors and one user of neither type
    assert summary.counts["employees"] == 60 + 30 + 1 and summary.counts["vendors"] == 75 + 1
    assert (summary.counts["classes"], summary.counts["terms"]) == (len(CLASSES), len(TERMS))
    # About half the clients with open projects have a vendor's bill of 1-3 lines.
    assert 0.25 * 300 < summary.counts["bills"] < 0.75 * 300
    lines_per_bill = Counter(line["bill_id"] for line in rows["bill_lines"])
    assert set(lines_per_bill) == {bill["id"] for bill in rows["bills"]}
    assert set(lines_per_bill.values()) <= {1, 2, 3}
    # clients_for_rows turns a row target into a client count: 300 clients, about 14,100 rows
    assert abs(summary.total_rows - 14_100) < 14_100 * 0.1
    assert clients_for_rows(14_100) == 300
    assert clients_for_rows(10) == MIN_CLIENTS


def test_the_documented_invalid_rows_exist_and_are_the_only_bad_ones(
    demo: tuple[DemoSummary, Rows],
) -> None:
    summary, rows = demo
    invalid = {(row.table, row.id) for row in summary.invalid}
    assert {table for table, _ in invalid} == {
        "clients",
        "projects",
        "vendors",
        "time_entries",
        "invoices",
        "invoice_lines",
        "write_offs",
        "expenses",
        "bills",
        "bank_accounts",
        "deposit_slips",
        "hard_costs",
    }

    def flagged(table: str, row: dict[str, Any]) -> bool:
        return (table, row["id"]) in invalid

    for client in rows["clients"]:
        bad = client["email"] is None or ":" in client["name"]
        assert bad == flagged("clients", client), client
    for project in rows["projects"]:
        assert ("@" not in project["email"]) == flagged("projects", project), project
    for entry in rows["time_entries"]:
        assert (entry["hours"] > 24) == flagged("time_entries", entry), entry
    for line in rows["invoice_lines"]:
        assert (line["quantity"] < 0) == flagged("invoice_lines", line), line
    bad_invoices = {line["invoice_id"] for line in rows["invoice_lines"] if line["quantity"] < 0}
    assert {id_ for table, id_ in invalid if table == "invoices"} == bad_invoices
    for expense in rows["expenses"]:
        # A negative amount, a category no QBO account has, a card paid from the bank.
        bad = (expense["amount"] < 0 or expense["category"] == UNKNOWN_CATEGORY
               or (expense["payment_method"] == "Credit Card"
                   and expense["paid_from"] != "Credit Card"))
        assert bad == flagged("expenses", expense), expense
        assert not bad or (expense["paid"] and expense["approved"]), expense
    for bill in rows["bills"]:
        bad = any(line["bill_id"] == bill["id"] and line["category"] == UNKNOWN_CATEGORY
                  for line in rows["bill_lines"])
        assert bad == flagged("bills", bill), bill
    invoices = by_id(rows["invoices"])
    for write_off in rows["write_offs"]:
        # Seed 002's write-offs: at most what the invoice still owes, but the listed one.
        invoice_id = write_off["invoice_id"]
        total = invoices[invoice_id]["tax_amount"] + sum(
            line["amount"] for line in rows["invoice_lines"] if line["invoice_id"] == invoice_id)
        paid = sum(p["amount"] for p in rows["payments"] if p["invoice_id"] == invoice_id)
        assert (write_off["amount"] > total - paid) == flagged("write_offs", write_off)
    client_names = {client["name"] for client in rows["clients"]}
    for vendor in rows["vendors"]:
        assert (vendor["name"] in client_names) == flagged("vendors", vendor), vendor
    # Seed 002's banking: a bank account of no known kind or of a name QBO's chart holds, a
    # slip into the first, without lines or from an account QBO lacks, a negative hard cost
    # and one paid from the trust account.
    kinds = {account["id"]: account["kind"] for account in rows["bank_accounts"]}
    for account in rows["bank_accounts"]:
        bad = account["kind"] not in ("operating", "trust") or account["name"] == "Travel"
        assert bad == flagged("bank_accounts", account), account
    lines = Counter(line["deposit_slip_id"] for line in rows["deposit_slip_lines"])
    unknown = {line["deposit_slip_id"] for line in rows["deposit_slip_lines"]
               if line["from_account"] not in ("Services", "Client Trust Liability")}
    for slip in rows["deposit_slips"]:
        bad = (kinds[slip["bank_account_id"]] not in ("operating", "trust")
               or not lines[slip["id"]] or slip["id"] in unknown)
        assert bad == flagged("deposit_slips", slip), slip
    for cost in rows["hard_costs"]:
        bad = cost["amount"] < 0 or kinds[cost["bank_account_id"]] != "operating"
        assert bad == flagged("hard_costs", cost), cost
    assert all(row.why for row in summary.invalid)


def test_invalid_rows_have_no_dependent_rows(demo: tuple[DemoSummary, Rows]) -> None:
    """So that exactly the listed rows fail and no valid row waits on a bad parent."""
    summary, rows = demo
    bad = {(row.table, row.id) for row in summary.invalid}
    assert not any(("clients", p["client_id"]) in bad for p in rows["projects"])
    for table in ("time_entries", "invoices"):
        assert not any(("projects", r["project_id"]) in bad for r in rows[table])
    assert not any(("invoices", p["invoice_id"]) in bad for p in rows["payments"])
    assert not any(("vendors", e["vendor_id"]) in bad for e in rows["expenses"])
    for table, row_id in bad:
        row = by_id(rows[table])[row_id]
        assert row.get("deleted_at") is None and row.get("active", True), (table, row_id)


def test_display_names_are_unique_across_names_lists_except_the_deliberate_duplicate(
    demo: tuple[DemoSummary, Rows],
) -> None:
    summary, rows = demo
    names = [client["name"] for client in rows["clients"]]
    names += [f"{p['number']} - {p['name']}" for p in rows["projects"]]
    names += [f"{e['first_name']} {e['last_name']}" for e in rows["employees"]]
    names += [vendor["name"] for vendor in rows["vendors"]]
    repeated = {name for name, count in Counter(n.casefold() for n in names).items() if count > 1}
    duplicate_vendor = next(row for row in summary.invalid if row.table == "vendors")
    assert repeated == {by_id(rows["vendors"])[duplicate_vendor.id]["name"].casefold()}


def test_dates_fall_in_the_window_before_today(demo: tuple[DemoSummary, Rows]) -> None:
    _, rows = demo
    first_day = TODAY - timedelta(days=WINDOW_DAYS)
    for table, column in [
        ("time_entries", "work_date"),
        ("invoices", "issue_date"),
        ("payments", "payment_date"),
        ("expenses", "spent_on"),
        ("bills", "bill_date"),
    ]:
        days = [row[column] for row in rows[table]]
        assert first_day <= min(days) and max(days) < TODAY, table
        assert len(set(days)) > WINDOW_DAYS / 2, f"{table} dates are spread over the window"
    for table, table_rows in rows.items():
        for row in table_rows:
            if "updated_at" in row:
                assert row["created_at"] <= row["updated_at"] < MIDNIGHT_TODAY, (table, row)
            if row.get("deleted_at") is not None:
                assert row["deleted_at"] == row["updated_at"], (table, row)


def test_imported_lists_stay_empty_and_invoice_balances_null_for_the_pipeline_to_fill(
    demo: tuple[DemoSummary, Rows],
) -> None:
    summary, rows = demo
    for table in ("services", "accounts", "tax_codes"):
        assert rows[table] == [] and summary.counts[table] == 0, table
        assert summary.soft_deleted[table] == 0, table
    assert rows["invoices"] and all(invoice["balance"] is None for invoice in rows["invoices"])
    assert "services: 0" in summary.describe()


def test_invoices_have_one_to_five_lines_and_a_tax_amount(demo: tuple[DemoSummary, Rows]) -> None:
    _, rows = demo
    lines_by_invoice: dict[int, list[dict[str, Any]]] = {}
    for line in rows["invoice_lines"]:
        lines_by_invoice.setdefault(line["invoice_id"], []).append(line)
    assert set(lines_by_invoice) == set(by_id(rows["invoices"]))
    for invoice in rows["invoices"]:
        lines = lines_by_invoice[invoice["id"]]
        assert [line["line_no"] for line in lines] == list(range(1, len(lines) + 1))
        assert 1 <= len(lines) <= 5
        for line in lines:
            assert line["amount"] == (line["quantity"] * line["unit_price"]).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
        subtotal = sum(line["amount"] for line in lines)
        expected_tax = (subtotal * invoice["tax_rate"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert invoice["tax_amount"] == expected_tax
    assert any(invoice["tax_amount"] > 0 for invoice in rows["invoices"])
    assert {"paid", "sent"} <= {invoice["status"] for invoice in rows["invoices"]}


def test_every_reference_points_at_an_existing_parent(demo: tuple[DemoSummary, Rows]) -> None:
    _, rows = demo
    for child, column, parent in [
        ("projects", "client_id", "clients"),
        ("time_entries", "employee_id", "employees"),
        ("time_entries", "project_id", "projects"),
        ("invoices", "project_id", "projects"),
        ("invoice_lines", "invoice_id", "invoices"),
        ("payments", "invoice_id", "invoices"),
        ("expenses", "vendor_id", "vendors"),
    ]:
        parent_ids = set(by_id(rows[parent]))
        assert {row[column] for row in rows[child]} <= parent_ids, (child, column)


def test_soft_deleted_rows_are_counted(demo: tuple[DemoSummary, Rows]) -> None:
    summary, rows = demo
    for table, table_rows in rows.items():
        deleted = sum(1 for row in table_rows if row.get("deleted_at") is not None)
        assert summary.soft_deleted[table] == deleted, table
    assert summary.soft_deleted["time_entries"] > 0


def test_progress_reports_rows_written_chunk_by_chunk(tmp_path: Path) -> None:
    messages: list[str] = []
    summary = generate_demo_data(
        f"sqlite:///{tmp_path / 'demo.db'}",
        clients=10,
        today=TODAY,
        chunk_size=100,
        progress=messages.append,
    )
    written = [int(m.split()[0].replace(",", "")) for m in messages if "rows written," in m]
    assert len(written) >= summary.total_rows // 100 - 1
    assert written == sorted(written) and written[-1] <= summary.total_rows
    assert messages[-1] == f"done: {summary.total_rows:,} rows written"


def test_refuses_to_add_to_existing_data_unless_reset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    generate_demo_data(url, clients=5, today=TODAY)
    with pytest.raises(DemoDataError, match="already holds rows.*reset=True"):
        generate_demo_data(url, clients=5, today=TODAY)
    summary = generate_demo_data(url, clients=6, today=TODAY, reset=True)
    engine = create_engine(url)
    assert len(read_all(engine)["clients"]) == summary.counts["clients"] == 6
    engine.dispose()


def test_too_few_clients_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match=f"at least {MIN_CLIENTS} clients"):
        generate_demo_data(f"sqlite:///{tmp_path / 'demo.db'}", clients=MIN_CLIENTS - 1)


def test_postgresql_gets_the_same_rows_as_sqlite(tmp_path: Path, postgres_engine: Engine) -> None:
    _, sqlite_rows = generate_sqlite(tmp_path, "demo.db", clients=12)
    summary = generate_demo_data(postgres_engine, clients=12, today=TODAY)
    assert read_all(postgres_engine) == sqlite_rows
    assert summary.counts["clients"] == 12


def test_users_have_a_synced_type_and_only_employees_log_time(
    demo: tuple[DemoSummary, Rows],
) -> None:
    """Seed 004: a user syncs as an Employee or, with type "1099 Vendor", as a Vendor; one user
    of neither type is there to be left out. Time refers to the employee spec only."""
    _, rows = demo
    types = Counter(user["employment_type"] for user in rows["employees"])
    assert types == {schema.EMPLOYEE_TYPE: 60, schema.CONTRACTOR_TYPE: 30, None: 1}
    employees = {u["id"] for u in rows["employees"]
                 if u["employment_type"] == schema.EMPLOYEE_TYPE}
    assert {entry["employee_id"] for entry in rows["time_entries"]} <= employees
    contractors = [u for u in rows["employees"] if u["employment_type"] == schema.CONTRACTOR_TYPE]
    assert all(u["email"].endswith("@subcontractor.example.com") for u in contractors)


def test_classes_and_terms_are_the_apps_own_lists_without_qbo_ids(
    demo: tuple[DemoSummary, Rows],
) -> None:
    _, rows = demo
    assert [c["name"] for c in rows["classes"]] == list(CLASSES)
    assert [(t["name"], t["due_days"], t["discount_percent"], t["discount_days"])
            for t in rows["terms"]] == list(TERMS)
    assert all(row["qbo_id"] is None and row["active"] for row in rows["classes"] + rows["terms"])


def test_the_pipeline_can_insert_into_the_lists_the_generator_filled(engine: Engine) -> None:
    """The generator leaves the ids of classes and terms to the database, so that a row the
    pipeline imports later gets a free one (PostgreSQL's sequence is not left behind)."""
    generate_demo_data(engine, clients=MIN_CLIENTS, today=TODAY)
    with engine.begin() as connection:
        for table in (schema.classes, schema.terms):
            values = {"name": "Imported", "qbo_id": "901"}
            if table is schema.terms:
                values["due_days"] = 10
            new_id = connection.execute(insert(table).values(**values)).inserted_primary_key[0]
            assert new_id == len(CLASSES if table is schema.classes else TERMS) + 1, table.name
