"""The firm's bank accounts, deposit slips and hard costs pushed to QBO (seed 002, "Data that
Syncs to QuickBooks: 1. Operating Bank Accounts 2. Trust Bank Accounts • Deposit Slips • Trust
Bank Accounts 3. Hard Costs"; "Note: This is a one-way sync from the system to QuickBooks
Online"). Real HTTP to the emulator, real SQLite source and state DBs, Dagster's `materialize`;
each test cites the seed line it follows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_payments import qbo_record
from qbo_pipeline_tests.defs.test_pull_and_two_way import edit_in_qbo, rows
from qbo_pipeline_tests.defs.test_services import held_reasons
from qbo_pipeline_tests.defs.test_sync import synced_counts

# The demo's bank accounts by id (demo_data.BANK_ACCOUNTS, then the two bad ones).
CHECKING, PAYROLL, TRUST, NO_KIND, NAMED_TRAVEL = "1", "2", "3", "4", "5"


def accounts_named(pipeline: PipelineUnderTest, name: str) -> list[dict[str, Any]]:
    return [a for a in pipeline.qbo_records()["Account"] if a["Name"] == name]


def invalid_ids(pipeline: PipelineUnderTest, table: str) -> list[str]:
    return [str(row.id) for row in pipeline.demo.invalid if row.table == table]


def test_bank_accounts_become_qbo_bank_accounts_and_checking_is_linked_by_name(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002: "1. Operating Bank Accounts 2. Trust Bank Accounts". Each becomes a QBO
    Account of type Bank (operating: Checking, trust: TrustAccounts); the app's "Checking" is
    the Checking every new QBO company has, linked by name and not made twice. A kind that is
    neither, and a name QBO's Travel expense account holds, are held back with the fix; the
    rest sync, and QBO's chart pulled into `accounts` leaves the bank accounts to their spec
    (no echo). Later runs write nothing."""
    starter_checking = accounts_named(pipeline, "Checking")
    result = pipeline.run()

    assert result.success
    counts = synced_counts(result)["bank_account"]
    assert (counts["created"], counts["updated"], counts["quarantined"], counts["held_back"]) == (
        2, 1, 1, 1)
    linked = links_of(pipeline, "bank_account")
    assert sorted(linked) == [CHECKING, PAYROLL, TRUST]
    [checking] = accounts_named(pipeline, "Checking")
    assert checking["Id"] == starter_checking[0]["Id"] == linked[CHECKING]
    assert (checking["AcctNum"], checking["Description"]) == (
        "1010", "First Harbor Bank account ending 4821")
    trust = qbo_record(pipeline, "Account", linked[TRUST])
    payroll = qbo_record(pipeline, "Account", linked[PAYROLL])
    assert (trust["Name"], trust["AccountType"], trust["AccountSubType"]) == (
        "IOLTA Trust", "Bank", "TrustAccounts")
    assert (payroll["AccountType"], payroll["AccountSubType"]) == ("Bank", "Checking")
    assert held_reasons(pipeline, "bank_account", NO_KIND) == [
        "bank account 4: AccountSubType is required - set kind on the bank account to "
        "operating or trust"]
    [taken] = held_reasons(pipeline, "bank_account", NAMED_TRAVEL)
    assert "6240" in taken and "Travel" in taken
    assert [a["AccountType"] for a in accounts_named(pipeline, "Travel")] == ["Expense"]
    imported = {row["name"]: row["account_type"] for row in rows(
        pipeline, "SELECT name, account_type FROM accounts")}
    assert "Bank" not in imported.values() and imported["Travel"] == "Expense"
    assert imported["Client Trust Liability"] == "Other Current Liability"
    for _ in range(2):
        again = pipeline.run()
        counts = synced_counts(again)["bank_account"]
        assert (counts["created"], counts["updated"]) == (0, 0)
        assert synced_counts(again, "applied")["account"]["created"] == 0


