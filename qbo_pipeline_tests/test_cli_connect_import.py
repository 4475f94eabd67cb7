"""The import on connect (seeds 000 and 003): connecting a company that already has customers,
employees and services in QuickBooks links the source's records to them by the specs' match
keys and imports the services, in one Dagster run that writes nothing to QBO; the first sync
then creates only what QBO lacks. Real HTTP to the emulator, real SQLite databases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from qbo_pipeline.cli import main
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.source.demo_data import generate_demo_data
from qbo_pipeline.state import get_links
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE


@dataclass
class Fresh:
    """A company in QBO that the pipeline has never seen, and a source with its records."""

    realm_id: str
    base_url: str
    source_url: str
    state: StateDatabase

    def records(self, entity: str) -> list[dict[str, Any]]:
        dump = requests.get(f"{self.base_url}/admin/realms/{self.realm_id}/dump", timeout=10)
        assert dump.status_code == 200, dump.text
        found: list[dict[str, Any]] = dump.json()["objects"].get(entity, [])
        return found

    def row(self, sql: str) -> dict[str, Any]:
        engine = sa.create_engine(self.source_url)
        with engine.connect() as connection:
            found = dict(connection.execute(sa.text(sql)).mappings().one())
        engine.dispose()
        return found

    def linked(self, spec: str) -> dict[str, str]:
        with self.state.sessions().begin() as session:
            return {key: link.qbo_id
                    for key, link in get_links(session, self.realm_id, spec).items()}


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fresh]:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_data(source_url, clients=6)
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with EmulatorServer(EmulatorConfig()) as qbo:
        for name, value in {"QBO_SOURCE_URL": source_url, "QBO_STATE_URL": state.url,
                            "QBO_BASE_URL": qbo.base_url, "QBO_SYNC_START_DATE": "2000-01-01",
                            SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        created = requests.post(f"{qbo.base_url}/admin/realms", json={}, timeout=10)
        assert created.status_code == 201, created.text
        yield Fresh(created.json()["realm_id"], qbo.base_url, source_url, state)


def test_connecting_a_company_links_its_records_instead_of_creating_them(fresh: Fresh) -> None:
    client = fresh.row("SELECT * FROM clients WHERE id = 1")
    person = fresh.row("SELECT * FROM employees WHERE id = 1")
    seed_demo_items(fresh.base_url, fresh.realm_id)  # its services
    seeded = requests.post(f"{fresh.base_url}/admin/realms/{fresh.realm_id}/seed", json={
        "Customer": [{"DisplayName": client["name"],
                      "PrimaryEmailAddr": {"Address": client["email"]}}],
        # Seed 003: matched "based on their first name, last name, and email".
        "Employee": [{"GivenName": person["first_name"], "FamilyName": person["last_name"],
                      "DisplayName": "Entered in QuickBooks by hand",
                      "PrimaryEmailAddr": {"Address": person["email"]}}]}, timeout=10)
    assert seeded.status_code == 200, seeded.text
    [customer], [employee] = fresh.records("Customer"), fresh.records("Employee")

    connected = CliRunner().invoke(main, ["connect", "--realm", fresh.realm_id])
    assert connected.exit_code == 0, connected.output + repr(connected.exception)
    assert f"importing company {fresh.realm_id}" in connected.output
    assert "nothing written to QuickBooks" in connected.output
    assert fresh.linked("client") == {"1": customer["Id"]}
    assert fresh.linked("employee") == {"1": employee["Id"]}
    assert (len(fresh.records("Customer")), len(fresh.records("Employee"))) == (1, 1)
    services = len([i for i in fresh.records("Item") if i["Type"] == "Service"])
    assert len(fresh.linked("service")) == services  # imported into the source
    assert "client       linked 1 to the QBO records they match" in connected.output

    synced = CliRunner().invoke(main, ["sync"])
    assert synced.exit_code == 0, synced.output + repr(synced.exception)
    assert fresh.linked("client")["1"] == customer["Id"]  # not created again
    names = [c["DisplayName"] for c in fresh.records("Customer")]
    assert names.count(client["name"]) == 1 and len(names) > 1

    again = CliRunner().invoke(main, ["connect", "--realm", fresh.realm_id])
    assert again.exit_code == 0 and "importing" not in again.output  # a reconnect
