"""Seed 004's customers and jobs, for a company whose `customers_sync` is "when used": a client
goes to QBO when synced by hand or when a record that refers to it syncs; customers made in QBO
stay out of the app; once linked, customer and job are kept both ways but for contact data,
which the app pushes. The default ("always") keeps seed 000's. Real HTTP to the emulator, real
SQLite source and state DBs, Dagster's `materialize`; each test cites the seed line it follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from qbo_pipeline.defs.runner import chain_keys
from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.demo_data import SERVICES
from qbo_pipeline.state import set_realm_setting
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import touch
from qbo_pipeline_tests.defs.test_names_lists import create_in_qbo, links_of
from qbo_pipeline_tests.defs.test_pull_and_two_way import (
    applied_counts,
    edit_in_qbo,
    rows,
    writes_of,
)
from qbo_pipeline_tests.defs.test_sync import assert_counts_add_up, synced_counts

WHEN_USED = "when used"


def customers_sync(pipeline: PipelineUnderTest, value: str) -> None:
    with pipeline.sessions.begin() as session:
        set_realm_setting(session, pipeline.realm.realm_id, "customers_sync", value)


def next_id(pipeline: PipelineUnderTest, table: str) -> int:
    return 1 + max(row["id"] for row in rows(pipeline, f"SELECT id FROM {table}"))


def add_client(pipeline: PipelineUnderTest, name: str, stamp: datetime | None = None) -> str:
    """A new client of the app, with an email (seed 001) so that nothing else holds it back."""
    key = next_id(pipeline, "clients")
    values = {"id": key, "name": name, "email": f"office@{name.split()[0].lower()}.example",
              "contact_first_name": "Rita", "contact_last_name": name.split()[0],
              "active": True}
    if stamp is None:
        touch(pipeline, "INSERT INTO clients (id, name, email, contact_first_name, "
                        "contact_last_name, active, created_at, updated_at) VALUES (:id, :name, "
                        ":email, :contact_first_name, :contact_last_name, :active, :now, :now)",
              **values)
    else:
        engine = sa.create_engine(pipeline.source_url)
        with engine.begin() as connection:
            connection.execute(sa.insert(schema.clients).values(
                **values, created_at=stamp, updated_at=stamp))
        engine.dispose()
    return str(key)


def add_project(pipeline: PipelineUnderTest, client_key: str, name: str) -> str:
    key = next_id(pipeline, "projects")
    touch(pipeline, "INSERT INTO projects (id, client_id, number, name, active, created_at, "
                    "updated_at) VALUES (:id, :client, :number, :name, true, :now, :now)",
          id=key, client=int(client_key), number=f"P-{key:04d}", name=name)
    return str(key)


def customers_named(pipeline: PipelineUnderTest, name: str) -> list[dict[str, Any]]:
    return [c for c in pipeline.qbo_records()["Customer"] if c["DisplayName"] == name]


def qbo_customer(pipeline: PipelineUnderTest, spec: str, key: str) -> dict[str, Any]:
    qbo_id = links_of(pipeline, spec)[key]
    return next(c for c in pipeline.qbo_records()["Customer"] if c["Id"] == qbo_id)


def test_a_client_goes_to_qbo_when_synced_by_hand_or_when_its_project_syncs(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "A customer account only exports to QuickBooks when it is manually synced
    within the QuickBooks section within the Customer Account, or when a Contract/Job,
    Invoice, or Payment are synced", and "When a Customer Account is created in Contractors
    Cloud and used in a Job, the customer will be added as a Customer in QuickBooks"."""
    customers_sync(pipeline, WHEN_USED)
    idle = add_client(pipeline, "Quarry Supplies", datetime(2024, 1, 2, 9))
    first = pipeline.run()
    assert first.success
    assert_counts_add_up(first)
    linked = set(links_of(pipeline, "client"))
    with_projects = {str(row["client_id"]) for row in rows(
        pipeline, "SELECT client_id FROM projects WHERE deleted_at IS NULL")}
    assert linked and linked <= with_projects  # only the clients their projects use
    assert idle not in linked and not customers_named(pipeline, "Quarry Supplies")
    assert synced_counts(first)["client"]["skipped"] >= 1

    # Synced by hand: `sync --entity client --id K`.
    by_hand = pipeline.run(selection=chain_keys(SPECS, "client"), record=f"client/{idle}")
    assert synced_counts(by_hand)["client"]["created"] == 1
    assert [c["Id"] for c in customers_named(pipeline, "Quarry Supplies")] == [
        links_of(pipeline, "client")[idle]]

    # A new client is pushed by the run that syncs its first project, before the project.
    client = add_client(pipeline, "Harbor Dental")
    waiting = pipeline.run()  # not used yet: it waits
    assert synced_counts(waiting)["client"]["created"] == 0
    assert client not in links_of(pipeline, "client")
    project = add_project(pipeline, client, "Reception remodel")
    used = pipeline.run()
    assert used.success
    counts = synced_counts(used)
    assert (counts["client"]["created"], counts["project"]["created"]) == (1, 1)
    job = qbo_customer(pipeline, "project", project)
    assert job["ParentRef"]["value"] == links_of(pipeline, "client")[client]
    assert writes_of(pipeline.run()) == (0, 0)


