"""`qbo-pipeline quarantine list|retry` on the demo: a held-back client fixed in the source and
tried again at once, through a real sync against the emulator over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from qbo_pipeline.cli import main
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.defs.runner import connected_realms
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.state import get_links
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`qbo-pipeline demo` once: it holds back clients 2 and 3 (no email), among others."""
    workdir = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_VARIABLE, Fernet.generate_key().decode())
        patch.delenv("DAGSTER_HOME", raising=False)
        result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir), "--clients", "6"])
        assert result.exit_code == 0, result.output + repr(result.exception)
    return workdir


@pytest.fixture
def environment(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo company served again, the environment set as for `dagster dev`; its realm."""
    state = StateDatabase(url=f"sqlite:///{demo / 'state.sqlite'}")
    with EmulatorServer(EmulatorConfig(state_file=demo / "emulator.sqlite")) as qbo:
        for name, value in {"QBO_SOURCE_URL": f"sqlite:///{demo / 'source.sqlite'}",
                            "QBO_STATE_URL": state.url, "QBO_BASE_URL": qbo.base_url,
                            SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        [realm_id] = connected_realms(state)
        # The emulator keeps tokens in memory: after its restart the company is reconnected.
        connected = CliRunner().invoke(main, ["connect", "--realm", realm_id])
        assert connected.exit_code == 0, connected.output
        yield realm_id


def held(realm_id: str) -> list[tuple[str, str]]:
    listed = CliRunner().invoke(main, ["quarantine", "list", "--json", "--realm", realm_id])
    assert listed.exit_code == 0, listed.output
    return [(row["entity"], row["source_key"]) for row in json.loads(listed.output)]


def test_a_held_client_fixed_in_the_source_is_retried_and_released(
        demo: Path, environment: str) -> None:
    realm_id = environment
    text = CliRunner().invoke(main, ["quarantine", "list", "--entity", "client"])
    assert "client 2 (realm" in text.output
    assert "  client 2: PrimaryEmailAddr.Address is required" in text.output
    assert ("client", "2") in held(realm_id)

    still = CliRunner().invoke(main, ["quarantine", "retry", "--entity", "client", "--id", "2"])
    assert still.exit_code != 0
    assert "client 2 is still held back: client 2: PrimaryEmailAddr.Address is required" \
        in still.output

    engine = sa.create_engine(f"sqlite:///{demo / 'source.sqlite'}")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE clients SET email = 'birds@example.com' WHERE id = 2"))
    engine.dispose()
    retried = CliRunner().invoke(main, ["quarantine", "retry", "--entity", "client", "--id", "2"])
    assert retried.exit_code == 0, retried.output + repr(retried.exception)
    assert "client 2 passed and is released from the quarantine" in retried.output
    assert ("client", "2") not in held(realm_id) and ("client", "3") in held(realm_id)
    state = StateDatabase(url=f"sqlite:///{demo / 'state.sqlite'}")
    with state.sessions().begin() as session:
        qbo_id = get_links(session, realm_id, "client")["2"].qbo_id
    dump = requests.get(f"{os.environ['QBO_BASE_URL']}/admin/realms/{realm_id}/dump",
                        timeout=10).json()
    [customer] = [c for c in dump["objects"]["Customer"] if c["Id"] == qbo_id]
    assert customer["PrimaryEmailAddr"]["Address"] == "birds@example.com"


@pytest.mark.parametrize(("arguments", "message"), [
    (["retry", "--entity", "client", "--id", "1"], "client 1 is not held back in realm"),
    (["retry", "--entity", "clients", "--id", "2"], "unknown entity 'clients'"),
    (["list", "--entity", "clients"], "unknown entity 'clients'"),
])
def test_a_bad_request_is_refused_clearly(environment: str, arguments: list[str],
                                          message: str) -> None:
    before = held(environment)
    refused = CliRunner().invoke(main, ["quarantine", *arguments])
    assert refused.exit_code != 0 and message in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert held(environment) == before
