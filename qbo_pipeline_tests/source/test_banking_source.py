"""bank_account.yaml's and hard_cost.yaml's source queries on both databases (seed 002: "1.
Operating Bank Accounts 2. Trust Bank Accounts", "3. Hard Costs"): each bank account with the
QBO AccountSubType of its kind, and each hard cost with the PaymentType its bank account allows
(a check from an operating account; none from a trust account, which holds it back)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from qbo_pipeline.source.reader import read_changed
from qbo_pipeline.specs import load_specs
from qbo_pipeline_tests.source.test_reader import EVENING, add_project_with_team, at, insert_rows

SPECS = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")
STAMPS = {"created_at": EVENING, "updated_at": at(23, 50)}


def add_bank_accounts(engine: Engine) -> None:
    insert_rows(engine, "bank_accounts", [
        {"id": id_, "name": name, "kind": kind, "active": True, **STAMPS}
        for id_, name, kind in ((1, "Checking", "operating"), (2, "IOLTA Trust", "trust"),
                                (3, "Savings Reserve", "savings"))])


def read_all(engine: Engine, spec_name: str) -> list[dict[str, object]]:
    query = SPECS[spec_name].source.query
    assert query is not None
    [page] = read_changed(engine, query, primary_key="id", updated_at="updated_at",
                          since=at(23, 45), until=at(23, 59), page_size=10,
                          soft_delete="deleted_at")
    return [dict(row) for row in page]


def test_a_bank_account_reads_the_qbo_subtype_of_its_kind(engine: Engine) -> None:
    add_project_with_team(engine)
    add_bank_accounts(engine)

    read = read_all(engine, "bank_account")

    assert [(row["id"], row["account_sub_type"]) for row in read] == [
        (1, "Checking"), (2, "TrustAccounts"), (3, None)]


def test_a_hard_cost_paid_from_an_operating_account_is_a_check(engine: Engine) -> None:
    add_project_with_team(engine)
    add_bank_accounts(engine)
    insert_rows(engine, "vendors", [{"id": 1, "name": "Court Clerk", "active": True, **STAMPS}])
    insert_rows(engine, "hard_costs", [
        {"id": id_, "project_id": 1, "vendor_id": 1, "bank_account_id": bank,
         "incurred_on": EVENING.date(), "amount": Decimal("45.00"), **STAMPS}
        for id_, bank in ((7, 1), (8, 2))])

    read = read_all(engine, "hard_cost")

    assert [(row["id"], row["payment_type"], Decimal(str(row["amount"]))) for row in read] == [
        (7, "Check", Decimal("45.00")), (8, None, Decimal("45.00"))]
