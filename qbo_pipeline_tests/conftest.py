"""Fixtures shared by every test package: a real emulator over HTTP, and a connected realm."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig

OAUTH = OAuthSettings()
REDIRECT_URI = OAUTH.redirect_uris[0]
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"


@dataclass
class ConnectedRealm:
    """A QBO company connected through the emulator's real OAuth flow."""

    base_url: str
    realm_id: str
    access_token: str
    refresh_token: str
    session: requests.Session

    def url(self, path: str) -> str:
        return f"{self.base_url}/v3/company/{self.realm_id}/{path.lstrip('/')}"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json",
                **extra}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), headers=self.headers(), timeout=10, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(path), json=body, headers=self.headers(), timeout=10,
                                 **kwargs)


# The modules whose tests or fixtures take a minute or more (they run the demo, start Dagster
# daemons or kill processes): collected first, so that the workers the suite runs in (xdist)
# share them out at the start instead of one worker finishing them alone after the rest.
LONG_MODULES = (
    "test_cli_connect_import.py", "test_cli_connections.py", "test_run_queue.py",
    "test_review_page.py", "chaos/", "test_backfill_and_monitoring.py", "test_cli.py",
    "test_cli_quarantine.py", "test_cli_settings.py", "test_no_secrets_leak.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long modules first, each keeping its own order (a stable sort: every worker collects
    the same order, as xdist requires)."""
    def long_first(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return 0 if any(path.endswith(name) or f"/{name}" in path
                        for name in LONG_MODULES) else 1
    items.sort(key=long_first)


def connect_realm(base_url: str, session: requests.Session | None = None,
                  realm_id: str | None = None) -> ConnectedRealm:
    """Consent (the emulator consents at once), then swap the code for tokens."""
    session = session or requests.Session()
    params = {"client_id": OAUTH.client_id, "redirect_uri": REDIRECT_URI, "response_type": "code",
              "scope": ACCOUNTING_SCOPE, "state": "test-state"}
    if realm_id:
        params["realm_id"] = realm_id
    consent = session.get(f"{base_url}/connect/oauth2", params=params, allow_redirects=False,
                          timeout=10)
    assert consent.status_code in (302, 303), consent.text
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    assert query["state"] == ["test-state"]
    tokens = session.post(
        f"{base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "authorization_code", "code": query["code"][0],
              "redirect_uri": REDIRECT_URI},
        auth=(OAUTH.client_id, OAUTH.client_secret),
        headers={"Accept": "application/json"}, timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return ConnectedRealm(base_url, query["realmId"][0], body["access_token"],
                          body["refresh_token"], session)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the session; tests isolate themselves by connecting their own realm."""
    with EmulatorServer(EmulatorConfig()) as server:
        yield server


@pytest.fixture
def realm(emulator_server: EmulatorServer) -> Iterator[ConnectedRealm]:
    """A fresh QBO company, connected over OAuth, for one test."""
    connected = connect_realm(emulator_server.base_url)
    yield connected
    connected.session.close()
