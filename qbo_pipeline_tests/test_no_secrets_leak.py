"""No secret leaks (issue 11): a full sync with faults and tokens, then a scan of everything the
pipeline left behind for the plaintext access tokens, refresh tokens, client secret, webhook
verifier token and secret key.

Real HTTP throughout: the emulator is set up like a real QBO app (its own client id and secret,
not the published development ones), with throttling, 5xx, expired access tokens and a refresh
token that rotates on every refresh, and its webhooks pointed at the receiver. The client secret
reaches the pipeline as production's does, through `QBO_CLIENT_SECRET` read by Dagster's
`EnvVar`; the runs are recorded in a Dagster instance on disk (DAGSTER_HOME in the test's
folder). Every token the emulator issued is recorded on the wire, so the scan looks for the
spent ones too, not only the last.

What is scanned: every Python log record (root logger at DEBUG), what the command line printed,
every exception text, every Dagster event, run (config, tags) and snapshot, every row of every
SQLite file under the test's folder (Dagster's storages, the state DB, the source DB; zlib
bodies unpacked) and every file's bytes, and every column of the state and source DBs.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import sqlite3
import threading
import traceback
import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
import sqlalchemy as sa
import uvicorn
from click.testing import CliRunner
from cryptography.fernet import Fernet
from dagster import DagsterInstance, EnvVar
from dagster._serdes import serialize_value

from qbo_pipeline.cli import WEBHOOK_VERIFIER_VARIABLE, main
from qbo_pipeline.connections import connect_company, consent_for, token_provider
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.resources import (
    DISCOVERY_PATH,
    QBO_CLIENT_SECRET_VARIABLE,
    QBOConnection,
    SourceDatabase,
    StateDatabase,
)
from qbo_pipeline.defs.runner import SyncResources, SyncRunError, run_sync
from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.emulator.app import create_app
from qbo_pipeline.emulator.faults import FaultSettings
from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.service import EmulatorConfig, build_emulator
from qbo_pipeline.emulator.webhooks import WebhookSettings
from qbo_pipeline.qbo.errors import QBOError
from qbo_pipeline.serving import BackgroundServer, free_port
from qbo_pipeline.source.demo_data import WINDOW_DAYS, generate_demo_data
from qbo_pipeline.state import StateTokenStore, cipher_for, get_cursor, upsert_realm
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE
from qbo_pipeline.webhooks.server import WebhookServer
from qbo_pipeline.webhooks.signature import SIGNATURE_HEADER, signature_of

SPECS = load_pipeline_specs()
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
SYNC_START = datetime.now(UTC).date() - timedelta(days=WINDOW_DAYS + 1)
CLIENT_ID = "leak-test-app"  # a registered app of its own, not the emulator's published one

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- the scanner ------------------------------------------------------------------------------


def encoded_forms(secret: str) -> dict[str, str]:
    """The ways a secret could be written down besides itself: base64 (standard and URL-safe,
    padded or not) and URL-encoded, as a header, a form or a log line would carry it."""
    raw = secret.encode()
    forms = {"plaintext": secret, "url-encoded": quote(secret, safe=""),
             "form-encoded": quote_plus(secret)}
    for name, encode in (("base64", base64.b64encode),
                         ("urlsafe-base64", base64.urlsafe_b64encode)):
        text = encode(raw).decode()
        forms[name] = text
        forms[f"{name} unpadded"] = text.rstrip("=")
    return forms


@dataclass
class Scanner:
    """Looks for every form of every named secret in texts, and says where each hit was."""

    secrets: dict[str, str]  # what it is ("access token 2") -> its value
    # Other texts that give a secret away: the client id and secret of an HTTP Basic header.
    also: dict[str, str] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    scanned: int = 0

    def __post_init__(self) -> None:
        self._needles: list[tuple[str, str]] = []
        for name, value in self.secrets.items():
            assert len(value) >= 12, f"{name} is too short to scan for without false hits"
            seen: set[str] = set()
            for form, needle in encoded_forms(value).items():
                if needle not in seen:
                    seen.add(needle)
                    self._needles.append((f"{name} ({form})", needle))
        self._needles.extend(self.also.items())

    def text(self, where: str, text: str | bytes | None) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.scanned += 1
        for what, needle in self._needles:
            if needle in text:
                at = text.index(needle)
                context = text[max(0, at - 60):at].replace("\n", " ")
                self.hits.append(f"{where}: {what}, after ...{context!r}")

    def sqlite_file(self, path: Path) -> None:
        """Every value of every table of a SQLite file; a zlib body (Dagster's snapshots)
        unpacked first, since a raw scan of the file's bytes cannot see into it."""
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                cursor = connection.execute(f'SELECT * FROM "{table}"')
                columns = [column[0] for column in cursor.description]
                for number, row in enumerate(cursor):
                    for column, value in zip(columns, row, strict=True):
                        self.text(f"{path.name} {table}.{column} row {number}",
                                  _unpacked(value))
        finally:
            connection.close()

    def files(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                content = path.read_bytes()
                self.text(f"file {path.relative_to(folder)}", content)
                if content[:16] == b"SQLite format 3\x00":
                    self.sqlite_file(path)

    def database(self, label: str, url: str) -> None:
        """Every column of every table, read through SQLAlchemy as the pipeline reads it."""
        engine = sa.create_engine(url)
        try:
            inspector = sa.inspect(engine)
            with engine.connect() as connection:
                for table in inspector.get_table_names():
                    names = [column["name"] for column in inspector.get_columns(table)]
                    rows = connection.execute(sa.text(f'SELECT * FROM "{table}"'))
                    for number, row in enumerate(rows):
                        for column, value in zip(names, row, strict=True):
                            self.text(f"{label} {table}.{column} row {number}",
                                      _unpacked(value))
        finally:
            engine.dispose()


def _unpacked(value: Any) -> str | bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return zlib.decompress(value)
        except zlib.error:
            return value
    return str(value)


# --- what the pipeline said -------------------------------------------------------------------


class Everything(logging.Handler):
    """Every log record of every logger, with its exception and stack, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is kept raw: still scanned
            line = f"{record.msg!r} {record.args!r}"
        extra = {key: value for key, value in vars(record).items()
                 if key in ("dagster_meta",)}
        self.lines.append(line + (f" {extra!r}" if extra else ""))


@dataclass
class TokenRecorder:
    """An ASGI wrapper that notes every token the emulator's token endpoint hands out, so
    the scan knows the spent tokens as well as the last ones."""

    app: ASGIApp
    issued: dict[str, set[str]] = field(default_factory=lambda: {"access_token": set(),
                                                                 "refresh_token": set()})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != TOKEN_PATH:
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def noting(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self._note(bytes(body))
            await send(message)

        await self.app(scope, receive, noting)

    def _note(self, body: bytes) -> None:
        try:
            answer = json.loads(body)
        except ValueError:
            return  # a fault's HTML page: no token in it
        if isinstance(answer, dict):
            for kind, values in self.issued.items():
                if answer.get(kind):
                    values.add(str(answer[kind]))


class RecordedEmulator(BackgroundServer):
    name = "the QBO emulator, its tokens recorded"

    def __init__(self, config: EmulatorConfig) -> None:
        self.emulator = build_emulator(config)
        self.recorder = TokenRecorder(create_app(self.emulator))
        super().__init__(uvicorn.Config(self.recorder, host="127.0.0.1", port=free_port(),
                                        log_level="warning", access_log=False))

    def stop(self) -> None:
        super().stop()
        self.emulator.close()


def browse(url: str, pages: list[requests.Response]) -> None:
    """The person's browser, opened on the consent address: it follows the emulator's
    redirect to the local callback, in the background as a browser does."""
    def visit() -> None:
        pages.append(requests.get(url, timeout=10))
    threading.Thread(target=visit, daemon=True).start()


def stamp_client(source_url: str, state: StateDatabase, realm_id: str, sql: str,
                 **params: Any) -> None:
    """Change source rows as the application would, stamped just after the window the last
    sync covered, so the next sync reads them without waiting for the clock."""
    with state.sessions().begin() as session:
        cursor = get_cursor(session, realm_id, "client")
        assert cursor is not None and cursor.change_window_end is not None
        stamp = cursor.change_window_end.replace(tzinfo=None) + timedelta(milliseconds=1)
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.execute(sa.text(sql), {"now": stamp, **params})
    engine.dispose()


# --- the test ---------------------------------------------------------------------------------


def test_the_scanner_finds_a_planted_secret_in_every_place_it_looks(tmp_path: Path) -> None:
    """The scan below can fail: each place and form it looks in, with a secret planted."""
    secret = "planted-" + secrets.token_urlsafe(24)
    basic = base64.b64encode(f"an-app:{secret}".encode()).decode()
    scanner = Scanner({"planted": secret}, {"planted as Basic credentials": basic})
    scanner.text("a log line", f"refreshing with refresh_token={secret}")
    scanner.text("a basic header", f"Authorization: Basic {basic}")
    scanner.text("an encoded form", base64.b64encode(secret.encode()).decode())
    scanner.text("a query", "x=" + quote(f"{secret}/+", safe=""))
    scanner.text("a clean line", "refreshing with refresh_token=<hidden>")
    database = tmp_path / "planted.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE snapshots (body BLOB, note TEXT)")
        connection.execute("INSERT INTO snapshots VALUES (?, ?)",
                           (zlib.compress(secret.encode()), "nothing"))
    connection.close()
    scanner.sqlite_file(database)
    scanner.database("state DB", f"sqlite:///{database}")
    found = {hit.split(":")[0] for hit in scanner.hits}
    assert found == {"a log line", "a basic header", "an encoded form", "a query",
                     "planted.sqlite snapshots.body row 0",
                     "state DB snapshots.body row 0"}, scanner.hits


def test_the_client_secret_outside_a_run_is_the_variables_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """connect, disconnect and connections build the client outside a run, where Dagster has
    not resolved the `EnvVar`: the value is read then, never the variable's name sent."""
    monkeypatch.setenv(QBO_CLIENT_SECRET_VARIABLE, "an-app-secret-0123456789")
    monkeypatch.setenv("QBO_CLIENT_ID", CLIENT_ID)
    qbo = QBOConnection.from_env()
    assert isinstance(qbo.client_secret, EnvVar)  # what a run's snapshot keeps: the name
    assert qbo.settings().client_secret.get_secret_value() == "an-app-secret-0123456789"


def test_a_full_sync_with_faults_and_tokens_leaks_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    client_secret = "leak-test-secret-" + secrets.token_urlsafe(24)
    verifier = "leak-test-verifier-" + secrets.token_urlsafe(24)
    secret_key = Fernet.generate_key().decode()
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    home = tmp_path / "dagster_home"
    home.mkdir()
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    source_url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_data(source_url, clients=4)
    # A client name QBO would refuse (a colon, 2040): held back by the spec's check.
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE clients SET name = 'Acme:West' WHERE id = 4"))
    engine.dispose()

    everything = Everything()
    root = logging.getLogger()
    level = root.level
    root.addHandler(everything)
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    said: list[tuple[str, str]] = []  # (where, text): CLI output, exceptions, pages

    oauth = OAuthSettings(client_id=CLIENT_ID, client_secret=client_secret,
                          redirect_uris=(redirect_uri,),
                          # Every refresh rotates the refresh token: old and new ones exist.
                          refresh_token_rotation_seconds=0)
    faults = FaultSettings(throttle=0.04, server_error=0.04, service_unavailable=0.02,
                           expired_token=0.04, seed=11)
    try:
        with WebhookServer(state.sessions(), verifier) as receiver:
            webhooks = WebhookSettings(url=receiver.url, verifier_token=verifier,
                                       coalesce_seconds=0.1, retry_delays=(0.2,))
            emulator = RecordedEmulator(EmulatorConfig(oauth=oauth, faults=faults,
                                                       webhooks=webhooks))
            with emulator:
                for name, value in {
                        "QBO_BASE_URL": emulator.base_url, "QBO_CLIENT_ID": CLIENT_ID,
                        QBO_CLIENT_SECRET_VARIABLE: client_secret,
                        "QBO_REDIRECT_URI": redirect_uri, "QBO_STATE_URL": state.url,
                        "QBO_SOURCE_URL": source_url, SECRET_KEY_VARIABLE: secret_key,
                        WEBHOOK_VERIFIER_VARIABLE: verifier, "DAGSTER_HOME": str(home)}.items():
                    monkeypatch.setenv(name, value)
                monkeypatch.delenv("QBO_ENVIRONMENT", raising=False)
                run_ids = sync_with_faults(emulator, receiver, state, source_url,
                                           redirect_uri, verifier, said)
    finally:
        root.removeHandler(everything)
        root.setLevel(level)

    issued = emulator.recorder.issued
    # At least one refresh happened (an expired token, the fault), so old and new exist.
    assert len(issued["access_token"]) >= 3 and len(issued["refresh_token"]) >= 3, issued
    basic = base64.b64encode(f"{CLIENT_ID}:{client_secret}".encode()).decode()
    scanner = Scanner({"client secret": client_secret, "webhook verifier token": verifier,
                       "secret key": secret_key,
                       **{f"access token {n}": token
                          for n, token in enumerate(sorted(issued["access_token"]))},
                       **{f"refresh token {n}": token
                          for n, token in enumerate(sorted(issued["refresh_token"]))}},
                      {"client secret (Basic credentials)": basic})
    for number, line in enumerate(everything.lines):
        scanner.text(f"log record {number}", line)
    scanner.text("caplog", caplog.text)
    for number, record in enumerate(caplog.records):
        scanner.text(f"caplog record {number} ({record.name})", record.getMessage())
    for where, text in said:
        scanner.text(where, text)
    scan_dagster(scanner, home, run_ids)
    scanner.database("state DB", state.url)
    scanner.database("source DB", source_url)
    scanner.files(tmp_path)
    assert scanner.hits == [], "\n".join(scanner.hits)
    assert scanner.scanned > 1000  # the scan saw what the run left, not an empty folder


def sync_with_faults(emulator: RecordedEmulator, receiver: WebhookServer,
                     state: StateDatabase, source_url: str, redirect_uri: str, verifier: str,
                     said: list[tuple[str, str]]) -> list[str]:
    """Connect, sync twice with faults, a stale SyncToken, failed records, webhooks,
    then a run that fails on a revoked connection; returns the runs' ids."""
    qbo = QBOConnection(base_url=emulator.base_url,
                        environment=emulator.base_url + DISCOVERY_PATH,
                        client_id=CLIENT_ID,
                        # As production passes it: Dagster keeps the variable's name only.
                        client_secret=EnvVar(QBO_CLIENT_SECRET_VARIABLE),
                        redirect_uri=redirect_uri, backoff_seconds=0.01,
                        throttle_backoff_seconds=0.05)
    resources = SyncResources(SourceDatabase(url=source_url), state, qbo)
    pages: list[requests.Response] = []
    realm_id = connect_company(resources, consent=consent_for(
        qbo, lambda url: browse(url, pages), lambda url: "", 10))
    said.extend((f"callback page {n}", page.text) for n, page in enumerate(pages))
    with state.sessions().begin() as session:
        # The demo's window only: a first sync from years back plans hundreds of months.
        upsert_realm(session, realm_id, sync_start_date=SYNC_START)
    seed_demo_items(emulator.base_url, realm_id)
    # The books are closed: QBO refuses each transaction (6200), failed records and texts.
    closed = requests.put(f"{emulator.base_url}/admin/realms/{realm_id}/company",
                          json={"BookCloseDate": "2099-12-31"}, timeout=10)
    assert closed.status_code == 200, closed.text
    oauth = emulator.emulator.oauth
    injector = emulator.emulator.faults
    run_ids: list[str] = []
    with DagsterInstance.get() as instance:
        # A 500 of the token endpoint on the first refresh is retried, not the run's end.
        injector.schedule("server_error", target="token")
        oauth.expire_access_tokens(realm_id)
        first = run_sync(SPECS, resources, instance, realm_id)
        run_ids.append(first.run_id)
        assert sum(counts.get("failed", 0) for counts in first.counts.values()) >= 1, \
            first.counts
        # A bookkeeper edits every customer in QBO, and client 1 changes in the source too.
        stamp_client(source_url, state, realm_id,
                     "UPDATE clients SET phone = '555-0199', updated_at = :now WHERE id = 1")
        customers = requests.get(f"{emulator.base_url}/admin/realms/{realm_id}/dump",
                                 timeout=10).json()["objects"]["Customer"]
        for customer in customers:
            requests.post(f"{emulator.base_url}/admin/realms/{realm_id}/Customer/"
                          f"{customer['Id']}/edit", json={"Notes": "edited in QBO"}, timeout=10)
        # A write with the SyncToken from before that edit: QBO's 5010, through the
        # pipeline's client and the tokens in the state DB.
        client = qbo.client(realm_id, state.sessions())
        try:
            stale = {"Id": customers[0]["Id"], "SyncToken": customers[0]["SyncToken"],
                     "DisplayName": customers[0]["DisplayName"], "Notes": "ours"}
            with pytest.raises(QBOError) as refused:
                client.update("Customer", stale, "leak-stale")
            assert refused.value.entry.key == "stale_sync_token", refused.value
            said.append(("stale SyncToken error",
                         "".join(traceback.format_exception(refused.value))))
        finally:
            client.close()
        oauth.expire_access_tokens(realm_id)
        second = run_sync(SPECS, resources, instance, realm_id)
        run_ids.append(second.run_id)

        # The receiver: the emulator's own signed deliveries came in meanwhile; one more
        # valid one, and a forged one it refuses.
        body = json.dumps([{"specversion": "1.0", "id": "leak-ev-1", "source": "intuit.test",
                            "type": "qbo.customer.updated.v1", "time": "2026-03-04T10:00:00Z",
                            "intuitentityid": "1", "intuitaccountid": realm_id,
                            "data": {}}]).encode()
        valid = requests.post(receiver.url, data=body, timeout=5,
                              headers={SIGNATURE_HEADER: signature_of(body, verifier)})
        forged = requests.post(receiver.url, data=body, timeout=5,
                               headers={SIGNATURE_HEADER: signature_of(body, "not-the-token")})
        assert (valid.status_code, forged.status_code) == (200, 401), (valid.text, forged.text)
        said.extend([("webhook answer", valid.text), ("forged webhook answer", forged.text)])

        listed = CliRunner().invoke(main, ["connections"])
        said.append(("qbo-pipeline connections", listed.output))
        assert listed.exit_code == 0, listed.output

        # Disconnected in QBO's app list: the next run fails, with texts to scan.
        token_provider(qbo, state).revoke(realm_id)
        with pytest.raises(SyncRunError) as raised:
            run_sync(SPECS, resources, instance, realm_id)
        said.append(("SyncRunError", "".join(traceback.format_exception(raised.value))))
        failed = CliRunner().invoke(main, ["sync", "--realm", realm_id])
        assert failed.exit_code == 1, failed.output
        said.append(("qbo-pipeline sync output", failed.output))
        if failed.exception is not None:
            said.append(("qbo-pipeline sync exception",
                         "".join(traceback.format_exception(failed.exception))))
        run_ids.extend(record.dagster_run.run_id for record in instance.get_run_records()
                       if record.dagster_run.run_id not in run_ids)
    # The stored tokens are among those recorded on the wire: the recorder saw them all.
    with state.sessions().begin():
        stored = StateTokenStore(state.sessions(), cipher_for(state.sessions())).load(realm_id)
    if stored is not None:
        assert stored.refresh_token in emulator.recorder.issued["refresh_token"]
        assert stored.access_token in emulator.recorder.issued["access_token"]
    return run_ids


def scan_dagster(scanner: Scanner, home: Path, run_ids: Iterable[str]) -> None:
    """Each run (config, tags, snapshots) and each event of its log, as Dagster stores them."""
    with DagsterInstance.from_config(str(home)) as instance:
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            assert run is not None, run_id
            scanner.text(f"run {run_id} config", json.dumps(run.run_config, default=str))
            scanner.text(f"run {run_id} tags", json.dumps(run.tags))
            scanner.text(f"run {run_id}", serialize_value(run))
            if run.job_snapshot_id:
                scanner.text(f"run {run_id} job snapshot",
                             serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
            if run.execution_plan_snapshot_id:
                scanner.text(f"run {run_id} plan snapshot", serialize_value(
                    instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)))
            for number, entry in enumerate(instance.all_logs(run_id)):
                where = f"run {run_id} event {number} ({entry.dagster_event_type})"
                scanner.text(where, entry.user_message)
                scanner.text(where, serialize_value(entry))
