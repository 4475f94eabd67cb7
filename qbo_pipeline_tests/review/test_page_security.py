"""Who may use the review page and what it accepts, over real HTTP to the page served by
uvicorn on a SQLite state DB: CSRF on every form, the Host header, the admin credential, the
rule for where it may listen, and refusals that name the problem and change nothing."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.cli import main
from qbo_pipeline.defs.definitions import load_pipeline_specs
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.review.guard import (
    PASSWORD_VARIABLE,
    USER_VARIABLE,
    AdminCredential,
    CsrfGuard,
    GuardError,
    allowed_hosts,
    basic_user,
    check_bind,
    credential_from_env,
)
from qbo_pipeline.review.web import CSRF_COOKIE, ReviewDesk, create_review_app
from qbo_pipeline.serving import BackgroundServer, free_port
from qbo_pipeline.state import (
    ConflictField,
    ConflictStatus,
    NewConflict,
    list_conflicts,
    open_conflict,
    save_snapshots,
    upsert_realm,
)

REALM = "9130355001"
ADMIN = AdminCredential("admin", "correct horse battery")


@pytest.fixture
def state(tmp_path: Path) -> StateDatabase:
    """Client 5's phone in conflict, in a connected company."""
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with state.sessions().begin() as session:
        upsert_realm(session, REALM)
        save_snapshots(session, REALM, "Customer", [
            {"Id": "58", "SyncToken": "2", "DisplayName": "Amy's Bird Sanctuary"}])
        open_conflict(session, REALM, "client", NewConflict("5", "58", [ConflictField(
            "PrimaryPhone.FreeFormNumber", "555-0199", "555-0100", "555-0000")]))
    return state


def serve(state: StateDatabase, credential: AdminCredential | None = None) -> BackgroundServer:
    desk = ReviewDesk(state.sessions(), load_pipeline_specs(), credential=credential)
    return BackgroundServer(uvicorn.Config(create_review_app(desk, allowed_hosts("127.0.0.1")),
                                           host="127.0.0.1", port=free_port(),
                                           log_level="warning"))


@pytest.fixture
def review(state: StateDatabase) -> Iterator[str]:
    with serve(state) as server:
        yield server.base_url


def statuses(state: StateDatabase) -> list[ConflictStatus]:
    with state.sessions().begin() as session:
        return [c.status for c in list_conflicts(session, REALM, status=None)]


