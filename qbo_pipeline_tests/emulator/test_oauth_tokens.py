"""The emulator's OAuth 2.0 authorization, token and revoke endpoints, over real HTTP.

Sources cited below: "Intuit OAuth" is Intuit's developer page "Set up OAuth 2.0" (QuickBooks
Online Accounting API); "Intuit FAQ" its "Authorization FAQ"; "Refresh validity" the Intuit help
article "Validity of Refresh Token"; RFC 6749 the OAuth 2.0 framework Intuit implements.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig

SETTINGS = OAuthSettings()
REDIRECT_URI = SETTINGS.redirect_uris[0]
ACCOUNTING = "com.intuit.quickbooks.accounting"
CLIENT_AUTH = (SETTINGS.client_id, SETTINGS.client_secret)
HOUR = 3600
DAY = 24 * HOUR


class ManualClock:
    """A clock the test moves by hand, so tokens age without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def consent(base_url: str, **overrides: str) -> requests.Response:
    """GET the authorization endpoint as a browser would, without following the redirect."""
    params = {"client_id": SETTINGS.client_id, "redirect_uri": REDIRECT_URI,
              "response_type": "code", "scope": ACCOUNTING, "state": "s-123", **overrides}
    return requests.get(f"{base_url}/connect/oauth2", params=params, allow_redirects=False,
                        timeout=10)


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {key: values[0] for key, values in parse_qs(urlparse(location).query).items()}


def token_request(base_url: str, fields: dict[str, str], auth: Any = CLIENT_AUTH,
                  headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{base_url}/oauth2/v1/tokens/bearer", data=fields, auth=auth,
                         headers={"Accept": "application/json", **(headers or {})}, timeout=10)


def exchange(base_url: str, code: str, redirect_uri: str = REDIRECT_URI) -> requests.Response:
    return token_request(base_url, {"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": redirect_uri})


def refresh(base_url: str, refresh_token: str, **headers: str) -> requests.Response:
    return token_request(base_url, {"grant_type": "refresh_token",
                                    "refresh_token": refresh_token}, headers=headers)


def revoke(base_url: str, token: str, auth: Any = CLIENT_AUTH) -> requests.Response:
    return requests.post(f"{base_url}/v2/oauth2/tokens/revoke", json={"token": token},
                         auth=auth, headers={"Accept": "application/json"}, timeout=10)


def connect(base_url: str, **overrides: str) -> dict[str, Any]:
    """The whole consent + code exchange; the token response plus the realmId."""
    params = redirect_params(consent(base_url, **overrides))
    tokens = exchange(base_url, params["code"])
    assert tokens.status_code == 200, tokens.text
    return {**tokens.json(), "realmId": params.get("realmId")}


def assert_oauth_error(response: requests.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


# --- authorization endpoint ---------------------------------------------------------------------


def test_consent_redirects_with_code_state_and_a_new_company(
        emulator_server: EmulatorServer) -> None:
    """Intuit OAuth: after consent the browser returns to the redirect URI with code, state and
    realmId. Each connect of a new company gives a new QBO-shaped (numeric) realm id."""
    first = redirect_params(consent(emulator_server.base_url))
    second = redirect_params(consent(emulator_server.base_url))

    assert first["state"] == "s-123"
    assert first["code"] and first["code"] != second["code"]
    assert first["realmId"].isdigit() and len(first["realmId"]) == 15
    assert first["realmId"] != second["realmId"]
    assert emulator_server.emulator.backend.realm_exists(first["realmId"])


def test_realm_id_extension_reconnects_the_same_company(emulator_server: EmulatorServer) -> None:
    """Emulator extension (documented): ``realm_id`` picks the company to reconnect, as a QBO
    user picks an existing company on the consent screen."""
    first = redirect_params(consent(emulator_server.base_url))

    again = redirect_params(consent(emulator_server.base_url, realm_id=first["realmId"]))

    assert again["realmId"] == first["realmId"]
    refused = redirect_params(consent(emulator_server.base_url, realm_id="12-x"))
    assert refused["error"] == "invalid_request" and "realm_id" in refused["error_description"]


@pytest.mark.parametrize(("override", "error"), [
    ({"scope": "com.intuit.quickbooks.everything"}, "invalid_scope"),
    ({"scope": "email"}, "invalid_scope"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"state": ""}, "invalid_request"),
])
def test_refused_consent_redirects_with_the_error(emulator_server: EmulatorServer,
                                                   override: dict[str, str], error: str) -> None:
    """RFC 6749 4.1.2.1: with a valid client and redirect URI, errors go back to the app as
    ``error`` (+ ``state``) on the redirect URI; no code, no company."""
    params = redirect_params(consent(emulator_server.base_url, **override))

    assert params["error"] == error
    assert "code" not in params and "realmId" not in params
    assert params.get("state", "") == override.get("state", "s-123")


