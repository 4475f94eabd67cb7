"""A whole pipeline under test: the demo source DB, a state DB, the emulator's connected realm
and a Dagster instance that knows the realm, run through Dagster's own `materialize`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.defs.assets import build_all_assets
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.partitions import (
    DAYS_TAG,
    INCREMENTAL_MODE,
    MODE_TAG,
    REALM_DIMENSION,
    WINDOW_MODE,
    build_sync_partitions,
    sync_partition_key,
    sync_start_date,
)
from qbo_pipeline.defs.resources import DISCOVERY_PATH, QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.source.demo_data import DemoSummary, generate_demo_data
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import StateTokenStore, StoredTokens, load_cipher, upsert_realm
from qbo_pipeline.steps.common import RECORD_TAG
from qbo_pipeline_tests.conftest import OAUTH, REDIRECT_URI, ConnectedRealm

# Every demo row is dated after this, so the realm's start date lets all of them through.
EARLY_START = date(2000, 1, 1)
SPECS = load_pipeline_specs()


def pipeline_assets(specs: SpecSet = SPECS) -> list[AssetsDefinition]:
    """The assets as the definitions build them, with the configured default start date."""
    start = sync_start_date()
    return build_all_assets(specs, build_sync_partitions(start), start)


@dataclass
class PipelineUnderTest:
    realm: ConnectedRealm
    demo: DemoSummary
    source_url: str
    state: StateDatabase
    qbo: QBOConnection
    instance: DagsterInstance

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.state.sessions()

    def run(self, *, incremental: bool = True, day: date | None = None,
            selection: Sequence[str | AssetKey] | None = None,
            run_config: dict[str, Any] | None = None, specs: SpecSet = SPECS,
            record: str | None = None) -> ExecuteInProcessResult:
        """An incremental run (on the month of `day`, default today), or with
        `incremental=False` a backfill of the one day `day` (on its month, tag `qbo/days`);
        `record` (`<spec>/<key>`) makes it a per-record sync, as `sync --entity --id`."""
        day = day or datetime.now(UTC).date()
        key = sync_partition_key(self.realm.realm_id, day)
        tags = {MODE_TAG: INCREMENTAL_MODE} if incremental else {
            MODE_TAG: WINDOW_MODE, DAYS_TAG: day.isoformat()}
        if record is not None:
            tags[RECORD_TAG] = record
        return materialize(
            pipeline_assets(specs), partition_key=key, instance=self.instance,
            tags=tags, selection=selection, run_config=run_config,
            resources={"source_db": SourceDatabase(url=self.source_url), "state_db": self.state,
                       "qbo": self.qbo})

    def qbo_records(self) -> dict[str, list[dict[str, Any]]]:
        response = requests.get(
            f"{self.realm.base_url}/admin/realms/{self.realm.realm_id}/dump", timeout=10)
        assert response.status_code == 200, response.text
        objects: dict[str, list[dict[str, Any]]] = response.json()["objects"]
        return objects


def seed_items(realm: ConnectedRealm) -> None:
    """The Items the demo invoices name, as `qbo-pipeline demo` creates them."""
    seed_demo_items(realm.base_url, realm.realm_id)


@pytest.fixture
def pipeline(realm: ConnectedRealm, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineUnderTest]:
    monkeypatch.setenv("QBO_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    source_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    demo = generate_demo_data(source_url, clients=6)
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    sessions = state.sessions()
    StateTokenStore(sessions, load_cipher()).save(realm.realm_id, StoredTokens(
        realm.refresh_token, realm.access_token, datetime.now(UTC) + timedelta(hours=1)))
    with sessions.begin() as session:
        upsert_realm(session, realm.realm_id, sync_start_date=EARLY_START)
    seed_items(realm)
    qbo = QBOConnection(base_url=realm.base_url, environment=realm.base_url + DISCOVERY_PATH,
                        client_id=OAUTH.client_id, client_secret=OAUTH.client_secret,
                        redirect_uri=REDIRECT_URI, backoff_seconds=0.01,
                        throttle_backoff_seconds=0.05)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(REALM_DIMENSION, [realm.realm_id])
    yield PipelineUnderTest(realm, demo, source_url, state, qbo, instance)
    instance.dispose()