def test_a_fixed_bank_account_syncs_and_its_held_deposit_slip_follows(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "Trust Bank Accounts • Deposit Slips": a slip into a bank account that is
    held back waits, saying why; once the app gives the account a kind, the account and then
    its slip reach QBO in one run (a bad row is held back, never dropped)."""
    assert pipeline.run().success
    [waiting] = [key for key in invalid_ids(pipeline, "deposit_slips")
                 if held_reasons(pipeline, "deposit", key)
                 and "bank account 4" in held_reasons(pipeline, "deposit", key)[0]]
    assert held_reasons(pipeline, "deposit", waiting) == [
        f"deposit slip {waiting}: DepositToAccountRef refers to bank account 4, which is not in "
        "QuickBooks yet - sync bank account 4 first (check its quarantined problems)"]

    touch(pipeline, "UPDATE bank_accounts SET kind = 'trust', updated_at = :now WHERE id = 4")
    assert pipeline.run().success

    account = qbo_record(pipeline, "Account", links_of(pipeline, "bank_account")[NO_KIND])
    assert (account["Name"], account["AccountSubType"]) == ("Savings Reserve", "TrustAccounts")
    deposit = qbo_record(pipeline, "Deposit", links_of(pipeline, "deposit")[waiting])
    assert deposit["DepositToAccountRef"]["value"] == account["Id"]
    assert held_reasons(pipeline, "deposit", waiting) == []


def test_deposit_slips_become_deposits_into_their_bank_accounts(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "Trust Bank Accounts • Deposit Slips": each slip is a QBO Deposit into its
    bank account, a line per slip line with its amount, description, check number and the
    account the money comes from; QBO's TotalAmt is their sum. A slip without lines and one
    whose line names an account QBO lacks are held back with the fix."""
    assert pipeline.run().success

    bank_links = {qbo_id: key for key, qbo_id in links_of(pipeline, "bank_account").items()}
    slips = {str(row["id"]): row for row in rows(pipeline, "SELECT * FROM deposit_slips")}
    linked = links_of(pipeline, "deposit")
    assert sorted(linked, key=int) == [key for key in sorted(slips, key=int)
                                       if key not in invalid_ids(pipeline, "deposit_slips")]
    for key, qbo_id in linked.items():
        deposit = qbo_record(pipeline, "Deposit", qbo_id)
        lines = rows(pipeline, "SELECT * FROM deposit_slip_lines WHERE deposit_slip_id = :s "
                               "ORDER BY line_no", s=int(key))
        assert bank_links[deposit["DepositToAccountRef"]["value"]] == str(
            slips[key]["bank_account_id"])
        assert deposit["TxnDate"] == str(slips[key]["deposit_date"])[:10]
        assert [(Decimal(str(line["Amount"])), line["Description"],
                 line["DepositLineDetail"]["AccountRef"]["name"],
                 line["DepositLineDetail"]["CheckNum"]) for line in deposit["Line"]] == [
            (Decimal(str(line["amount"])), line["description"], line["from_account"],
             line["check_number"]) for line in lines]
        assert Decimal(str(deposit["TotalAmt"])) == sum(
            (Decimal(str(line["amount"])) for line in lines), Decimal(0))
    reasons = {key: held_reasons(pipeline, "deposit", key)
               for key in invalid_ids(pipeline, "deposit_slips")}
    assert any(r == [f"deposit slip {k}: Line has no lines - add at least one line to the "
                     "deposit slip"] for k, r in reasons.items())
    assert any(r == [f"deposit slip {k}: Line[1].DepositLineDetail.AccountRef needs a "
                     "QuickBooks Account with Name 'Retainer Income', and there is none - "
                     "create it in QuickBooks or change from_account on the deposit slip"]
               for k, r in reasons.items())


def test_a_deposit_changed_in_qbo_gets_the_apps_values_back(pipeline: PipelineUnderTest) -> None:
    """Seed 002: "This is a one-way sync from the system to QuickBooks Online": when the
    bookkeeper and the app both change a deposit, the app's amount stands in QBO."""
    assert pipeline.run().success
    key, qbo_id = next(iter(links_of(pipeline, "deposit").items()))
    deposit = qbo_record(pipeline, "Deposit", qbo_id)
    edit_in_qbo(pipeline, "Deposit", qbo_id, {"Line": [
        {**deposit["Line"][0], "Amount": 1}, *deposit["Line"][1:]]})
    [line] = rows(pipeline, "SELECT id, amount FROM deposit_slip_lines "
                            "WHERE deposit_slip_id = :s AND line_no = 1", s=int(key))
    touch(pipeline, "UPDATE deposit_slips SET updated_at = :now WHERE id = :s", s=int(key))
    touch(pipeline, "UPDATE deposit_slip_lines SET amount = :a WHERE id = :i",
          a=str(Decimal(str(line["amount"])) + 5), i=line["id"])

    result = pipeline.run()

    assert result.success and synced_counts(result)["deposit"]["updated"] == 1
    pushed = qbo_record(pipeline, "Deposit", qbo_id)
    assert Decimal(str(pushed["Line"][0]["Amount"])) == Decimal(str(line["amount"])) + 5


def test_hard_costs_become_billable_purchases_paid_from_the_operating_account(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "3. Hard Costs": each cost is a QBO Purchase, a check from the operating
    bank account it was paid from to its vendor, one expense line billable to the matter's
    (project's) customer, booked to Uncategorized Expense when the app names no account. A
    negative amount and a cost paid from the trust account are held back with the fix."""
    assert pipeline.run().success

    links = {spec: links_of(pipeline, spec) for spec in ("bank_account", "vendor", "project")}
    costs = {str(row["id"]): row for row in rows(pipeline, "SELECT * FROM hard_costs")}
    bad = invalid_ids(pipeline, "hard_costs")
    linked = links_of(pipeline, "hard_cost")
    assert sorted(linked, key=int) == [key for key in sorted(costs, key=int) if key not in bad]
    for key, qbo_id in linked.items():
        cost, purchase = costs[key], qbo_record(pipeline, "Purchase", qbo_id)
        [line] = purchase["Line"]
        detail = line["AccountBasedExpenseLineDetail"]
        assert (purchase["PaymentType"], purchase["DocNumber"]) == ("Check", cost["check_number"])
        assert purchase["AccountRef"]["value"] == links["bank_account"][
            str(cost["bank_account_id"])]
        assert (purchase["EntityRef"]["value"], purchase["EntityRef"]["type"]) == (
            links["vendor"][str(cost["vendor_id"])], "Vendor")
        assert Decimal(str(purchase["TotalAmt"])) == Decimal(str(cost["amount"]))
        assert detail["CustomerRef"]["value"] == links["project"][str(cost["project_id"])]
        assert detail["BillableStatus"] == "Billable"
        assert detail["AccountRef"]["name"] == "Uncategorized Expense"
    negative, from_trust = bad
    [reason] = held_reasons(pipeline, "hard_cost", negative)
    assert reason.startswith(f"hard cost {negative}: Line[0].Amount -") and reason.endswith(
        "is below the minimum of 0 - correct the hard cost's amount (a refund is not a cost)")
    assert held_reasons(pipeline, "hard_cost", from_trust) == [
        f"hard cost {from_trust}: PaymentType is required - pay the hard cost from an operating "
        "bank account (a trust account holds clients' money)"]
    # One Purchase a hard cost; the others in QBO are the expenses' (expense.yaml).
    purchases = {record["Id"] for record in pipeline.qbo_records()["Purchase"]}
    assert purchases - set(links_of(pipeline, "expense").values()) == set(linked.values())


def test_a_hard_cost_corrected_in_the_app_updates_its_purchase(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "3. Hard Costs" (one-way): a cost whose amount and expense account the app
    corrects is updated in QBO, not made again; then a run writes nothing."""
    assert pipeline.run().success
    key, qbo_id = next(iter(links_of(pipeline, "hard_cost").items()))
    touch(pipeline, "UPDATE hard_costs SET amount = 12.34, expense_account = 'Travel', "
                    "updated_at = :now WHERE id = :k", k=int(key))

    result = pipeline.run()

    assert result.success and synced_counts(result)["hard_cost"]["updated"] == 1
    purchase = qbo_record(pipeline, "Purchase", qbo_id)
    assert purchase["TotalAmt"] == 12.34
    assert purchase["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["name"] == "Travel"
    again = synced_counts(pipeline.run())["hard_cost"]
    assert (again["created"], again["updated"]) == (0, 0)
