"""A company's settings as the core reads them: values checked when set, stored values over
the defaults, and what each setting decides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.specs import ConflictPolicy, Direction
from qbo_pipeline.sync.mapping import map_row
from qbo_pipeline.sync.selection import row_selected
from qbo_pipeline.sync.settings import (
    FALSE_WORDS,
    TRUE_WORDS,
    SettingError,
    as_configured,
    effective,
    for_company,
    parse_value,
    row_filters,
    settings_read,
    spec_enabled,
    specs_to_read_again,
    syncs_by_itself,
)

SPECS = load_pipeline_specs()
CATALOG = SPECS.settings


def test_every_spec_can_be_switched_off_and_brings_its_filters() -> None:
    assert {f"{name}.enabled" for name in SPECS.names} <= set(CATALOG)
    assert CATALOG["time_entry.approved_only"].default is True  # seed 000
    assert CATALOG["sync_mode"].choices == ("automatic", "manual")  # seed 004


@pytest.mark.parametrize(("key", "text", "message"), [
    ("time_entry.aproved_only", "true",
     "there is no setting 'time_entry.aproved_only' - did you mean 'time_entry.approved_only'?"),
    ("time_entry.approved_only", "maybe", "time_entry.approved_only is on or off: give true or "
                                          "false, not 'maybe'"),
    ("sync_mode", "Manual", "sync_mode is one of 'automatic', 'manual', not 'Manual'"),
])
def test_a_bad_key_or_value_names_it_and_what_is_allowed(key: str, text: str,
                                                          message: str) -> None:
    with pytest.raises(SettingError) as raised:
        parse_value(CATALOG, key, text)
    assert message in str(raised.value)


@given(st.sampled_from(TRUE_WORDS + FALSE_WORDS), st.sampled_from([str.lower, str.upper,
                                                                   str.title]))
def test_on_and_off_read_in_any_case(word: str, case: object) -> None:
    assert callable(case)
    value = parse_value(CATALOG, "client.enabled", f" {case(word)} ")
    assert value is (word in TRUE_WORDS)


def test_stored_values_override_the_defaults_and_bad_ones_do_not() -> None:
    values = effective(CATALOG, {"time_entry.approved_only": False, "sync_mode": "manual",
                                 "client.enabled": "no", "gone.enabled": False})
    assert values["time_entry.approved_only"] is False
    assert values["client.enabled"] is True  # not a stored boolean: the default
    assert "gone.enabled" not in values
    assert not syncs_by_itself(values)
    assert syncs_by_itself(effective(CATALOG, None))
    assert row_filters(SPECS["time_entry"], values) == {"approved_only": False}
    assert row_filters(SPECS["time_entry"], effective(CATALOG, {})) == {"approved_only": True}
    assert spec_enabled(SPECS["client"], effective(CATALOG, {"client.enabled": False})) is False


def test_a_specs_own_setting_has_its_rows_read_again() -> None:
    assert specs_to_read_again("time_entry.approved_only", SPECS) == ["time_entry"]
    assert specs_to_read_again("client.enabled", SPECS) == ["client"]
    assert specs_to_read_again("sync_mode", SPECS) == []


def test_the_display_name_collision_rule_has_the_named_lists_read_again() -> None:
    """Seed 004's per-company settings: a vendor held back under "Hold back" is tried again
    under the rule chosen since, without waiting for the row to change."""
    assert sorted(specs_to_read_again("display_name_collision", SPECS)) == [
        "client", "contractor", "employee", "project", "vendor"]
    assert CATALOG["display_name_collision"].default == "Add the record type"


def test_a_name_format_chooses_the_template_the_company_maps_with() -> None:
    """Seed 004: "Customer Account Name Format" and "Customer Job Format"."""
    client = as_configured(SPECS, "client", {"customer_name_format": "Lastname, Firstname"})
    row = {"id": 1, "name": "Acme Builders", "contact_first_name": "Ann",
           "contact_last_name": "Lee", "email": "ann@acme.test"}
    assert map_row(client, row).payload["DisplayName"] == "Lee, Ann"
    assert map_row(as_configured(SPECS, "client"), row).payload["DisplayName"] == \
        "Acme Builders"  # seed 000's default: the client's name
    job = as_configured(SPECS, "project", {"job_name_format":
                                           "Project Number - Project Address"})
    project = {"id": 7, "client_id": 1, "number": "P-7", "name": "Kitchen",
               "job_address_line1": "9 Elm St"}
    assert map_row(job, project).payload["DisplayName"] == "P-7 - 9 Elm St"
    assert settings_read(SPECS["client"]) == {"customer_name_format", "capitalize_names",
                                              "display_name_collision", "customers_sync"}
    assert specs_to_read_again("customer_name_format", SPECS) == ["client"]
    assert specs_to_read_again("job_name_format", SPECS) == ["project"]
    assert SPECS["client"].fields["DisplayName"].reverse_problem is not None  # push only


def test_a_template_with_no_choice_for_the_value_is_an_error() -> None:
    with pytest.raises(SettingError, match="setting customer_name_format is 'Nickname', which "
                                           "has no template"):
        for_company(SPECS["client"], {"customer_name_format": "Nickname",
                                      "customers_sync": "always"})


def test_capital_letters_are_the_companys_choice_and_spare_e_mail_addresses() -> None:
    """Seed 004: "Synchronization Format: ... bring all data with capitalized letters"."""
    row = {"id": 1, "name": "Acme Builders", "contact_first_name": "Ann",
           "contact_last_name": "Lee", "email": "Ann@Acme.test", "city": "Springfield"}
    loud = map_row(as_configured(SPECS, "client", {"capitalize_names": True}), row).payload
    assert (loud["DisplayName"], loud["BillAddr"]["City"], loud["GivenName"]) == (
        "ACME BUILDERS", "SPRINGFIELD", "ANN")
    assert loud["PrimaryEmailAddr"]["Address"] == "Ann@Acme.test"
    plain = map_row(as_configured(SPECS, "client"), row).payload
    assert plain["DisplayName"] == "Acme Builders"  # off by default
    assert "capitalize_names" in settings_read(SPECS["project"])
    assert specs_to_read_again("capitalize_names", SPECS) == ["client", "project"]


def test_customers_sync_chooses_seed_000s_clients_or_seed_004s() -> None:
    """Seed 004's customers ("only exports ... when it is manually synced ... or when a
    Contract/Job, Invoice, or Payment are synced"; contact data "a 1-way push") for a company
    that chooses them; seed 000's push of every client is the default."""
    default = for_company(SPECS["client"], effective(CATALOG, None))
    assert (default.direction, default.pulls, default.pull, default.only_when_used) == (
        Direction.PUSH, False, None, False)
    chosen = for_company(SPECS["client"], effective(CATALOG, {"customers_sync": "when used"}))
    assert (chosen.direction, chosen.only_when_used, chosen.by_setting) == (
        Direction.TWO_WAY, True, None)
    assert set(chosen.pulled_fields) >= {"CompanyName", "BillAddr.City", "Active"}
    contact = {"GivenName", "FamilyName", "PrimaryEmailAddr.Address",
               "PrimaryPhone.FreeFormNumber"}
    assert not contact & set(chosen.pulled_fields)
    assert {chosen.conflict.policy_for(path) for path in contact} == {
        ConflictPolicy.SOURCE_WINS}
    job = for_company(SPECS["project"], effective(CATALOG, {"customers_sync": "when used"}))
    assert job.pulls and not job.only_when_used  # every project syncs (seed 000)
    assert specs_to_read_again("customers_sync", SPECS) == ["client", "project"]


