"""DisplayName collisions end to end (issue 13, "Names lists both ways"): QBO's DisplayName is
unique across customers, vendors and employees, and a record whose name another one holds is
renamed by the company's `display_name_collision` rule, reported, never a crash. The demo's
vendor 4 is named as client 1 (a supplier of the same name as a client, seed 004's "Installer,
Supplier, and Vendor data are a 2-way sync into a QuickBooks Vendor"). Real HTTP to the
emulator, real SQLite source and state DBs, Dagster's `materialize`."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, ExecuteInProcessResult

from qbo_pipeline.defs.assets import RENAMED_RECORDS_METADATA
from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.state import given_names, list_quarantine, set_realm_setting
from qbo_pipeline.sync.names import COLLISION_SETTING
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import links_of, users_of_type
from qbo_pipeline_tests.defs.test_pull_and_two_way import (
    edit_in_qbo,
    qbo_record,
    rows,
    synced_twice,
    writes_of,
)
from qbo_pipeline_tests.defs.test_sync import assert_counts_add_up, synced_counts

NAMED_AS_A_CLIENT = "4"  # the demo's vendor named as client 1


def client_name(pipeline: PipelineUnderTest) -> str:
    [row] = rows(pipeline, "SELECT name FROM clients WHERE id = 1")
    return str(row["name"])


def vendor_in_qbo(pipeline: PipelineUnderTest, key: str = NAMED_AS_A_CLIENT) -> dict[str, Any]:
    return qbo_record(pipeline, "Vendor", links_of(pipeline, "vendor")[key])


def renamed_lines(result: ExecuteInProcessResult, spec_name: str) -> str:
    [materialization] = [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key
        == AssetKey([spec_name, "synced"])]
    value = materialization.metadata.get(RENAMED_RECORDS_METADATA)
    return "" if value is None else str(value.value)


def held_reasons(pipeline: PipelineUnderTest, spec_name: str) -> dict[str, list[str]]:
    with pipeline.sessions.begin() as session:
        return {row.source_key: row.reasons
                for row in list_quarantine(session, pipeline.realm.realm_id, spec_name)}


def set_collision_rule(pipeline: PipelineUnderTest, value: str) -> None:
    with pipeline.sessions.begin() as session:
        set_realm_setting(session, pipeline.realm.realm_id, COLLISION_SETTING, value)


def test_a_vendor_named_as_a_customer_is_created_with_its_record_type_and_reported(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003: records are "created on the fly if they don't already exist in QuickBooks
    Online": a vendor whose name a customer holds in QBO is created, not held back, as
    "<name> (Vendor)" (the default rule), reported by name; the runs after send the name it was
    given again, so nothing is written and the source keeps its own name."""
    name = client_name(pipeline)
    result = pipeline.run()
    assert result.success
    assert_counts_add_up(result)
    counts = synced_counts(result)["vendor"]
    assert (counts["created"], counts["failed"], counts["renamed"]) == (4, 0, 1)
    vendor = vendor_in_qbo(pipeline)
    assert vendor["DisplayName"] == f"{name} (Vendor)"
    customers = {c["DisplayName"]: c["Id"] for c in pipeline.qbo_records()["Customer"]}
    assert renamed_lines(result, "vendor") == (
        f"vendor 4: named {vendor['DisplayName']!r} in QuickBooks (Id {vendor['Id']}), since "
        f"{name!r} is taken by QuickBooks Customer {customers[name]}")
    assert NAMED_AS_A_CLIENT not in held_reasons(pipeline, "vendor")
    with pipeline.sessions.begin() as session:
        given = given_names(session, pipeline.realm.realm_id, "vendor")[NAMED_AS_A_CLIENT]
    assert (given.wanted_name, given.given_name, given.taken_by) == (
        name, vendor["DisplayName"], customers[name])
    # No rename loop, no echo: the next runs find both sides alike.
    assert pipeline.run().success
    assert writes_of(pipeline.run()) == (0, 0)
    assert vendor_in_qbo(pipeline)["SyncToken"] == vendor["SyncToken"]
    [row] = rows(pipeline, "SELECT name FROM vendors WHERE id = 4")
    assert row["name"] == name


