"""The `qbo-pipeline` commands: the emulator configured from its options; the demo, connect
and sync commands running real syncs through Dagster against the emulator over HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from qbo_pipeline.cli import main
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.defs.runner import connected_realms
from qbo_pipeline.emulator.server import EmulatorServer, free_port
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.state import get_cursor, get_links
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE
from qbo_pipeline_tests.conftest import connect_realm


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the emulator command exited early"
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


@pytest.fixture
def emulator_command(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    state = tmp_path / "emulator.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "qbo_pipeline.cli", "emulator", "--port", str(port),
         "--state", str(state), "--fault", "server_error=0", "--log-level", "warning"])
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base_url}/.well-known/openid_configuration", process)
        yield base_url, state
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_emulator_command_serves_qbo_and_keeps_state_in_the_file(
        emulator_command: tuple[str, Path]) -> None:
    base_url, state = emulator_command
    realm = connect_realm(base_url)
    created = realm.post("customer", {"DisplayName": "Cli Test Co"})
    assert created.status_code == 200, created.text
    assert state.exists() and state.stat().st_size > 0


def test_emulator_command_refuses_a_bad_fault_switch() -> None:
    result = CliRunner().invoke(main, ["emulator", "--fault", "server_error=1.5"])
    assert result.exit_code != 0
    assert "server_error" in result.output and "between 0 and 1" in result.output


# --- demo, connect, sync ---------------------------------------------------------------------


@dataclass
class DemoRun:
    workdir: Path
    output: str
    realm_id: str

    @property
    def state(self) -> StateDatabase:
        return StateDatabase(url=f"sqlite:///{self.workdir / 'state.sqlite'}")

    @property
    def source_url(self) -> str:
        return f"sqlite:///{self.workdir / 'source.sqlite'}"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`qbo-pipeline demo` once for the module: its workdir is where the sync tests start."""
    workdir = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_VARIABLE, Fernet.generate_key().decode())
        patch.delenv("DAGSTER_HOME", raising=False)
        result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir), "--clients", "6"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        realms = connected_realms(StateDatabase(url=f"sqlite:///{workdir / 'state.sqlite'}"))
        assert len(realms) == 1, realms
        yield DemoRun(workdir, result.output, realms[0])


def test_demo_syncs_a_demo_company_and_names_the_quarantined_rows(demo_run: DemoRun) -> None:
    output = demo_run.output
    # Progress: one line per materialized stage, however many months the run spans (it was
    # one line per month and stage: 36 "employee/validated" lines for a run of three years).
    stages = re.findall(r"\n  ([a-z_]+/[a-z_]+) ", output)
    assert "time_entry/synced" in stages
    assert len(stages) == len(set(stages)), output
    # created, updated, unchanged, quarantined, conflicts, failed: 6 clients, 2 held back
    assert re.search(r"\n  client +4 +0 +0 +2 +0 +0\n", output), output
    # Users by type (seed 004): 2 subcontractors as Vendors; 4 vendors, the one named as a
    # client renamed (display_name_collision), not held back.
    assert re.search(r"\n  contractor +2 +0 +0 +0 +0 +0\n", output), output
    assert re.search(r"\n  vendor +4 +0 +0 +0 +0 +0\n", output), output
    # Seed 004: "Payments created in Contractors Cloud will export to QuickBooks Online": the
    # demo's payments of its invoices, none held back.
    paid = re.search(r"\n  payment +(\d+) +0 +0 +0 +0 +0\n", output)
    assert paid is not None and int(paid[1]) > 0, output
    # Seed 002's write-offs, as credit memos the demo company enables (seed 004), each applied
    # to its invoice; the one above what its invoice owes is held back, and so is its credit.
    assert re.search(r"\n  credit_memo +2 +0 +0 +1 +0 +0\n", output), output
    assert re.search(r"\n  credit_memo_applied +2 +0 +0 +1 +0 +0\n", output), output
    # Seed 001's expenses as Purchases, the paid ones (seed 004's default "Paid"): two held
    # back (a negative amount, an unknown category) and one QBO refuses (a card paid from the
    # bank); seed 004's bills, one held back for its line's unknown category.
    assert re.search(r"\n  expense +9 +0 +0 +2 +0 +1\n", output), output
    assert re.search(r"\n  bill +2 +0 +0 +1 +0 +0\n", output), output
    assert "\n  expense 4: Line[0].AccountBasedExpenseLineDetail.AccountRef needs a " \
           "QuickBooks Account with Name 'Yacht Charter'" in output
    # Seed 004's classes and terms both ways: the app's made in QBO or linked by name (Net 30,
    # Commercial), QBO's imported into the app.
    assert re.search(r"\n  term +2 +0 +1 +0 +0 +0\n", output), output
    assert re.search(r"\n  tracking_class +1 +0 +1 +0 +0 +0\n", output), output
    # Seed 002: the firm's bank accounts (Checking linked to QBO's by name and updated; one of
    # no kind held back, one QBO refuses as named like its Travel account), deposit slips into
    # them and hard costs paid from them, the bad ones held back.
    assert re.search(r"\n  bank_account +2 +1 +0 +1 +0 +1\n", output), output
    assert re.search(r"\n  deposit +4 +0 +0 +3 +0 +0\n", output), output
    assert re.search(r"\n  hard_cost +1 +0 +0 +2 +0 +0\n", output), output
    imported = output.split("from QuickBooks into the source:")[1]
    # Seeds 003 and 004: the new company's chart of accounts and its tax codes imported (but
    # its Checking, a bank account: bank_account.yaml's; the demo's trust liability account).
    assert re.search(r"\n  account +13 +0 +0 +0 +0 +0\n", imported), output
    # Seed 004: QBO's recent bills imported, but not the two the app pushed (still its own).
    assert re.search(r"\n  imported_bill +0 +0 +0 +0 +0 +0\n", imported), output
    assert re.search(r"\n  tax_code +2 +0 +0 +0 +0 +0\n", imported), output
    assert re.search(r"\n  term +3 +1 +0 +0 +0 +0\n", imported), output
    assert re.search(r"\n  tracking_class +1 +1 +0 +0 +0 +0\n", imported), output
    header, first_line = output.split("Synced demo company")[1].splitlines()[1:3]
    # The first entity in dependency order is bank_account, 2 created: right-aligned.
    assert header.index("created") + len("created") == first_line.index("2") + 1
    assert "Quarantined rows (18)" in output
    assert "\n  write-off 1: Line[0].Amount is required - the write-off is more than" in output
    # Named, with the QBO record holding its name (client 1's name holds a quote: "...").
    assert re.search(r"\nRenamed in QuickBooks \(1\).*\n  vendor 4: named [\"'].+ \(Vendor\)"
                     r"[\"'] in QuickBooks \(Id \d+\), since [\"'].+[\"'] is taken by "
                     r"QuickBooks Customer \d+\n", output), output
    assert "\n  client 2: PrimaryEmailAddr.Address is required" in output
    assert "\n  time entry 1: Hours 25.0 is above the maximum of 24" in output
    assert "\n  hard cost 3: PaymentType is required - pay the hard cost from" in output
    assert "dagster dev -w workspace.yaml" in output
    assert f"qbo-pipeline emulator --state {demo_run.workdir / 'emulator.sqlite'}" in output
    assert f"DAGSTER_HOME={demo_run.workdir / 'dagster_home'}" in output
    assert any((demo_run.workdir / "dagster_home").iterdir())  # the runs, for the UI


