"""Seed 002's "Select/Deselect to Sync All Unpaid Invoices", as plain data: which rows the
start-date rule lets through for a company with the setting on or off, and the load check."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from qbo_pipeline.specs.company_settings import COMPANY_SETTINGS_FILE
from qbo_pipeline.sync.scope import exempt_from_start, on_or_after_start
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline_tests.specs.test_loader import problems_of, write_specs
from qbo_pipeline_tests.sync.test_line_groups import GROUPED, SPECS

START = date(2024, 1, 1)
INVOICES = pd.DataFrame({"issue_date": ["2023-05-01", "2023-06-01", "2024-02-01"],
                         "status": ["sent", "paid", "paid"]}, dtype=object)


def pushed(values: dict[str, object]) -> list[bool]:
    spec = as_configured(SPECS, "invoice", values)
    mask = on_or_after_start(spec, INVOICES["issue_date"], START) | exempt_from_start(
        spec, INVOICES)
    return mask.tolist()


def test_unpaid_invoices_before_the_start_go_only_with_the_setting_on() -> None:
    assert pushed({}) == [False, False, True]
    assert pushed({"sync_all_unpaid_invoices": True}) == [True, False, True]


def test_the_raw_spec_exempts_nothing_before_the_company_decides() -> None:
    assert not exempt_from_start(SPECS["invoice"], INVOICES).any()


def test_the_exemption_names_a_boolean_setting(tmp_path: Path) -> None:
    spec = GROUPED.replace("  group: GROUP\n", "").replace(
        "on_source_delete: void", "on_source_delete: void\nstart_date_exempt: "
        "{setting: items, when: {column: status, equals: sent}}")
    write_specs(tmp_path, invoice=spec)
    (tmp_path / COMPANY_SETTINGS_FILE).write_text(
        "items: {description: d, kind: choice, choices: [One, Many], default: One}\n",
        encoding="utf-8")
    problems = problems_of(tmp_path)
    assert any("invoice.yaml: start_date_exempt.setting: 'items' is not a boolean setting"
               in found for found in problems), problems