def test_the_payment_deposit_account_may_be_left_empty() -> None:
    """Seed 004: payments go to Undeposited Funds "unless you enter a default ... account
    here": the setting is an optional name, empty by default, which a company may set and clear
    again; a name that is required (the services' income account) may not be emptied."""
    setting = CATALOG["payment_deposit_account"]
    assert setting.optional and setting.default == ""
    assert parse_value(CATALOG, "payment_deposit_account", " Checking ") == "Checking"
    assert parse_value(CATALOG, "payment_deposit_account", "  ") == ""
    assert effective(CATALOG, {"payment_deposit_account": ""})["payment_deposit_account"] == ""
    with pytest.raises(SettingError, match="is a name: give one"):
        parse_value(CATALOG, "service_income_account", "")


def test_an_empty_deposit_account_leaves_the_lookup_out() -> None:
    """No account named: DepositToAccountRef is not sent, and QBO uses Undeposited Funds;
    an account named by the setting is looked up by its name."""
    row = {"id": 1, "project_id": 4, "invoice_id": 2, "amount": 10, "payment_date": "2026-01-05",
           "reference": None, "deposit_account": None}
    asked: list[tuple[str, str, str]] = []

    def found(entity: str, by: str, value: str) -> str:
        asked.append((entity, by, value))
        return "35"

    default = map_row(as_configured(SPECS, "payment"), row, resolve_ref=lambda s, k: "9",
                      resolve_lookup=found)
    assert default.ok and "DepositToAccountRef" not in default.payload and asked == []
    named = map_row(as_configured(SPECS, "payment", {"payment_deposit_account": "Checking"}),
                    row, resolve_ref=lambda s, k: "9", resolve_lookup=found)
    assert named.payload["DepositToAccountRef"] == {"value": "35"}
    assert asked == [("Account", "Name", "Checking")]


@pytest.mark.parametrize(("status", "paid", "approved", "synced"), [
    ("Paid", True, False, True), ("Paid", False, True, False),
    ("Paid & Approved", True, True, True), ("Paid & Approved", True, False, False),
])
def test_the_expense_export_status_chooses_the_expenses_that_sync(
        status: str, paid: bool, approved: bool, synced: bool) -> None:
    """Seed 004, "Expense Export Status": "only Paid expenses to transfer or Paid & Approved
    expenses to transfer": the company's choice is a row filter no stored value switches off,
    and a change of it has the expenses read again."""
    # A stored value under the filter's name is no setting: it changes nothing.
    values = effective(CATALOG, {"expense_export_status": status,
                                 "expense.expense_export_status": False})
    spec = for_company(SPECS["expense"], values)
    overrides = row_filters(spec, values)
    row = {"paid": paid, "approved": approved, "paid_and_approved": int(paid and approved)}
    assert row_selected(spec, row, overrides) is synced
    assert CATALOG["expense_export_status"].default == "Paid"
    assert specs_to_read_again("expense_export_status", SPECS) == ["expense"]
