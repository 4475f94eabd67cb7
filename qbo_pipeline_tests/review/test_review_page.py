"""The review page in a real headless Chromium: conflicts made by a bookkeeper's edit in
QuickBooks decided all three ways and checked in QBO and in the source after the next sync; a
quarantined row fixed in the source and retried; a duplicate invoice repaired by the documented
steps. The page, the syncs and the emulator are real (HTTP, SQLite, Dagster runs)."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline.defs.resources import EMULATOR_CLIENT_SECRET
from qbo_pipeline.state import StateTokenStore, load_cipher
from qbo_pipeline.state.crypto import SECRET_KEY_VARIABLE
from qbo_pipeline_tests.company import Company
from qbo_pipeline_tests.review.conftest import screenshot

expect: Any = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'").expect

# Three linked clients whose phone a bookkeeper and the application both change.
DECISIONS = {"1": "keep_source", "4": "apply_qbo", "5": "dismiss"}


def qbo_phone(company: Company, key: str) -> str | None:
    customer = company.records("Customer")[str(company.linked("client", key))]
    phone: str | None = customer.get("PrimaryPhone", {}).get("FreeFormNumber")
    return phone


def source_phone(company: Company, key: str) -> str:
    return str(company.source_value("SELECT phone FROM clients WHERE id = :k", k=key))


def make_conflicts(company: Company) -> None:
    for key in DECISIONS:
        company.edit_in_qbo("Customer", str(company.linked("client", key)),
                            {"PrimaryPhone": {"FreeFormNumber": f"555-01{key}0"}})
    company.change_source("UPDATE clients SET phone = '555-02' || id || '0', updated_at = :now "
                          "WHERE id IN (1, 4, 5)")
    output = company.sync()
    assert re.search(r"client\s+\d+\s+\d+\s+\d+\s+\d+\s+3\s", output), output


def sign(page: Any, name: str = "Ana Bookkeeper") -> None:
    page.get_by_label("Your name").fill(name)


def test_conflicts_are_listed_with_their_three_values_and_each_decision_is_applied(
        company: Company, review: str, page: Any) -> None:
    make_conflicts(company)
    page.goto(f"{review}/")
    expect(page.get_by_role("heading", name="What needs a person")).to_be_visible()
    client_row = page.locator("tr", has=page.locator("td", has_text=re.compile("^client$")))
    expect(client_row.locator("td").nth(2)).to_have_text("3")
    screenshot(page, "overview")

    client_row.locator("td").nth(2).get_by_role("link").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    names = {key: company.records("Customer")[str(company.linked("client", key))]["DisplayName"]
             for key in DECISIONS}
    for key, name in names.items():
        expect(page.locator("tbody tr", has_text=f"client {key} ")).to_contain_text(name)
    expect(rows.first).to_contain_text("PrimaryPhone.FreeFormNumber")
    screenshot(page, "conflicts")

    # Client 1: opened, its three values side by side, the source's kept.
    page.locator("tbody tr", has_text="client 1 ").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(f"Conflict \\d+: {re.escape(names['1'])}"))
           ).to_be_visible()
    phone = page.locator("tr", has=page.get_by_role("rowheader",
                                                    name="PrimaryPhone.FreeFormNumber"))
    expect(phone.locator("td")).to_have_text(["555-0210", "555-0110", re.compile(r".+")])
    base = phone.locator("td").nth(2).inner_text()
    assert base not in ("555-0210", "555-0110")  # what both sides agreed on before
    expect(page.get_by_text("Found by run")).to_be_visible()
    screenshot(page, "conflict")
    sign(page)
    page.get_by_role("button", name="Keep the source's values").click()
    expect(page.get_by_role("status")).to_contain_text(
        "keep the source's values, decided by Ana Bookkeeper. The next sync applies it.")

    # Clients 4 and 5 from the list, each ticked and decided.
    page.goto(f"{review}/conflicts?entity=client")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.locator("tbody tr", has_text="client 4 ").get_by_role("checkbox").check()
    expect(page.get_by_label("Your name")).to_have_value("Ana Bookkeeper")  # remembered
    page.get_by_role("button", name="Apply QuickBooks' values").click()
    expect(page.get_by_role("status")).to_contain_text("apply QuickBooks' values")
    page.locator("tbody tr", has_text="client 5 ").get_by_role("checkbox").check()
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("status")).to_contain_text("dismiss, decided by Ana Bookkeeper")
    expect(page.get_by_text("No open conflicts for client.")).to_be_visible()

    company.sync()
    assert (source_phone(company, "1"), qbo_phone(company, "1")) == ("555-0210", "555-0210")
    assert (source_phone(company, "4"), qbo_phone(company, "4")) == ("555-0140", "555-0140")
    assert (source_phone(company, "5"), qbo_phone(company, "5")) == ("555-0250", "555-0150")
    page.goto(f"{review}/conflicts?entity=client&show=all")
    for key, status in (("1", "kept_source"), ("4", "applied_qbo"), ("5", "dismissed")):
        expect(page.locator("tbody tr", has_text=f"client {key} ")).to_contain_text(
            f"{status} by Ana Bookkeeper")
    page.locator("tbody tr", has_text="client 4 ").get_by_role("link").first.click()
    expect(page.get_by_text("Applied by run")).to_be_visible()
    output = company.sync()  # nothing raised again, nothing written
    assert re.search(r"client\s+0\s+0\s+\d+\s+\d+\s+0\s+0", output), output


def test_a_decision_the_source_cannot_take_is_refused_with_the_way_out(
        company: Company, review: str, page: Any) -> None:
    """Invoices push only: QuickBooks' value has no way into the source."""
    invoice = str(company.linked("invoice", "2"))
    company.edit_in_qbo("Invoice", invoice, {"CustomerMemo": {"value": "Paid by cheque"}})
    company.change_source("UPDATE invoices SET notes = 'Thanks!', updated_at = :now "
                          "WHERE id = 2")
    company.sync()
    page.goto(f"{review}/conflicts?entity=invoice")
    page.locator("tbody tr", has_text="invoice 2 ").get_by_role("link").first.click()
    expect(page.get_by_role("button", name="Apply QuickBooks' values")).to_be_disabled()
    expect(page.get_by_text(re.compile("is a push field, so QuickBooks' value cannot be "
                                       "written into invoices"))).to_be_visible()
    page.goto(f"{review}/conflicts?entity=invoice")
    page.locator("tbody tr", has_text="invoice 2 ").get_by_role("checkbox").check()
    sign(page)
    page.get_by_role("button", name="Apply QuickBooks' values").click()
    expect(page.get_by_role("status")).to_contain_text("Nothing was decided: conflict")
    expect(page.locator("tbody tr", has_text="invoice 2 ")).to_contain_text("open")


