"""A list field's items named by position (`Line[0].LinkedTxn[0].TxnId`) and refs that give a
bare Id (`id_only`): what payment.yaml needs to apply a payment to its invoice (seed 004:
"Payments created in Contractors Cloud will export to QuickBooks Online")."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline.specs import load_specs
from qbo_pipeline.sync.diff import FieldDiff, FieldOutcome
from qbo_pipeline.sync.mapping import map_row
from qbo_pipeline.sync.plan import sparse_update
from qbo_pipeline.sync.values import drop_path, get_path, set_path
from qbo_pipeline_tests.specs.test_loader import CLIENT, INVOICE, problems_of, write_specs

PAYMENT = """
name: payment
qbo_entity: Payment
source: {table: payments, primary_key: id, updated_at: updated_at, business_date: paid_on}
fields:
  CustomerRef: {ref: {spec: client, column: client_id}}
  TotalAmt: {column: amount, type: number}
  Line[0].Amount: {column: amount, type: number}
  Line[0].LinkedTxn[0].TxnId: {ref: {spec: invoice, column: invoice_id, id_only: true}}
  Line[0].LinkedTxn[0].TxnType: {constant: Invoice}
on_source_delete: void
"""


def payment_problems(tmp_path: Path, old: str, new: str) -> list[str]:
    assert old in PAYMENT
    return problems_of(write_specs(tmp_path, client=CLIENT, invoice=INVOICE,
                                   payment=PAYMENT.replace(old, new)))


def test_a_payment_applied_by_position_maps_to_qbo_shape(tmp_path: Path) -> None:
    specs = load_specs(write_specs(tmp_path, client=CLIENT, invoice=INVOICE, payment=PAYMENT))
    links = {("client", "7"): "58", ("invoice", "3"): "130"}

    mapped = map_row(specs["payment"], {"id": 1, "client_id": 7, "invoice_id": 3, "amount": 40},
                     resolve_ref=lambda spec, key: links.get((spec, key)))

    assert mapped.ok, mapped.issues
    assert mapped.payload == {
        "CustomerRef": {"value": "58"}, "TotalAmt": 40,
        "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
    }
    # The invoice is the payment's upstream: its sync runs first.
    assert specs.upstream_of("payment") == ["client", "invoice"]


def test_a_payment_of_an_invoice_not_in_qbo_names_the_invoice(tmp_path: Path) -> None:
    specs = load_specs(write_specs(tmp_path, client=CLIENT, invoice=INVOICE, payment=PAYMENT))

    mapped = map_row(specs["payment"], {"id": 1, "client_id": 7, "invoice_id": 3, "amount": 40},
                     resolve_ref=lambda spec, key: "58" if spec == "client" else None)

    [issue] = mapped.issues
    assert issue.field_path == "Line[0].LinkedTxn[0].TxnId"
    assert issue.reason == ("payment 1: Line[0].LinkedTxn[0].TxnId refers to invoice 3, which "
                            "is not in QuickBooks yet - sync invoice 3 first (check its "
                            "quarantined problems)")


@pytest.mark.parametrize(("old", "new", "expected"), [
    # A position on a field that is not a list.
    ("TotalAmt: {column", "TotalAmt[0]: {column",
     "fields.TotalAmt[0]: TotalAmt[0]: only a list field takes a position [n], and TotalAmt "
     "is not a list in QuickBooks"),
    # A list reached into without a position.
    ("Line[0].LinkedTxn[0].TxnType", "Line[0].LinkedTxn.TxnType",
     "fields.Line[0].LinkedTxn.TxnType: Line[0].LinkedTxn is a list in QuickBooks: name one of "
     "its items by position (Line[0].LinkedTxn[0].<field>)"),
    # A gap: QBO would get an empty line.
    ("Line[0].LinkedTxn[0].TxnType", "Line[0].LinkedTxn[2].TxnType",
     "fields.Line[0].LinkedTxn: items are named from position 0 with no gap, and "
     "Line[0].LinkedTxn[1] has no field - renumber the positions"),
    # A misspelt field inside an item.
    ("Line[0].Amount", "Line[0].Amont", "'Amont' is not a field of Line[0]"),
    # A plain field given a reference, and a reference given a bare Id.
    ("invoice_id, id_only: true}", "invoice_id}",
     "fields.Line[0].LinkedTxn[0].TxnId: ref gives a QuickBooks reference"),
    ("client_id}}", "client_id, id_only: true}}",
     "fields.CustomerRef: ref with id_only gives a bare QuickBooks Id, and CustomerRef is not "
     "a plain field - drop id_only"),
])
def test_position_and_id_only_mistakes_name_the_field(tmp_path: Path, old: str, new: str,
                                                      expected: str) -> None:
    problems = payment_problems(tmp_path, old, new)
    assert any(problem.startswith(f"{tmp_path}/payment.yaml: ") and expected in problem
               for problem in problems), problems


def test_lines_by_position_and_a_lines_block_do_not_mix(tmp_path: Path) -> None:
    """The `lines` block writes every Line, so a line named by position would be lost."""
    invoice = INVOICE.replace("  DocNumber: {column: number}\n", """\
  DocNumber: {column: number}
  Line[0].Description: {column: notes}
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    Amount: {column: amount}
    DetailType: {constant: SalesItemLineDetail}
