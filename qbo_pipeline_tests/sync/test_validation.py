from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pandera.pandas as pa

from qbo_pipeline.sync.mapping import SOURCE_KEY, map_frame
from qbo_pipeline.sync.validation import build_line_schema, build_schema, validate_frame
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, PROJECT, TIME, make_spec

NOW = dt.datetime(2024, 5, 1)


def client(**values: Any) -> dict[str, Any]:
    row = {"id": 1, "name": "Acme", "active": True, "address_line1": None, "city": None,
           "email": "ap@acme.test", "first_name": None, "updated_at": NOW, "created_at": NOW,
           "deleted_at": None}
    return {**row, **values}


def time_entry(**values: Any) -> dict[str, Any]:
    row = {"id": 1, "hours": 8, "status": "Billable", "description": "Framing",
           "approved": True, "updated_at": NOW, "work_date": NOW.date()}
    return {**row, **values}


def reasons(spec_text: str, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, list[str]]:
    spec = make_spec(spec_text)
    frame = map_frame(spec, pd.DataFrame(rows), **kwargs)
    result = validate_frame(spec, frame)
    # Never drop a row silently: every row is valid or quarantined, not both.
    assert len(result.valid) + len(result.quarantined) == len(rows)
    assert not set(result.valid[SOURCE_KEY]) & set(result.quarantined_keys)
    return {row.source_key: row.reasons for row in result.quarantined}


def test_build_schema_has_a_column_per_field() -> None:
    schema = build_schema(make_spec(CUSTOMER))
    assert isinstance(schema, pa.DataFrameSchema)
    assert list(schema.columns) == ["DisplayName", "Active", "BillAddr.Line1", "BillAddr.City",
                                    "PrimaryEmailAddr.Address", "GivenName"]
    assert not schema.columns["DisplayName"].nullable
    assert schema.columns["GivenName"].nullable
    line_schema = build_line_schema(make_spec(INVOICE))
    assert line_schema is not None and "Amount" in line_schema.columns
    assert build_line_schema(make_spec(CUSTOMER)) is None


def test_good_rows_pass() -> None:
    assert reasons(CUSTOMER, [client(), client(id=2, name="Bolt")]) == {}


def test_required_uses_the_hint_or_names_the_column() -> None:
    found = reasons(CUSTOMER, [client(id=17, email="  "), client(id=18, name=None)])
    assert found == {
        "17": ["client 17: PrimaryEmailAddr.Address is required - add an email to the client"],
        "18": ["client 18: DisplayName is required - fill in name on the client"],
    }


def test_email_length_and_pattern_rules() -> None:
    found = reasons(CUSTOMER, [client(id=3, email="ap at acme"),
                               client(id=4, name="A very long company name"),
                               client(id=5, name="Acme: West")])
    assert found == {
        "3": ["client 3: PrimaryEmailAddr.Address 'ap at acme' is not a valid email address - "
              "add an email to the client"],
        "4": ["client 4: DisplayName is 24 characters, more than the 20 allowed - "
              "correct name on the client"],
        "5": ["client 5: DisplayName 'Acme: West' does not match the pattern [^:]* - "
              "correct name on the client"],
    }


def test_every_problem_of_a_row_is_listed() -> None:
    found = reasons(CUSTOMER, [client(id=6, name="Acme: a very long name", email=None)])
    assert len(found["6"]) == 3


def test_range_allowed_values_length_and_characters_rules() -> None:
    found = reasons(TIME, [time_entry(id=1, hours=30), time_entry(id=2, status="Maybe"),
                           time_entry(id=3, description="ab"),
                           time_entry(id=4, description="Fix #12!"),
                           time_entry(id=5, hours=-1), time_entry(id=6)])
    assert found == {
        "1": ["time entry 1: Hours 30 is above the maximum of 24 - correct hours on the "
              "time entry"],
        "2": ["time entry 2: BillableStatus 'Maybe' is not one of Billable, NotBillable - "
              "correct status on the time entry"],
        "3": ["time entry 3: Description 'ab' is 2 characters, fewer than the 3 required - "
              "correct description on the time entry"],
        "4": ["time entry 4: Description 'Fix #12!' contains characters that are not "
              "allowed: '#' '1' '2' '!' - correct description on the time entry"],
        "5": ["time entry 5: Hours -1 is below the minimum of 0 - correct hours on the "
              "time entry"],
    }


def test_mapping_issues_are_quarantined_once() -> None:
    rows = [{"id": 4, "number": "P-7", "name": "Kitchen", "client_id": 17, "updated_at": NOW,
             "created_at": NOW}]
    found = reasons(PROJECT, rows)
    # The unresolved reference also leaves ParentRef empty: one reason, not two.
    assert found == {"4": ["project 4: ParentRef refers to client 17, which is not in "
                           "QuickBooks yet - sync client 17 first (check its quarantined "
                           "problems)"]}


def test_deleted_rows_are_not_validated() -> None:
    found = reasons(CUSTOMER, [client(id=9, email=None, deleted_at=NOW)])
    assert found == {}


def test_line_rules_name_the_line() -> None:
    invoice = {"id": 5, "project_id": 3, "number": "INV-1", "issue_date": NOW.date(),
               "tax_rate": Decimal("0.12345"), "tax_amount": Decimal("1.00"), "updated_at": NOW,
               "deleted_at": None}
    lines = pd.DataFrame([
        {"invoice_id": 5, "line_no": 1, "description": "ok", "amount": 5, "quantity": 1,
         "service_name": "Labor"},
        {"invoice_id": 5, "line_no": 2, "description": "far too long", "amount": -5,
         "quantity": 1, "service_name": "Labor"},
    ])
    found = reasons(INVOICE, [invoice], children=lines,
                    resolve_ref=lambda spec, key: "58",
                    resolve_lookup=lambda entity, by, value: "31")
    assert found == {"5": [
        "invoice 5: Line[2].Description is 12 characters, more than the 10 allowed - "
        "correct description on the invoice",
        "invoice 5: Line[2].Amount -5 is below the minimum of 0 - correct amount on the invoice",
        "invoice 5: Line[tax].Description is 13 characters, more than the 12 allowed - "
        "correct tax_rate on the invoice",
    ]}


def test_quarantine_frame_has_one_row_per_problem() -> None:
    spec = make_spec(CUSTOMER)
    frame = map_frame(spec, pd.DataFrame([client(id=6, name="Acme: a very long name",
                                                 email=None), client(id=7)]))
    result = validate_frame(spec, frame)
    table = result.quarantine_frame()
    assert list(table.columns) == ["source_key", "field_path", "reason"]
    assert list(table["source_key"]) == ["6", "6", "6"]
    assert list(result.valid[SOURCE_KEY]) == ["7"]