def test_a_quarantined_row_is_fixed_in_the_source_and_retried(company: Company, review: str,
                                                              page: Any) -> None:
    page.goto(f"{review}/quarantine")
    page.get_by_label("Entity").select_option("client")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(2)  # clients 2 and 3
    screenshot(page, "quarantine")
    page.get_by_label("Containing").fill("email")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    held = page.locator("tbody tr", has_text="client 2")
    expect(held).to_contain_text("client 2: PrimaryEmailAddr.Address is required - add an "
                                 "email to the client")

    held.get_by_role("button", name="Retry client 2 now").click()
    expect(page.get_by_role("status")).to_contain_text(
        "client 2 is still held back: client 2: PrimaryEmailAddr.Address is required")

    company.change_source("UPDATE clients SET email = 'birds@example.com', updated_at = :now "
                          "WHERE id = 2")
    page.get_by_role("button", name="Retry client 2 now").click()
    expect(page.get_by_role("status")).to_contain_text(
        "client 2 passed and is released from the quarantine. Dagster run")
    expect(page.locator("tbody tr")).to_have_count(0)  # the filter's one row is released
    page.goto(f"{review}/quarantine?entity=client")
    expect(page.locator("tbody tr")).to_have_count(1)  # client 3 is still held
    qbo_id = company.linked("client", "2")
    assert qbo_id is not None
    assert company.records("Customer")[qbo_id]["PrimaryEmailAddr"]["Address"] == \
        "birds@example.com"


