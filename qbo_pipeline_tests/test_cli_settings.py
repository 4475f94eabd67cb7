"""`qbo-pipeline settings` on a demo company, and each setting followed by the next sync:
an entity switched off and on, unapproved time let through (seed 000), manual sync (seed
004). Real HTTP to the emulator, real SQLite databases, Dagster runs through the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline.state import get_links, get_realm
from qbo_pipeline_tests.company import Company, company, synced_demo

__all__ = ["company", "synced_demo"]  # fixtures
# What the demo sets for its company: the credit memos of its write-offs (seed 004, "CREDIT
# MEMO EXPORT: Here you can enable the syncing of Credit Memos").
DEMO_SETTINGS = {"credit_memo_export": True}


def settings(company: Company, *arguments: str) -> Any:
    return CliRunner().invoke(main, ["settings", "--realm", company.realm_id, *arguments])


def stored(company: Company) -> dict[str, Any]:
    with company.state.sessions().begin() as session:
        realm = get_realm(session, company.realm_id)
        assert realm is not None
        return dict(realm.settings or {})


def customer_phone(company: Company, key: str) -> str:
    customer = company.records("Customer")[str(company.linked("client", key))]
    return str(customer.get("PrimaryPhone", {}).get("FreeFormNumber"))


def test_settings_are_shown_changed_and_reset(company: Company) -> None:
    shown = settings(company)
    assert shown.exit_code == 0, shown.output
    assert "time_entry.approved_only     true (default)" in shown.output
    assert "[automatic | manual]" in shown.output
    assert "[always | when used]" in shown.output  # customers_sync (seed 004)
    chosen = settings(company, "set", "customers_sync", "when used")
    assert chosen.exit_code == 0, chosen.output
    assert stored(company) == {**DEMO_SETTINGS, "customers_sync": "when used"}
    settings(company, "reset", "customers_sync")
    changed = settings(company, "set", "time_entry.approved_only", "off")
    assert changed.exit_code == 0, changed.output
    assert "time_entry.approved_only is false for company" in changed.output
    [view] = [v for v in json.loads(settings(company, "--json").output)
              if v["key"] == "time_entry.approved_only"]
    assert (view["value"], view["default"], view["changed"]) == (False, True, True)
    assert stored(company) == {**DEMO_SETTINGS, "time_entry.approved_only": False}
    reset = settings(company, "reset", "time_entry.approved_only")
    assert "back to its default, true" in reset.output
    assert stored(company) == DEMO_SETTINGS


@pytest.mark.parametrize(("arguments", "message"), [
    (["set", "time_entry.aproved_only", "false"], "did you mean 'time_entry.approved_only'?"),
    (["set", "sync_mode", "sometimes"], "sync_mode is one of 'automatic', 'manual', not "
                                        "'sometimes'"),
    (["set", "client.enabled", "maybe"], "client.enabled is on or off: give true or false"),
    # Seed 004's customers synced "when used", or seed 000's "always".
    (["set", "customers_sync", "sometimes"], "customers_sync is one of 'always', 'when used', "
                                             "not 'sometimes'"),
    (["reset", "nothing"], "there is no setting 'nothing'"),
    # Seed 003's "QuickBooks Income Account Name": a name, as QuickBooks shows it.
    (["set", "service_income_account", "  "], "service_income_account is a name: give one"),
    (["set", "service_income_account", "Sales\u202e"], "holds U+202E (RIGHT-TO-LEFT "
                                                       "OVERRIDE) at position 6"),
    (["set", "service_income_account", "x" * 101], "holds at most 100 characters, not 101"),
])
def test_a_bad_key_or_value_is_refused_and_changes_nothing(company: Company,
                                                           arguments: list[str],
                                                           message: str) -> None:
    settings(company, "set", "sync_mode", "manual")
    before = stored(company)
    refused = settings(company, *arguments)
    assert refused.exit_code != 0 and message in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert stored(company) == before
    unknown = CliRunner().invoke(main, ["settings", "--realm", "404", "show"])
    assert unknown.exit_code != 0 and "realm 404 is not connected" in unknown.output


def test_the_income_account_of_new_services_is_a_text_setting(company: Company) -> None:
    """Seed 003: "You can change which income account is used when syncing by changing the
    'QuickBooks Income Account Name' field in your account settings"; the default is the
    "Services" account of every new QBO company."""
    shown = settings(company)
    assert "service_income_account       Services (default)" in shown.output, shown.output
    changed = settings(company, "set", "service_income_account", " Sales of Product Income ")
    assert changed.exit_code == 0, changed.output
    assert stored(company) == {**DEMO_SETTINGS, "service_income_account": "Sales of Product Income"}
    assert settings(company, "reset", "service_income_account").exit_code == 0


def test_unapproved_time_syncs_on_the_next_run_once_approved_only_is_off(
        company: Company) -> None:
    """Seed 000: "only sync approved time" is the default; turned off, the time entries an
    earlier sync left out are synced by the next one."""
    unapproved = [str(key) for key in company.source_rows(
        "SELECT id FROM time_entries WHERE approved = 0")]
    with company.state.sessions().begin() as session:
        linked = set(get_links(session, company.realm_id, "time_entry"))
    assert unapproved and not linked & set(unapproved)
    settings(company, "set", "time_entry.approved_only", "false")
    company.sync()
    with company.state.sessions().begin() as session:
        linked = set(get_links(session, company.realm_id, "time_entry"))
    assert linked & set(unapproved)
    assert len(company.records("TimeActivity")) == len(linked)


def test_an_entity_switched_off_is_not_synced_until_it_is_on_again(company: Company) -> None:
    before = customer_phone(company, "1")
    company.change_source("UPDATE clients SET phone = '555-0777', updated_at = :now "
                          "WHERE id = 1")
    settings(company, "set", "client.enabled", "false")
    output = company.sync()
    assert customer_phone(company, "1") == before
    assert "client" not in _written(output)
    settings(company, "set", "client.enabled", "true")
    company.sync()
    assert customer_phone(company, "1") == "555-0777"


def test_a_company_on_manual_sync_syncs_only_the_records_asked_for(company: Company) -> None:
    """Seed 004: "manual or automatic sync"; manual means only a per-record sync."""
    before = customer_phone(company, "1")
    company.change_source("UPDATE clients SET phone = '555-0888', updated_at = :now "
                          "WHERE id IN (1, 4)")
    settings(company, "set", "sync_mode", "manual")
    skipped = company.sync()
    assert f"company {company.realm_id} syncs manually (setting sync_mode)" in skipped
    assert customer_phone(company, "1") == before
    company.sync("--entity", "client", "--id", "1")
    assert customer_phone(company, "1") == "555-0888"
    assert customer_phone(company, "4") != "555-0888"
    settings(company, "set", "sync_mode", "automatic")
    company.sync()
    assert customer_phone(company, "4") == "555-0888"


def _written(output: str) -> set[str]:
    """The entities a sync's summary shows as created or updated in QBO."""
    written = set()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[1].isdigit() and (int(parts[1]) or int(parts[2])):
            written.add(parts[0])
    return written


