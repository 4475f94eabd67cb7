"""Expenses pushed as QBO Purchases, bills pushed as QBO Bills, QBO's recent bills imported,
and a deleted expense or bill reported, never deleted in QBO (seeds 001 and 004). Real HTTP to
the emulator, real SQLite source and state DBs, Dagster's `materialize`; each test cites the
seed line it follows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline.defs.assets import REPORTED_RECORDS_METADATA
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest, pipeline_assets
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_payments import qbo_record
from qbo_pipeline_tests.defs.test_pull_and_two_way import rows, writes_of
from qbo_pipeline_tests.defs.test_services import account_id, held_reasons
from qbo_pipeline_tests.defs.test_sync import synced_counts


def new_expense(pipeline: PipelineUnderTest, *, paid: bool = True, approved: bool = True,
                method: str = "Check", paid_from: str = "Checking",
                category: str = "Travel") -> str:
    """The app records an expense of its first vendor, dated yesterday; returns its key."""
    [top] = rows(pipeline, "SELECT MAX(id) AS id FROM expenses")
    key = int(top["id"]) + 1
    touch(pipeline, "INSERT INTO expenses (id, vendor_id, spent_on, amount, category, "
                    "payment_method, description, paid, approved, paid_from, created_at, "
                    "updated_at) VALUES (:id, 1, :day, '84.20', :category, :method, 'Site visit', "
                    ":paid, :approved, :paid_from, :now, :now)",
          id=key, day=date.today() - timedelta(days=1), category=category, method=method,
          paid=paid, approved=approved, paid_from=paid_from)
    return str(key)


def purchase_of(pipeline: PipelineUnderTest, expense: str) -> dict[str, Any]:
    return qbo_record(pipeline, "Purchase", links_of(pipeline, "expense")[expense])


def reported(result: Any) -> list[str]:
    return [line for event in result.get_asset_materialization_events()
            if REPORTED_RECORDS_METADATA in (meta := event.materialization.metadata)
            for line in str(meta[REPORTED_RECORDS_METADATA].value).splitlines()]


def test_an_expense_becomes_a_purchase_of_its_vendor_category_and_payment_method(
        pipeline: PipelineUnderTest) -> None:
    """Seed 001: "Expenses (as QB Purchase records)" and "Expense: vendor -> EntityRef,
    paymentMethod -> PaymentType, category -> AccountRef": the payee is the vendor's QBO
    Vendor, a card is PaymentType CreditCard paid from the credit card account, and the line
    is booked to the expense account the category names."""
    assert pipeline.run().success
    card = new_expense(pipeline, method="Credit Card", paid_from="Credit Card",
                       category="Meals and Entertainment")
    check = new_expense(pipeline)
    result = pipeline.run()
    assert result.success and synced_counts(result)["expense"]["created"] == 2

    purchase = purchase_of(pipeline, card)
    assert purchase["EntityRef"]["value"] == links_of(pipeline, "vendor")["1"]
    assert purchase["EntityRef"]["type"] == "Vendor"
    assert (purchase["PaymentType"], purchase["AccountRef"]["value"]) == (
        "CreditCard", account_id(pipeline, "Credit Card"))
    [line] = purchase["Line"]
    assert line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == account_id(
        pipeline, "Meals and Entertainment")
    assert line["Amount"] == purchase["TotalAmt"] == 84.2
    assert purchase_of(pipeline, check)["PaymentType"] == "Check"
    assert writes_of(pipeline.run()) == (0, 0)  # a second run changes nothing


def test_the_expense_export_status_lets_paid_or_paid_and_approved_expenses_through(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004, "Expense Export Status": "only Paid expenses to transfer or Paid & Approved
    expenses to transfer". Under "Paid" (the default) an unpaid expense waits and a paid,
    unapproved one goes; under "Paid & Approved" a paid, unapproved one waits."""
    assert pipeline.run().success
    unpaid = new_expense(pipeline, paid=False)
    unapproved = new_expense(pipeline, approved=False)
    assert pipeline.run().success
    assert unpaid not in links_of(pipeline, "expense")
    assert unapproved in links_of(pipeline, "expense")

    change_setting(pipeline.sessions, SPECS, pipeline.realm.realm_id,
                   "expense_export_status", "Paid & Approved")
    waiting = new_expense(pipeline, approved=False)
    approved = new_expense(pipeline)
    assert pipeline.run().success
    linked = links_of(pipeline, "expense")
    assert waiting not in linked and approved in linked and unpaid not in linked


def test_bad_expenses_are_held_back_with_their_fix(pipeline: PipelineUnderTest) -> None:
    """The demo's bad expenses (seed 001's mapping broken three ways) are held back, never
    dropped, while the others sync: a negative amount, a category QBO has no account for, and
    a card expense recorded as paid from the bank, which QBO refuses ("Invalid account
    type"): each reason names the expense, the field and the fix."""
    assert pipeline.run().success
    assert "is below the minimum of 0 - correct the expense's amount" in " ".join(
        held_reasons(pipeline, "expense", "1"))
    assert any("needs a QuickBooks Account with Name 'Yacht Charter'" in reason
               and "change category on the expense" in reason
               for reason in held_reasons(pipeline, "expense", "4"))
    assert any("Invalid account type" in reason and "AccountRef" in reason
               for reason in held_reasons(pipeline, "expense", "5"))
    assert len(links_of(pipeline, "expense")) > 0


