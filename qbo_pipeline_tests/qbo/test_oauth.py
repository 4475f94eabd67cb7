"""Reading the consent screen's redirect: each way it can fail, and the way it succeeds."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from qbo_pipeline.qbo import (
    CallbackAddress,
    ConsentError,
    ConsentResult,
    carries_consent_answer,
    local_callback,
    parse_consent_redirect,
)

CALLBACK = "http://localhost:8000/callback"
STATE = "state-4f1c"
CODE = "AB11-secret-code"


def redirect(**params: str) -> str:
    return f"{CALLBACK}?{urlencode(params)}"


def test_a_granted_consent_gives_the_realm_and_the_code() -> None:
    result = parse_consent_redirect(redirect(code=CODE, state=STATE, realmId="9130"), STATE)
    assert result == ConsentResult("9130", CODE)
    assert CODE not in repr(result)  # the code is a credential: never in logs


def test_a_refused_consent_says_so() -> None:
    with pytest.raises(ConsentError, match="QBO refused the connection: access_denied"):
        parse_consent_redirect(redirect(error="access_denied", state=STATE), STATE)


def test_a_refusal_with_another_state_is_a_forgery_not_a_refusal() -> None:
    """Someone who sends the callback an "error=" redirect without the state cannot cancel a
    connection a person is consenting to: the state is checked first."""
    for forged in (redirect(error="access_denied"), redirect(error="access_denied", state="x")):
        with pytest.raises(ConsentError, match="state does not match"):
            parse_consent_redirect(forged, STATE)


def test_a_state_that_does_not_match_is_refused_without_echoing_either() -> None:
    with pytest.raises(ConsentError, match="start the connection again") as raised:
        parse_consent_redirect(redirect(code=CODE, state="forged", realmId="9130"), STATE)
    for secret in ("forged", STATE, CODE):
        assert secret not in str(raised.value)


def test_a_missing_state_is_a_mismatch() -> None:
    with pytest.raises(ConsentError, match="state does not match"):
        parse_consent_redirect(redirect(code=CODE, realmId="9130"), STATE)


@pytest.mark.parametrize(("params", "missing"), [
    ({"realmId": "9130"}, "no code"),
    ({"code": CODE}, "no realmId"),
    ({}, "no code and no realmId"),
])
def test_a_redirect_without_code_or_realm_is_refused(params: dict[str, str],
                                                     missing: str) -> None:
    with pytest.raises(ConsentError, match=missing) as raised:
        parse_consent_redirect(redirect(state=STATE, **params), STATE)
    assert CODE not in str(raised.value)


def test_an_error_that_is_not_a_short_code_is_cut() -> None:
    with pytest.raises(ConsentError) as raised:
        parse_consent_redirect(redirect(error="x" * 500 + "\n", state=STATE), STATE)
    assert len(str(raised.value)) < 100


def test_no_expected_state_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="expected_state"):
        parse_consent_redirect(redirect(code=CODE, realmId="9130"), "")


@pytest.mark.parametrize(("redirect_uri", "address"), [
    ("http://localhost:8000/callback", CallbackAddress(8000, "/callback")),
    ("http://127.0.0.1:53682/qbo/callback", CallbackAddress(53682, "/qbo/callback")),
    ("http://localhost/callback", CallbackAddress(80, "/callback")),
    ("http://localhost:8000", CallbackAddress(8000, "/")),
])
def test_a_redirect_uri_on_this_machine_is_received_locally(redirect_uri: str,
                                                             address: CallbackAddress) -> None:
    assert local_callback(redirect_uri) == address


@pytest.mark.parametrize("redirect_uri", [
    "https://app.example.com/qbo/callback",  # the app's own server
    "https://localhost:8000/callback",  # a local server has no certificate to answer https
    "https://developer.intuit.com/v2/OAuth2Playground/RedirectUrl",
    "http://localhost:port/callback",
    "http://192.168.1.5:8000/callback",  # another machine's view of this one: not loopback
])
def test_any_other_redirect_uri_is_not(redirect_uri: str) -> None:
    assert local_callback(redirect_uri) is None


@pytest.mark.parametrize(("target", "answer"), [
    ("/callback?code=c&state=s&realmId=1", True),
    ("/callback?error=access_denied&state=s", True),
    ("/callback?state=s", True),
    ("/callback", False),
    ("/callback?utm_source=mail", False),
])
def test_a_consent_answer_carries_a_code_a_state_or_an_error(target: str, answer: bool) -> None:
    assert carries_consent_answer(target) is answer
