"""Connecting through the local callback (issue 11): a person consents in a browser, QBO sends
that browser back to the redirect URI on this machine, and a server on 127.0.0.1 takes the
redirect. Real HTTP throughout: the emulator is configured like a real QBO app (its own client
id and a redirect URI on a free port), and the tests play the person's browser with requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from qbo_pipeline.cli import main
from qbo_pipeline.connections import browser_consent, connect_company, token_provider
from qbo_pipeline.defs.resources import (
    DISCOVERY_PATH,
    QBOConnection,
    SourceDatabase,
    StateDatabase,
)
from qbo_pipeline.defs.runner import SyncResources, connected_realms
from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.qbo import CallbackAddress, ConsentError, local_callback
from qbo_pipeline.serving import free_port
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE

APP_ID = "callback-test-app"
APP_SECRET = "callback-test-secret-0f3a"  # the emulator test app's: not a real secret
FORGED_REALM = "9130"
Visit = Callable[[str], str]  # the consent address -> the address the browser GETs


@dataclass
class App:
    """A QBO app registered with the emulator, and the pipeline configured for it."""

    qbo_url: str
    redirect_uri: str
    resources: SyncResources

    @property
    def address(self) -> CallbackAddress:
        address = local_callback(self.redirect_uri)
        assert address is not None
        return address

    def stored_tokens(self, realm_id: str) -> object | None:
        return token_provider(self.resources.qbo, self.resources.state_db).store.load(realm_id)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    oauth = OAuthSettings(client_id=APP_ID, client_secret=APP_SECRET,
                          redirect_uris=(redirect_uri, "https://app.example.com/qbo/callback"))
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    source_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    with EmulatorServer(EmulatorConfig(oauth=oauth)) as emulator:
        for name, value in {"QBO_BASE_URL": emulator.base_url, "QBO_CLIENT_ID": APP_ID,
                            "QBO_CLIENT_SECRET": APP_SECRET, "QBO_REDIRECT_URI": redirect_uri,
                            "QBO_STATE_URL": state_url, "QBO_SOURCE_URL": source_url,
                            SECRET_KEY_VARIABLE: Fernet.generate_key().decode()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("QBO_ENVIRONMENT", raising=False)
        qbo = QBOConnection(base_url=emulator.base_url,
                            environment=emulator.base_url + DISCOVERY_PATH, client_id=APP_ID,
                            client_secret=APP_SECRET, redirect_uri=redirect_uri,
                            backoff_seconds=0.05)
        yield App(emulator.base_url, redirect_uri,
                  SyncResources(SourceDatabase(url=source_url), StateDatabase(url=state_url),
                                qbo))


@dataclass
class Browser:
    """The person's browser: told to open the consent address, it GETs each of `visits` in
    turn in the background (a browser does not block the program that opened it) and keeps
    the pages it ended on."""

    visits: list[Visit]
    pages: list[requests.Response] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def open(self, consent_url: str) -> None:
        def browse() -> None:
            for visit in self.visits:
                self.pages.append(requests.get(visit(consent_url), timeout=10))
        self._thread = threading.Thread(target=browse, daemon=True)
        self._thread.start()

    def last_page(self) -> requests.Response:
        assert self._thread is not None, "the consent address was never opened"
        self._thread.join(timeout=10)
        return self.pages[-1]


def consent(consent_url: str) -> str:
    """The person consents: the consent address itself (the emulator's screen consents at once
    and redirects the browser to the redirect URI)."""
    return consent_url


def state_of(consent_url: str) -> str:
    return parse_qs(urlparse(consent_url).query)["state"][0]


def test_connecting_through_the_local_callback_stores_the_tokens_and_tells_the_browser(
        app: App) -> None:
    browser = Browser([consent])
    realm_id = connect_company(app.resources,
                               consent=browser_consent(app.address, browser.open, 10))

    page = browser.last_page()
    assert page.url.startswith(app.redirect_uri + "?")  # Intuit's redirect, followed
    assert page.status_code == 200, page.text
    assert f"QuickBooks company {realm_id} is connected" in page.text
    assert "You can close this tab" in page.text
    code = parse_qs(urlparse(page.url).query)["code"][0]
    assert code not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert connected_realms(app.resources.state_db) == [realm_id]
    assert app.stored_tokens(realm_id) is not None
    client = app.resources.qbo.client(realm_id, app.resources.state_db.sessions())
    try:  # the stored tokens work against the company's API
        assert client.read("CompanyInfo", realm_id)["CompanyName"]
    finally:
        client.close()


def test_only_the_redirect_ends_the_wait(app: App) -> None:
    elsewhere = app.redirect_uri.replace("/callback", "/favicon.ico")
    browser = Browser([lambda _: elsewhere, lambda _: app.redirect_uri, consent])
    realm_id = connect_company(app.resources,
                               consent=browser_consent(app.address, browser.open, 10))

    assert [page.status_code for page in browser.pages] == [404, 400, 200]
    assert "open the consent address the terminal shows" in browser.pages[1].text
    assert connected_realms(app.resources.state_db) == [realm_id]


def test_a_redirect_with_a_forged_state_is_refused_and_stores_nothing(app: App) -> None:
    forged = f"{app.redirect_uri}?" + urlencode(
        {"code": "forged-code", "state": "forged-state", "realmId": FORGED_REALM})
    browser = Browser([lambda _: forged])
    with pytest.raises(ConsentError, match="state does not match") as raised:
        connect_company(app.resources, consent=browser_consent(app.address, browser.open, 10))

    page = browser.last_page()
    assert page.status_code == 400
    assert "Not connected" in page.text and "state does not match" in page.text
    for secret in ("forged-code", "forged-state"):
        assert secret not in page.text and secret not in str(raised.value)
    assert connected_realms(app.resources.state_db) == []
    assert app.stored_tokens(FORGED_REALM) is None


def test_a_declined_consent_is_reported_to_the_browser_and_the_caller(app: App) -> None:
    def declined(consent_url: str) -> str:
        # Intuit sends the browser back with an error when the person clicks Cancel.
        return f"{app.redirect_uri}?" + urlencode(
            {"error": "access_denied", "state": state_of(consent_url)})

    browser = Browser([declined])
    with pytest.raises(ConsentError, match="QBO refused the connection: access_denied"):
        connect_company(app.resources, consent=browser_consent(app.address, browser.open, 10))

    page = browser.last_page()
    assert page.status_code == 400 and "access_denied" in page.text
    assert connected_realms(app.resources.state_db) == []


def test_a_busy_callback_port_names_the_fix(app: App) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", app.address.port))
        busy.listen()
        with pytest.raises(ConsentError, match="QBO_REDIRECT_URI"):
            connect_company(app.resources,
                            consent=browser_consent(app.address, Browser([]).open, 10))


# --- the command ------------------------------------------------------------------------------


def test_nobody_consenting_times_out_with_what_to_do(app: App) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["connect", "--no-browser", "--timeout", "1"])

    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 10  # the 1-second wait, not a hang
    assert "Open this address in a browser on this machine" in result.output
    assert f"{app.qbo_url}/connect/oauth2?" in result.output
    assert "nobody consented within 1 second" in result.output
    assert "--timeout gives more time" in result.output
    assert connected_realms(app.resources.state_db) == []
    with socket.socket() as again:  # the server is gone, the port free
        again.bind(("127.0.0.1", app.address.port))


def test_the_command_refuses_a_forged_redirect_to_its_callback(app: App) -> None:
    results: list[Result] = []
    command = threading.Thread(target=lambda: results.append(CliRunner().invoke(
        main, ["connect", "--no-browser", "--timeout", "10", "--no-import"])))
    command.start()
    probe = app.redirect_uri.replace("/callback", "/probe")
    wait_until_listening(probe)
    forged = requests.get(app.redirect_uri, timeout=10, params={
        "code": "forged-code", "state": "forged-state", "realmId": FORGED_REALM})
    command.join(timeout=10)

    assert forged.status_code == 400 and "state does not match" in forged.text
    [result] = results
    assert result.exit_code == 1, result.output
    assert "state does not match the one this connection was started with" in result.output
    assert "connected QBO company" not in result.output
    assert "forged-code" not in result.output
    assert connected_realms(app.resources.state_db) == []
    assert app.stored_tokens(FORGED_REALM) is None


def test_a_redirect_uri_elsewhere_asks_for_the_address_the_browser_ended_on(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_REDIRECT_URI", "https://app.example.com/qbo/callback")
    pasted = "https://app.example.com/qbo/callback?" + urlencode(
        {"code": "pasted-code", "state": "not-this-connection", "realmId": FORGED_REALM})
    result = CliRunner().invoke(main, ["connect", "--no-import"], input=pasted + "\n")

    assert result.exit_code == 1, result.output
    assert "paste the address you are sent to" in result.output
    assert "state does not match" in result.output
    assert connected_realms(app.resources.state_db) == []


def wait_until_listening(url: str) -> None:
    """Until the command's callback server answers (any path but the callback's: a 404)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 404:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {url}")
