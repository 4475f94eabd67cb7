"""The emulator's control plane under /admin: companies, switches, and a bookkeeper's edits.

Not a QBO API: it stands in for what a person does in QBO's screens or in Intuit's developer
portal (new sandbox company, reset it, edit a record, set the webhook endpoint and its verifier
token), plus the emulator's own fault and limit switches. JSON in and out, no token needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.emulator.webhooks import WebhookSettings
from qbo_pipeline_tests.conftest import ConnectedRealm

SECRET_TOKEN = "admin-test-verifier-9b1c"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(webhooks=WebhookSettings(verifier_token=SECRET_TOKEN))
    with EmulatorServer(config) as running:
        yield running


def admin(server: EmulatorServer, method: str, path: str, body: Any = None,
          expect: int = 200) -> Any:
    answer = requests.request(method, f"{server.base_url}/admin/{path}", json=body, timeout=5)
    assert answer.status_code == expect, answer.text
    return answer.json()


def test_realms_lists_connected_and_created_companies(server: EmulatorServer,
                                                      company: ConnectedRealm) -> None:
    """Each connected company is a realm; the admin can also open one, as a new sandbox
    company is created in Intuit's developer portal."""
    created = admin(server, "POST", "realms", {"realm_id": "9130355555555"}, expect=201)
    assert created == {"realm_id": "9130355555555"}
    realms = admin(server, "GET", "realms")["realms"]
    assert {company.realm_id, "9130355555555"} <= set(realms)
    fresh = admin(server, "POST", "realms", expect=201)["realm_id"]
    assert fresh.isdigit() and fresh in admin(server, "GET", "realms")["realms"]


def test_seed_creates_through_qbo_rules_and_dump_shows_them(server: EmulatorServer,
                                                            company: ConnectedRealm) -> None:
    """Seeded records are created as the API would create them (Id, SyncToken, MetaData)."""
    seeded = admin(server, "POST", f"realms/{company.realm_id}/seed",
                   {"Customer": [{"DisplayName": "Seeded One"}, {"DisplayName": "Seeded Two"}]})
    created = seeded["created"]["Customer"]
    assert [c["DisplayName"] for c in created] == ["Seeded One", "Seeded Two"]
    assert all(c["Id"] and c["SyncToken"] == "0" for c in created)
    dumped = admin(server, "GET", f"realms/{company.realm_id}/dump")["objects"]
    assert {"Seeded One", "Seeded Two"} <= {c["DisplayName"] for c in dumped["Customer"]}
    assert "Account" in dumped  # a new company's chart of accounts is there too
    read = company.get(f"customer/{created[0]['Id']}")
    assert read.status_code == 200 and read.json()["Customer"]["DisplayName"] == "Seeded One"


def test_seed_breaking_a_qbo_rule_answers_the_qbo_fault(server: EmulatorServer,
                                                        company: ConnectedRealm) -> None:
    """A DisplayName used twice is QBO's 6240 Duplicate Name error, seeded or not."""
    answer = requests.post(f"{server.base_url}/admin/realms/{company.realm_id}/seed", timeout=5,
                           json={"Customer": [{"DisplayName": "Twice"},
                                              {"DisplayName": "Twice"}]})
    assert answer.status_code == 400
    assert answer.json()["fault"]["Fault"]["Error"][0]["code"] == "6240"


def test_reset_brings_back_a_new_company(server: EmulatorServer,
                                         company: ConnectedRealm) -> None:
    """After a reset the company is as a new QBO company: its seeded records are gone."""
    admin(server, "POST", f"realms/{company.realm_id}/seed",
          {"Customer": [{"DisplayName": "Gone After Reset"}]})
    assert admin(server, "POST", f"realms/{company.realm_id}/reset")["reset"] is True
    dumped = admin(server, "GET", f"realms/{company.realm_id}/dump")["objects"]
    names = {c["DisplayName"] for c in dumped.get("Customer", [])}
    assert "Gone After Reset" not in names
    assert "Account" in dumped


def test_bookkeeper_edit_makes_the_client_copy_stale(server: EmulatorServer,
                                                     company: ConnectedRealm) -> None:
    """A bookkeeper's edit in QBO bumps SyncToken and LastUpdatedTime; an update sent with the
    old SyncToken then gets QBO's 5010 Stale Object Error."""
    customer = company.post("customer", {"DisplayName": "Edited Meanwhile"}).json()["Customer"]
    edited = admin(server, "POST", f"realms/{company.realm_id}/Customer/{customer['Id']}/edit",
                   {"CompanyName": "Changed in QBO"})["Customer"]
    assert edited["CompanyName"] == "Changed in QBO"
    assert int(edited["SyncToken"]) == int(customer["SyncToken"]) + 1
    assert edited["MetaData"]["LastUpdatedTime"] >= customer["MetaData"]["LastUpdatedTime"]
    stale = company.post("customer", {"Id": customer["Id"], "SyncToken": customer["SyncToken"],
                                      "sparse": True, "DisplayName": "Edited Meanwhile"})
    assert stale.status_code == 400
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"