def test_a_name_format_change_renames_the_customers_in_qbo_on_the_next_sync(
        company: Company) -> None:
    """Seed 004: "Customer Account Name Format ... Lastname, Firstname"; a change re-plans
    the next run, which renames the customers in QuickBooks."""
    name, first, last = (company.source_value(f"SELECT {column} FROM clients WHERE id = 1")
                         for column in ("name", "contact_first_name", "contact_last_name"))
    qbo_id = str(company.linked("client", "1"))
    assert company.records("Customer")[qbo_id]["DisplayName"] == name
    changed = settings(company, "set", "customer_name_format", "Lastname, Firstname")
    assert changed.exit_code == 0, changed.output
    company.sync()
    assert company.records("Customer")[qbo_id]["DisplayName"] == f"{last}, {first}"
    assert company.linked("client", "1") == qbo_id  # renamed, not created again
    settings(company, "reset", "customer_name_format")
    company.sync()
    assert company.records("Customer")[qbo_id]["DisplayName"] == name


def test_capital_letters_turned_on_rename_the_records_on_the_next_sync(
        company: Company) -> None:
    """Seed 004: "Synchronization Format: ... bring all data with capitalized letters"."""
    name, email = (company.source_value(f"SELECT {column} FROM clients WHERE id = 1")
                   for column in ("name", "email"))
    qbo_id = str(company.linked("client", "1"))
    settings(company, "set", "capitalize_names", "true")
    company.sync()
    customer = company.records("Customer")[qbo_id]
    assert customer["DisplayName"] == name.upper()
    assert customer["PrimaryEmailAddr"]["Address"] == email
