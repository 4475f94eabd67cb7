"""What OAuth clients see: the token guard on the accounting API, discovery, JWKS, UserInfo,
and Intuit's own Python client (intuit-oauth's ``AuthClient``) run unchanged.

Sources cited below: "Intuit errors" is Intuit's page "Error codes" (Accounting API: 3200
AuthenticationFailed, 3100 ApplicationAuthorizationFailed); "Intuit discovery" its page
"Authorization discovery documents"; "Intuit OpenID" its page "OpenID Connect"; other names as in
test_oauth_tokens.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline_tests.conftest import ConnectedRealm
from qbo_pipeline_tests.emulator.test_oauth_tokens import (
    HOUR,
    REDIRECT_URI,
    SETTINGS,
    ManualClock,
    assert_oauth_error,
    connect,
    refresh,
    revoke,
)


def company_info(base_url: str, realm_id: str, authorization: str | None) -> requests.Response:
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return requests.get(f"{base_url}/v3/company/{realm_id}/companyinfo/{realm_id}",
                        headers=headers, timeout=10)


def assert_qbo_auth_fault(response: requests.Response, status: int, code: str) -> str:
    """The fault's detail, after checking status and code (401s use QBO's lowercase shape)."""
    assert response.status_code == status, response.text
    body = response.json()
    errors = body["fault"]["error"] if status == 401 else body["Fault"]["Error"]
    assert errors[0]["code"] == code
    detail: str = errors[0]["detail" if status == 401 else "Detail"]
    return detail


# --- the guard on the accounting API -------------------------------------------------------------


def test_a_live_token_for_the_company_is_let_through(realm: ConnectedRealm) -> None:
    """Intuit OAuth, "Make API calls": ``Authorization: Bearer <access token>`` for the realm."""
    response = company_info(realm.base_url, realm.realm_id, f"Bearer {realm.access_token}")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer", "Bearer not-a-token"])
def test_missing_or_unknown_token_is_401_authentication_failed(
        realm: ConnectedRealm, authorization: str | None) -> None:
    """Intuit errors: 3200 AuthenticationFailed, HTTP 401, in QBO's lowercase ``fault`` body;
    whatever was sent as a token is not repeated back."""
    response = company_info(realm.base_url, realm.realm_id, authorization)

    assert_qbo_auth_fault(response, 401, "3200")
    assert "not-a-token" not in response.text


def test_expired_token_is_401_without_echoing_it(clocked_server: EmulatorServer,
                                                 clock: ManualClock) -> None:
    """Intuit OAuth: access tokens are valid for one hour; then 401 3200 ("Token expired"), and
    a refresh brings access back."""
    tokens = connect(clocked_server.base_url)
    clock.advance(HOUR)

    response = company_info(clocked_server.base_url, tokens["realmId"],
                            f"Bearer {tokens['access_token']}")

    detail = assert_qbo_auth_fault(response, 401, "3200")
    assert detail.startswith("Token expired")
    assert tokens["access_token"] not in response.text
    fresh = refresh(clocked_server.base_url, tokens["refresh_token"]).json()
    assert company_info(clocked_server.base_url, tokens["realmId"],
                        f"Bearer {fresh['access_token']}").status_code == 200


def test_token_of_another_company_is_403_authorization_failed(
        emulator_server: EmulatorServer) -> None:
    """Intuit errors: 3100 ApplicationAuthorizationFailed, HTTP 403: the token is valid, but the
    app is not connected to this company with it."""
    ours = connect(emulator_server.base_url)
    theirs = connect(emulator_server.base_url)

    response = company_info(emulator_server.base_url, theirs["realmId"],
                            f"Bearer {ours['access_token']}")

    assert_qbo_auth_fault(response, 403, "3100")


def test_revoked_grant_locks_the_access_token_out(emulator_server: EmulatorServer) -> None:
    """Intuit OAuth, "Revoke access tokens": once revoked, API calls with the grant's access
    token fail with 401 until the user reconnects."""
    tokens = connect(emulator_server.base_url)
    revoke(emulator_server.base_url, tokens["refresh_token"])

    response = company_info(emulator_server.base_url, tokens["realmId"],
                            f"Bearer {tokens['access_token']}")

    assert assert_qbo_auth_fault(response, 401, "3200").startswith("Token revoked")


def test_expire_access_tokens_hits_one_company_and_refresh_recovers(
        emulator_server: EmulatorServer) -> None:
    """The fault switch "expired tokens": every live access token of the company expires at once
    (as when QBO rejects a token early); other companies are untouched; refreshing recovers."""
    hit = connect(emulator_server.base_url)
    spared = connect(emulator_server.base_url)

    emulator_server.emulator.oauth.expire_access_tokens(hit["realmId"])

    assert_qbo_auth_fault(company_info(emulator_server.base_url, hit["realmId"],
                                       f"Bearer {hit['access_token']}"), 401, "3200")
    assert company_info(emulator_server.base_url, spared["realmId"],
                        f"Bearer {spared['access_token']}").status_code == 200
    fresh = refresh(emulator_server.base_url, hit["refresh_token"]).json()
    assert company_info(emulator_server.base_url, hit["realmId"],
                        f"Bearer {fresh['access_token']}").status_code == 200


def test_openid_only_token_cannot_read_a_company(emulator_server: EmulatorServer) -> None:
    """Intuit OpenID: an openid-only consent names no company (no realmId) and grants no
    accounting access: 403 on any company."""
    tokens = connect(emulator_server.base_url, scope="openid email")
    assert tokens["realmId"] is None
    other = connect(emulator_server.base_url)

    response = company_info(emulator_server.base_url, other["realmId"],
                            f"Bearer {tokens['access_token']}")

    assert_qbo_auth_fault(response, 403, "3100")


# --- discovery, keys, UserInfo -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid_configuration",
                                  "/.well-known/openid_sandbox_configuration/"])
def test_discovery_document_points_at_this_server(emulator_server: EmulatorServer,
                                                  path: str) -> None:
    """Intuit discovery: production and sandbox documents list issuer, authorization, token,
    userinfo, revocation and jwks endpoints; here every one is on the emulator's base URL."""
    base = emulator_server.base_url

    document = requests.get(base + path, timeout=10).json()

    assert document["issuer"] == f"{base}/op/v1"
    assert document["authorization_endpoint"] == f"{base}/connect/oauth2"
    assert document["token_endpoint"] == f"{base}/oauth2/v1/tokens/bearer"
    assert document["revocation_endpoint"] == f"{base}/v2/oauth2/tokens/revoke"
    assert document["userinfo_endpoint"] == f"{base}/v1/openid_connect/userinfo"
    assert document["jwks_uri"] == f"{base}/op/v1/jwks"
    assert document["response_types_supported"] == ["code"]
    assert {"openid", "com.intuit.quickbooks.accounting"} <= set(document["scopes_supported"])