def test_bookkeeper_edit_changes_what_the_api_only_reads(server: EmulatorServer,
                                                        company: ConnectedRealm) -> None:
    """A tax code is read-only in the Accounting API (500 Unsupported Operation), yet a person
    makes one inactive in QBO's screens: the admin edit plays that, and the API reads it."""
    refused = company.post("taxcode", {"Id": "TAX", "SyncToken": "0", "sparse": True,
                                       "Active": False})
    assert refused.status_code in (400, 500), refused.text
    edited = admin(server, "POST", f"realms/{company.realm_id}/TaxCode/TAX/edit",
                   {"Active": False})["TaxCode"]
    assert edited["Active"] is False
    read = company.get("taxcode/TAX").json()["TaxCode"]
    assert (read["Active"], read["SyncToken"]) == (False, edited["SyncToken"])


def test_faults_get_put_schedule_and_clear(server: EmulatorServer,
                                           company: ConnectedRealm) -> None:
    """Fault switches are read, set, scheduled and cleared at run time."""
    described = admin(server, "PUT", "faults", {"server_error": 0.25, "seed": 3})
    assert described["settings"]["server_error"] == 0.25
    assert described["settings"]["seed"] == 3
    scheduled = admin(server, "POST", "faults/scheduled",
                      {"kind": "throttle", "count": 2, "realm_id": company.realm_id},
                      expect=201)
    assert scheduled == {"kind": "throttle", "remaining": 2, "realm_id": company.realm_id,
                         "target": "accounting"}
    assert admin(server, "GET", "faults")["scheduled"] == [scheduled]
    cleared = admin(server, "DELETE", "faults")
    assert cleared["scheduled"] == [] and cleared["settings"]["server_error"] == 0.0
    assert company.get("query", params={"query": "SELECT * FROM Item"}).status_code == 200


def test_limits_get_and_put(server: EmulatorServer, company: ConnectedRealm) -> None:
    """Rate limits are QBO's by default and can be changed at run time, e.g. to shrink time."""
    assert admin(server, "GET", "limits")["settings"] == {
        "enabled": True, "requests_per_minute": 500, "requests_per_second": None,
        "concurrent_per_realm": 10, "batch_per_minute": 40, "window_seconds": 60.0}
    try:
        admin(server, "PUT", "limits", {"requests_per_minute": 1})
        statuses = [company.get("query", params={"query": "SELECT * FROM Item"}).status_code
                    for _ in range(2)]
        assert statuses == [200, 429]
        assert admin(server, "GET", "limits")["usage"][company.realm_id]["requests_in_window"] == 1
    finally:
        admin(server, "PUT", "limits", {"requests_per_minute": 500})


def test_webhooks_get_masks_the_verifier_token(server: EmulatorServer) -> None:
    """The verifier token is a secret: it can be set but is never shown back."""
    shown = admin(server, "GET", "webhooks")
    assert shown["settings"]["verifier_token"] == "********"
    assert SECRET_TOKEN not in str(shown)
    updated = admin(server, "PUT", "webhooks", {"url": "http://127.0.0.1:9/hook",
                                                "verifier_token": "another-secret",
                                                "format": "legacy"})
    assert updated["settings"]["url"] == "http://127.0.0.1:9/hook"
    assert updated["settings"]["format"] == "legacy"
    assert "another-secret" not in str(updated)
    admin(server, "PUT", "webhooks", {"url": None})


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("GET", "realms/404404/dump", None, 404, "unknown realm 404404"),
    ("POST", "realms/404404/reset", None, 404, "unknown realm 404404"),
    ("PUT", "faults", {"server_error": 2}, 400, "server_error must be between 0 and 1"),
    ("PUT", "faults", {"lightning": 0.1}, 400, "unknown fault setting(s) lightning"),
    ("POST", "faults/scheduled", {"kind": "meteor"}, 400, "unknown fault kind 'meteor'"),
    ("PUT", "limits", {"window_seconds": -1}, 400, "window_seconds must be > 0"),
    ("PUT", "webhooks", {"format": "xml"}, 400, "format must be one of cloudevents, legacy"),
    ("PUT", "webhooks", [1, 2], 400, "the body must be a JSON object"),
    ("POST", "realms", {"realm_id": "abc"}, 400, "realm_id must be a string of digits"),
])
def test_refusals_are_json_with_a_clear_message(server: EmulatorServer, method: str, path: str,
                                                body: Any, status: int, message: str) -> None:
    """Every refusal says what was wrong and how to fix it, as JSON."""
    error = admin(server, method, path, body, expect=status)["error"]
    assert error["status"] == status
    assert message in error["message"]


def test_bad_json_and_unknown_records_are_refused(server: EmulatorServer,
                                                  company: ConnectedRealm) -> None:
    """A body that is not JSON, and an edit of a record that does not exist (QBO's 610)."""
    answer = requests.put(f"{server.base_url}/admin/limits", data=b"{not json", timeout=5)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]["message"]
    missing = requests.post(f"{server.base_url}/admin/realms/{company.realm_id}/Customer/99999/"
                            "edit", json={"CompanyName": "X"}, timeout=5)
    assert missing.status_code == 400
    assert missing.json()["fault"]["Fault"]["Error"][0]["code"] == "610"