@pytest.fixture
def restarted_demo(demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo company served again from the emulator's state file, and the environment the
    README gives `dagster dev`; yields the emulator's URL."""
    with EmulatorServer(EmulatorConfig(state_file=demo_run.workdir / "emulator.sqlite")) as qbo:
        for name, value in {"QBO_SOURCE_URL": demo_run.source_url,
                            "QBO_STATE_URL": demo_run.state.url, "QBO_BASE_URL": qbo.base_url,
                            SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        yield qbo.base_url


def test_sync_of_one_record_updates_exactly_that_record(demo_run: DemoRun,
                                                        restarted_demo: str) -> None:
    # The emulator keeps tokens in memory: after its restart the company is reconnected.
    connected = CliRunner().invoke(main, ["connect", "--realm", demo_run.realm_id])
    assert connected.exit_code == 0, connected.output
    _change_client_phones(demo_run, {"1": "555-0101", "4": "555-0104"})

    one = CliRunner().invoke(main, ["sync", "--entity", "client", "--id", "1"])
    assert one.exit_code == 0, one.output + repr(one.exception)
    assert re.search(r"\n  client +0 +1 +0 +0 +0 +0\n", one.output), one.output
    phones = _qbo_client_phones(demo_run, restarted_demo)
    assert phones["1"] == "555-0101" and phones["4"] != "555-0104"

    # The one-record sync left the cursor alone: the next sync still finds client 4's change.
    rest = CliRunner().invoke(main, ["sync", "--realm", demo_run.realm_id, "--entity", "client"])
    assert rest.exit_code == 0, rest.output + repr(rest.exception)
    assert _qbo_client_phones(demo_run, restarted_demo)["4"] == "555-0104"


def test_backfill_resyncs_the_days_asked_for_and_refuses_a_range_backwards(
        demo_run: DemoRun, restarted_demo: str) -> None:
    connected = CliRunner().invoke(main, ["connect", "--realm", demo_run.realm_id])
    assert connected.exit_code == 0, connected.output
    engine = sa.create_engine(demo_run.source_url)
    with engine.connect() as connection:
        day = str(connection.execute(sa.text(
            "SELECT MIN(issue_date) FROM invoices WHERE deleted_at IS NULL")).scalar_one())[:10]
    engine.dispose()
    result = CliRunner().invoke(main, ["backfill", "--realm", demo_run.realm_id, "--from", day,
                                       "--to", day, "--entity", "invoice"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"transactions dated {day}..{day}" in result.output
    assert f"invoice {day[:7]}: {day} read " in result.output  # the day's progress line
    backwards = CliRunner().invoke(main, ["backfill", "--realm", demo_run.realm_id,
                                          "--from", "2026-03-09", "--to", "2026-03-04"])
    assert backwards.exit_code != 0 and "--to 2026-03-04 is before --from" in backwards.output


def test_a_bill_deleted_in_the_app_is_listed_for_a_person_once(
        demo_run: DemoRun, restarted_demo: str) -> None:
    """Seed 004: "Contractors Cloud contains no deletion functionality in QuickBooks.
    Therefore, if an entity is deleted in Contractors Cloud, it should be manually deleted or
    made inactive in QuickBooks": the sync that finds the bill deleted names it and its QBO
    Bill, for a person; the next sync does not name it again."""
    connected = CliRunner().invoke(main, ["connect", "--realm", demo_run.realm_id])
    assert connected.exit_code == 0, connected.output
    with demo_run.state.sessions().begin() as session:
        links = get_links(session, demo_run.realm_id, "bill")
        cursor = get_cursor(session, demo_run.realm_id, "bill")
        assert cursor is not None and cursor.change_window_end is not None
    bill, link = sorted(links.items())[0]
    deleted_at = cursor.change_window_end.replace(tzinfo=None) + timedelta(milliseconds=1)
    engine = sa.create_engine(demo_run.source_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE bills SET deleted_at = :at, updated_at = :at "
                                   "WHERE id = :id"), {"at": deleted_at, "id": int(bill)})
    engine.dispose()

    first = CliRunner().invoke(main, ["sync", "--realm", demo_run.realm_id, "--entity", "bill"])
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert ("\nDeleted in the app, to delete or void in QuickBooks by hand (1):\n"
            f"  bill {bill} was deleted in the app: delete or void Bill {link.qbo_id} in "
            "QuickBooks by hand\n") in first.output
    again = CliRunner().invoke(main, ["sync", "--realm", demo_run.realm_id, "--entity", "bill"])
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert "Deleted in the app" not in again.output


def _change_client_phones(demo_run: DemoRun, phones: dict[str, str]) -> None:
    """Change clients in the source, stamped just after the window the demo's run covered."""
    with demo_run.state.sessions().begin() as session:
        cursor = get_cursor(session, demo_run.realm_id, "client")
        assert cursor is not None and cursor.change_window_end is not None
        changed_at = cursor.change_window_end.replace(tzinfo=None) + timedelta(milliseconds=1)
    engine = sa.create_engine(demo_run.source_url)
    with engine.begin() as connection:
        for client_id, phone in phones.items():
            connection.execute(sa.text("UPDATE clients SET phone = :phone, updated_at = :at "
                                       "WHERE id = :id"),
                               {"phone": phone, "at": changed_at, "id": int(client_id)})
    engine.dispose()


def _qbo_client_phones(demo_run: DemoRun, base_url: str) -> dict[str, str]:
    """Each linked client's phone as QBO has it, read from the emulator's admin dump."""
    with demo_run.state.sessions().begin() as session:
        links = {key: link.qbo_id for key, link in
                 get_links(session, demo_run.realm_id, "client").items()}
    dump = requests.get(f"{base_url}/admin/realms/{demo_run.realm_id}/dump", timeout=10)
    assert dump.status_code == 200, dump.text
    customers = {c["Id"]: c for c in dump.json()["objects"]["Customer"]}
    return {key: customers[qbo_id].get("PrimaryPhone", {}).get("FreeFormNumber", "")
            for key, qbo_id in links.items()}


def test_sync_without_a_connected_company_says_how_to_connect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite'}")
    result = CliRunner().invoke(main, ["sync"])
    assert result.exit_code != 0
    assert "no QBO company is connected" in result.output
    assert "qbo-pipeline connect" in result.output


def test_sync_of_an_unknown_entity_lists_the_known_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite'}")
    result = CliRunner().invoke(main, ["sync", "--entity", "clients"])
    assert result.exit_code != 0
    assert "unknown entity 'clients'" in result.output
    assert ("account, bank_account, bill, client, contractor, credit_memo, credit_memo_applied, "
            "deposit, employee, expense, hard_cost, imported_bill, invoice, "
            "payment, project, service, tax_code, term, time_entry, tracking_class, vendor"
            in result.output)


def test_sync_of_one_record_needs_its_entity() -> None:
    result = CliRunner().invoke(main, ["sync", "--id", "1"])
    assert result.exit_code != 0
    assert "--id needs --entity" in result.output


def test_sync_of_a_realm_that_is_not_connected_names_the_connected_ones(
        demo_run: DemoRun, restarted_demo: str) -> None:
    result = CliRunner().invoke(main, ["sync", "--realm", "999"])
    assert result.exit_code != 0
    assert "realm 999 is not connected" in result.output and demo_run.realm_id in result.output


def test_demo_refuses_too_few_clients_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path), "--clients", "1"])
    assert result.exit_code != 0
    assert "clients=1" in result.output