@pytest.mark.parametrize("override", [
    {"redirect_uri": "https://attacker.example/callback"},
    {"client_id": "someone-else"},
])
def test_unregistered_redirect_uri_or_client_is_refused_without_redirect(
        emulator_server: EmulatorServer, override: dict[str, str]) -> None:
    """RFC 6749 4.1.2.1 and Intuit OAuth ("the redirect URI must match one registered on the
    Keys tab exactly"): the browser is not sent to an unknown URI; 400 instead."""
    response = consent(emulator_server.base_url, **override)

    assert "Location" not in response.headers
    assert_oauth_error(response, 400, "invalid_request")


# --- token endpoint: authorization_code grant ---------------------------------------------------


def test_code_exchange_answers_as_intuit(emulator_server: EmulatorServer) -> None:
    """Intuit OAuth, "Exchange the authorization code for access tokens": token_type bearer,
    expires_in 3600, refresh_token, x_refresh_token_expires_in 8726400; no id_token without the
    openid scope; RFC 6749 5.1: never cached."""
    params = redirect_params(consent(emulator_server.base_url))

    response = exchange(emulator_server.base_url, params["code"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"token_type", "access_token", "expires_in", "refresh_token",
                           "x_refresh_token_expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    assert body["x_refresh_token_expires_in"] == 8726400
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["Cache-Control"] == "no-store"


def test_code_is_single_use(emulator_server: EmulatorServer) -> None:
    """RFC 6749 4.1.2 (Intuit follows it): an authorization code works once; a second exchange
    is ``invalid_grant``."""
    code = redirect_params(consent(emulator_server.base_url))["code"]
    assert exchange(emulator_server.base_url, code).status_code == 200

    assert_oauth_error(exchange(emulator_server.base_url, code), 400, "invalid_grant")


def test_code_is_bound_to_its_redirect_uri(emulator_server: EmulatorServer) -> None:
    """RFC 6749 4.1.3: the redirect_uri of the exchange must be the one the code was sent to."""
    code = redirect_params(consent(emulator_server.base_url))["code"]

    response = exchange(emulator_server.base_url, code, SETTINGS.redirect_uris[1])

    assert_oauth_error(response, 400, "invalid_grant")


def test_code_expires_after_a_few_minutes(clocked_server: EmulatorServer,
                                          clock: ManualClock) -> None:
    """RFC 6749 4.1.2 ("short lived, 10 minutes at most"): an old code is ``invalid_grant``."""
    code = redirect_params(consent(clocked_server.base_url))["code"]
    clock.advance(SETTINGS.authorization_code_lifetime_seconds + 1)

    assert_oauth_error(exchange(clocked_server.base_url, code), 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(emulator_server: EmulatorServer) -> None:
    """Intuit answers a code it never issued with 400 ``invalid_grant``."""
    assert_oauth_error(exchange(emulator_server.base_url, "not-a-code"), 400, "invalid_grant")


@pytest.mark.parametrize("auth", [None, (SETTINGS.client_id, "wrong-secret"),
                                  ("someone-else", SETTINGS.client_secret)])
def test_bad_client_credentials_are_invalid_client(emulator_server: EmulatorServer,
                                                   auth: Any) -> None:
    """Intuit OAuth: the token endpoint needs HTTP Basic ``client_id:client_secret``; wrong or
    missing credentials are 401 ``invalid_client`` (and the secret is never echoed)."""
    code = redirect_params(consent(emulator_server.base_url))["code"]

    response = token_request(emulator_server.base_url, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=auth)

    assert_oauth_error(response, 401, "invalid_client")
    assert SETTINGS.client_secret not in response.text
    assert exchange(emulator_server.base_url, code).status_code == 200  # code not spent


def test_unknown_grant_type_and_missing_fields_are_refused(
        emulator_server: EmulatorServer) -> None:
    """RFC 6749 5.2: ``unsupported_grant_type``; a missing parameter is ``invalid_request``."""
    base = emulator_server.base_url
    assert_oauth_error(token_request(base, {"grant_type": "password"}), 400,
                       "unsupported_grant_type")
    assert_oauth_error(token_request(base, {"grant_type": "refresh_token"}), 400,
                       "invalid_request")


# --- token endpoint: refresh_token grant --------------------------------------------------------


def test_refresh_within_a_day_keeps_the_refresh_token_counting_down(
        clocked_server: EmulatorServer, clock: ManualClock) -> None:
    """Refresh validity: within 24 h of its issue a refresh returns the same refresh token, its
    x_refresh_token_expires_in counting down; the access token is new each time."""
    tokens = connect(clocked_server.base_url)
    clock.advance(5 * HOUR)

    response = refresh(clocked_server.base_url, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] == tokens["refresh_token"]
    assert body["x_refresh_token_expires_in"] == 8726400 - 5 * HOUR
    assert body["access_token"] != tokens["access_token"]
    assert body["expires_in"] == 3600


def test_refresh_after_a_day_rotates_and_spends_the_old_refresh_token(
        clocked_server: EmulatorServer, clock: ManualClock) -> None:
    """Refresh validity: "On day 2, a new Refresh Token is returned, and Refresh Token A expires
    ... The Refresh Token API call will throw an invalid_grant error if you attempt to use it"."""
    tokens = connect(clocked_server.base_url)
    clock.advance(DAY + 1)

    rotated = refresh(clocked_server.base_url, tokens["refresh_token"]).json()

    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["x_refresh_token_expires_in"] == 8726400  # a fresh lifetime: rolling
    assert_oauth_error(refresh(clocked_server.base_url, tokens["refresh_token"]), 400,
                       "invalid_grant")
    assert refresh(clocked_server.base_url, rotated["refresh_token"]).status_code == 200


def test_refresh_token_expires_unused_after_its_lifetime(clocked_server: EmulatorServer,
                                                         clock: ManualClock) -> None:
    """Intuit FAQ: a refresh token unused for its lifetime (100 days) expires; the user must
    reconnect (``invalid_grant``)."""
    tokens = connect(clocked_server.base_url)
    clock.advance(8726400)

    response = refresh(clocked_server.base_url, tokens["refresh_token"])

    assert_oauth_error(response, 400, "invalid_grant")
    assert "expired" in response.json()["error_description"]


def test_hard_expiry_is_reported_on_request(clocked_server: EmulatorServer,
                                            clock: ManualClock) -> None:
    """Intuit SDK release notes (Java SDK 6.5.4, .NET SDK 14.7.1.4; intuit-oauth's
    ``include_refresh_token_hard_expires_in``): refresh tokens have a five-year maximum validity,
    sent as x_refresh_token_hard_expires_in only when the client sends
    ``x-include-refresh-token-hard-expires-in: true``."""
    tokens = connect(clocked_server.base_url)
    clock.advance(HOUR)

    asked = refresh(clocked_server.base_url, tokens["refresh_token"],
                    **{"x-include-refresh-token-hard-expires-in": "true"}).json()
    plain = refresh(clocked_server.base_url, tokens["refresh_token"]).json()

    assert asked["x_refresh_token_hard_expires_in"] == 5 * 365 * DAY - HOUR
    assert "x_refresh_token_hard_expires_in" not in plain


def test_rotation_on_every_refresh_is_a_setting() -> None:
    """Emulator setting (documented): ``refresh_token_rotation_seconds=0`` rotates at each
    refresh, the strictest reading of "always keep the latest refresh token" (Refresh validity).
    """
    settings = OAuthSettings(refresh_token_rotation_seconds=0)
    with EmulatorServer(EmulatorConfig(oauth=settings)) as server:
        tokens = connect(server.base_url)
        first = refresh(server.base_url, tokens["refresh_token"]).json()
        second = refresh(server.base_url, first["refresh_token"]).json()

        assert len({tokens["refresh_token"], first["refresh_token"],
                    second["refresh_token"]}) == 3
        assert_oauth_error(refresh(server.base_url, first["refresh_token"]), 400,
                           "invalid_grant")


def test_unknown_refresh_token_is_invalid_grant(emulator_server: EmulatorServer) -> None:
    """Intuit: ``{"error_description": "Incorrect or invalid refresh token", "error":
    "invalid_grant"}`` for a refresh token it does not know; the token is not echoed."""
    response = refresh(emulator_server.base_url, "made-up-refresh-token")

    assert_oauth_error(response, 400, "invalid_grant")
    assert "Incorrect or invalid refresh token" in response.json()["error_description"]
    assert "made-up-refresh-token" not in response.text


# --- revoke endpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_revoke_disconnects_the_whole_grant(emulator_server: EmulatorServer, which: str) -> None:
    """Intuit OAuth, "Revoke access tokens": POST {"token": ...} with Basic auth to the revoke
    endpoint answers 200 and disconnects the app; its refresh token is then ``invalid_grant``."""
    tokens = connect(emulator_server.base_url)

    response = revoke(emulator_server.base_url, tokens[which])

    assert response.status_code == 200, response.text
    assert_oauth_error(refresh(emulator_server.base_url, tokens["refresh_token"]), 400,
                       "invalid_grant")


def test_revoke_needs_client_credentials_and_tolerates_unknown_tokens(
        emulator_server: EmulatorServer) -> None:
    """Intuit OAuth (Basic auth on revoke) and RFC 7009 2.2 (an unknown token is still 200)."""
    tokens = connect(emulator_server.base_url)

    refused = revoke(emulator_server.base_url, tokens["refresh_token"],
                     auth=(SETTINGS.client_id, "wrong"))

    assert_oauth_error(refused, 401, "invalid_client")
    assert refresh(emulator_server.base_url, tokens["refresh_token"]).status_code == 200
    assert revoke(emulator_server.base_url, "never-issued").status_code == 200
