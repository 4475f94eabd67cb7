"""`qbo-pipeline links show|unlink|relink`, and seed 001's repair of a duplicate invoice by
its documented steps: void the duplicate in QuickBooks, relink the record to the right one,
sync; the next run creates nothing new."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from dagster import AssetCheckEvaluation, AssetCheckSeverity, ExecuteInProcessResult

from qbo_pipeline.cli import main
from qbo_pipeline.defs.assets import DUPLICATES_CHECK
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.review.conflicts import list_conflicts
from qbo_pipeline.state import get_links
from qbo_pipeline_tests.defs.conftest import SPECS, PipelineUnderTest


@pytest.fixture
def synced(pipeline: PipelineUnderTest, monkeypatch: pytest.MonkeyPatch) -> PipelineUnderTest:
    """The demo synced twice (invoice balances come back on the second run); the CLI's state
    DB is the pipeline's."""
    monkeypatch.setenv("QBO_STATE_URL", pipeline.state.url)
    assert pipeline.run().success and pipeline.run().success
    return pipeline


def cli(pipeline: PipelineUnderTest, *arguments: str) -> Any:
    return CliRunner().invoke(main, ["links", *arguments, "--realm", pipeline.realm.realm_id])


def linked(pipeline: PipelineUnderTest, spec: str, key: str) -> str:
    with pipeline.sessions.begin() as session:
        return get_links(session, pipeline.realm.realm_id, spec)[key].qbo_id


def invoices(pipeline: PipelineUnderTest) -> dict[str, dict[str, Any]]:
    return {record["Id"]: record for record in pipeline.qbo_records()["Invoice"]}


