"""The names lists of seeds 003 and 004, end to end: users by employment type (Employees, and
1099 contractors as Vendors), vendors both ways, classes and terms both ways with QBO's
imported, accounts and tax codes imported and kept current. Real HTTP to the emulator, real
SQLite source and state DBs, Dagster's `materialize`; each test cites the seed line it follows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.state import get_links, list_conflicts, list_quarantine
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_pull_and_two_way import (
    applied_counts,
    edit_in_qbo,
    rows,
    synced_twice,
    writes_of,
)
from qbo_pipeline_tests.defs.test_sync import assert_counts_add_up, synced_counts


def links_of(pipeline: PipelineUnderTest, spec_name: str) -> dict[str, str]:
    """Source key -> QBO Id of every record the spec links."""
    with pipeline.sessions.begin() as session:
        return {key: link.qbo_id
                for key, link in get_links(session, pipeline.realm.realm_id, spec_name).items()}


def users_of_type(pipeline: PipelineUnderTest, employment_type: str) -> list[dict[str, Any]]:
    return rows(pipeline, "SELECT * FROM employees WHERE employment_type = :t "
                          "AND deleted_at IS NULL ORDER BY id", t=employment_type)


def create_in_qbo(pipeline: PipelineUnderTest, entity: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    """A record someone made in QBO (through the API, as another app would)."""
    response = pipeline.realm.post(entity.lower(), body)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def add_user(pipeline: PipelineUnderTest, first: str, last: str,
             employment_type: str | None) -> int:
    """A user added to the app now; returns their id."""
    user_id = 1 + max(row["id"] for row in rows(pipeline, "SELECT id FROM employees"))
    touch(pipeline, "INSERT INTO employees (id, first_name, last_name, email, employment_type, "
                    "active, created_at, updated_at) VALUES (:u, :first, :last, :email, :type, "
                    "true, :now, :now)", u=user_id, first=first, last=last, type=employment_type,
          email=f"{first}.{last}@practice.example.com".lower())
    return user_id


def log_time(pipeline: PipelineUnderTest, user_id: int) -> int:
    """3.5 approved, billable hours the user logs now on a project already synced; returns the
    time entry's id."""
    project = rows(pipeline, "SELECT p.id FROM projects p JOIN clients c ON c.id = p.client_id "
                             "WHERE p.active AND p.deleted_at IS NULL AND c.active AND "
                             "c.deleted_at IS NULL AND p.id IN (SELECT project_id FROM "
                             "time_entries) ORDER BY p.id LIMIT 1")[0]["id"]
    entry_id = 1 + max(row["id"] for row in rows(pipeline, "SELECT id FROM time_entries"))
    touch(pipeline, "INSERT INTO time_entries (id, employee_id, project_id, work_date, hours, "
                    "description, billable, approved, hourly_rate, created_at, updated_at) "
                    "VALUES (:e, :u, :p, :day, 3.5, 'Site inspection', true, true, 110, :now, "
                    ":now)", e=entry_id, u=user_id, p=project,
          day=date.today() - timedelta(days=1))
    return entry_id


# --- users: employees ------------------------------------------------------------------------


