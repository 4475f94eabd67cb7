"""Payments recorded in the app pushed to QBO and applied to their invoices (seed 004,
"Payments"; the "PAYMENT EXPORT" and "Default Accounts Receivables Account for Payments"
settings). Real HTTP to the emulator, real SQLite source and state DBs, Dagster's
`materialize`; each test cites the seed line it follows."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_pull_and_two_way import rows, writes_of
from qbo_pipeline_tests.defs.test_services import account_id, held_reasons
from qbo_pipeline_tests.defs.test_sync import synced_counts

CENT = Decimal("0.01")


def qbo_record(pipeline: PipelineUnderTest, entity: str, qbo_id: str) -> dict[str, Any]:
    [record] = [r for r in pipeline.qbo_records()[entity] if r["Id"] == qbo_id]
    return record


def qbo_invoice(pipeline: PipelineUnderTest, invoice: str) -> dict[str, Any]:
    return qbo_record(pipeline, "Invoice", links_of(pipeline, "invoice")[invoice])


def unpaid_synced_invoices(pipeline: PipelineUnderTest) -> list[str]:
    """Invoices in QBO that no payment of the app applies to yet, oldest first."""
    paid = {str(row["invoice_id"]) for row in rows(pipeline, "SELECT invoice_id FROM payments")}
    linked = links_of(pipeline, "invoice")
    return sorted((key for key in linked if key not in paid
                   and Decimal(str(qbo_invoice(pipeline, key)["Balance"])) > 0), key=int)


def record_payment(pipeline: PipelineUnderTest, invoice: str, amount: Decimal,
                   reference: str = "CHK-1001") -> str:
    """The app records a payment of `invoice` (dated its issue date); returns its key."""
    [found] = rows(pipeline, "SELECT issue_date FROM invoices WHERE id = :i", i=int(invoice))
    [top] = rows(pipeline, "SELECT MAX(id) AS id FROM payments")
    key = int(top["id"] or 0) + 1
    touch(pipeline, "INSERT INTO payments (id, invoice_id, amount, payment_date, method, "
                    "reference, created_at, updated_at) VALUES (:id, :i, :a, :d, 'Check', :r, "
                    ":now, :now)", id=key, i=int(invoice), a=str(amount),
          d=date.fromisoformat(str(found["issue_date"])[:10]), r=reference)
    return str(key)


def pushed_payment(pipeline: PipelineUnderTest, payment: str) -> dict[str, Any]:
    return qbo_record(pipeline, "Payment", links_of(pipeline, "payment")[payment])


def balance(pipeline: PipelineUnderTest, invoice: str) -> Decimal:
    return Decimal(str(qbo_invoice(pipeline, invoice)["Balance"]))


def test_payments_are_applied_to_their_invoices_and_lower_the_balance(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Payments created in Contractors Cloud will export to QuickBooks Online". A
    partial payment leaves the rest of its invoice open, a full one pays it (Balance 0); each
    is one QBO Payment on the invoice's customer, applied to it through LinkedTxn. The next run
    brings the two balances back into the app (seed 001: "if QB marks an invoice fully paid,
    Kontrol automatically updates the invoice to PAID"), and then a run writes nothing."""
    assert pipeline.run().success
    partly, fully = unpaid_synced_invoices(pipeline)[:2]
    open_before = balance(pipeline, partly)
    half = (open_before / 2).quantize(CENT, ROUND_HALF_UP)
    first = record_payment(pipeline, partly, half, "CHK-1")
    second = record_payment(pipeline, fully, balance(pipeline, fully), "CHK-2")

    result = pipeline.run()

    assert result.success
    assert synced_counts(result)["payment"]["created"] == 2
    assert balance(pipeline, partly) == open_before - half
    assert balance(pipeline, fully) == 0
    for payment, invoice, reference in ((first, partly, "CHK-1"), (second, fully, "CHK-2")):
        qbo = pushed_payment(pipeline, payment)
        target = qbo_invoice(pipeline, invoice)
        assert qbo["CustomerRef"]["value"] == target["CustomerRef"]["value"]
        assert qbo["Line"][0]["LinkedTxn"] == [{"TxnId": target["Id"], "TxnType": "Invoice"}]
        assert qbo["PaymentRefNum"] == reference and qbo["UnappliedAmt"] == 0
        assert {"TxnId": qbo["Id"], "TxnType": "Payment"} in target["LinkedTxn"]
    assert writes_of(pipeline.run()) == (0, 2)
    [paid] = rows(pipeline, "SELECT status, balance FROM invoices WHERE id = :i", i=int(fully))
    [open_] = rows(pipeline, "SELECT balance FROM invoices WHERE id = :i", i=int(partly))
    assert paid["status"] == "paid" and Decimal(str(paid["balance"])) == 0
    assert Decimal(str(open_["balance"])) == open_before - half
    assert writes_of(pipeline.run()) == (0, 0)
    assert len(pipeline.qbo_records()["Payment"]) == len(links_of(pipeline, "payment"))