def test_a_duplicate_invoice_is_repaired_by_the_documented_steps(
        company: Company, review: str, page: Any) -> None:
    """Seed 001: invoice 2 went to QuickBooks twice and is linked to the copy. The steps: void
    the duplicate in QuickBooks, relink the record to the right invoice, sync."""
    right = str(company.linked("invoice", "2"))
    original = company.records("Invoice")[right]
    # A company that does not warn of a reused invoice number, where a second push can make
    # a copy under the same number.
    company.qbo.emulator.backend.set_preference(company.realm_id, "WarnDuplicateDocNum", False)
    duplicate = company.qbo_client_call("create", "Invoice", {
        key: value for key, value in original.items()
        if key not in ("Id", "SyncToken", "MetaData")})
    company.sync()  # the copy is fetched
    relinked = CliRunner().invoke(main, ["links", "relink", "--realm", company.realm_id,
                                         "--entity", "invoice", "--id", "2", "--qbo-id",
                                         duplicate["Id"], "--by", "the second sync"])
    assert relinked.exit_code == 0, relinked.output

    page.goto(f"{review}/duplicates?entity=invoice")
    listed = page.locator("tbody tr")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(f"Invoice {right} · {original['DocNumber']}")
    expect(listed).to_contain_text("DocNumber")
    expect(page.get_by_text("void the duplicate (or make it inactive)")).to_be_visible()
    screenshot(page, "duplicates")

    company.qbo_client_call("void", "Invoice", duplicate["Id"], duplicate["SyncToken"])
    listed.get_by_role("link", name="invoice 2").click()
    expect(page.locator("dl.facts")).to_contain_text(f"Invoice {duplicate['Id']} · "
                                                     f"{original['DocNumber']}")
    sign(page)
    screenshot(page, "link")
    page.get_by_label("QuickBooks Id to link to instead").fill(right)
    page.get_by_role("button", name="Relink").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"invoice 2 is linked to QuickBooks Invoice {right}")
    expect(page.locator("dl.facts")).to_contain_text(f"Invoice {right} · ")
    before = set(company.records("Invoice"))
    page.get_by_role("button", name="Sync invoice 2 now").click()
    expect(page.get_by_role("status")).to_contain_text("Synced invoice 2. Dagster run")
    company.sync()  # the next run creates nothing new
    assert set(company.records("Invoice")) == before
    assert company.linked("invoice", "2") == right
    assert company.records("Invoice")[duplicate["Id"]]["PrivateNote"].startswith("Voided")
    page.goto(f"{review}/duplicates?entity=invoice")
    expect(page.get_by_text("No likely duplicates.")).to_be_visible()
    page.goto(f"{review}/conflicts?entity=invoice")
    expect(page.get_by_text("No open conflicts for invoice.")).to_be_visible()


def test_no_secret_reaches_the_page(
        company: Company, review: str, page: Any) -> None:
    tokens = StateTokenStore(company.state.sessions(), load_cipher()).load(company.realm_id)
    assert tokens is not None
    secrets = [os.environ[SECRET_KEY_VARIABLE], EMULATOR_CLIENT_SECRET, tokens.refresh_token,
               tokens.access_token or ""]
    for path in ("/", "/conflicts?show=all", "/quarantine", "/duplicates",
                 f"/links?realm={company.realm_id}&entity=client&key=1"):
        page.goto(review + path)
        html = page.content()
        assert not [secret for secret in secrets if secret and secret in html], path