def form_token(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_a_form_from_the_page_is_accepted(review: str, state: StateDatabase) -> None:
    session = requests.Session()
    token = form_token(session, f"{review}/conflicts")
    decided = session.post(f"{review}/conflicts/decide", data={
        "csrf": token, "back": "/conflicts", "conflict": "1", "decision": "dismiss",
        "by": "ana"}, timeout=10)
    assert decided.status_code == 200 and "decided by ana" in decided.text
    assert decided.history[0].status_code == 303  # post, redirect, get
    assert statuses(state) == [ConflictStatus.DISMISSED]
    again = session.get(f"{review}/conflicts", timeout=10)
    assert "decided by ana" not in again.text  # a notice is shown once


@pytest.mark.parametrize("forged", ["no token", "another browser's token", "other site"])
def test_a_forged_form_is_refused_and_changes_nothing(review: str, state: StateDatabase,
                                                      forged: str) -> None:
    session = requests.Session()
    token = form_token(session, f"{review}/conflicts")
    data = {"back": "/conflicts", "conflict": "1", "decision": "dismiss", "by": "mallory"}
    headers = {}
    if forged == "another browser's token":
        data["csrf"] = form_token(requests.Session(), f"{review}/conflicts")
    elif forged == "other site":
        data["csrf"], headers = token, {"Origin": "https://evil.example"}
    refused = session.post(f"{review}/conflicts/decide", data=data, headers=headers,
                           timeout=10, allow_redirects=False)
    assert refused.status_code == 403
    assert ("reload the page and send it again" in refused.text
            or "not from the review page" in refused.text)
    assert statuses(state) == [ConflictStatus.OPEN]


def test_pages_answer_only_their_own_host_and_forbid_framing(review: str) -> None:
    rebound = requests.get(f"{review}/", headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 400
    page = requests.get(f"{review}/", timeout=10)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    cookie = page.headers["set-cookie"]
    assert CSRF_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_a_bad_request_is_answered_clearly(review: str, state: StateDatabase) -> None:
    unknown = requests.get(f"{review}/conflicts/999", timeout=10)
    assert unknown.status_code == 404 and "there is no conflict 999" in unknown.text
    entity = requests.get(f"{review}/conflicts?entity=clients", timeout=10)
    assert entity.status_code == 400 and "unknown entity &#39;clients&#39;" in entity.text
    session = requests.Session()
    token = form_token(session, f"{review}/conflicts")
    nameless = session.post(f"{review}/conflicts/decide", data={
        "csrf": token, "back": "https://evil.example/", "conflict": "1",
        "decision": "keep_source"}, timeout=10)
    assert nameless.url == f"{review}/"  # never sent off the page
    assert "Nothing was decided: type your name" in nameless.text
    no_sync = session.post(f"{review}/quarantine/retry", data={
        "csrf": token, "realm": REALM, "entity": "client", "key": "5"}, timeout=10)
    assert no_sync.status_code == 404 and "cannot run syncs" in no_sync.text
    assert statuses(state) == [ConflictStatus.OPEN]


def test_a_value_is_escaped_not_run(state: StateDatabase, tmp_path: Path) -> None:
    with state.sessions().begin() as session:
        save_snapshots(session, REALM, "Customer", [
            {"Id": "58", "SyncToken": "3", "DisplayName": "<script>alert(1)</script>"}])
    with serve(state) as server:
        page = requests.get(f"{server.base_url}/conflicts", timeout=10).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_with_a_credential_every_request_signs_in(state: StateDatabase) -> None:
    with serve(state, ADMIN) as server:
        anonymous = requests.get(f"{server.base_url}/", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        wrong = requests.get(f"{server.base_url}/", auth=("admin", "guess"), timeout=10)
        assert wrong.status_code == 401
        session = requests.Session()
        session.auth = (ADMIN.user, ADMIN.password)
        token = form_token(session, f"{server.base_url}/conflicts")
        page = session.get(f"{server.base_url}/conflicts", timeout=10).text
        assert "Signed in as admin" in page and 'name="by"' not in page
        decided = session.post(f"{server.base_url}/conflicts/decide", data={
            "csrf": token, "back": "/conflicts", "conflict": "1",
            "decision": "keep_source"}, timeout=10)
        assert "decided by admin" in decided.text
        assert ADMIN.password not in decided.text
    with state.sessions().begin() as db:
        [conflict] = list_conflicts(db, REALM, status=None)
        assert (conflict.status, conflict.resolved_by) == (ConflictStatus.KEPT_SOURCE, "admin")


# --- the rules, as plain functions -----------------------------------------------------------


def test_the_page_listens_beyond_this_machine_only_with_a_credential() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    with pytest.raises(GuardError, match=f"set {USER_VARIABLE} and {PASSWORD_VARIABLE}"):
        check_bind("192.0.2.10", None)
    check_bind("192.0.2.10", ADMIN)
    with pytest.raises(GuardError, match="give --allowed-host"):
        check_bind("0.0.0.0", ADMIN)
    check_bind("0.0.0.0", ADMIN, ("review.example.com",))
    assert allowed_hosts("0.0.0.0", ("review.example.com",)) == ["review.example.com"]
    assert "localhost" in allowed_hosts("127.0.0.1")


@pytest.mark.parametrize(("environ", "message"), [
    ({USER_VARIABLE: "admin"}, f"{PASSWORD_VARIABLE} is not set"),
    ({PASSWORD_VARIABLE: "correct horse battery"}, f"{USER_VARIABLE} is not set"),
    ({USER_VARIABLE: "admin", PASSWORD_VARIABLE: "short"}, "shorter than 12 characters"),
])
def test_a_half_configured_credential_is_an_error(environ: dict[str, str],
                                                  message: str) -> None:
    with pytest.raises(GuardError, match=message):
        credential_from_env(environ)
    assert credential_from_env({}) is None
    found = credential_from_env({USER_VARIABLE: "admin",
                                 PASSWORD_VARIABLE: "correct horse battery"})
    assert found == ADMIN and "correct horse" not in repr(found)


@given(st.text(min_size=1).filter(lambda u: ":" not in u), st.text(min_size=1))
def test_basic_auth_accepts_exactly_the_credential(user: str, password: str) -> None:
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    credential = AdminCredential(user, password)
    assert basic_user(header, credential) == user
    assert basic_user(header, AdminCredential(user, password + "x")) is None
    assert basic_user("Basic !!!", credential) is None
    assert basic_user(None, credential) is None


@given(st.text(min_size=1, max_size=64))
def test_a_csrf_token_is_bound_to_its_cookie_and_key(cookie: str) -> None:
    guard = CsrfGuard()
    token = guard.form_token(cookie)
    assert guard.valid(cookie, token)
    assert not guard.valid(cookie + "x", token)
    assert not CsrfGuard().valid(cookie, token)  # another server's key
    assert not guard.valid(cookie, None) and not guard.valid(None, token)


def test_the_command_refuses_to_listen_beyond_this_machine_unprotected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USER_VARIABLE, raising=False)
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    refused = CliRunner().invoke(main, ["review", "--host", "192.0.2.10"])
    assert refused.exit_code != 0
    assert f"set {USER_VARIABLE} and {PASSWORD_VARIABLE}" in refused.output
    monkeypatch.setenv(USER_VARIABLE, "admin")
    monkeypatch.setenv(PASSWORD_VARIABLE, "short")
    weak = CliRunner().invoke(main, ["review", "--host", "192.0.2.10"])
    assert weak.exit_code != 0 and "shorter than 12 characters" in weak.output
    assert "short" not in weak.output.replace("shorter", "")