def test_id_token_is_signed_with_a_published_key(emulator_server: EmulatorServer) -> None:
    """Intuit OpenID, "Validate the ID token": RS256, signed with a key from jwks_uri, ``iss``
    the discovery issuer, ``aud`` the client id, ``realmid`` the connected company."""
    base = emulator_server.base_url
    tokens = connect(base, scope="openid com.intuit.quickbooks.accounting")
    keys = jwt.PyJWKSet.from_dict(requests.get(f"{base}/op/v1/jwks", timeout=10).json())
    kid = jwt.get_unverified_header(tokens["id_token"])["kid"]

    claims = jwt.decode(tokens["id_token"], keys[kid].key, algorithms=["RS256"],
                        audience=SETTINGS.client_id, issuer=f"{base}/op/v1")

    assert claims["realmid"] == tokens["realmId"]


def test_userinfo_answers_the_claims_of_the_granted_scopes(
        emulator_server: EmulatorServer) -> None:
    """Intuit OpenID, "UserInfo endpoint": the user's claims for the openid scopes granted;
    a token without openid is refused (RFC 6750 ``insufficient_scope``, 403)."""
    base = emulator_server.base_url
    with_email = connect(base, scope="openid email")
    accounting_only = connect(base)

    claims = requests.get(f"{base}/v1/openid_connect/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {with_email['access_token']}"}).json()
    refused = requests.get(f"{base}/v1/openid_connect/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {accounting_only['access_token']}"})

    assert claims.keys() == {"sub", "email", "emailVerified"}
    assert_oauth_error(refused, 403, "insufficient_scope")


# --- Intuit's own client, unchanged -------------------------------------------------------------


def test_intuit_oauth_client_runs_the_whole_flow_unchanged(
        emulator_server: EmulatorServer) -> None:
    """intuit-oauth's README: ``AuthClient(..., environment=<discovery URL>)``, then
    get_authorization_url, get_bearer_token(code, realm_id), get_user_info, refresh, revoke;
    it validates the id_token against the discovery issuer and jwks_uri by itself."""
    discovery_url = f"{emulator_server.base_url}/.well-known/openid_sandbox_configuration/"
    client = AuthClient(SETTINGS.client_id, SETTINGS.client_secret, REDIRECT_URI,
                        environment=discovery_url)

    url = client.get_authorization_url([Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL])
    callback = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    query = {key: value[0] for key, value in parse_qs(urlparse(callback).query).items()}
    assert query["state"] == client.state_token
    client.get_bearer_token(query["code"], realm_id=query["realmId"])

    assert client.id_token is not None  # set only when validate_id_token passed
    assert (client.expires_in, client.x_refresh_token_expires_in) == (3600, 8726400)
    assert client.get_user_info().json()["email"]
    first_access = client.access_token
    client.refresh()
    assert client.access_token != first_access
    assert company_info(emulator_server.base_url, query["realmId"],
                        f"Bearer {client.access_token}").status_code == 200
    assert client.revoke() is True
    with pytest.raises(AuthClientError) as refused:
        client.refresh()
    assert refused.value.status_code == 400
