"""Lines combined per group (seed 002, "Invoice Item Options: Aggregate Time/Expense Items":
one line per service with the summed hours and amount), as plain data, and the load-time
checks of `lines.group`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from qbo_pipeline.specs import load_specs
from qbo_pipeline.specs.company_settings import COMPANY_SETTINGS_FILE
from qbo_pipeline.specs.models import LineGroup
from qbo_pipeline.sync.lines import grouped_lines
from qbo_pipeline.sync.mapping import map_row
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline_tests.specs.test_loader import problems_of, write_specs

BY_SERVICE = LineGroup(by=["service_name"], sum=["quantity", "amount"])
SPECS = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")


def line(service: str, quantity: object, amount: object, price: object = "50",
         description: str = "work") -> dict[str, object]:
    return {"service_name": service, "quantity": quantity, "amount": amount,
            "unit_price": price, "description": description}


def test_lines_of_one_service_become_one_line_with_the_sums() -> None:
    """One line per service, in the order each first appears; quantities and amounts
    summed; a rate or description the lines share is kept, differing ones are left out."""
    combined = grouped_lines(BY_SERVICE, [
        line("Design", "2", "100"), line("Drafting", "1", "95", "95", "plans"),
        line("Design ", "3", "150", "50", "other")])
    assert combined == [
        {"service_name": "Design", "quantity": Decimal(5), "amount": Decimal(250),
         "unit_price": "50", "description": None},
        line("Drafting", Decimal(1), Decimal(95), "95", "plans")]


def test_a_value_that_is_no_number_is_kept_for_the_rules_to_name() -> None:
    """Bad input is never summed into a wrong total: the text stays, and the invoice's line
    rules quarantine it with the reason."""
    [combined] = grouped_lines(BY_SERVICE, [line("Design", "2", "100"),
                                            line("Design", "two", "100")])
    assert combined["quantity"] == "two" and combined["amount"] == Decimal(200)
    assert grouped_lines(BY_SERVICE, [line("Design", None, "1"), line("Design", "", "2")])[0][
        "quantity"] is None


def test_the_shipped_invoice_groups_only_for_companies_that_aggregate() -> None:
    """Seed 002: "Use Individual Time/Expense Items" (the default) or "Aggregate Time/Expense
    Items"; each source line is still checked on its own (a negative quantity is caught even
    when another line of its service would hide it in the sum)."""
    invoice = {"id": 1, "updated_at": "2026-01-02T00:00:00", "issue_date": "2026-01-02",
               "project_id": 4, "number": "A-1", "tax_amount": 0, "tax_rate": 0}
    children = [{**line("Design", "-1", "-50"), "line_no": 1, "invoice_id": 1},
                {**line("Design", "3", "150"), "line_no": 2, "invoice_id": 1}]
    itemized = as_configured(SPECS, "invoice")
    aggregated = as_configured(SPECS, "invoice", {
        "invoice_item_options": "Aggregate Time/Expense Items"})
    assert itemized.lines is not None and itemized.lines.group is None
    mapped = map_row(aggregated, invoice, children, resolve_lookup=lambda *_: "7")
    [sent] = mapped.payload["Line"]
    assert (sent["Amount"], sent["SalesItemLineDetail"]["Qty"]) == (100, 2)
    assert [child["SalesItemLineDetail"]["Qty"] for child in mapped.child_lines] == [-1, 3]


GROUPED = """
name: invoice
qbo_entity: Invoice
source: {table: invoices, primary_key: id, updated_at: updated_at, business_date: issue_date}
fields:
  DocNumber: {column: number}
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  group: GROUP
  fields:
    Amount: {column: amount}
on_source_delete: void
"""
SETTINGS = ("items: {description: d, kind: choice, choices: [One, Many], default: One}\n"
            "income: {description: d, kind: text, default: Services}\n")


@pytest.mark.parametrize(("group", "problem"), [
    ("{by: [service_name], sum: [amount], when: {setting: items, equals: Many}}", None),
    ("{by: [service_name], when: {setting: income, equals: x}}",
     "lines.group.when.setting: 'income' is not a choice or boolean setting"),
    ("{by: [service_name], when: {setting: items, equals: Few}}",
     "lines.group.when.equals: 'Few' is not a value of items (its values: 'One', 'Many')"),
    ("{by: [service_name], sum: [service_name]}", "is also a column of by"),
    ("{by: [], sum: [amount]}", "by: name the column(s)"),
])
def test_a_line_group_is_checked_at_load_time(tmp_path: Path, group: str,
                                              problem: str | None) -> None:
    write_specs(tmp_path, invoice=GROUPED.replace("GROUP", group))
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(SETTINGS, encoding="utf-8")
    if problem is None:
        assert load_specs(tmp_path)["invoice"].lines is not None
        return
    problems = problems_of(tmp_path)
    assert any("invoice.yaml" in found and problem in found for found in problems), problems
