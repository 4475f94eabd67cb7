"""Services both ways, and created on the fly for the invoices and time entries that name them
(seed 003), with the income account the company's settings name. Real HTTP to the emulator,
real SQLite source and state DBs, Dagster's `materialize`; each test cites the seed line it
follows."""

from __future__ import annotations

from typing import Any

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline.state import list_quarantine
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_pull_and_two_way import (
    applied_counts,
    edit_in_qbo,
    rows,
    writes_of,
)
from qbo_pipeline_tests.defs.test_sync import synced_counts

SETTING = "service_income_account"


def items_named(pipeline: PipelineUnderTest, name: str) -> list[dict[str, Any]]:
    return [item for item in pipeline.qbo_records()["Item"] if item["Name"] == name]


def account_id(pipeline: PipelineUnderTest, name: str) -> str:
    [account] = [a for a in pipeline.qbo_records()["Account"] if a["Name"] == name]
    return str(account["Id"])


def synced_invoice_line(pipeline: PipelineUnderTest) -> tuple[str, int]:
    """(invoice key, line id) of the first line of an invoice that is in QBO."""
    linked = links_of(pipeline, "invoice")
    line = next(row for row in rows(pipeline, "SELECT id, invoice_id FROM invoice_lines "
                                              "ORDER BY invoice_id, line_no")
                if str(row["invoice_id"]) in linked)
    return str(line["invoice_id"]), int(line["id"])


def name_a_new_service_on_an_invoice(pipeline: PipelineUnderTest, service: str) -> str:
    """The app bills a service QBO has never seen on a synced invoice; returns the invoice."""
    invoice, line = synced_invoice_line(pipeline)
    touch(pipeline, "UPDATE invoice_lines SET service_name = :s WHERE id = :l", s=service, l=line)
    touch(pipeline, "UPDATE invoices SET updated_at = :now WHERE id = :i", i=invoice)
    return invoice


def invoice_item_ids(pipeline: PipelineUnderTest, invoice: str) -> set[str]:
    qbo_id = links_of(pipeline, "invoice")[invoice]
    [record] = [i for i in pipeline.qbo_records()["Invoice"] if i["Id"] == qbo_id]
    return {line["SalesItemLineDetail"]["ItemRef"]["value"] for line in record["Line"]
            if line.get("DetailType") == "SalesItemLineDetail"}


def held_reasons(pipeline: PipelineUnderTest, spec_name: str, key: str) -> list[str]:
    with pipeline.sessions.begin() as session:
        held = list_quarantine(session, pipeline.realm.realm_id, spec_name)
    return [reason for row in held if row.source_key == key for reason in row.reasons]


def set_income_account(pipeline: PipelineUnderTest, name: str) -> None:
    change_setting(pipeline.sessions, SPECS, pipeline.realm.realm_id, SETTING, name)


