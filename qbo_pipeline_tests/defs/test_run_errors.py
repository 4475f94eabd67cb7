"""A failed sync says why, at the top: the cause our code raised, not Dagster's wrapper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dagster import DagsterInstance

from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.resources import DISCOVERY_PATH, QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.defs.runner import SyncResources, SyncRunError, run_sync
from qbo_pipeline.state import StateTokenStore, StoredTokens, load_cipher, upsert_realm
from qbo_pipeline_tests.conftest import OAUTH, REDIRECT_URI, ConnectedRealm


def test_a_missing_source_table_is_named_with_its_fix(realm: ConnectedRealm, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    StateTokenStore(state.sessions(), load_cipher()).save(realm.realm_id, StoredTokens(
        realm.refresh_token, realm.access_token, datetime.now(UTC) + timedelta(hours=1)))
    with state.sessions().begin() as session:
        upsert_realm(session, realm.realm_id)
    qbo = QBOConnection(base_url=realm.base_url, environment=realm.base_url + DISCOVERY_PATH,
                        client_id=OAUTH.client_id, client_secret=OAUTH.client_secret,
                        redirect_uri=REDIRECT_URI)
    empty_source = SourceDatabase(url=f"sqlite:///{tmp_path / 'empty.sqlite'}")
    instance = DagsterInstance.ephemeral()
    with pytest.raises(SyncRunError) as failed:
        run_sync(load_pipeline_specs(), SyncResources(empty_source, state, qbo), instance,
                 realm.realm_id, spec_name="client")
    instance.dispose()
    message = str(failed.value)
    assert "failed: client/source: " in message  # the stage that failed, then its cause
    assert "StageFailed" not in message
    assert "source table 'clients' does not exist" in message
    assert "fix the table name in the mapping spec or create the table" in message
    assert "DagsterExecutionStepExecutionError" not in message
