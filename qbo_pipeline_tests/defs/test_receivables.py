"""What clients owe, both ways: write-offs sent as credit memos applied to their invoices (seed
002 "Change/Write-Offs"; seed 004 "CREDIT MEMO EXPORT: Here you can enable the syncing of Credit
Memos"). Real HTTP to the emulator, real SQLite source and state DBs, Dagster's `materialize`;
each test cites the seed line it follows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_payments import balance, qbo_invoice, qbo_record
from qbo_pipeline_tests.defs.test_pull_and_two_way import rows, writes_of
from qbo_pipeline_tests.defs.test_services import held_reasons
from qbo_pipeline_tests.defs.test_sync import synced_counts

CREDIT_MEMO_EXPORT = "credit_memo_export"


def export_credit_memos(pipeline: PipelineUnderTest) -> None:
    """Seed 004: the company enables "CREDIT MEMO EXPORT"."""
    change_setting(pipeline.sessions, SPECS, pipeline.realm.realm_id, CREDIT_MEMO_EXPORT,
                   "true")


def open_synced_invoices(pipeline: PipelineUnderTest) -> list[str]:
    """Invoices in QBO that still owe something and have no write-off yet, oldest first."""
    written_off = {str(row["invoice_id"])
                   for row in rows(pipeline, "SELECT invoice_id FROM write_offs")}
    return sorted((key for key in links_of(pipeline, "invoice")
                   if key not in written_off and balance(pipeline, key) > 0), key=int)


def record_write_off(pipeline: PipelineUnderTest, invoice: str, amount: Decimal) -> str:
    """The app writes off `amount` of `invoice` (dated its issue date); returns its key."""
    [found] = rows(pipeline, "SELECT issue_date FROM invoices WHERE id = :i", i=int(invoice))
    [top] = rows(pipeline, "SELECT MAX(id) AS id FROM write_offs")
    key = int(top["id"] or 0) + 1
    touch(pipeline, "INSERT INTO write_offs (id, invoice_id, amount, write_off_date, reason, "
                    "created_at, updated_at) VALUES (:id, :i, :a, :d, 'Courtesy discount', "
                    ":now, :now)", id=key, i=int(invoice), a=str(amount),
          d=date.fromisoformat(str(found["issue_date"])[:10]))
    return str(key)


def credit_memo_of(pipeline: PipelineUnderTest, write_off: str) -> dict[str, Any]:
    return qbo_record(pipeline, "CreditMemo", links_of(pipeline, "credit_memo")[write_off])


def applying_payment(pipeline: PipelineUnderTest, write_off: str) -> dict[str, Any]:
    return qbo_record(pipeline, "Payment", links_of(pipeline, "credit_memo_applied")[write_off])


def test_credit_memos_are_off_until_the_company_enables_them(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "CREDIT MEMO EXPORT: Here you can enable the syncing of Credit Memos": off by
    default, so the demo's write-offs send nothing and each stage says which setting to turn
    on; once it is on, the next run sends them."""
    result = pipeline.run()
    assert result.success
    assert "CreditMemo" not in pipeline.qbo_records()
    notes = [value.value for event in result.get_asset_materialization_events()
             if event.step_materialization_data.materialization.asset_key.path[0] == "credit_memo"
             for name, value in event.step_materialization_data.materialization.metadata.items()
             if name == "switched_off"]
    assert notes and all(f"set {CREDIT_MEMO_EXPORT} true" in str(note) for note in notes)

    write_off = record_write_off(pipeline, open_synced_invoices(pipeline)[0], Decimal(3))
    assert pipeline.run().success
    assert "CreditMemo" not in pipeline.qbo_records()

    export_credit_memos(pipeline)
    assert pipeline.run().success
    assert write_off in links_of(pipeline, "credit_memo")
    assert write_off in links_of(pipeline, "credit_memo_applied")