def test_a_client_is_pushed_when_an_invoice_of_its_project_syncs(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: a customer exports "when a Contract/Job, Invoice, or Payment are synced":
    the client an invoice reaches through its project goes first, in the same run."""
    customers_sync(pipeline, WHEN_USED)
    assert pipeline.run().success
    client = add_client(pipeline, "Linden Bakery")
    project = add_project(pipeline, client, "Oven hall")
    invoice = next_id(pipeline, "invoices")
    touch(pipeline, "INSERT INTO invoices (id, project_id, number, issue_date, due_date, "
                    "tax_rate, tax_amount, status, created_at, updated_at) VALUES (:id, "
                    ":project, :number, :day, :day, 0, 0, 'sent', :now, :now)",
          id=invoice, project=int(project), number=f"INV-{invoice}",
          day=datetime.now(UTC).date())
    engine = sa.create_engine(pipeline.source_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(schema.invoice_lines).values(
            id=next_id(pipeline, "invoice_lines"), invoice_id=invoice, line_no=1,
            description="Design", quantity=2, unit_price=50, amount=100,
            service_name=SERVICES[0][0]))
    engine.dispose()
    # A per-record sync of the invoice: `sync --entity invoice --id K`.
    result = pipeline.run(selection=chain_keys(SPECS, "invoice"), record=f"invoice/{invoice}")
    assert result.success
    counts = synced_counts(result)
    assert (counts["client"]["created"], counts["project"]["created"],
            counts["invoice"]["created"]) == (1, 1, 1)
    qbo_invoice = next(i for i in pipeline.qbo_records()["Invoice"]
                       if i["Id"] == links_of(pipeline, "invoice")[str(invoice)])
    assert qbo_invoice["CustomerRef"]["value"] == links_of(pipeline, "project")[project]


def test_customers_created_in_qbo_do_not_come_into_the_app(pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Customer accounts created in QuickBooks Online do not sync into Contractors
    Cloud" (the client spec pulls into linked rows only)."""
    customers_sync(pipeline, WHEN_USED)
    assert pipeline.run().success
    before = rows(pipeline, "SELECT COUNT(*) AS n FROM clients")[0]["n"]
    create_in_qbo(pipeline, "Customer", {"DisplayName": "Walk-in Customer",
                                         "CompanyName": "Walk-in Customer"})
    result = pipeline.run()
    assert result.success
    assert applied_counts(result)["client"]["created"] == 0
    assert rows(pipeline, "SELECT COUNT(*) AS n FROM clients")[0]["n"] == before
    assert not rows(pipeline, "SELECT id FROM clients WHERE name = 'Walk-in Customer'")


def test_a_linked_customer_and_job_come_back_but_their_contact_data_is_pushed_again(
        pipeline: PipelineUnderTest) -> None:
    """Seed 004: "Customer accounts updated in QuickBooks Online only flow into Contractors
    Cloud if the account was previously synced", "Once the customer is connected, it is a
    2-way sync from that point on", and "Customer contact data (First name, Last name, email,
    phone) is a 1-way push into QuickBooks"."""
    customers_sync(pipeline, WHEN_USED)
    assert pipeline.run().success
    assert pipeline.run().success
    client = sorted(links_of(pipeline, "client"), key=int)[0]
    project = str(rows(pipeline, "SELECT id FROM projects WHERE client_id = :c AND deleted_at "
                                 "IS NULL ORDER BY id", c=int(client))[0]["id"])
    [app] = rows(pipeline, "SELECT * FROM clients WHERE id = :c", c=int(client))
    customer = qbo_customer(pipeline, "client", client)
    job = qbo_customer(pipeline, "project", project)
    edit_in_qbo(pipeline, "Customer", customer["Id"], {
        "BillAddr": {**customer.get("BillAddr", {}), "City": "Springfield"},
        "GivenName": "Changed", "PrimaryEmailAddr": {"Address": "changed@qbo.example"}})
    edit_in_qbo(pipeline, "Customer", job["Id"], {
        "ShipAddr": {**job.get("ShipAddr", {}), "City": "Shelbyville"}})

    result = pipeline.run()
    assert result.success
    assert applied_counts(result)["client"]["updated"] == 1
    [after] = rows(pipeline, "SELECT * FROM clients WHERE id = :c", c=int(client))
    assert after["city"] == "Springfield"  # non-contact data comes back
    assert (after["contact_first_name"], after["email"]) == (app["contact_first_name"],
                                                             app["email"])
    again = qbo_customer(pipeline, "client", client)  # the app's contact data, pushed again
    assert (again["GivenName"], again["PrimaryEmailAddr"]["Address"]) == (
        app["contact_first_name"], app["email"])
    assert again["BillAddr"]["City"] == "Springfield"
    [job_row] = rows(pipeline, "SELECT job_city FROM projects WHERE id = :p", p=int(project))
    assert job_row["job_city"] == "Shelbyville"
    # No echo: the rows the pull wrote are read again (their stamps moved) and found equal.
    later = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    settled = pipeline.run(run_config={"ops": {name: {"config": {"as_of": later}}
                                               for name in ("client", "project")}})
    assert writes_of(settled) == (0, 0)


def test_by_default_every_client_is_pushed_and_nothing_comes_back(
        pipeline: PipelineUnderTest) -> None:
    """Seed 000: "Clients -> Customers (QBO)" for every client, the default: a client with no
    project is pushed, and a change made in QuickBooks is not written into the app."""
    idle = add_client(pipeline, "Quarry Supplies", datetime(2024, 1, 2, 9))
    first = pipeline.run()
    assert first.success
    assert idle in links_of(pipeline, "client")
    assert applied_counts(first)["client"] == {**applied_counts(first)["client"], "read": 0,
                                               "created": 0, "updated": 0}
    customer = qbo_customer(pipeline, "client", idle)
    edit_in_qbo(pipeline, "Customer", customer["Id"], {"BillAddr": {"City": "Springfield"}})
    assert pipeline.run().success
    [row] = rows(pipeline, "SELECT city FROM clients WHERE id = :c", c=int(idle))
    assert row["city"] is None
