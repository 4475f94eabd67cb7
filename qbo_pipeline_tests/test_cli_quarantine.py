"""`qbo-pipeline quarantine list|retry` on the demo: a held-back client fixed in the source and
tried again at once, through a real sync against the emulator over HTTP."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline_tests.company import Company, company, synced_demo

__all__ = ["company", "synced_demo"]  # fixtures


def held(realm_id: str) -> list[tuple[str, str]]:
    listed = CliRunner().invoke(main, ["quarantine", "list", "--json", "--realm", realm_id])
    assert listed.exit_code == 0, listed.output
    return [(row["entity"], row["source_key"]) for row in json.loads(listed.output)]


def test_a_held_client_fixed_in_the_source_is_retried_and_released(company: Company) -> None:
    realm_id = company.realm_id
    text = CliRunner().invoke(main, ["quarantine", "list", "--entity", "client"])
    assert "client 2 (realm" in text.output
    assert "  client 2: PrimaryEmailAddr.Address is required" in text.output
    assert ("client", "2") in held(realm_id)

    still = CliRunner().invoke(main, ["quarantine", "retry", "--entity", "client", "--id", "2"])
    assert still.exit_code != 0
    assert "client 2 is still held back: client 2: PrimaryEmailAddr.Address is required" \
        in still.output

    company.change_source("UPDATE clients SET email = 'birds@example.com', updated_at = :now "
                          "WHERE id = 2")
    retried = CliRunner().invoke(main, ["quarantine", "retry", "--entity", "client", "--id", "2"])
    assert retried.exit_code == 0, retried.output + repr(retried.exception)
    assert "client 2 passed and is released from the quarantine" in retried.output
    assert ("client", "2") not in held(realm_id) and ("client", "3") in held(realm_id)
    customer = company.records("Customer")[str(company.linked("client", "2"))]
    assert customer["PrimaryEmailAddr"]["Address"] == "birds@example.com"


@pytest.mark.parametrize(("arguments", "message"), [
    (["retry", "--entity", "client", "--id", "1"], "client 1 is not held back in realm"),
    (["retry", "--entity", "clients", "--id", "2"], "unknown entity 'clients'"),
    (["list", "--entity", "clients"], "unknown entity 'clients'"),
])
def test_a_bad_request_is_refused_clearly(company: Company, arguments: list[str],
                                          message: str) -> None:
    before = held(company.realm_id)
    refused = CliRunner().invoke(main, ["quarantine", *arguments])
    assert refused.exit_code != 0 and message in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert held(company.realm_id) == before
