"""qbo_snapshot: CDC within its reach, and a query when CDC's 1000-object answer is cut short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from qbo_pipeline.specs import load_specs
from qbo_pipeline.state import create_state_engine, get_snapshots, init_state_db, state_sessions
from qbo_pipeline.steps.common import SyncScope
from qbo_pipeline.steps.push import refresh_snapshots
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.qbo.conftest import client_for

ROOT = Path(__file__).resolve().parents[2]


def test_more_changes_than_one_cdc_answer_holds_are_all_fetched(realm: ConnectedRealm,
                                                                   tmp_path: Path) -> None:
    """QBO's CDC returns at most 1000 objects; the snapshot must not lose the rest."""
    spec = load_specs(ROOT / "mapping_specs")["client"]
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    init_state_db(engine)
    sessions = state_sessions(engine)
    qbo = client_for(realm)
    try:
        now = datetime.now(UTC)
        scope = SyncScope(realm.realm_id, True, now.date(), now)
        assert refresh_snapshots(spec, qbo.client, sessions, scope, now).records == []
        seeded = [{"DisplayName": f"Bulk Customer {n:04d}"} for n in range(1005)]
        answer = requests.post(f"{realm.base_url}/admin/realms/{realm.realm_id}/seed",
                               json={"Customer": seeded}, timeout=60)
        assert answer.status_code == 200, answer.text
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        cdc = qbo.client.cdc(["Customer"], an_hour_ago)
        assert len(cdc["Customer"]) == 1000  # the emulator caps CDC as QBO does
        fetched = refresh_snapshots(spec, qbo.client, sessions, scope, datetime.now(UTC)).records
    finally:
        qbo.client.close()
    assert len(fetched) == 1005
    with sessions.begin() as session:
        assert len(get_snapshots(session, realm.realm_id, "Customer")) == 1005