def test_a_bill_is_pushed_with_its_vendor_dates_and_lines_for_their_jobs(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004, "VENDORS & BILL EXPORT": "Contractors Cloud bill data is a 1-way push into a
    QuickBooks bill": the vendor, the bill's date and number, a due date (QBO's from the date
    when the app has none), and each line an expense line for its project's sub-customer."""
    result = pipeline.run()
    assert result.success
    linked = links_of(pipeline, "bill")
    assert linked and "1" not in linked  # bill 1 names an unknown category: held back
    projects, vendors = links_of(pipeline, "project"), links_of(pipeline, "vendor")
    for key, qbo_id in linked.items():
        [bill] = rows(pipeline, "SELECT * FROM bills WHERE id = :b", b=int(key))
        lines = rows(pipeline, "SELECT * FROM bill_lines WHERE bill_id = :b ORDER BY line_no",
                     b=int(key))
        pushed = qbo_record(pipeline, "Bill", qbo_id)
        assert pushed["VendorRef"]["value"] == vendors[str(bill["vendor_id"])]
        assert (pushed["DocNumber"], pushed["TxnDate"]) == (bill["number"],
                                                            str(bill["bill_date"])[:10])
        assert pushed["DueDate"] >= pushed["TxnDate"]
        assert [line["AccountBasedExpenseLineDetail"]["CustomerRef"]["value"]
                for line in pushed["Line"]] == [projects[str(line["project_id"])]
                                                for line in lines]
        assert Decimal(str(pushed["Balance"])) == sum(Decimal(str(line["amount"]))
                                                      for line in lines)
    assert any("needs a QuickBooks Account with Name 'Yacht Charter'" in reason
               for reason in held_reasons(pipeline, "bill", "1"))
    assert writes_of(pipeline.run())[0] == 0  # (the invoices' first balances come back)
    assert writes_of(pipeline.run()) == (0, 0)


def bill_in_qbo(pipeline: PipelineUnderTest, number: str, project: str, days_ago: int) -> str:
    """A bill a bookkeeper entered in QBO for a project, last changed `days_ago` days ago."""
    realm = pipeline.realm
    vendor = links_of(pipeline, "vendor")["1"]
    response = realm.post("bill", {
        "VendorRef": {"value": vendor}, "DocNumber": number, "TxnDate": "2026-01-05",
        "Line": [{"Amount": 120, "DetailType": "AccountBasedExpenseLineDetail",
                  "AccountBasedExpenseLineDetail": {
                      "AccountRef": {"value": account_id(pipeline, "Supplies and Materials")},
                      "CustomerRef": {"value": links_of(pipeline, "project")[project]}}}]})
    assert response.status_code == 200, response.text
    qbo_id = str(response.json()["Bill"]["Id"])
    when = datetime.now(UTC) - timedelta(days=days_ago)
    backdated = requests.post(
        f"{realm.base_url}/admin/realms/{realm.realm_id}/bill/{qbo_id}/backdate",
        json={"LastUpdatedTime": when.isoformat()}, timeout=10)
    assert backdated.status_code == 200, backdated.text
    return qbo_id


def test_qbo_bills_changed_in_the_last_two_weeks_are_imported_to_their_job(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "QuickBooks Bills that have been modified within the last 2 weeks can be
    imported into a Contractors Cloud Contract": a bill changed 10 days ago comes into the app,
    attached to the project of its line's customer; one changed 20 days ago does not; the
    bills the app pushed are not imported back."""
    without_import = [key for assets in pipeline_assets() for key in assets.keys
                      if key.path[0] != "imported_bill"]
    assert pipeline.run(selection=without_import).success
    project = sorted(links_of(pipeline, "project"), key=int)[0]
    recent = bill_in_qbo(pipeline, "QB-10", project, days_ago=10)
    old = bill_in_qbo(pipeline, "QB-20", project, days_ago=20)

    assert pipeline.run().success
    imported = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM imported_bills")}
    assert set(imported) == {recent} and old not in imported
    assert str(imported[recent]["project_id"]) == project
    assert (imported[recent]["number"], str(imported[recent]["vendor_id"])) == ("QB-10", "1")
    assert Decimal(str(imported[recent]["amount"])) == 120
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_deleted_bill_or_expense_is_reported_once_and_left_in_qbo(
        pipeline: PipelineUnderTest) -> None:
    """Seeds 001 and 004: "Contractors Cloud contains no deletion functionality in
    QuickBooks. Therefore, if an entity is deleted in Contractors Cloud, it should be manually
    deleted or made inactive in QuickBooks". A bill or an expense deleted in the app is left
    in QBO as it was (QBO cannot void either through its API) and reported for a person, by
    the run that finds it deleted and by no later one."""
    assert pipeline.run().success
    bill = sorted(links_of(pipeline, "bill"), key=int)[0]
    expense = sorted(links_of(pipeline, "expense"), key=int)[0]
    bill_id, purchase_id = links_of(pipeline, "bill")[bill], links_of(pipeline, "expense")[expense]
    before = (qbo_record(pipeline, "Bill", bill_id), qbo_record(pipeline, "Purchase", purchase_id))
    touch(pipeline, "UPDATE bills SET deleted_at = :now, updated_at = :now WHERE id = :b",
          b=int(bill))
    touch(pipeline, "UPDATE expenses SET deleted_at = :now, updated_at = :now WHERE id = :e",
          e=int(expense))

    result = pipeline.run()
    assert result.success
    assert sorted(reported(result)) == [
        f"bill {bill} was deleted in the app: delete or void Bill {bill_id} in QuickBooks by "
        "hand",
        f"expense {expense} was deleted in the app: delete or void Purchase {purchase_id} in "
        "QuickBooks by hand"]
    assert (qbo_record(pipeline, "Bill", bill_id),
            qbo_record(pipeline, "Purchase", purchase_id)) == before
    assert synced_counts(result)["bill"]["reported"] == 1

    again = pipeline.run()
    assert again.success and reported(again) == []
    assert writes_of(again) == (0, 0)
