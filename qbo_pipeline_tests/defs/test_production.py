"""Production as the README describes it: Dagster's storage on PostgreSQL (dagster-postgres,
the deployment recipe's own dagster.yaml), the state DB on PostgreSQL, a real sync through the
pipeline's `sync_job`; and the docker-compose recipe is consistent with the package."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy.engine import make_url

from qbo_pipeline.defs.definitions import build_defs, load_pipeline_specs
from qbo_pipeline.defs.resources import DISCOVERY_PATH, QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.defs.runner import SyncResources, run_sync
from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.source.demo_data import generate_demo_data
from qbo_pipeline.state import StateTokenStore, StoredTokens, get_links, load_cipher, upsert_realm
from qbo_pipeline_tests.conftest import OAUTH, REDIRECT_URI, ConnectedRealm
from qbo_pipeline_tests.postgres import POSTGRES_URL, postgres_unavailable_reason

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the test server (Dagster's storage wants one), dropped after."""
    if (reason := postgres_unavailable_reason()) is not None:
        pytest.skip(reason)
    name = f"qbo_dagster_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def deploy_instance(home: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    """The recipe's dagster.yaml, its variables pointed at `url`."""
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    parts = make_url(url)
    for name, value in {"HOST": parts.host, "PORT": str(parts.port or 5432),
                        "USER": parts.username, "PASSWORD": parts.password or "",
                        "DB": parts.database}.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value or "")
    return DagsterInstance.from_config(str(home))


def test_a_sync_runs_with_dagster_and_the_state_db_on_postgres(
        realm: ConnectedRealm, postgres_database: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    # The demo's transactions lie in its last 120 days: a first sync over five months of
    # partitions, not every month since the default start (Dagster's bookkeeping per month).
    monkeypatch.setenv("QBO_SYNC_START_DATE", (date.today() - timedelta(days=150)).isoformat())
    instance = deploy_instance(tmp_path, postgres_database, monkeypatch)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.run_monitoring_enabled
    limits = instance.get_concurrency_config().run_queue_config
    assert limits is not None and {limit["key"] for limit in limits.tag_concurrency_limits} == {
        "qbo/realm"}
    assert type(instance.run_coordinator).__name__ == "CompanyRunCoordinator"
    assert instance.run_launcher.supports_check_run_worker_health

    source_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_data(source_url, clients=4)
    state = StateDatabase(url=postgres_database)
    StateTokenStore(state.sessions(), load_cipher()).save(realm.realm_id, StoredTokens(
        realm.refresh_token, realm.access_token, datetime.now(UTC) + timedelta(hours=1)))
    with state.sessions().begin() as session:
        upsert_realm(session, realm.realm_id, sync_start_date=date(2000, 1, 1))
    seed_demo_items(realm.base_url, realm.realm_id)
    qbo = QBOConnection(base_url=realm.base_url, environment=realm.base_url + DISCOVERY_PATH,
                        client_id=OAUTH.client_id, client_secret=OAUTH.client_secret,
                        redirect_uri=REDIRECT_URI, backoff_seconds=0.01,
                        throttle_backoff_seconds=0.05)
    resources = SyncResources(SourceDatabase(url=source_url), state, qbo)
    try:
        report = run_sync(load_pipeline_specs(), resources, instance, realm.realm_id)
        [run] = instance.get_runs()
        assert (run.run_id, run.job_name, run.status) == (
            report.run_id, "sync_job", DagsterRunStatus.SUCCESS)
    finally:
        instance.dispose()
    assert report.counts["client"]["created"] >= 1
    with state.sessions().begin() as session:
        links = get_links(session, realm.realm_id, "client")
    assert len(links) == report.counts["client"]["created"]


def compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded: dict[str, dict[str, dict[str, object]]] = yaml.safe_load(
        (DEPLOY / "docker-compose.yaml").read_text())
    return loaded


def test_the_compose_recipe_has_a_code_location_a_webserver_and_a_daemon() -> None:
    services = compose()["services"]
    assert {"postgres", "code", "webserver", "daemon"} <= set(services)
    code = services["code"]["command"]
    assert isinstance(code, list)
    assert code[:3] == ["dagster", "api", "grpc"]
    # The module the code location serves builds the pipeline's definitions.
    module = code[code.index("-m") + 1]
    assert module == "qbo_pipeline.defs.definitions"
    assert build_defs().resolve_job_def("sync_job") is not None
    # The webserver and the daemon load that code location, at its port.
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    [server] = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert (server["host"], str(server["port"])) == ("code", code[code.index("-p") + 1])
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert isinstance(command, list) and "/opt/dagster/home/workspace.yaml" in command
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in dockerfile


def test_every_variable_the_recipe_reads_is_in_the_example_environment() -> None:
    text = (DEPLOY / "docker-compose.yaml").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", text))
    example = {line.split("=", 1)[0] for line in (DEPLOY / "example.env").read_text().splitlines()
               if line and not line.startswith("#")}
    assert wanted == example