def test_a_write_off_lowers_the_balance_and_leaves_the_invoice_untouched(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "Change/Write-Offs", and the issue: "a write-off reduces what the client owes
    in QBO without deleting or editing the original invoice". The write-off becomes a credit
    memo for the invoice's customer, applied to the invoice by a $0 payment: the invoice keeps
    its SyncToken's lines, total and DocNumber and only its Balance falls; the next run brings
    the new balance back, and then a run writes nothing either way."""
    assert pipeline.run().success
    export_credit_memos(pipeline)
    assert pipeline.run().success
    invoice = open_synced_invoices(pipeline)[0]
    before = qbo_invoice(pipeline, invoice)
    write_off = record_write_off(pipeline, invoice, Decimal("12.50"))

    result = pipeline.run()

    assert result.success, held_reasons(pipeline, "credit_memo", write_off)
    counts = synced_counts(result)
    assert counts["credit_memo"]["created"] >= 1 and counts["credit_memo_applied"]["created"] >= 1
    after = qbo_invoice(pipeline, invoice)
    assert Decimal(str(after["Balance"])) == Decimal(str(before["Balance"])) - Decimal("12.50")
    for field in ("Line", "TotalAmt", "DocNumber", "CustomerRef", "TxnDate"):
        assert after[field] == before[field], field
    memo = credit_memo_of(pipeline, write_off)
    payment = applying_payment(pipeline, write_off)
    assert memo["CustomerRef"]["value"] == before["CustomerRef"]["value"]
    assert memo["TotalAmt"] == 12.5 and memo["RemainingCredit"] == 0
    assert memo["DocNumber"] == f"WO-{write_off}"
    assert payment["TotalAmt"] == 0
    assert [line["LinkedTxn"] for line in payment["Line"]] == [
        [{"TxnId": after["Id"], "TxnType": "Invoice"}],
        [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]]
    assert {"TxnId": payment["Id"], "TxnType": "Payment"} in after["LinkedTxn"]

    assert writes_of(pipeline.run())[0] == 0
    [row] = rows(pipeline, "SELECT balance FROM invoices WHERE id = :i", i=int(invoice))
    assert Decimal(str(row["balance"])) == Decimal(str(after["Balance"]))
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_write_off_above_what_the_invoice_owes_is_held_back(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002, "Change/Write-Offs": a write-off of more than the invoice still owes would
    make a credit QBO cannot apply; it is held back with the fix (as the demo's own bad
    write-off is), no credit memo is made for it, and the other write-offs go on."""
    assert pipeline.run().success
    export_credit_memos(pipeline)
    assert pipeline.run().success
    first, second = open_synced_invoices(pipeline)[:2]
    too_much = record_write_off(pipeline, first, balance(pipeline, first) + 1)
    fine = record_write_off(pipeline, second, Decimal(1))

    assert pipeline.run().success

    [reason] = held_reasons(pipeline, "credit_memo", too_much)
    assert reason.startswith(f"write-off {too_much}: Line[0].Amount is required - the "
                             "write-off is more than its invoice still owes")
    assert too_much not in links_of(pipeline, "credit_memo")
    assert too_much not in links_of(pipeline, "credit_memo_applied")
    assert fine in links_of(pipeline, "credit_memo_applied")
    demo_bad = [row.id for row in pipeline.demo.invalid if row.table == "write_offs"]
    assert all(held_reasons(pipeline, "credit_memo", str(key)) for key in demo_bad)


def test_a_deleted_write_off_gives_the_invoice_its_balance_back(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: no deletes in QuickBooks: a write-off deleted in the app voids the payment
    that applied its credit, so the invoice owes again; the credit memo stays in QBO."""
    assert pipeline.run().success
    export_credit_memos(pipeline)
    assert pipeline.run().success
    invoice = open_synced_invoices(pipeline)[0]
    owed = balance(pipeline, invoice)
    write_off = record_write_off(pipeline, invoice, Decimal(5))
    assert pipeline.run().success
    assert balance(pipeline, invoice) == owed - 5

    touch(pipeline, "UPDATE write_offs SET deleted_at = :now, updated_at = :now WHERE id = :k",
          k=int(write_off))
    result = pipeline.run()

    assert result.success
    assert balance(pipeline, invoice) == owed
    assert applying_payment(pipeline, write_off)["PrivateNote"] == "Voided"
    assert credit_memo_of(pipeline, write_off)["RemainingCredit"] == 5


def pay_in_qbo(pipeline: PipelineUnderTest, invoice: str, amount: Decimal) -> dict[str, Any]:
    """A bookkeeper receives a payment in QBO against the invoice (through QBO's API)."""
    qbo = qbo_invoice(pipeline, invoice)
    response = pipeline.realm.post("payment", {
        "CustomerRef": {"value": qbo["CustomerRef"]["value"]}, "TotalAmt": float(amount),
        "Line": [{"Amount": float(amount),
                  "LinkedTxn": [{"TxnId": qbo["Id"], "TxnType": "Invoice"}]}]})
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()["Payment"]
    return payment


def test_an_invoice_paid_in_qbo_becomes_paid_in_the_app(pipeline: PipelineUnderTest) -> None:
    """Seed 001: "if QB marks an invoice fully paid, Kontrol automatically updates the invoice
    to PAID ... applied automatically without creating a conflict". A partial payment received
    in QBO brings only the lower balance back; the one that pays the rest makes the invoice
    paid. Nothing is pushed back for them, and the payments made in QBO stay QBO's (payments
    are not imported into the app yet)."""
    assert pipeline.run().success
    sent = {str(row["id"]) for row in rows(pipeline, "SELECT id FROM invoices "
                                                     "WHERE status = 'sent'")}
    invoice = next(key for key in open_synced_invoices(pipeline) if key in sent)
    owed = balance(pipeline, invoice)
    [before] = rows(pipeline, "SELECT COUNT(*) AS n FROM payments")
    part = (owed / 4).quantize(Decimal("0.01"))
    pay_in_qbo(pipeline, invoice, part)

    assert pipeline.run().success

    [partly] = rows(pipeline, "SELECT status, balance FROM invoices WHERE id = :i",
                    i=int(invoice))
    assert Decimal(str(partly["balance"])) == owed - part and partly["status"] == "sent"
    pay_in_qbo(pipeline, invoice, owed - part)

    result = pipeline.run()

    assert result.success
    [paid] = rows(pipeline, "SELECT status, balance FROM invoices WHERE id = :i", i=int(invoice))
    assert paid["status"] == "paid" and Decimal(str(paid["balance"])) == 0
    assert writes_of(result)[0] == 0
    assert synced_counts(result, "synced")["invoice"]["conflicts"] == 0
    assert rows(pipeline, "SELECT COUNT(*) AS n FROM payments") == [before]
    assert writes_of(pipeline.run()) == (0, 0)
