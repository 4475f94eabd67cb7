"""credit_memo.yaml's source query on both databases (SQLite and PostgreSQL): each write-off
with its invoice's project, the customer its QBO credit memo is for, and `creditable`, its
amount while it is at most what the invoice still owes in the app, else empty (seed 002,
"Change/Write-Offs": a write-off lowers what the client owes, never below nothing)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from qbo_pipeline.source.reader import read_changed
from qbo_pipeline.specs import load_specs
from qbo_pipeline_tests.source.test_reader import EVENING, add_project_with_team, at, insert_rows

CREDIT_MEMO = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")["credit_memo"]


def test_a_write_off_is_creditable_up_to_what_its_invoice_still_owes(engine: Engine) -> None:
    """Invoice of 100 plus 10 of tax, 60 paid (and 5 paid then deleted): 50 owed. Write-off 1
    (30) fits; write-off 2 (30) does not once write-off 1 is counted; write-off 3 (20) does,
    as write-off 2 is deleted and counts for nothing."""
    add_project_with_team(engine)
    stamps = {"created_at": EVENING, "updated_at": at(23, 50)}
    day = EVENING.date()
    insert_rows(engine, "invoices", [
        {"id": 5, "project_id": 1, "number": "INV-5", "issue_date": day, "due_date": day,
         "tax_rate": Decimal("0.1"), "tax_amount": Decimal(10), "status": "sent", **stamps}])
    insert_rows(engine, "invoice_lines", [
        {"id": 1, "invoice_id": 5, "line_no": 1, "quantity": Decimal(1),
         "unit_price": Decimal(70), "amount": Decimal(70), "service_name": "Design"},
        {"id": 2, "invoice_id": 5, "line_no": 2, "quantity": Decimal(1),
         "unit_price": Decimal(30), "amount": Decimal(30), "service_name": "Design"}])
    insert_rows(engine, "payments", [
        {"id": 1, "invoice_id": 5, "amount": Decimal(60), "payment_date": day,
         "method": "Check", "deleted_at": None, **stamps},
        {"id": 2, "invoice_id": 5, "amount": Decimal(5), "payment_date": day,
         "method": "Cash", "deleted_at": at(23, 50), **stamps}])
    insert_rows(engine, "write_offs", [
        {"id": 1, "invoice_id": 5, "amount": Decimal(30), "write_off_date": day,
         "deleted_at": None, **stamps},
        {"id": 2, "invoice_id": 5, "amount": Decimal(30), "write_off_date": day,
         "deleted_at": at(23, 50), **stamps},
        {"id": 3, "invoice_id": 5, "amount": Decimal(20), "write_off_date": day,
         "deleted_at": None, **stamps}])
    assert CREDIT_MEMO.source.query is not None

    [page] = read_changed(engine, CREDIT_MEMO.source.query, primary_key="id",
                          updated_at="updated_at", since=at(23, 45), until=at(23, 59),
                          page_size=10, soft_delete="deleted_at")

    def creditable(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    assert [(row["id"], row["project_id"], creditable(row["creditable"]), row["_deleted"])
            for row in page] == [
        (1, 1, Decimal(30), False), (2, 1, None, True), (3, 1, Decimal(20), False)]