""")
    problems = problems_of(write_specs(tmp_path, client=CLIENT, invoice=invoice))
    assert f"{tmp_path}/invoice.yaml: fields.Line[0].Description: the spec's `lines` block " \
           "writes every Line: map this under lines.fields, or drop `lines` and name each line " \
           "by position" in problems


def test_paths_with_positions_read_and_build_lists() -> None:
    record: dict[str, object] = {}
    set_path(record, "Line[0].LinkedTxn[0].TxnId", "9")
    set_path(record, "Line[0].Amount", 5)
    set_path(record, "Line[1].Amount", 6)
    assert record == {"Line": [{"LinkedTxn": [{"TxnId": "9"}], "Amount": 5}, {"Amount": 6}]}
    assert get_path(record, "Line[0].LinkedTxn[0].TxnId") == "9"
    assert get_path(record, "Line[2].Amount") is None
    assert get_path(record, "Line[0].Amount.value") is None
    assert get_path({"Line": {"Amount": 1}}, "Line[0].Amount") is None


def test_a_changed_line_amount_is_sent_inside_qbos_whole_line_list() -> None:
    """QBO replaces a list in a sparse update whole: the changed amount goes inside QBO's
    current lines, so that the line keeps its LinkedTxn (the payment stays applied)."""
    qbo = {"Id": "40", "SyncToken": "2", "TotalAmt": 10, "Line": [
        {"Id": "1", "LineNum": 1, "Amount": 10,
         "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}]}
    source = {"TotalAmt": 25, "Line": [{"Amount": 25,
                                        "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}]}
    updates = [FieldDiff("TotalAmt", 25, 10, 10, FieldOutcome.UPDATE),
               FieldDiff("Line[0].Amount", 25, 10, 10, FieldOutcome.UPDATE)]

    payload = sparse_update(source, qbo, updates)

    assert payload == {"Id": "40", "SyncToken": "2", "sparse": True, "TotalAmt": 25, "Line": [
        {"Id": "1", "LineNum": 1, "Amount": 25,
         "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}]}
    assert qbo["Line"][0]["Amount"] == 10  # QBO's copy is left as it was


def test_a_value_inside_a_list_item_can_be_dropped() -> None:
    record = {"Balance": 3, "Line": [{"Amount": 5, "Description": "x"}, {"Amount": 6}]}
    drop_path(record, "Line[0].Description")
    drop_path(record, "Line[5].Amount")  # not there: nothing happens
    drop_path(record, "Balance")
    assert record == {"Line": [{"Amount": 5}, {"Amount": 6}]}