def test_a_two_way_vendors_pull_does_not_bring_the_suffix_into_the_source(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: vendors are "a 2-way sync into a QuickBooks Vendor": a change a bookkeeper
    makes in QBO to the renamed vendor reaches the app, but the name it was given there is
    not the app's, which keeps its own; the run that reads the row again writes nothing."""
    name = client_name(pipeline)
    synced_twice(pipeline, SPECS)
    edit_in_qbo(pipeline, "Vendor", vendor_in_qbo(pipeline)["Id"],
                {"PrimaryPhone": {"FreeFormNumber": "(503) 555-0142"}})
    assert writes_of(pipeline.run()) == (0, 1)
    [row] = rows(pipeline, "SELECT name, phone FROM vendors WHERE id = 4")
    assert (row["name"], row["phone"]) == (name, "(503) 555-0142")
    assert pipeline.run().success
    assert writes_of(pipeline.run()) == (0, 0)
    assert vendor_in_qbo(pipeline)["DisplayName"] == f"{name} (Vendor)"


def test_a_renamed_vendor_renamed_in_qbo_comes_back_under_the_new_name(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004's 2-way vendors: a bookkeeper who renames the suffixed vendor in QBO renames it
    in the app; the name it was given no longer applies, and nothing echoes back."""
    synced_twice(pipeline, SPECS)
    edit_in_qbo(pipeline, "Vendor", vendor_in_qbo(pipeline)["Id"],
                {"DisplayName": "Harbor Supplies"})
    assert writes_of(pipeline.run()) == (0, 1)
    [row] = rows(pipeline, "SELECT name FROM vendors WHERE id = 4")
    assert row["name"] == "Harbor Supplies"
    assert pipeline.run().success
    assert writes_of(pipeline.run()) == (0, 0)
    assert vendor_in_qbo(pipeline)["DisplayName"] == "Harbor Supplies"


def test_the_setting_hold_back_keeps_the_record_back_with_the_reason_and_the_fix(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004's per-company settings: a company that chose "Hold back" gets no renamed
    vendor; the vendor waits in the quarantine, its reason naming the name, the QBO record
    holding it and the fix, and the run after tries nothing again."""
    set_collision_rule(pipeline, "Hold back")
    name = client_name(pipeline)
    result = pipeline.run()
    assert result.success
    counts = synced_counts(result)["vendor"]
    assert (counts["created"], counts["failed"], counts["held_back"], counts["renamed"]) == (
        3, 1, 1, 0)
    assert NAMED_AS_A_CLIENT not in links_of(pipeline, "vendor")
    customer = next(c for c in pipeline.qbo_records()["Customer"] if c["DisplayName"] == name)
    [reason] = held_reasons(pipeline, "vendor")[NAMED_AS_A_CLIENT]
    assert reason == (
        f"vendor 4: QuickBooks refused the create: 6240 Duplicate Name Exists: DisplayName "
        f"{name!r} is used by QuickBooks Customer {customer['Id']} - rename the record in the "
        "source or the other one in QuickBooks, or set display_name_collision to 'Add the "
        "record type' to have the pipeline rename it")
    assert synced_counts(pipeline.run())["vendor"]["failed"] == 0


def test_the_setting_add_a_number_names_the_vendor_with_the_next_number(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004's per-company settings, the other rule: "<name> 2"; and when that is taken too
    (a customer of that name made in QBO by hand), "<name> 3"."""
    set_collision_rule(pipeline, "Add a number")
    name = client_name(pipeline)
    made = pipeline.realm.post("customer", {"DisplayName": f"{name} 2"})
    assert made.status_code == 200, made.text
    assert pipeline.run().success
    assert vendor_in_qbo(pipeline)["DisplayName"] == f"{name} 3"
    assert pipeline.run().success
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_user_whose_type_changes_from_employee_to_1099_vendor_gets_a_renamed_vendor(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "If the User is set to employment type "1099 Vendor", the user data will be a
    1-way push into a QuickBooks Vendor". The QBO Employee made while the user was an employee
    keeps the name (QBO never deletes one), so the Vendor is created as "<name> (Vendor)"
    instead of being held back."""
    assert pipeline.run().success
    user = users_of_type(pipeline, schema.EMPLOYEE_TYPE)[0]
    key, name = str(user["id"]), f"{user['first_name']} {user['last_name']}"
    employee = qbo_record(pipeline, "Employee", links_of(pipeline, "employee")[key])
    touch(pipeline, "UPDATE employees SET employment_type = '1099 Vendor', updated_at = :now "
                    "WHERE id = :u", u=user["id"])
    result = pipeline.run()
    assert result.success
    assert synced_counts(result)["contractor"]["renamed"] == 1
    vendor = qbo_record(pipeline, "Vendor", links_of(pipeline, "contractor")[key])
    assert (vendor["DisplayName"], vendor["Vendor1099"]) == (f"{name} (Vendor)", True)
    assert f"is taken by QuickBooks Employee {employee['Id']}" in renamed_lines(
        result, "contractor")
    assert key not in held_reasons(pipeline, "contractor")
    assert pipeline.run().success
    assert synced_counts(pipeline.run())["contractor"]["created"] == 0
