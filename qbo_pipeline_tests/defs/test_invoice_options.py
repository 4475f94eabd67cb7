"""Invoice options of seeds 002 and 004, pushed to QBO through Dagster's `materialize` over
real HTTP to the emulator, with real SQLite source and state DBs.

- Seed 002, "Invoice Item Options: Aggregate Time/Expense Items / Use Individual Time/Expense
  Items when Syncing Invoices": one QBO line per item, or one per service with the summed
  hours and amount (company setting `invoice_item_options`).
- Seed 002, "Select/Deselect to Sync All Unpaid Invoices": unpaid invoices pushed whatever
  the sync start date (`sync_all_unpaid_invoices`).
- Seed 004, "AUTO MARK INVOICES FOR PRINTING: This setting allows you to automatically mark
  invoices for printing within your QuickBooks" (`auto_mark_invoices_for_printing`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline.state import upsert_realm
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_pull_and_two_way import rows
from qbo_pipeline_tests.defs.test_sync import synced_counts

AGGREGATE = "Aggregate Time/Expense Items"
# Three time items of two services: Design twice (at two rates), Drafting once.
ITEMS = (("Design", "Drawings", "2.00", "125.00"), ("Drafting", "Plans", "1.50", "95.00"),
         ("Design", "Revisions", "3.00", "110.00"))


def set_company(pipeline: PipelineUnderTest, key: str, value: str) -> None:
    change_setting(pipeline.sessions, SPECS, pipeline.realm.realm_id, key, value)


def add_invoice(pipeline: PipelineUnderTest, number: str, issued: date | None = None,
                status: str = "sent") -> str:
    """An invoice of three items, on the project of the demo's first invoice, issued on
    `issued` (default today); its key."""
    [first] = rows(pipeline, "SELECT project_id FROM invoices ORDER BY id LIMIT 1")
    [top] = rows(pipeline, "SELECT MAX(id) AS id FROM invoices")
    [line_top] = rows(pipeline, "SELECT MAX(id) AS id FROM invoice_lines")
    key, line_id = int(top["id"]) + 1, int(line_top["id"])
    touch(pipeline, "INSERT INTO invoices (id, project_id, number, issue_date, due_date, "
                    "tax_rate, tax_amount, status, created_at, updated_at) VALUES (:id, :p, "
                    ":n, :d, :d, 0, 0, :s, :now, :now)",
          id=key, p=first["project_id"], n=number, d=issued or datetime.now(UTC).date(),
          s=status)
    for line_no, (service, description, quantity, price) in enumerate(ITEMS, start=1):
        amount = Decimal(quantity) * Decimal(price)
        touch(pipeline, "INSERT INTO invoice_lines (id, invoice_id, line_no, description, "
                        "quantity, unit_price, amount, service_name) VALUES (:id, :i, :l, :d, "
                        ":q, :u, :a, :s)", id=line_id + line_no, i=key, l=line_no,
              d=description, q=quantity, u=price, a=str(amount), s=service)
    return str(key)


def sale_lines(pipeline: PipelineUnderTest, invoice: str) -> list[dict[str, Any]]:
    qbo_id = links_of(pipeline, "invoice")[invoice]
    [record] = [r for r in pipeline.qbo_records()["Invoice"] if r["Id"] == qbo_id]
    return [line for line in record["Line"] if line["DetailType"] == "SalesItemLineDetail"]


def item_names(pipeline: PipelineUnderTest) -> dict[str, str]:
    return {item["Id"]: item["Name"] for item in pipeline.qbo_records()["Item"]}


def by_service(pipeline: PipelineUnderTest,
               lines: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
    names = item_names(pipeline)
    return [(names[line["SalesItemLineDetail"]["ItemRef"]["value"]],
             Decimal(str(line["SalesItemLineDetail"]["Qty"])), Decimal(str(line["Amount"])))
            for line in lines]


def test_itemized_and_aggregated_invoices_compared_line_by_line(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002: "Use Individual Time/Expense Items" sends one line per item; "Aggregate
    Time/Expense Items" one line per service, quantities and amounts summed, in the order
    each service first appears. The two invoices add up to the same total."""
    assert pipeline.run().success
    itemized = add_invoice(pipeline, "OPT-ITEMS")
    assert pipeline.run().success
    items = by_service(pipeline, sale_lines(pipeline, itemized))
    set_company(pipeline, "invoice_item_options", AGGREGATE)
    aggregated = add_invoice(pipeline, "OPT-AGGR")

    result = pipeline.run()

    assert result.success
    assert items == [("Design", Decimal(2), Decimal(250)), ("Drafting", Decimal("1.5"),
                     Decimal("142.5")), ("Design", Decimal(3), Decimal(330))]
    combined_lines = sale_lines(pipeline, aggregated)
    combined = by_service(pipeline, combined_lines)
    assert combined == [("Design", Decimal(5), Decimal(580)),
                        ("Drafting", Decimal("1.5"), Decimal("142.5"))]
    assert sum(amount for _, _, amount in items) == sum(amount for _, _, amount in combined)
    # The two Design items had two rates and two descriptions: the combined line has none;
    # Drafting's one item keeps both.
    design, drafting = combined_lines
    assert "UnitPrice" not in design["SalesItemLineDetail"] and "Description" not in design
    assert drafting["SalesItemLineDetail"]["UnitPrice"] == 95
    assert drafting["Description"] == "Plans"


