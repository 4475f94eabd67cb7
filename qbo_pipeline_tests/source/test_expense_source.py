"""expense.yaml's source query on both databases: each expense with the QBO PaymentType of its
payment method (seed 001: "paymentMethod -> PaymentType") and whether it is both paid and
approved (seed 004's "Expense Export Status": "Paid & Approved")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.reader import read_changed
from qbo_pipeline.specs import load_specs
from qbo_pipeline_tests.source.test_reader import EVENING, at, insert_rows

EXPENSE = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")["expense"]


def test_an_expense_is_read_with_its_payment_type_and_export_status(engine: Engine) -> None:
    stamps = {"created_at": EVENING, "updated_at": at(23, 50), "deleted_at": None}
    schema.metadata.create_all(engine)
    insert_rows(engine, "vendors", [{"id": 1, "name": "Lumber Co", "active": True, **stamps}])
    methods = [("Check", True, True), ("ACH", True, False), ("Credit Card", False, True),
               ("Cash", True, True), ("Barter", True, True)]
    insert_rows(engine, "expenses", [
        {"id": number, "vendor_id": 1, "spent_on": EVENING.date(), "amount": Decimal("12.50"),
         "category": "Travel", "payment_method": method, "description": None, "paid": paid,
         "approved": approved, "paid_from": "Checking", **stamps}
        for number, (method, paid, approved) in enumerate(methods, start=1)])
    assert EXPENSE.source.query is not None

    [page] = read_changed(engine, EXPENSE.source.query, primary_key="id",
                          updated_at="updated_at", since=at(23, 45), until=at(23, 59),
                          page_size=10, soft_delete="deleted_at")

    # A transfer leaves the bank as cash does; a method QBO has no type for reads as none.
    assert [(row["id"], row["payment_type"], int(row["paid_and_approved"])) for row in page] == [
        (1, "Check", 1), (2, "Cash", 0), (3, "CreditCard", 0), (4, "Cash", 1), (5, None, 1)]
