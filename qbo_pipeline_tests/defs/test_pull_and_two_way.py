"""Pull and two-way, end to end: QBO Items imported into the source, clients both ways under
each conflict policy, invoices paid in QBO becoming paid in the source. Real HTTP to the
emulator, real SQLite source and state DBs, Dagster's `materialize`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from dagster import ExecuteInProcessResult

from qbo_pipeline.specs import SpecSet, load_specs
from qbo_pipeline.state import get_links, list_conflicts, list_quarantine
from qbo_pipeline_tests.company import two_way_specs
from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_holds_and_cursor import scalar, touch
from qbo_pipeline_tests.defs.test_sync import synced_counts

SHIPPED_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"


def applied_counts(result: ExecuteInProcessResult) -> dict[str, dict[str, int]]:
    return synced_counts(result, "applied")


def writes_of(result: ExecuteInProcessResult) -> tuple[int, int]:
    """(writes to QBO, writes into the source) of one run, over every spec."""
    to_qbo = sum(c["created"] + c["updated"] for c in synced_counts(result).values())
    to_source = sum(c["created"] + c["updated"] for c in applied_counts(result).values())
    return to_qbo, to_source


def rows(pipeline: PipelineUnderTest, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(pipeline.source_url)
    with engine.connect() as connection:
        found = [dict(row) for row in connection.execute(sa.text(sql), params).mappings()]
    engine.dispose()
    return found


def edit_in_qbo(pipeline: PipelineUnderTest, entity: str, qbo_id: str,
                changes: dict[str, Any]) -> dict[str, Any]:
    """A bookkeeper edits the record in QBO now (the emulator's admin endpoint)."""
    response = requests.post(f"{pipeline.realm.base_url}/admin/realms/"
                             f"{pipeline.realm.realm_id}/{entity}/{qbo_id}/edit",
                             json=changes, timeout=10)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[entity]
    return record


def qbo_record(pipeline: PipelineUnderTest, entity: str, qbo_id: str) -> dict[str, Any]:
    return next(r for r in pipeline.qbo_records()[entity] if r["Id"] == qbo_id)


def linked_id(pipeline: PipelineUnderTest, spec_name: str, key: str) -> str:
    with pipeline.sessions.begin() as session:
        return get_links(session, pipeline.realm.realm_id, spec_name)[key].qbo_id


# --- a pull spec: QBO Items -> services ------------------------------------------------------


def test_qbo_service_items_are_imported_once_and_kept_current(
        pipeline: PipelineUnderTest) -> None:
    first = pipeline.run()
    assert first.success
    services = {i["Id"]: i for i in pipeline.qbo_records()["Item"] if i["Type"] == "Service"}
    imported = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM services")}
    assert set(imported) == set(services)
    assert {row["name"] for row in imported.values()} == {i["Name"] for i in services.values()}
    assert applied_counts(first)["service"]["created"] == len(services)

    again = pipeline.run()
    assert applied_counts(again)["service"]["created"] == 0
    assert applied_counts(again)["service"]["updated"] == 0

    renamed, retired = sorted(services)[:2]
    edit_in_qbo(pipeline, "Item", renamed, {"Name": "Bookkeeping (monthly)"})
    edit_in_qbo(pipeline, "Item", retired, {"Active": False})
    result = pipeline.run()
    assert applied_counts(result)["service"]["updated"] == 2
    after = {row["qbo_id"]: row for row in rows(pipeline, "SELECT * FROM services")}
    assert after[renamed]["name"] == "Bookkeeping (monthly)"
    assert not after[retired]["active"]
    assert [row for key, row in after.items() if key not in (renamed, retired)] == [
        row for key, row in imported.items() if key not in (renamed, retired)]
    assert len(after) == len(imported)


# --- clients both ways -----------------------------------------------------------------------


def two_way_clients(folder: Path, policy: str) -> SpecSet:
    """The shipped specs, with clients two-way in every field for every company, under one
    conflict policy."""
    two_way_specs(folder)
    client = yaml.safe_load((folder / "client.yaml").read_text())
    client["conflict"] = {"default": policy}
    (folder / "client.yaml").write_text(yaml.safe_dump(client, sort_keys=False))
    return load_specs(folder)


def synced_twice(pipeline: PipelineUnderTest, specs: SpecSet) -> None:
    """A full sync, then the run that brings back what QBO computed for the records created
    (invoice balances), then nothing is left to do."""
    assert pipeline.run(specs=specs).success
    assert pipeline.run(specs=specs).success
    assert writes_of(pipeline.run(specs=specs)) == (0, 0)


def client_phone(pipeline: PipelineUnderTest, key: str) -> str | None:
    value = scalar(pipeline, "SELECT phone FROM clients WHERE id = :k", k=key)
    return None if value is None else str(value)


def qbo_phone(pipeline: PipelineUnderTest, key: str) -> str | None:
    customer = qbo_record(pipeline, "Customer", linked_id(pipeline, "client", key))
    phone: str | None = customer.get("PrimaryPhone", {}).get("FreeFormNumber")
    return phone


def test_a_phone_changed_in_qbo_lands_in_the_source_only(pipeline: PipelineUnderTest,
                                                        tmp_path: Path) -> None:
    specs = two_way_clients(tmp_path, "review")
    synced_twice(pipeline, specs)
    edit_in_qbo(pipeline, "Customer", linked_id(pipeline, "client", "5"),
                {"PrimaryPhone": {"FreeFormNumber": "555-0142"}})
    result = pipeline.run(specs=specs)
    assert writes_of(result) == (0, 1)
    assert client_phone(pipeline, "5") == "555-0142"
    assert writes_of(pipeline.run(specs=specs)) == (0, 0)  # no echo back to QBO


def test_an_email_changed_in_the_source_lands_in_qbo_only(pipeline: PipelineUnderTest,
                                                         tmp_path: Path) -> None:
    specs = two_way_clients(tmp_path, "review")
    synced_twice(pipeline, specs)
    touch(pipeline, "UPDATE clients SET email = 'accounts@example.com', updated_at = :now "
                    "WHERE id = 5")
    result = pipeline.run(specs=specs)
    assert writes_of(result) == (1, 0)
    customer = qbo_record(pipeline, "Customer", linked_id(pipeline, "client", "5"))
    assert customer["PrimaryEmailAddr"]["Address"] == "accounts@example.com"
    assert writes_of(pipeline.run(specs=specs)) == (0, 0)  # no echo back to the source


@pytest.mark.parametrize(("policy", "source_later", "winner"), [
    ("review", False, None),
    ("source_wins", False, "source"),
    ("qbo_wins", False, "qbo"),
    ("last_modified_wins", False, "qbo"),
    ("last_modified_wins", True, "source"),
])
def test_both_sides_changed_the_field_policy_decides(
        pipeline: PipelineUnderTest, tmp_path: Path, policy: str, source_later: bool,
        winner: str | None) -> None:
    specs = two_way_clients(tmp_path, policy)
    synced_twice(pipeline, specs)
    edited = edit_in_qbo(pipeline, "Customer", linked_id(pipeline, "client", "5"),
                         {"PrimaryPhone": {"FreeFormNumber": "555-0100"}})
    run_config = None
    if source_later:
        # The source's change comes 2 s after QBO's; the run reads up to it.
        qbo_at = datetime.fromisoformat(edited["MetaData"]["LastUpdatedTime"])
        stamp = (qbo_at + timedelta(seconds=2)).astimezone(UTC).replace(tzinfo=None)
        engine = sa.create_engine(pipeline.source_url)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE clients SET phone = '555-0199', updated_at = :at "
                                       "WHERE id = 5"), {"at": stamp})
        engine.dispose()
        moment = (qbo_at + timedelta(seconds=10)).isoformat()
        run_config = {"ops": {"client": {"config": {"as_of": moment}}}}
    else:
        touch(pipeline, "UPDATE clients SET phone = '555-0199', updated_at = :now WHERE id = 5")
    result = pipeline.run(specs=specs, run_config=run_config)
    assert result.success
    expected = {"source": ("555-0199", "555-0199"), "qbo": ("555-0100", "555-0100"),
                None: ("555-0199", "555-0100")}[winner]
    assert (client_phone(pipeline, "5"), qbo_phone(pipeline, "5")) == expected
    with pipeline.sessions.begin() as session:
        open_conflicts = [c.source_key for c in list_conflicts(
            session, pipeline.realm.realm_id, "client")]
    assert open_conflicts == (["5"] if winner is None else [])
    # Nothing echoes: the side that won is not written back by the next run.
    assert writes_of(pipeline.run(specs=specs)) == (0, 0)