def test_payments_go_to_undeposited_funds_unless_the_settings_name_an_account(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004, "PAYMENT EXPORT": "all payments will be brought over as un-deposited
    payments"; "Default ... Account for Payments": "Payments will automatically be categorized
    in the Undeposited Funds section of your QuickBooks unless you enter a default ... account
    here". Once the setting names the bank account, the next payment goes there."""
    assert pipeline.run().success
    first_invoice, second_invoice = unpaid_synced_invoices(pipeline)[:2]
    before = record_payment(pipeline, first_invoice, Decimal(10))
    assert pipeline.run().success
    change_setting(pipeline.sessions, SPECS, pipeline.realm.realm_id,
                   "payment_deposit_account", "Checking")
    after = record_payment(pipeline, second_invoice, Decimal(10))
    assert pipeline.run().success

    assert pushed_payment(pipeline, before)["DepositToAccountRef"]["value"] == account_id(
        pipeline, "Undeposited Funds")
    assert pushed_payment(pipeline, after)["DepositToAccountRef"]["value"] == account_id(
        pipeline, "Checking")


def test_a_payment_of_an_invoice_not_in_qbo_waits_for_it(pipeline: PipelineUnderTest) -> None:
    """Seed 004, "Sync an Entire Job": the job's "Invoices, Payments" go together, the invoice
    first. A payment of an invoice held back (a line with a negative quantity) waits, saying
    which invoice it waits for; once the invoice is fixed and synced, the payment follows."""
    assert pipeline.run().success
    [bad] = [key for key in (str(r["id"]) for r in rows(pipeline, "SELECT id FROM invoices "
                                                                  "WHERE deleted_at IS NULL"))
             if key not in links_of(pipeline, "invoice") and held_reasons(pipeline, "invoice",
                                                                          key)]
    payment = record_payment(pipeline, bad, Decimal(5))
    assert pipeline.run().success
    assert payment not in links_of(pipeline, "payment")
    assert any(f"payment {payment}: Line[0].LinkedTxn[0].TxnId refers to invoice {bad}, which "
               f"is not in QuickBooks yet - sync invoice {bad} first" in reason
               for reason in held_reasons(pipeline, "payment", payment))

    touch(pipeline, "UPDATE invoice_lines SET quantity = 1 WHERE invoice_id = :i AND "
                    "quantity < 0", i=int(bad))
    touch(pipeline, "UPDATE invoices SET updated_at = :now WHERE id = :i", i=int(bad))
    assert pipeline.run().success
    assert bad in links_of(pipeline, "invoice")
    assert pushed_payment(pipeline, payment)["Line"][0]["LinkedTxn"][0]["TxnId"] == \
        links_of(pipeline, "invoice")[bad]
    assert not held_reasons(pipeline, "payment", payment)


def test_an_overpayment_is_refused_by_qbo_and_held_back_with_the_fix(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004, "CREDIT MEMO EXPORT": "This does not include refunds or overpayments. Those
    will have to be entered manually into your QuickBooks." QBO refuses a payment applying more
    than the invoice's open balance (6000); the payment is held back with QBO's words, naming
    the record and what to do, the invoice keeps its balance, and the other payments sync."""
    assert pipeline.run().success
    over_invoice, fine_invoice = unpaid_synced_invoices(pipeline)[:2]
    open_before = balance(pipeline, over_invoice)
    over = record_payment(pipeline, over_invoice, open_before + 50)
    fine = record_payment(pipeline, fine_invoice, Decimal(5))

    result = pipeline.run()

    assert result.success
    assert over not in links_of(pipeline, "payment") and fine in links_of(pipeline, "payment")
    assert balance(pipeline, over_invoice) == open_before
    [reason] = held_reasons(pipeline, "payment", over)
    assert reason.startswith(f"payment {over}: ")
    assert "The payments you entered add up to more than the open balance" in reason
    assert "correct the record" in reason


def test_a_payment_deleted_in_the_app_is_voided_and_the_invoice_owes_again(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004 ("no deletes in QuickBooks") and seed 001 ("Never delete a synced invoice in
    QuickBooks. Void it instead."): a payment deleted in the app is voided in QBO, not deleted;
    the QBO record stays, at zero, and its invoice's balance is back."""
    assert pipeline.run().success
    [invoice] = unpaid_synced_invoices(pipeline)[:1]
    open_before = balance(pipeline, invoice)
    payment = record_payment(pipeline, invoice, Decimal(10))
    assert pipeline.run().success
    assert balance(pipeline, invoice) == open_before - 10

    touch(pipeline, "UPDATE payments SET deleted_at = :now, updated_at = :now WHERE id = :p",
          p=int(payment))
    assert pipeline.run().success

    voided = pushed_payment(pipeline, payment)
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"] == "Voided"
    assert balance(pipeline, invoice) == open_before


def test_a_corrected_payment_amount_moves_the_invoice_balance(
        pipeline: PipelineUnderTest) -> None:
    """Seed 001: "All sync operations are safe to run more than once — if the record already
    exists in QB, it updates in place." A payment whose amount is corrected in the app updates
    the same QBO Payment (no second one), and the invoice's balance follows."""
    assert pipeline.run().success
    [invoice] = unpaid_synced_invoices(pipeline)[:1]
    open_before = balance(pipeline, invoice)
    payment = record_payment(pipeline, invoice, Decimal(10))
    assert pipeline.run().success
    qbo_id = links_of(pipeline, "payment")[payment]

    touch(pipeline, "UPDATE payments SET amount = '25.00', updated_at = :now WHERE id = :p",
          p=int(payment))
    result = pipeline.run()

    assert result.success and synced_counts(result)["payment"]["updated"] == 1
    assert links_of(pipeline, "payment")[payment] == qbo_id
    corrected = pushed_payment(pipeline, payment)
    assert corrected["TotalAmt"] == 25 and corrected["Line"][0]["Amount"] == 25
    assert balance(pipeline, invoice) == open_before - 25
