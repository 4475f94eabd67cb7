"""A demo company for tests that drive the command line and the review page: `qbo-pipeline
demo` run once per session (clients two-way), copied for each test, served again by the
emulator with the environment set as for `dagster dev` and `qbo-pipeline review`."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from cryptography.fernet import Fernet

from qbo_pipeline.cli import main
from qbo_pipeline.defs.definitions import MAPPING_SPECS_VARIABLE
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.defs.runner import SyncResources, connected_realms
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.state import get_cursor, get_links
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE

SHIPPED_SPECS = Path(__file__).resolve().parents[1] / "mapping_specs"


@pytest.fixture(scope="session")
def synced_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`qbo-pipeline demo` once, with clients two-way: it holds back clients 2 and 3 (no
    email), among others."""
    workdir = tmp_path_factory.mktemp("review-demo")
    specs = two_way_specs(workdir / "mapping_specs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_VARIABLE, Fernet.generate_key().decode())
        patch.setenv(MAPPING_SPECS_VARIABLE, str(specs))
        patch.delenv("DAGSTER_HOME", raising=False)
        result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir / "demo"),
                                           "--clients", "6"])
        assert result.exit_code == 0, result.output + repr(result.exception)
    return workdir


def two_way_specs(folder: Path) -> Path:
    """The shipped specs, with clients two-way in every field a column feeds, for every
    company and every client (a person's decision can go either way)."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec_file in SHIPPED_SPECS.glob("*.yaml"):
        shutil.copy(spec_file, folder / spec_file.name)
    client = yaml.safe_load((folder / "client.yaml").read_text())
    client.pop("by_setting")
    for field in client["fields"].values():
        if "column" in field:
            field.pop("direction", None)
    (folder / "client.yaml").write_text(yaml.safe_dump(client, sort_keys=False))
    return folder


@dataclass
class Company:
    """A demo company served again: the emulator and the environment."""

    realm_id: str
    source_url: str
    state: StateDatabase
    qbo: EmulatorServer

    def sync(self, *arguments: str) -> str:
        result = CliRunner().invoke(main, ["sync", "--realm", self.realm_id, *arguments])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    def linked(self, spec: str, key: str) -> str | None:
        with self.state.sessions().begin() as session:
            link = get_links(session, self.realm_id, spec).get(key)
            return link.qbo_id if link is not None else None

    def records(self, entity: str) -> dict[str, dict[str, Any]]:
        response = requests.get(f"{self.qbo.base_url}/admin/realms/{self.realm_id}/dump",
                                timeout=10)
        assert response.status_code == 200, response.text
        return {record["Id"]: record for record in response.json()["objects"].get(entity, [])}

    def edit_in_qbo(self, entity: str, qbo_id: str, changes: dict[str, Any]) -> None:
        """A bookkeeper edits the record in QuickBooks (the emulator's admin endpoint)."""
        response = requests.post(f"{self.qbo.base_url}/admin/realms/{self.realm_id}/{entity}/"
                                 f"{qbo_id}/edit", json=changes, timeout=10)
        assert response.status_code == 200, response.text

    def change_source(self, sql: str, **params: Any) -> None:
        """Change source rows as the application would, stamped just after the window the
        last sync covered, so that the next sync reads them without waiting for the clock."""
        with self.state.sessions().begin() as session:
            ends = [cursor.change_window_end for spec in ("client", "invoice")
                    if (cursor := get_cursor(session, self.realm_id, spec)) is not None
                    and cursor.change_window_end is not None]
        stamp = max(ends).replace(tzinfo=None) + timedelta(milliseconds=1)
        engine = sa.create_engine(self.source_url)
        with engine.begin() as connection:
            connection.execute(sa.text(sql), {"now": stamp, **params})
        engine.dispose()

    def source_rows(self, sql: str, **params: Any) -> list[Any]:
        """The first column of each row a query of the source returns."""
        engine = sa.create_engine(self.source_url)
        with engine.connect() as connection:
            values = list(connection.execute(sa.text(sql), params).scalars())
        engine.dispose()
        return values

    def source_value(self, sql: str, **params: Any) -> Any:
        engine = sa.create_engine(self.source_url)
        with engine.connect() as connection:
            value = connection.execute(sa.text(sql), params).scalar()
        engine.dispose()
        return value

    def qbo_client_call(self, method: str, *arguments: Any) -> dict[str, Any]:
        """A write to QBO through the pipeline's own client (as a person in QuickBooks)."""
        resources = SyncResources.from_env()
        client = resources.qbo.client(self.realm_id, resources.state_db.sessions())
        try:
            answer: dict[str, Any] = getattr(client, method)(*arguments, str(uuid.uuid4()))
            return answer
        finally:
            client.close()


@pytest.fixture
def company(synced_demo: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Company]:
    """A copy of the synced demo, its emulator serving again, the environment set."""
    demo = tmp_path / "demo"
    shutil.copytree(synced_demo / "demo", demo, ignore=shutil.ignore_patterns("dagster*"))
    state = StateDatabase(url=f"sqlite:///{demo / 'state.sqlite'}")
    with EmulatorServer(EmulatorConfig(state_file=demo / "emulator.sqlite")) as qbo:
        source_url = f"sqlite:///{demo / 'source.sqlite'}"
        for name, value in {"QBO_SOURCE_URL": source_url, "QBO_STATE_URL": state.url,
                            "QBO_BASE_URL": qbo.base_url,
                            MAPPING_SPECS_VARIABLE: str(synced_demo / "mapping_specs"),
                            SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        [realm_id] = connected_realms(state)
        # The emulator keeps tokens in memory: after its restart the company is reconnected.
        connected = CliRunner().invoke(main, ["connect", "--realm", realm_id])
        assert connected.exit_code == 0, connected.output
        yield Company(realm_id, source_url, state, qbo)