def test_an_employee_already_in_qbo_is_matched_by_first_name_last_name_and_email(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003: "Users in HoursLogger are matched with users in QuickBooks Online based on
    their first name, last name, and email." The QBO Employee shows another name, so only that
    rule can find it: it is linked, not created again, and its name waits for a person."""
    user = users_of_type(pipeline, schema.EMPLOYEE_TYPE)[0]
    existing = create_in_qbo(pipeline, "Employee", {
        "GivenName": user["first_name"], "FamilyName": user["last_name"],
        "DisplayName": f"{user['first_name']} {user['last_name']} (payroll)",
        "PrimaryEmailAddr": {"Address": user["email"].upper()}})
    result = pipeline.run()
    assert result.success
    assert_counts_add_up(result)
    assert links_of(pipeline, "employee")[str(user["id"])] == existing["Id"]
    employees = pipeline.qbo_records()["Employee"]
    assert len(employees) == len(users_of_type(pipeline, schema.EMPLOYEE_TYPE))
    assert f"{user['first_name']} {user['last_name']}" not in {e["DisplayName"] for e in employees}
    assert synced_counts(result)["employee"]["created"] == len(employees) - 1
    # The names differ on both sides and were never synced: review keeps QBO's until decided.
    with pipeline.sessions.begin() as session:
        open_conflicts = list_conflicts(session, pipeline.realm.realm_id, "employee")
    assert [conflict.source_key for conflict in open_conflicts] == [str(user["id"])]


def test_a_time_entry_of_a_user_new_to_qbo_creates_the_employee_in_the_same_run(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003: "If a time is created and synced for a user that doesn't exist in QuickBooks
    Online, HoursLogger will create the user for you and will show up as an employee" (and
    "All users, customers, and services will be created on the fly"). The employee spec runs
    before time_entry, so one run creates both, the time pointing at the new Employee."""
    assert pipeline.run().success
    user_id = add_user(pipeline, "Nadia", "Brandt", schema.EMPLOYEE_TYPE)
    entry_id = log_time(pipeline, user_id)

    result = pipeline.run()
    assert result.success
    counts = synced_counts(result)
    assert (counts["employee"]["created"], counts["time_entry"]["created"]) == (1, 1)
    employee_id = links_of(pipeline, "employee")[str(user_id)]
    activity = next(a for a in pipeline.qbo_records()["TimeActivity"]
                    if a["Id"] == links_of(pipeline, "time_entry")[str(entry_id)])
    assert activity["EmployeeRef"]["value"] == employee_id
    assert (activity["Hours"], activity["Minutes"]) == (3, 30)
    employee = next(e for e in pipeline.qbo_records()["Employee"] if e["Id"] == employee_id)
    assert employee["DisplayName"] == "Nadia Brandt"
    with pipeline.sessions.begin() as session:
        held = list_quarantine(session, pipeline.realm.realm_id, "time_entry")
    assert str(entry_id) not in {row.source_key for row in held}


# --- users: 1099 contractors -----------------------------------------------------------------


def test_a_1099_user_becomes_a_vendor_and_a_user_of_no_synced_type_stays_out(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "If the User is set to employment type "1099 Vendor", the user data will be a
    1-way push into a QuickBooks Vendor", and "In order for a User to sync, they need a User
    Type of either Employee or 1099 Vendor"."""
    result = pipeline.run()
    assert result.success
    contractors = users_of_type(pipeline, schema.CONTRACTOR_TYPE)
    assert contractors
    assert synced_counts(result)["contractor"]["created"] == len(contractors)
    qbo = pipeline.qbo_records()
    vendors = {v["Id"]: v for v in qbo["Vendor"]}
    linked = links_of(pipeline, "contractor")
    for user in contractors:
        vendor = vendors[linked[str(user["id"])]]
        assert vendor["Vendor1099"] is True
        assert (vendor["GivenName"], vendor["FamilyName"], vendor["DisplayName"],
                vendor["PrimaryEmailAddr"]["Address"]) == (
            user["first_name"], user["last_name"], f"{user['first_name']} {user['last_name']}",
            user["email"])
    # A contractor is no Employee, and an employee no Vendor: one QBO record per user.
    assert not set(linked) & set(links_of(pipeline, "employee"))
    [untyped] = rows(pipeline, "SELECT * FROM employees WHERE employment_type IS NULL")
    name = f"{untyped['first_name']} {untyped['last_name']}"
    assert name not in {r["DisplayName"] for r in qbo["Employee"] + qbo["Vendor"]}
    assert str(untyped["id"]) not in set(linked) | set(links_of(pipeline, "employee"))


def test_time_of_a_1099_user_names_their_vendor_and_time_of_an_untyped_user_says_why_not(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: a "1099 Vendor" user is a QBO Vendor, so their time is a TimeActivity of
    NameOf Vendor; "In order for a User to sync, they need a User Type of either Employee or
    1099 Vendor": the time of a user of neither type is held back, saying so."""
    assert pipeline.run().success
    contractor = users_of_type(pipeline, schema.CONTRACTOR_TYPE)[0]
    contractor_entry = log_time(pipeline, contractor["id"])
    untyped_entry = log_time(pipeline, add_user(pipeline, "Olive", "Marsh", None))

    result = pipeline.run()
    assert result.success
    assert synced_counts(result)["time_entry"]["created"] == 1
    activity = next(a for a in pipeline.qbo_records()["TimeActivity"]
                    if a["Id"] == links_of(pipeline, "time_entry")[str(contractor_entry)])
    assert activity["NameOf"] == "Vendor"
    assert activity["VendorRef"]["value"] == links_of(pipeline, "contractor")[
        str(contractor["id"])]
    assert "EmployeeRef" not in activity
    with pipeline.sessions.begin() as session:
        held = {row.source_key: row for row in list_quarantine(
            session, pipeline.realm.realm_id, "time_entry")}
    assert str(contractor_entry) not in held
    reason = " ".join(str(problem) for problem in held[str(untyped_entry)].reasons)
    assert "NameOf" in reason and "Employee or 1099 Vendor" in reason, reason
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_contractor_already_in_qbo_is_matched_by_first_name_last_name_and_email(
        pipeline: PipelineUnderTest) -> None:
    """Seed 003's rule for users ("matched ... based on their first name, last name, and
    email") holds for the users that are Vendors too: the QBO Vendor is linked, not copied."""
    user = users_of_type(pipeline, schema.CONTRACTOR_TYPE)[0]
    # Entered in QBO by hand, without the 1099 flag (QBO's default): the app owns the flag.
    existing = create_in_qbo(pipeline, "Vendor", {
        "GivenName": user["first_name"], "FamilyName": user["last_name"],
        "DisplayName": f"{user['last_name']}, {user['first_name']}",
        "PrimaryEmailAddr": {"Address": user["email"]}})
    assert existing["Vendor1099"] is False
    result = pipeline.run()
    assert result.success
    assert links_of(pipeline, "contractor")[str(user["id"])] == existing["Id"]
    assert synced_counts(result)["contractor"]["created"] == len(users_of_type(
        pipeline, schema.CONTRACTOR_TYPE)) - 1
    same_person = [v for v in pipeline.qbo_records()["Vendor"]
                   if (v.get("GivenName"), v.get("FamilyName")) == (user["first_name"],
                                                                  user["last_name"])]
    assert [v["Id"] for v in same_person] == [existing["Id"]]
    # contractor.yaml's `Vendor1099: source_wins`: flagged in QBO with nothing to review; the
    # other name QBO shows waits for a person, as an employee's does.
    assert same_person[0]["Vendor1099"] is True
    with pipeline.sessions.begin() as session:
        [conflict] = list_conflicts(session, pipeline.realm.realm_id, "contractor")
        assert [field["path"] for field in conflict.fields] == ["DisplayName"]


def test_a_1099_user_and_a_vendor_of_the_same_name_make_one_qbo_vendor(
        pipeline: PipelineUnderTest) -> None:
    """A subcontractor can be both a user paid on a 1099 and a row of the vendors list; the two
    specs must not each create a QBO Vendor for them. One is linked; the other is held back
    with QBO's reason (names are unique across its lists) for a person to merge or rename."""
    user = users_of_type(pipeline, schema.CONTRACTOR_TYPE)[0]
    name = f"{user['first_name']} {user['last_name']}"
    vendor_id = 1 + max(row["id"] for row in rows(pipeline, "SELECT id FROM vendors"))
    engine = sa.create_engine(pipeline.source_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(schema.vendors).values(
            id=vendor_id, name=name, email="installs@example.com", active=True,
            created_at=datetime(2024, 1, 2, 9), updated_at=datetime(2024, 1, 2, 9)))
    engine.dispose()
    for _ in range(2):  # and the run after does not try again what nothing changed
        assert pipeline.run().success
        assert [v["DisplayName"] for v in pipeline.qbo_records()["Vendor"]].count(name) == 1
    linked = {spec: key in links_of(pipeline, spec)
              for spec, key in (("contractor", str(user["id"])), ("vendor", str(vendor_id)))}
    assert sorted(linked.values()) == [False, True], linked
    [held_spec] = [spec for spec, is_linked in linked.items() if not is_linked]
    held_key = str(user["id"]) if held_spec == "contractor" else str(vendor_id)
    with pipeline.sessions.begin() as session:
        held = {row.source_key: row.reasons
                for row in list_quarantine(session, pipeline.realm.realm_id, held_spec)}
    assert "Duplicate Name" in " ".join(held[held_key])


# --- vendors both ways -----------------------------------------------------------------------


def vendor_phones(pipeline: PipelineUnderTest, key: str) -> tuple[str | None, str | None]:
    """(the source's phone, QBO's phone) of one vendor."""
    [row] = rows(pipeline, "SELECT phone FROM vendors WHERE id = :k", k=key)
    record = next(v for v in pipeline.qbo_records()["Vendor"]
                  if v["Id"] == links_of(pipeline, "vendor")[key])
    return row["phone"], record.get("PrimaryPhone", {}).get("FreeFormNumber")


def test_a_vendor_changed_only_in_qbo_comes_back_and_one_changed_only_in_the_source_goes(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Installer, Supplier, and Vendor data are a 2-way sync into a QuickBooks
    Vendor": each side's change reaches the other, and nothing echoes back."""
    synced_twice(pipeline, SPECS)
    edit_in_qbo(pipeline, "Vendor", links_of(pipeline, "vendor")["1"],
                {"PrimaryPhone": {"FreeFormNumber": "(503) 555-0142"}})
    touch(pipeline, "UPDATE vendors SET email = 'orders@example.org', updated_at = :now "
                    "WHERE id = 2")
    result = pipeline.run()
    assert result.success
    assert (synced_counts(result)["vendor"]["updated"],
            applied_counts(result)["vendor"]["updated"]) == (1, 1)
    assert vendor_phones(pipeline, "1") == ("(503) 555-0142", "(503) 555-0142")
    vendor_2 = next(v for v in pipeline.qbo_records()["Vendor"]
                    if v["Id"] == links_of(pipeline, "vendor")["2"])
    assert vendor_2["PrimaryEmailAddr"]["Address"] == "orders@example.org"
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_vendor_renamed_in_qbo_is_renamed_in_the_app_and_not_sent_back(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004's 2-way vendors, and no echo: the row the pull renamed is read again by the
    next run (its stamp moved), which finds both sides and the base alike and writes nothing."""
    synced_twice(pipeline, SPECS)
    edit_in_qbo(pipeline, "Vendor", links_of(pipeline, "vendor")["1"],
                {"DisplayName": "Harbor Lumber Yard"})
    assert writes_of(pipeline.run()) == (0, 1)
    [row] = rows(pipeline, "SELECT name FROM vendors WHERE id = 1")
    assert row["name"] == "Harbor Lumber Yard"
    # A clock past the change window's lag, so that the run reads the row the pull wrote.
    later = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    result = pipeline.run(run_config={"ops": {"vendor": {"config": {"as_of": later}}}})
    assert synced_counts(result)["vendor"]["read"] == 1
    assert writes_of(result) == (0, 0)


@pytest.mark.parametrize("later", ["qbo", "source"])
def test_a_vendor_changed_on_both_sides_takes_the_side_updated_last(
        pipeline: PipelineUnderTest, later: str) -> None:
    """Seed 004: vendors are a 2-way sync "depending on where it was updated last": the phone
    changed in QBO after the source lands in the source, and the other way round; no conflict
    waits for a person, and the winner is not written back."""
    synced_twice(pipeline, SPECS)
    run_config = None
    if later == "qbo":
        touch(pipeline, "UPDATE vendors SET phone = '(512) 555-0177', updated_at = :now "
                        "WHERE id = 1")
        edit_in_qbo(pipeline, "Vendor", links_of(pipeline, "vendor")["1"],
                    {"PrimaryPhone": {"FreeFormNumber": "(503) 555-0142"}})
    else:
        edited = edit_in_qbo(pipeline, "Vendor", links_of(pipeline, "vendor")["1"],
                             {"PrimaryPhone": {"FreeFormNumber": "(503) 555-0142"}})
        # The source's change comes 2 s after QBO's; the run reads up to it.
        qbo_at = datetime.fromisoformat(edited["MetaData"]["LastUpdatedTime"])
        engine = sa.create_engine(pipeline.source_url)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE vendors SET phone = '(512) 555-0177', "
                                       "updated_at = :at WHERE id = 1"),
                               {"at": (qbo_at + timedelta(seconds=2)).astimezone(UTC)
                                .replace(tzinfo=None)})
        engine.dispose()
        moment = (qbo_at + timedelta(seconds=10)).isoformat()
        run_config = {"ops": {"vendor": {"config": {"as_of": moment}}}}
    result = pipeline.run(run_config=run_config)
    assert result.success
    assert synced_counts(result)["vendor"]["read"] == 1  # both sides' changes were in play
    winner = "(503) 555-0142" if later == "qbo" else "(512) 555-0177"
    assert vendor_phones(pipeline, "1") == (winner, winner)
    with pipeline.sessions.begin() as session:
        assert list_conflicts(session, pipeline.realm.realm_id, "vendor") == []
    assert writes_of(pipeline.run()) == (0, 0)


# --- classes and terms both ways, QBO's imported ---------------------------------------------


def by_name(records: list[dict[str, Any]], name_field: str) -> dict[str, dict[str, Any]]:
    return {str(record[name_field]): record for record in records}


def test_qbo_classes_and_terms_are_imported_and_the_apps_linked_or_created(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Class Tracking: Full 2-way sync; Classes can be bulk imported into Contractors
    Cloud from QuickBooks Online", and the same of Terms. The app's "Commercial" and "Net 30"
    are in QBO already: linked by name, not made twice; the rest is created on either side."""
    before = pipeline.qbo_records()
    qbo_classes, qbo_terms = by_name(before["Class"], "Name"), by_name(before["Term"], "Name")
    app_classes = {row["name"] for row in rows(pipeline, "SELECT name FROM classes")}
    app_terms = by_name(rows(pipeline, "SELECT * FROM terms"), "name")
    assert "Commercial" in qbo_classes.keys() & app_classes
    assert "Net 30" in qbo_terms.keys() & app_terms.keys()

    first = pipeline.run()
    assert first.success
    assert_counts_add_up(first)  # a match is counted once, on each side
    pushed, pulled = synced_counts(first), applied_counts(first)
    assert pushed["tracking_class"]["created"] == len(app_classes - qbo_classes.keys())
    assert pulled["tracking_class"]["created"] == len(qbo_classes.keys() - app_classes)
    assert pushed["term"]["created"] == len(app_terms.keys() - qbo_terms.keys())
    assert pulled["term"]["created"] == len(qbo_terms.keys() - app_terms.keys())
    assert pipeline.run().success  # the rows the import and the links wrote are read once more
    assert writes_of(pipeline.run()) == (0, 0)

    after = pipeline.qbo_records()
    for entity, table, names in (("Class", "classes", qbo_classes.keys() | app_classes),
                                 ("Term", "terms", qbo_terms.keys() | app_terms.keys())):
        in_qbo = {record["Id"]: record["Name"] for record in after[entity]}
        in_app = {row["qbo_id"]: row["name"] for row in rows(pipeline, f"SELECT * FROM {table}")}
        assert in_app == in_qbo, entity  # one row per QBO record, each keyed by its Id
        assert sorted(in_qbo.values()) == sorted(names), entity
    terms = by_name(after["Term"], "Name")
    for name, row in by_name(rows(pipeline, "SELECT * FROM terms"), "name").items():
        assert (terms[name].get("DueDays"), terms[name].get("DiscountPercent"),
                terms[name].get("DiscountDays")) == (
            row["due_days"], None if row["discount_percent"] is None
            else float(row["discount_percent"]), row["discount_days"]), name


def test_classes_and_terms_are_kept_both_ways(pipeline: PipelineUnderTest) -> None:
    """Seed 004: classes and terms are a "Full 2-way sync": a class renamed or added in QBO and
    a term made inactive there reach the app; a term changed or added in the app reaches QBO;
    nothing echoes back."""
    synced_twice(pipeline, SPECS)
    classes = {row["name"]: row for row in rows(pipeline, "SELECT * FROM classes")}
    terms = {row["name"]: row for row in rows(pipeline, "SELECT * FROM terms")}
    edit_in_qbo(pipeline, "Class", classes["Maintenance"]["qbo_id"],
                {"Name": "Maintenance contracts"})
    edit_in_qbo(pipeline, "Term", terms["Net 15"]["qbo_id"], {"Active": False})
    added_in_qbo = create_in_qbo(pipeline, "Class", {"Name": "Warranty"})
    touch(pipeline, "UPDATE terms SET due_days = 50, updated_at = :now WHERE name = 'Net 45'")
    touch(pipeline, "INSERT INTO terms (name, due_days, active, created_at, updated_at) "
                    "VALUES ('Net 90', 90, true, :now, :now)")

    result = pipeline.run()
    assert result.success
    assert writes_of(result) == (2, 3)  # to QBO: Net 45, Net 90; to the app: the other three
    classes_after = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM classes")}
    assert classes_after[classes["Maintenance"]["qbo_id"]]["name"] == "Maintenance contracts"
    assert classes_after[added_in_qbo["Id"]]["name"] == "Warranty"
    terms_after = {row["name"]: row for row in rows(pipeline, "SELECT * FROM terms")}
    assert not terms_after["Net 15"]["active"]
    qbo_terms = by_name(pipeline.qbo_records()["Term"], "Name")
    assert qbo_terms["Net 45"]["DueDays"] == 50
    assert qbo_terms["Net 90"]["DueDays"] == 90
    # The next run reads the app's rows just written (their stamps moved), finds them equal,
    # and gives Net 90 the Id of the Term it created (as an invoice's first balance, it comes
    # back on the run after the create); then nothing is left to do.
    assert writes_of(pipeline.run()) == (0, 1)
    [net_90] = rows(pipeline, "SELECT qbo_id FROM terms WHERE name = 'Net 90'")
    assert net_90["qbo_id"] == qbo_terms["Net 90"]["Id"]
    assert writes_of(pipeline.run()) == (0, 0)


# --- accounts and tax codes imported, kept current -------------------------------------------


def test_accounts_are_imported_and_kept_current_when_changed_in_qbo(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Financial Accounts: 1-way import from QuickBooks Online ... Once accounts
    are connected, any changes in QuickBooks Online will update the record" (seed 003: income
    accounts "synced the first time you connect")."""
    first = pipeline.run()
    assert first.success
    assert "account" not in synced_counts(first)  # nothing of it ever goes to QBO
    # Bank accounts are the app's own (seed 002, bank_account.yaml): not imported here.
    qbo_accounts = {a["Id"]: a for a in pipeline.qbo_records()["Account"]
                    if a["AccountType"] != "Bank"}
    assert applied_counts(first)["account"]["created"] == len(qbo_accounts)
    imported = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM accounts")}
    assert set(imported) == set(qbo_accounts)
    for qbo_id, account in qbo_accounts.items():
        row = imported[qbo_id]
        assert (row["name"], row["account_type"], row["account_sub_type"],
                row["classification"], bool(row["active"])) == (
            account["Name"], account["AccountType"], account["AccountSubType"],
            account["Classification"], account["Active"]), qbo_id
    assert "Income" in {row["account_type"] for row in imported.values()}

    by_account_name = {a["Name"]: a["Id"] for a in qbo_accounts.values()}
    edit_in_qbo(pipeline, "Account", by_account_name["Travel"], {"Name": "Travel and meals"})
    edit_in_qbo(pipeline, "Account", by_account_name["Uncategorized Expense"], {"Active": False})
    added = create_in_qbo(pipeline, "Account", {"Name": "Subcontractors", "AcctNum": "5100",
                                                "AccountType": "Cost of Goods Sold"})
    result = pipeline.run()
    assert result.success
    counts = applied_counts(result)["account"]
    assert (counts["created"], counts["updated"]) == (1, 2)
    after = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM accounts")}
    assert after[by_account_name["Travel"]]["name"] == "Travel and meals"
    assert not after[by_account_name["Uncategorized Expense"]]["active"]
    assert (after[added["Id"]]["name"], after[added["Id"]]["account_number"],
            after[added["Id"]]["classification"]) == ("Subcontractors", "5100", "Expense")
    assert len(after) == len(qbo_accounts) + 1
    assert writes_of(pipeline.run()) == (0, 0)


def test_tax_codes_are_imported_and_qbo_stays_their_authority(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Sales Tax Codes: 1-way import from QuickBooks Online ... bulk imported". The
    tax codes are read whole every run (CDC does not serve them), so a code edited in the app
    gets QBO's values back at the next run."""
    first = pipeline.run()
    assert first.success
    codes = {c["Id"]: c for c in pipeline.qbo_records()["TaxCode"]}
    assert applied_counts(first)["tax_code"]["created"] == len(codes) > 0
    imported = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM tax_codes")}
    assert {key: (row["name"], row["description"], bool(row["taxable"]))
            for key, row in imported.items()} == {
        key: (code["Name"], code["Description"], code["Taxable"]) for key, code in codes.items()}

    again = pipeline.run()
    assert applied_counts(again)["tax_code"] == {**applied_counts(again)["tax_code"],
                                                "read": len(codes), "unchanged": len(codes),
                                                "created": 0, "updated": 0}
    some_code = next(iter(codes))
    touch(pipeline, "UPDATE tax_codes SET description = 'edited in the app', "
                    "updated_at = :now WHERE qbo_id = :q", q=some_code)
    restored = pipeline.run()
    assert applied_counts(restored)["tax_code"]["updated"] == 1
    [row] = rows(pipeline, "SELECT description FROM tax_codes WHERE qbo_id = :q", q=some_code)
    assert row["description"] == codes[some_code]["Description"]


def test_a_tax_code_changed_in_qbo_is_kept_current(pipeline: PipelineUnderTest) -> None:
    """Seed 004's "any changes in QuickBooks Online will update the record", for tax codes: a
    code made inactive in QBO's screens becomes inactive in the app."""
    assert pipeline.run().success
    code = next(iter(pipeline.qbo_records()["TaxCode"]))
    response = requests.post(f"{pipeline.realm.base_url}/admin/realms/{pipeline.realm.realm_id}"
                             f"/TaxCode/{code['Id']}/edit", json={"Active": False}, timeout=10)
    # QBO's API only reads tax codes; its screens change them, as the admin edit plays.
    assert response.status_code == 200, response.text
    assert pipeline.run().success
    [row] = rows(pipeline, "SELECT active FROM tax_codes WHERE qbo_id = :q", q=code["Id"])
    assert not row["active"]
