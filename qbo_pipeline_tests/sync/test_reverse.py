"""QBO record -> source columns (reverse mapping) and the validation of pulled records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from qbo_pipeline.sync.mapping import BUSINESS_DATE, PAYLOAD, map_frame, map_row, mapped_columns
from qbo_pipeline.sync.reverse import qbo_record_key, record_key, unmap_record
from qbo_pipeline.sync.validation import (
    build_schema,
    pulled_frame,
    validate_frame,
    validate_pulled,
)
from qbo_pipeline_tests.sync.sample_specs import SERVICE, TWO_WAY_CLIENT, make_spec

TYPED = """
name: item
qbo_entity: Item
direction: pull
source: {table: items, primary_key: id, updated_at: updated_at}
fields:
  UnitPrice: {column: rate, type: number}
  QtyOnHand: {column: stock, type: integer}
  Taxable: {column: taxable, type: boolean}
  InvStartDate: {column: stocked_on, type: date}
  Sku: {column: sku, type: string}
  Description: {column: description}
  PurchaseDesc: {column: purchase_note, max_length: 10}
  ParentRef: {ref: {spec: category, column: category_id}}
  IncomeAccountRef: {lookup: {qbo_entity: Account, column: income_account}}
  ExpenseAccountRef.name: {column: expense_account}
  PurchaseTaxCodeRef.name: {column: purchase_tax_code}
pull: {target: upsert, qbo_id_column: qbo_id}
"""

PROJECT = """
name: project
qbo_entity: Customer
direction: two_way
source: {table: projects, primary_key: id, updated_at: updated_at}
fields:
  DisplayName: {template: "{number} - {name}", required: true}
  ParentRef: {ref: {spec: client, column: client_id}}
