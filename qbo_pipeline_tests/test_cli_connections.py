"""`qbo-pipeline connections` and `qbo-pipeline disconnect` on a demo company: real HTTP to the
emulator's accounting and OAuth servers, real SQLite state. Seed 001: "you'll only need to
reconnect after 100 days or if you revoke access"; "Token refresh failed -> your 100-day
refresh token expired; disconnect and reconnect". Seed 003: "You can disconnect from
QuickBooks Online ... Re-connect your QuickBooks account and try the sync again"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from click.testing import CliRunner
from sqlalchemy import update

from qbo_pipeline.cli import main
from qbo_pipeline.defs.runner import SyncResources, connected_realms
from qbo_pipeline.state import TokenRecord, cipher_for, get_links, load_tokens
from qbo_pipeline_tests.company import Company, company, synced_demo

__all__ = ["company", "synced_demo"]  # fixtures


def invoke(*arguments: str) -> Any:
    return CliRunner().invoke(main, list(arguments))


def listed(company: Company) -> dict[str, Any]:
    result = invoke("connections", "--json")
    assert result.exit_code == 0, result.output
    [view] = [v for v in json.loads(result.output) if v["realm_id"] == company.realm_id]
    return dict(view)


def set_refresh_expiry(company: Company, moment: datetime) -> None:
    with company.state.sessions().begin() as session:
        session.execute(update(TokenRecord).where(TokenRecord.realm_id == company.realm_id)
                        .values(refresh_token_expires_at=moment))


def test_connections_show_the_company_its_last_sync_and_its_tokens(company: Company) -> None:
    company.sync()
    view = listed(company)
    info = company.records("CompanyInfo")
    assert view["company_name"] == next(iter(info.values()))["CompanyName"]
    assert view["status"] == "ok" and view["disconnected_at"] is None
    assert view["last_sync"] is not None
    # Intuit's refresh token lives 100 days (x_refresh_token_expires_in 8726400 s).
    assert 99 < view["refresh_token_days_left"] <= 101
    shown = invoke("connections")
    assert shown.exit_code == 0, shown.output
    assert f"{company.realm_id}  {view['company_name']}  [ok]" in shown.output
    assert "refresh token until" in shown.output


def test_a_refresh_token_near_or_past_its_expiry_says_to_reconnect(company: Company) -> None:
    set_refresh_expiry(company, datetime.now(UTC) + timedelta(days=5))
    view = listed(company)
    assert view["status"] == "expiring"
    assert "expires in 5.0 days" in view["message"]
    assert f"disconnect and reconnect the company (qbo-pipeline connect --realm " \
           f"{company.realm_id})" in view["message"]
    set_refresh_expiry(company, datetime.now(UTC) - timedelta(hours=1))
    view = listed(company)
    assert view["status"] == "expired" and "syncs fail until you disconnect" in view["message"]
    # An expired connection is not asked for its name: QBO would refuse it.
    assert view["company_name"] is None


def test_the_hard_maximum_is_recorded_and_warns_when_it_comes_first(company: Company) -> None:
    """The connect asked Intuit for the refresh token's hard maximum (five years from consent
    in the emulator) and recorded it beside the rolling expiry; when it comes first, the
    connection is judged by it."""
    view = listed(company)
    hard = datetime.fromisoformat(view["refresh_token_hard_expires_at"])
    assert hard > datetime.now(UTC) + timedelta(days=4 * 365)
    assert view["refresh_token_ends_at"] == view["refresh_token_expires_at"]
    soon = datetime.now(UTC) + timedelta(days=5)
    with company.state.sessions().begin() as session:
        session.execute(update(TokenRecord).where(TokenRecord.realm_id == company.realm_id)
                        .values(refresh_token_hard_expires_at=soon))
    view = listed(company)
    assert view["status"] == "expiring" and "maximum lifetime" in view["message"]
    assert view["refresh_token_ends_at"] == view["refresh_token_hard_expires_at"]
    assert 4.9 < view["refresh_token_days_left"] <= 5


def test_disconnect_revokes_the_tokens_and_keeps_the_history(company: Company) -> None:
    resources = SyncResources.from_env()
    sessions = resources.state_db.sessions()
    with sessions.begin() as session:
        tokens = load_tokens(session, cipher_for(sessions), company.realm_id)
        links_before = len(get_links(session, company.realm_id, "client"))
    assert tokens is not None and tokens.access_token and links_before > 0
    result = invoke("disconnect", "--realm", company.realm_id)
    assert result.exit_code == 0, result.output
    assert f"disconnected QBO company {company.realm_id}: Intuit revoked its tokens" \
        in result.output
    assert "kept for a reconnect: " in result.output and " links, " in result.output
    # Intuit (the emulator) refuses the revoked tokens from now on.
    refused = requests.get(f"{company.qbo.base_url}/v3/company/{company.realm_id}/companyinfo/"
                           f"{company.realm_id}", timeout=10,
                           headers={"Authorization": f"Bearer {tokens.access_token}",
                                    "Accept": "application/json"})
    assert refused.status_code == 401, refused.text
    with sessions.begin() as session:
        assert load_tokens(session, cipher_for(sessions), company.realm_id) is None
        assert len(get_links(session, company.realm_id, "client")) == links_before
    assert company.realm_id not in connected_realms(resources.state_db)
    assert listed(company)["status"] == "disconnected"
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in result.output

    again = invoke("disconnect", "--realm", company.realm_id)
    assert again.exit_code != 0
    assert f"company {company.realm_id} is not connected" in again.output
    # Seed 003: reconnect, and the sync goes on with the links it kept.
    assert invoke("connect", "--realm", company.realm_id, "--no-import").exit_code == 0
    company.sync()
    with sessions.begin() as session:
        assert len(get_links(session, company.realm_id, "client")) == links_before