def test_changing_the_item_option_regroups_invoices_already_in_qbo(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002's option applies "when Syncing Invoices": a change of it has the next run
    read the invoices again, and an invoice pushed itemized is sent again as aggregated;
    then a run writes nothing."""
    assert pipeline.run().success
    invoice = add_invoice(pipeline, "OPT-REGROUP")
    assert pipeline.run().success
    assert len(sale_lines(pipeline, invoice)) == 3
    set_company(pipeline, "invoice_item_options", AGGREGATE)

    assert pipeline.run().success

    assert [service for service, _, _ in by_service(pipeline, sale_lines(pipeline, invoice))
            ] == ["Design", "Drafting"]
    again = synced_counts(pipeline.run())["invoice"]
    assert (again["created"], again["updated"]) == (0, 0)


def test_invoices_are_marked_for_printing_when_the_company_says_so(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "AUTO MARK INVOICES FOR PRINTING": on, the invoices pushed have QBO's
    PrintStatus NeedToPrint; off (the default), NotSet, QBO's own default. An invoice printed
    in QBO meanwhile (PrintComplete) stays printed."""
    assert pipeline.run().success
    before = add_invoice(pipeline, "PRINT-OFF")
    assert pipeline.run().success
    set_company(pipeline, "auto_mark_invoices_for_printing", "true")
    marked = add_invoice(pipeline, "PRINT-ON")

    assert pipeline.run().success

    records = {r["Id"]: r for r in pipeline.qbo_records()["Invoice"]}
    links = links_of(pipeline, "invoice")
    assert records[links[marked]]["PrintStatus"] == "NeedToPrint"
    # The setting changed: the invoices are read again, and the unprinted ones are marked.
    assert records[links[before]]["PrintStatus"] == "NeedToPrint"
    assert {r["PrintStatus"] for r in records.values()} == {"NeedToPrint"}


def test_unpaid_invoices_before_the_start_date_sync_when_the_company_says_so(
        pipeline: PipelineUnderTest) -> None:
    """Seed 002: "Select/Deselect to Sync All Unpaid Invoices". With the setting off, an
    invoice dated before the company's sync start date is never pushed, unpaid or not; on,
    the unpaid one is pushed on the next run (the change has the invoices read again), the
    paid one never."""
    with pipeline.sessions.begin() as session:
        upsert_realm(session, pipeline.realm.realm_id, sync_start_date=date(2021, 1, 1))
    assert pipeline.run().success
    unpaid = add_invoice(pipeline, "OLD-UNPAID", date(2020, 6, 1), "sent")
    paid = add_invoice(pipeline, "OLD-PAID", date(2020, 6, 2), "paid")
    assert pipeline.run().success
    assert {unpaid, paid}.isdisjoint(links_of(pipeline, "invoice"))

    set_company(pipeline, "sync_all_unpaid_invoices", "true")
    result = pipeline.run()

    assert result.success
    links = links_of(pipeline, "invoice")
    assert unpaid in links and paid not in links
    [pushed] = [r for r in pipeline.qbo_records()["Invoice"] if r["Id"] == links[unpaid]]
    assert (pushed["DocNumber"], pushed["TxnDate"]) == ("OLD-UNPAID", "2020-06-01")
    set_company(pipeline, "sync_all_unpaid_invoices", "false")
    assert pipeline.run().success
    assert paid not in links_of(pipeline, "invoice")