def test_show_names_the_qbo_record(synced: PipelineUnderTest) -> None:
    shown = cli(synced, "show", "--entity", "client", "--id", "1", "--json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert (view["qbo_entity"], view["qbo_id"]) == ("Customer", linked(synced, "client", "1"))
    assert view["name"] and view["name"] != f"Customer {view['qbo_id']}"
    text = cli(synced, "show", "--entity", "client", "--id", "1")
    assert f"client 1 <-> QBO Customer {view['qbo_id']} ({view['name']})" in text.output


def test_a_duplicate_invoice_is_repaired_by_the_documented_steps(
        synced: PipelineUnderTest) -> None:
    right = linked(synced, "invoice", "2")
    original = invoices(synced)[right]
    client = synced.qbo.client(synced.realm.realm_id, synced.sessions)
    try:  # the duplicate, as a second sync or a person made it; the record linked to it
        copy = {key: value for key, value in original.items()
                if key not in ("Id", "SyncToken", "MetaData", "DocNumber")}
        duplicate = client.create("Invoice", {**copy, "DocNumber": "DUP-2"}, str(uuid.uuid4()))
    finally:
        client.close()
    assert synced.run().success  # the duplicate is fetched
    wrong = cli(synced, "relink", "--entity", "invoice", "--id", "2", "--qbo-id",
                duplicate["Id"], "--by", "ana")
    assert wrong.exit_code == 0, wrong.output

    # The steps: void the duplicate in QuickBooks, relink to the right invoice, sync.
    client = synced.qbo.client(synced.realm.realm_id, synced.sessions)
    try:
        client.void("Invoice", duplicate["Id"], duplicate["SyncToken"], str(uuid.uuid4()))
    finally:
        client.close()
    repaired = cli(synced, "relink", "--entity", "invoice", "--id", "2", "--qbo-id", right,
                   "--by", "ana")
    assert repaired.exit_code == 0, repaired.output
    assert f"is linked to QBO Invoice {right}" in repaired.output
    before = set(invoices(synced))
    assert synced.run().success
    assert set(invoices(synced)) == before  # nothing new
    assert linked(synced, "invoice", "2") == right
    assert list_conflicts(synced.sessions, SPECS, entity="invoice") == []
    assert synced.run().success and set(invoices(synced)) == before


def test_unlink_then_sync_finds_the_record_by_its_match_keys(synced: PipelineUnderTest) -> None:
    qbo_id = linked(synced, "client", "1")
    customers = len(synced.qbo_records()["Customer"])
    done = cli(synced, "unlink", "--entity", "client", "--id", "1", "--by", "ana")
    assert done.exit_code == 0, done.output
    assert "the next sync reads it again" in done.output
    assert synced.run().success
    assert linked(synced, "client", "1") == qbo_id  # matched by DisplayName: no duplicate
    assert len(synced.qbo_records()["Customer"]) == customers


@pytest.mark.parametrize(("arguments", "message"), [
    (["show", "--entity", "client", "--id", "999"], "client 999 is not linked to a QBO record"),
    (["relink", "--entity", "client", "--id", "1", "--qbo-id", "99999", "--by", "ana"],
     "QBO Customer 99999 is not among the records fetched"),
    (["unlink", "--entity", "clients", "--id", "1", "--by", "ana"], "unknown entity 'clients'"),
    (["unlink", "--entity", "client", "--id", "1", "--by", " "], "say who does it (--by)"),
])
def test_a_bad_request_is_refused_clearly_and_changes_nothing(
        synced: PipelineUnderTest, arguments: list[str], message: str) -> None:
    before = linked(synced, "client", "1")
    refused = cli(synced, *arguments)
    assert refused.exit_code != 0 and message in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert linked(synced, "client", "1") == before


def test_a_qbo_record_linked_to_another_row_is_not_taken(synced: PipelineUnderTest) -> None:
    other = linked(synced, "client", "4")
    refused = cli(synced, "relink", "--entity", "client", "--id", "1", "--qbo-id", other,
                  "--by", "ana")
    assert refused.exit_code != 0
    assert f"QBO Customer {other} is linked to client 4: unlink that one first" in refused.output


def duplicates_check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [check] = [e for e in result.get_asset_check_evaluations()
               if e.check_name == DUPLICATES_CHECK and e.asset_key.path[0] == "invoice"]
    return check


def test_a_duplicate_invoice_is_listed_until_it_is_voided(
        synced: PipelineUnderTest, emulator_server: EmulatorServer) -> None:
    right = linked(synced, "invoice", "2")
    original = invoices(synced)[right]
    assert json.loads(cli(synced, "duplicates", "--json").output) == []
    client = synced.qbo.client(synced.realm.realm_id, synced.sessions)
    # A company that does not warn of a reused invoice number, where a second sync (or a
    # person) can make a copy with the same number.
    emulator_server.emulator.backend.set_preference(synced.realm.realm_id,
                                                    "WarnDuplicateDocNum", False)
    try:
        copy = {key: value for key, value in original.items()
                if key not in ("Id", "SyncToken", "MetaData")}
        duplicate = client.create("Invoice", copy, str(uuid.uuid4()))
    finally:
        client.close()
    fetched = synced.run()  # the copy is fetched, and no source row takes it
    assert fetched.success
    check = duplicates_check(fetched)
    assert not check.passed and check.severity is AssetCheckSeverity.WARN
    assert check.metadata["likely_duplicates"].value == 1
    assert check.metadata["where_to_repair"].value == \
        "qbo-pipeline links duplicates --entity invoice"
    listed = cli(synced, "duplicates", "--entity", "invoice", "--json")
    assert listed.exit_code == 0, listed.output
    [found] = json.loads(listed.output)
    assert (found["entity"], found["source_key"], found["qbo_id"], found["duplicate_qbo_id"],
            found["matched_on"]) == ("invoice", "2", right, duplicate["Id"], ["DocNumber"])
    assert found["name"] == found["duplicate_name"] == original["DocNumber"]
    text = cli(synced, "duplicates").output
    assert (f"QBO Invoice {duplicate['Id']} ({original['DocNumber']}) matches invoice 2's QBO "
            f"Invoice {right}") in text
    assert "void (or make inactive) the duplicate in QuickBooks, never delete it" in text

    client = synced.qbo.client(synced.realm.realm_id, synced.sessions)
    try:
        client.void("Invoice", duplicate["Id"], duplicate["SyncToken"], str(uuid.uuid4()))
    finally:
        client.close()
    repaired = synced.run()
    assert repaired.success and duplicates_check(repaired).passed
    assert cli(synced, "duplicates").output.strip() == "no likely duplicates"
    assert linked(synced, "invoice", "2") == right
    unknown = cli(synced, "duplicates", "--entity", "invoices")
    assert unknown.exit_code != 0 and "unknown entity 'invoices'" in unknown.output