on_source_delete: inactivate
pull: {target: linked}
"""

ITEM: dict[str, Any] = {
    "Id": "12", "SyncToken": "0", "UnitPrice": 85.5, "QtyOnHand": 3.0, "Taxable": "true",
    "InvStartDate": "2024-05-01", "Sku": 1001, "Description": {"lang": "en", "text": "Design"},
    "ParentRef": {"value": "40", "name": "Services"},
    "IncomeAccountRef": {"value": "79", "name": "Sales of Product Income"},
    "ExpenseAccountRef": {"value": "80", "name": "Cost of Goods Sold"},
}


def categories(spec_name: str, qbo_id: str) -> str | None:
    return {("category", "40"): "4", ("client", "58"): "17"}.get((spec_name, qbo_id))


def test_each_kind_and_type_is_read_back() -> None:
    unmapped = unmap_record(make_spec(TYPED), ITEM, categories)
    assert unmapped.ok and unmapped.qbo_id == "12"
    assert unmapped.values == {
        "rate": Decimal("85.5"), "stock": 3, "taxable": True,
        "stocked_on": dt.date(2024, 5, 1), "sku": "1001",
        "description": {"lang": "en", "text": "Design"},  # untyped: the JSON value as is
        "purchase_note": None,  # missing in QBO
        "category_id": "4",  # the ref's Id back to the linked source key
        "income_account": "Sales of Product Income",  # a lookup by Name: the ref's name
        "expense_account": "Cost of Goods Sold",  # a nested path
        "purchase_tax_code": None,  # a nested path QBO lacks
    }
    assert type(unmapped.values["stock"]) is int
    assert unmapped.by_field["ParentRef"] == {"category_id": "4"}


def test_empty_values_read_back_as_none() -> None:
    unmapped = unmap_record(make_spec(TYPED), {"Id": "12", "UnitPrice": None, "Sku": " ",
                                               "ParentRef": {"value": ""}})
    assert unmapped.ok
    assert set(unmapped.values.values()) == {None}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"UnitPrice": "lots"}, "QuickBooks Item 12: UnitPrice 'lots' is not a number - correct it "
                            "in QuickBooks"),
    ({"QtyOnHand": 2.5}, "QuickBooks Item 12: QtyOnHand 2.5 is not a whole number - correct it "
                         "in QuickBooks"),
    ({"Taxable": "maybe"}, "QuickBooks Item 12: Taxable 'maybe' is not yes/no - correct it in "
                           "QuickBooks"),
    ({"InvStartDate": "May 1st"}, "QuickBooks Item 12: InvStartDate 'May 1st' is not a date "
                                  "(YYYY-MM-DD) - correct it in QuickBooks"),
    ({"IncomeAccountRef": {"value": "79"}}, "QuickBooks Item 12: IncomeAccountRef holds "
     "QuickBooks Account 79 without its name - read the record again from QuickBooks"),
])
def test_a_value_that_cannot_be_read_back_is_an_issue(changes: dict[str, Any],
                                                      expected: str) -> None:
    unmapped = unmap_record(make_spec(TYPED), {**ITEM, **changes}, categories)
    assert [issue.reason for issue in unmapped.issues] == [expected]
    [path] = changes
    assert path not in unmapped.by_field  # a field with an issue gives no value at all
    assert unmapped.issues[0].source_key == "qbo:12"


def test_an_unresolved_ref_says_what_to_link() -> None:
    spec = make_spec(PROJECT)
    qbo = {"Id": "70", "DisplayName": "P-7 - Kitchen", "ParentRef": {"value": "59"}}
    unmapped = unmap_record(spec, qbo, categories, source_key="7")
    assert [issue.reason for issue in unmapped.issues] == [
        "project 7: ParentRef refers to QuickBooks Customer 59, which no client is linked to "
        "- sync or link it first"]
    assert unmapped.issues[0].source_key == "7"
    named = unmap_record(spec, qbo, categories, ref_entities={"client": "Customer"})
    assert "refers to QuickBooks Customer 59" in named.issues[0].reason


@pytest.mark.parametrize(("name", "expected"), [
    ("P-7 - Kitchen", {"number": "P-7", "name": "Kitchen"}),
    # Ambiguous separators: the earlier column takes the shortest text that lets the rest
    # match, so the later column keeps every further " - ".
    ("P-7 - Kitchen - phase 2", {"number": "P-7", "name": "Kitchen - phase 2"}),
    ("  P-7  -  Kitchen ", {"number": "P-7", "name": "Kitchen"}),
    (None, {"number": None, "name": None}),
])
def test_a_template_is_parsed_back(name: str | None, expected: dict[str, Any]) -> None:
    qbo = {"Id": "70", "DisplayName": name, "ParentRef": {"value": "58"}}
    unmapped = unmap_record(make_spec(PROJECT), qbo, categories)
    assert unmapped.ok
    assert unmapped.values == {**expected, "client_id": "17"}


def test_a_template_that_does_not_match_is_an_issue() -> None:
    qbo = {"Id": "70", "DisplayName": "Kitchen", "ParentRef": {"value": "58"}}
    unmapped = unmap_record(make_spec(PROJECT), qbo, categories)
    assert [issue.reason for issue in unmapped.issues] == [
        "QuickBooks Customer 70: DisplayName 'Kitchen' does not read as '{number} - {name}' - "
        "rename it in QuickBooks to the form '{number} - {name}'"]
    assert unmapped.values == {"client_id": "17"}


def test_reading_back_and_mapping_again_gives_qbos_value() -> None:
    spec = make_spec(PROJECT)
    qbo = {"Id": "70", "DisplayName": "P-7 - Kitchen - phase 2", "ParentRef": {"value": "58"}}
    row = {"id": 7, **unmap_record(spec, qbo, categories).values}
    mapped = map_row(spec, row, resolve_ref=lambda name, key: {"17": "58"}.get(key))
    assert mapped.payload == {"DisplayName": "P-7 - Kitchen - phase 2",
                              "ParentRef": {"value": "58"}}


def test_only_pulled_fields_are_read_back() -> None:
    spec = make_spec(TWO_WAY_CLIENT)
    qbo = {"Id": "58", "DisplayName": "Acme", "PrimaryEmailAddr": {"Address": "q@acme.test"},
           "PrimaryPhone": {"FreeFormNumber": "555-0199"}, "Balance": 120.0, "Active": True}
    assert unmap_record(spec, qbo).values == {
        "name": "Acme", "phone": "555-0199", "notes": None, "active": True,
        "balance": Decimal("120")}


def test_record_keys() -> None:
    assert qbo_record_key("12") == "qbo:12" == record_key(None, "12")
    assert record_key("3", "12") == "3"


# -- validation of pulled records -------------------------------------------------------------


def test_pulled_records_are_validated_by_the_field_rules() -> None:
    spec = make_spec(SERVICE)
    good = {"Id": "12", "Name": "Design", "IncomeAccountRef": {"value": "79", "name": "Sales"}}
    records: dict[str, dict[str, Any]] = {
        "qbo:12": good,
        "qbo:13": {"Id": "13", "Name": None},
        "3": {"Id": "14", "Name": "A name far too long for the source"},
    }
    frame = pulled_frame(spec, records)
    assert list(frame.columns) == ["source_key", "qbo_id", *spec.pulled_fields]
    assert frame["IncomeAccountRef"].tolist()[0] == {"value": "79"}
    result = validate_pulled(spec, records)
    assert result.valid["source_key"].tolist() == ["qbo:12"]
    assert {row.source_key: row.reasons for row in result.quarantined} == {
        "qbo:13": ["QuickBooks Item 13: Name is required - correct it in QuickBooks"],
        "3": ["service 3: Name is 34 characters, more than the 20 allowed - correct it in "
              "QuickBooks Item 14"],
    }


def test_a_two_way_hint_is_not_used_for_a_pulled_value() -> None:
    spec = make_spec(TWO_WAY_CLIENT, **{"max_length: 30}": "max_length: 5, hint: shorten it}"})
    result = validate_pulled(spec, {"17": {"Id": "58", "DisplayName": "Acme",
                                           "PrimaryPhone": {"FreeFormNumber": "555-0199"}}})
    assert result.quarantined[0].reasons == [
        "client 17: PrimaryPhone.FreeFormNumber is 8 characters, more than the 5 allowed - "
        "correct it in QuickBooks Customer 58"]


# -- the push side leaves pull-only fields alone -----------------------------------------------


def test_pull_only_fields_are_neither_mapped_nor_validated_for_the_push() -> None:
    spec = make_spec(TWO_WAY_CLIENT, **{
        "Balance: {column: balance, type: number, direction: pull}":
        "Balance: {column: balance, type: number, direction: pull, required: true}",
        "  business_date: created_at\n": ""})
    assert "Balance" not in build_schema(spec).columns
    assert "Balance" not in mapped_columns(spec)
    row = {"id": 17, "name": "Acme", "email": None, "phone": None, "notes": None,
           "active": True, "balance": None, "updated_at": dt.datetime(2024, 5, 1),
           "deleted_at": None}
    frame = map_frame(spec, pd.DataFrame([row]))
    assert frame[BUSINESS_DATE].tolist() == [None]  # a names list needs no business date
    result = validate_frame(spec, frame)
    assert result.quarantined == ()
    assert "Balance" not in result.valid[PAYLOAD].tolist()[0]