# --- invoices paid in QBO --------------------------------------------------------------------


def pay(pipeline: PipelineUnderTest, invoice: dict[str, Any], amount: Decimal) -> None:
    body = {"CustomerRef": invoice["CustomerRef"], "TotalAmt": float(amount), "Line": [
        {"Amount": float(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]}
    response = pipeline.realm.post("payment", body)
    assert response.status_code == 200, response.text


def test_an_invoice_paid_in_full_in_qbo_becomes_paid_in_the_source(
        pipeline: PipelineUnderTest) -> None:
    """Seed 001: "if QB marks an invoice fully paid, the invoice becomes PAID automatically
    ... without creating a conflict"; a partial payment only moves the balance."""
    assert pipeline.run().success
    assert pipeline.run().success  # the balances QBO computed come back once
    paid_key, partial_key = [str(row["id"]) for row in rows(
        pipeline, "SELECT id FROM invoices WHERE deleted_at IS NULL AND status != 'paid' "
                  "AND balance IS NOT NULL ORDER BY id LIMIT 2")]
    paid = qbo_record(pipeline, "Invoice", linked_id(pipeline, "invoice", paid_key))
    partial = qbo_record(pipeline, "Invoice", linked_id(pipeline, "invoice", partial_key))
    status_before = scalar(pipeline, "SELECT status FROM invoices WHERE id = :k", k=partial_key)
    pay(pipeline, paid, Decimal(str(paid["Balance"])))
    pay(pipeline, partial, Decimal("10"))
    result = pipeline.run()
    assert result.success
    assert applied_counts(result)["invoice"]["updated"] == 2
    after = {str(row["id"]): row for row in rows(
        pipeline, "SELECT id, status, balance FROM invoices WHERE id IN (:a, :b)",
        a=paid_key, b=partial_key)}
    assert (after[paid_key]["status"], Decimal(str(after[paid_key]["balance"]))) == (
        "paid", Decimal("0"))
    assert after[partial_key]["status"] == status_before
    assert Decimal(str(after[partial_key]["balance"])) == (
        Decimal(str(partial["Balance"])) - Decimal("10"))
    with pipeline.sessions.begin() as session:
        assert list_conflicts(session, pipeline.realm.realm_id, "invoice") == []
    assert writes_of(pipeline.run()) == (0, 0)


# --- bad pulled records, and deletes in QBO --------------------------------------------------


def shipped_with(folder: Path, name: str, old: str, new: str) -> SpecSet:
    """The shipped specs, one of them changed."""
    for spec_file in SHIPPED_SPECS.glob("*.yaml"):
        shutil.copy(spec_file, folder / spec_file.name)
    text = (folder / f"{name}.yaml").read_text()
    assert old in text
    (folder / f"{name}.yaml").write_text(text.replace(old, new))
    return load_specs(folder)


def test_a_pulled_record_the_source_would_reject_is_held_back_whole(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    """A service name longer than the spec allows is quarantined with its reason; the other
    Items are imported, and the bad one is written once QBO's name fits."""
    specs = shipped_with(tmp_path, "service", "max_length: 100", "max_length: 12")
    result = pipeline.run(specs=specs)
    assert result.success
    services = [i for i in pipeline.qbo_records()["Item"] if i["Type"] == "Service"]
    long_names = [i for i in services if len(i["Name"]) > 12]
    assert long_names and len(long_names) < len(services)
    counts = applied_counts(result)["service"]
    assert (counts["created"], counts["quarantined"]) == (
        len(services) - len(long_names), len(long_names))
    imported = {row["qbo_id"] for row in rows(pipeline, "SELECT qbo_id FROM services")}
    assert imported.isdisjoint({i["Id"] for i in long_names})
    with pipeline.sessions.begin() as session:
        held = list_quarantine(session, pipeline.realm.realm_id, "service.pull")
    assert len(held) == len(long_names)
    assert all("Name" in " ".join(row.reasons) for row in held)
    fixed = long_names[0]
    edit_in_qbo(pipeline, "Item", fixed["Id"], {"Name": "Short"})
    assert applied_counts(pipeline.run(specs=specs))["service"]["created"] == 1
    assert fixed["Id"] in {row["qbo_id"] for row in rows(pipeline, "SELECT qbo_id FROM services")}


def test_an_invoice_deleted_in_qbo_is_marked_deleted_in_the_source(
        pipeline: PipelineUnderTest, tmp_path: Path) -> None:
    """CDC's Deleted status is honoured: with `on_qbo_delete: set_deleted`, the source row
    gets its deleted_at, and the push side does not try to void what QBO no longer has."""
    specs = shipped_with(tmp_path, "invoice", "  target: linked\n",
                         "  target: linked\n  on_qbo_delete: set_deleted\n")
    synced_twice(pipeline, specs)
    # One no payment is applied to: QBO deletes no invoice that payments are applied to.
    key = str(rows(pipeline, "SELECT id FROM invoices WHERE deleted_at IS NULL AND "
                             "balance IS NOT NULL AND id NOT IN (SELECT invoice_id FROM "
                             "payments) ORDER BY id LIMIT 1")[0]["id"])
    invoice = qbo_record(pipeline, "Invoice", linked_id(pipeline, "invoice", key))
    response = pipeline.realm.post("invoice?operation=delete",
                                   {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]})
    assert response.status_code == 200, response.text
    result = pipeline.run(specs=specs)
    assert result.success
    assert scalar(pipeline, "SELECT deleted_at FROM invoices WHERE id = :k", k=key) is not None
    later = pipeline.run(specs=specs)
    assert synced_counts(later)["invoice"]["failed"] == 0
    assert writes_of(later) == (0, 0)
