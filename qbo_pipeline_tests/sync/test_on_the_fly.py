"""What the sync creates on the fly, decided over plain data (seed 003: "All users, customers,
and services will be created on the fly if they don't already exist in QuickBooks Online")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qbo_pipeline.specs import load_specs
from qbo_pipeline.sync.mapping import NotCreated
from qbo_pipeline.sync.on_the_fly import Wanted, new_record, not_created, wanted_records
from qbo_pipeline.sync.settings import as_configured

SPECS = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")
ACCOUNTS = {"Services": "1", "Sales of Product Income": "2"}


def accounts(entity: str, by: str, value: str) -> str | NotCreated | None:
    assert (entity, by) == ("Account", "Name")
    return ACCOUNTS.get(value)


def invoice_row(key: int, **values: Any) -> dict[str, Any]:
    return {"id": key, "updated_at": "2026-01-05 10:00:00", "deleted_at": None, **values}


def test_the_services_named_on_lines_are_wanted_once_and_sales_tax_never() -> None:
    """Seed 003: a service is created "the next time you sync a time or invoice with that
    service"; the tax line's fixed "Sales Tax" item is the company's, never created."""
    invoice = SPECS["invoice"]
    rows = [invoice_row(1, tax_amount=5), invoice_row(2, tax_amount=5),
            invoice_row(3, deleted_at="2026-01-06 09:00:00")]
    lines = [{"invoice_id": 1, "service_name": "Design"},
             {"invoice_id": 2, "service_name": " Design "},
             {"invoice_id": 2, "service_name": "Permit filing"},
             {"invoice_id": 2, "service_name": None},
             {"invoice_id": 3, "service_name": "Deleted only"}]
    wanted = wanted_records(invoice, rows, lines)
    assert [(w.spec, w.qbo_entity, w.by, w.value) for w in wanted] == [
        ("service", "Item", "Name", "Design"), ("service", "Item", "Name", "Permit filing")]


def test_a_new_service_gets_the_income_account_the_settings_name() -> None:
    """Seed 003: new services are "mapped to a QuickBooks income account when they are
    created", the one named by "QuickBooks Income Account Name"."""
    wanted = Wanted("service", "Item", "Name", "Permit filing", "service_name")
    default = new_record(as_configured(SPECS, "service"), wanted, [], accounts)
    assert default.reasons == ()
    assert default.source_key is None
    assert default.payload == {"Name": "Permit filing", "Type": "Service",
                               "IncomeAccountRef": {"value": "1"}}
    other = as_configured(SPECS, "service", {"service_income_account": "Sales of Product Income"})
    assert new_record(other, wanted, [], accounts).payload["IncomeAccountRef"] == {"value": "2"}


def test_the_apps_own_service_of_that_name_is_what_is_created() -> None:
    """Seed 003: "If you create a new service in HoursLogger, it is created in QuickBooks":
    the app's row of that name, with its own rate and account, linked to what is created."""
    wanted = Wanted("service", "Item", "Name", "Permit filing", "service_name")
    own = [{"id": 7, "name": "Permit filing", "description": "Filing with the city",
            "rate": 90, "active": True, "income_account": "Sales of Product Income",
            "updated_at": "2026-01-05 10:00:00", "deleted_at": None, "qbo_id": None}]
    record = new_record(as_configured(SPECS, "service"), wanted, own, accounts)
    assert record.source_key == "7"
    assert record.payload == {"Name": "Permit filing", "Type": "Service",
                              "Description": "Filing with the city", "UnitPrice": 90,
                              "Active": True, "IncomeAccountRef": {"value": "2"}}
    assert record.base == record.payload


def test_an_account_qbo_lacks_is_a_reason_naming_the_setting() -> None:
    """Seed 003's "QuickBooks Income Account Name" names no account: nothing is created, and
    the records naming the service are held back with the setting to change."""
    wanted = Wanted("service", "Item", "Name", "Permit filing", "service_name")
    spec = as_configured(SPECS, "service", {"service_income_account": "Consulting Revenue"})
    record = new_record(spec, wanted, [], accounts)
    [reason] = record.reasons
    assert reason.startswith("service 'Permit filing': IncomeAccountRef needs a QuickBooks "
                             "Account with Name 'Consulting Revenue', and there is none")
    assert "qbo-pipeline settings set service_income_account NAME" in reason
    why = not_created(record)
    assert why.problem.startswith("needs a QuickBooks Item with Name 'Permit filing', which the "
                                  "sync creates on the fly through spec service, and cannot")
    assert reason in why.problem
