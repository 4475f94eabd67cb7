"""payment.yaml's source query on both databases: each payment with its invoice's project, the
customer the QBO Payment is made on (seed 004: payments "assigned to a connected Customer
Account", applied to its "Invoices")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from qbo_pipeline.source.reader import read_changed
from qbo_pipeline.specs import load_specs
from qbo_pipeline_tests.source.test_reader import EVENING, add_project_with_team, at, insert_rows

PAYMENT = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")["payment"]


def test_a_payment_is_read_with_its_invoices_project(engine: Engine) -> None:
    add_project_with_team(engine)
    stamps = {"created_at": EVENING, "updated_at": at(23, 50)}
    insert_rows(engine, "invoices", [
        {"id": 5, "project_id": 1, "number": "INV-5", "issue_date": EVENING.date(),
         "due_date": EVENING.date(),
         "tax_rate": Decimal(0), "tax_amount": Decimal(0), "status": "sent", **stamps}])
    insert_rows(engine, "payments", [
        {"id": 9, "invoice_id": 5, "amount": Decimal("40.00"), "payment_date": EVENING.date(),
         "method": "Check", "reference": "CHK-77", "deleted_at": None, **stamps},
        {"id": 10, "invoice_id": 5, "amount": Decimal("5.00"), "payment_date": EVENING.date(),
         "method": "Cash", "reference": None, "deleted_at": at(23, 50), **stamps}])
    assert PAYMENT.source.query is not None

    [page] = read_changed(engine, PAYMENT.source.query, primary_key="id",
                          updated_at="updated_at", since=at(23, 45), until=at(23, 59),
                          page_size=10, soft_delete="deleted_at")

    assert [(row["id"], row["project_id"], Decimal(str(row["amount"])), row["reference"],
             row["_deleted"]) for row in page] == [
        (9, 1, Decimal("40.00"), "CHK-77", False), (10, 1, Decimal("5.00"), None, True)]