def test_a_service_on_an_invoice_that_qbo_lacks_is_created_with_the_configured_account(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003: "If you create a new service in HoursLogger, it is created in QuickBooks the
    next time you sync a time or invoice with that service", mapped "to a QuickBooks income
    account" (the default: the "Services" account every new QBO company has). The next runs
    find it: no second Item, and the service is imported into the app's list."""
    assert pipeline.run().success
    invoice = name_a_new_service_on_an_invoice(pipeline, "Permit filing")
    result = pipeline.run()
    assert result.success
    [item] = items_named(pipeline, "Permit filing")
    assert item["Type"] == "Service"
    assert item["IncomeAccountRef"]["value"] == account_id(pipeline, "Services")
    assert item["Id"] in invoice_item_ids(pipeline, invoice)
    assert synced_counts(result)["invoice"]["updated"] == 1
    assert not held_reasons(pipeline, "invoice", invoice)

    again = pipeline.run()
    assert again.success
    assert len(items_named(pipeline, "Permit filing")) == 1
    # The service spec imports it: one row, linked by its QBO Id, with its account's name.
    [service] = rows(pipeline, "SELECT * FROM services WHERE name = 'Permit filing'")
    assert (service["qbo_id"], service["income_account"]) == (item["Id"], "Services")
    assert links_of(pipeline, "service")[str(service["id"])] == item["Id"]
    assert writes_of(pipeline.run()) == (0, 0)
    assert len(items_named(pipeline, "Permit filing")) == 1


def test_a_service_on_a_time_entry_that_qbo_lacks_is_created_for_its_time_activity(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003, "Syncing Times": "All users, customers, and services will be created on the
    fly if they don't already exist in QuickBooks Online." The TimeActivity names it."""
    assert pipeline.run().success
    entry = next(iter(sorted(links_of(pipeline, "time_entry"), key=int)))
    touch(pipeline, "UPDATE time_entries SET service_name = 'Surveying', updated_at = :now "
                    "WHERE id = :e", e=entry)
    result = pipeline.run()
    assert result.success
    [item] = items_named(pipeline, "Surveying")
    assert item["IncomeAccountRef"]["value"] == account_id(pipeline, "Services")
    qbo_id = links_of(pipeline, "time_entry")[entry]
    [activity] = [a for a in pipeline.qbo_records()["TimeActivity"] if a["Id"] == qbo_id]
    assert activity["ItemRef"]["value"] == item["Id"]
    assert pipeline.run().success
    assert len(items_named(pipeline, "Surveying")) == 1


def test_another_income_account_in_the_settings_is_used_for_the_next_new_service(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003: "You can change which income account is used when syncing by changing the
    'QuickBooks Income Account Name' field in your account settings." A service created before
    keeps its account."""
    assert pipeline.run().success
    name_a_new_service_on_an_invoice(pipeline, "Permit filing")
    assert pipeline.run().success
    set_income_account(pipeline, "Sales of Product Income")
    name_a_new_service_on_an_invoice(pipeline, "Engineering review")
    assert pipeline.run().success
    [first] = items_named(pipeline, "Permit filing")
    [second] = items_named(pipeline, "Engineering review")
    assert first["IncomeAccountRef"]["value"] == account_id(pipeline, "Services")
    assert second["IncomeAccountRef"]["value"] == account_id(pipeline,
                                                             "Sales of Product Income")


def test_an_income_account_qbo_lacks_holds_the_invoice_back_until_the_setting_is_fixed(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003's "QuickBooks Income Account Name" names an account the company does not have:
    no Item is made, the invoice is held back with a reason naming the setting and the fix, the
    other records sync, and the invoice goes once the setting names a real account."""
    assert pipeline.run().success
    set_income_account(pipeline, "Consulting Revenue")
    invoice = name_a_new_service_on_an_invoice(pipeline, "Permit filing")
    result = pipeline.run()
    assert result.success
    assert items_named(pipeline, "Permit filing") == []
    [reason] = held_reasons(pipeline, "invoice", invoice)
    assert "needs a QuickBooks Item with Name 'Permit filing'" in reason
    assert "Account with Name 'Consulting Revenue', and there is none" in reason
    assert f"qbo-pipeline settings set {SETTING} NAME" in reason
    # Only the invoice naming the new service waits for it; the others are synced.
    with pipeline.sessions.begin() as session:
        held = list_quarantine(session, pipeline.realm.realm_id, "invoice")
    assert [row.source_key for row in held if "Consulting Revenue" in " ".join(row.reasons)] == [
        invoice]
    assert synced_counts(result)["invoice"]["failed"] == 0

    set_income_account(pipeline, "Services")
    fixed = pipeline.run()
    assert fixed.success
    [item] = items_named(pipeline, "Permit filing")
    assert item["Id"] in invoice_item_ids(pipeline, invoice)
    assert not held_reasons(pipeline, "invoice", invoice)


def test_a_service_changed_on_either_side_reaches_the_other(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004, "Invoice Items: Full 2-way sync; Items can be bulk imported into Contractors
    Cloud from QuickBooks Online": QBO's services imported, a rename in QBO comes back to the
    app, a rename and new rate in the app go to QBO, and a service made in the app is created
    in QBO with the income account of the settings (seed 003)."""
    assert pipeline.run().success
    services = {str(row["id"]): row for row in rows(pipeline, "SELECT * FROM services")}
    design = next(key for key, row in services.items() if row["name"] == "Design")
    drafting = next(key for key, row in services.items() if row["name"] == "Drafting")
    edit_in_qbo(pipeline, "Item", services[design]["qbo_id"], {"Name": "Design (concept)"})
    touch(pipeline, "UPDATE services SET name = 'Drafting (CAD)', rate = 105, "
                    "updated_at = :now WHERE id = :k", k=drafting)
    touch(pipeline, "INSERT INTO services (name, rate, active, created_at, updated_at) "
                    "VALUES ('Inspection', 160, true, :now, :now)")
    result = pipeline.run()
    assert result.success
    assert applied_counts(result)["service"]["updated"] == 1
    [renamed] = rows(pipeline, "SELECT name FROM services WHERE id = :k", k=design)
    assert renamed["name"] == "Design (concept)"
    items = {item["Id"]: item for item in pipeline.qbo_records()["Item"]}
    cad = items[services[drafting]["qbo_id"]]
    assert (cad["Name"], float(cad["UnitPrice"])) == ("Drafting (CAD)", 105.0)
    [inspection] = items_named(pipeline, "Inspection")
    assert inspection["IncomeAccountRef"]["value"] == account_id(pipeline, "Services")
    assert pipeline.run().success
    assert writes_of(pipeline.run()) == (0, 0)
