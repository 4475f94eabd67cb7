from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from qbo_pipeline.sync.mapping import (
    DELETED,
    ISSUES,
    PAYLOAD,
    SOURCE_KEY,
    map_frame,
    map_row,
    mapped_columns,
)
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, PROJECT, make_spec

CLIENT_ROW: dict[str, Any] = {
    "id": 17, "name": " Acme Builders ", "active": 1, "address_line1": "1 Main St",
    "city": "Springfield", "email": "ap@acme.test", "first_name": None,
    "updated_at": dt.datetime(2024, 5, 1, 12), "created_at": dt.datetime(2024, 1, 1),
    "deleted_at": None,
}
INVOICE_ROW: dict[str, Any] = {
    "id": 5, "project_id": 3, "number": "INV-1001", "issue_date": dt.date(2024, 5, 2),
    "tax_rate": Decimal("0.0850"), "tax_amount": Decimal("8.50"),
    "updated_at": dt.datetime(2024, 5, 2), "deleted_at": None,
}
LINES: list[dict[str, Any]] = [
    {"invoice_id": 5, "line_no": 2, "description": "Framing", "amount": Decimal("60.00"),
     "quantity": Decimal("3.00"), "service_name": "Labor"},
    {"invoice_id": 5, "line_no": 1, "description": "Design", "amount": Decimal("40.00"),
     "quantity": Decimal("1"), "service_name": "Design"},
]
ITEMS = {"Labor": "31", "Design": "32", "Sales Tax": "99"}


def resolve_projects(spec_name: str, source_key: str) -> str | None:
    return {("project", "3"): "58"}.get((spec_name, source_key))


def resolve_items(entity: str, by: str, value: str) -> str | None:
    assert (entity, by) == ("Item", "Name")
    return ITEMS.get(value)


def test_columns_become_nested_fields_with_types() -> None:
    mapped = map_row(make_spec(CUSTOMER), CLIENT_ROW)
    assert mapped.ok
    assert mapped.source_key == "17"
    assert mapped.payload == {
        "DisplayName": "Acme Builders",
        "Active": True,
        "BillAddr": {"Line1": "1 Main St", "City": "Springfield"},
        "PrimaryEmailAddr": {"Address": "ap@acme.test"},
    }


def test_template_constant_and_ref() -> None:
    row = {"id": 4, "number": "P-7", "name": "Kitchen", "client_id": 17.0}
    mapped = map_row(make_spec(PROJECT), row, resolve_ref=lambda spec, key: f"{spec}:{key}")
    assert mapped.payload == {"DisplayName": "P-7 - Kitchen", "Job": True,
                              "ParentRef": {"value": "client:17"}}


def test_a_template_with_a_missing_column_value_gives_no_value() -> None:
    row = {"id": 4, "number": "P-7", "name": None, "client_id": 17}
    mapped = map_row(make_spec(PROJECT), row, resolve_ref=lambda spec, key: "1")
    assert "DisplayName" not in mapped.payload


def test_an_unresolved_reference_is_an_issue_of_the_row() -> None:
    row = {"id": 4, "number": "P-7", "name": "Kitchen", "client_id": 17}
    mapped = map_row(make_spec(PROJECT), row)
    assert not mapped.ok
    assert [issue.reason for issue in mapped.issues] == [
        "project 4: ParentRef refers to client 17, which is not in QuickBooks yet - "
        "sync client 17 first (check its quarantined problems)"
    ]
    assert mapped.payload == {"DisplayName": "P-7 - Kitchen", "Job": True}


def test_a_value_of_the_wrong_type_is_an_issue() -> None:
    mapped = map_row(make_spec(CUSTOMER), {**CLIENT_ROW, "active": "maybe"})
    assert [issue.reason for issue in mapped.issues] == [
        "client 17: Active is wrong: 'maybe' is not yes/no (true, false, 1, 0) - "
        "correct active on the client"
    ]


def test_a_column_missing_from_the_source_is_an_issue() -> None:
    row = {key: value for key, value in CLIENT_ROW.items() if key != "city"}
    mapped = map_row(make_spec(CUSTOMER), row)
    assert mapped.issues[0].field_path == "BillAddr.City"
    assert "reads column 'city', which the source rows do not have" in mapped.issues[0].reason


def test_invoice_lines_in_order_with_a_tax_line() -> None:
    mapped = map_row(make_spec(INVOICE), INVOICE_ROW, LINES, resolve_projects, resolve_items)
    assert mapped.ok, mapped.issues
    assert mapped.payload["CustomerRef"] == {"value": "58"}
    assert mapped.payload["TxnDate"] == "2024-05-02"
    assert mapped.payload["Line"] == [
        {"DetailType": "SalesItemLineDetail", "Description": "Design", "Amount": 40,
         "SalesItemLineDetail": {"Qty": 1, "ItemRef": {"value": "32"}}},
        {"DetailType": "SalesItemLineDetail", "Description": "Framing", "Amount": 60,
         "SalesItemLineDetail": {"Qty": 3, "ItemRef": {"value": "31"}}},
        {"Amount": 8.5, "DetailType": "SalesItemLineDetail", "Description": "Tax (8.5%)",
         "SalesItemLineDetail": {"ItemRef": {"value": "99"}}},
    ]
    assert len(mapped.child_lines) == 2
    assert mapped.tax_line == mapped.payload["Line"][-1]


@pytest.mark.parametrize("tax_amount", [Decimal("0.00"), None, float("nan")])
def test_no_tax_line_without_tax(tax_amount: Any) -> None:
    row = {**INVOICE_ROW, "tax_amount": tax_amount}
    mapped = map_row(make_spec(INVOICE), row, LINES, resolve_projects, resolve_items)
    assert len(mapped.payload["Line"]) == 2
    assert mapped.tax_line is None


def test_an_unknown_item_names_the_line() -> None:
    lines = [{**LINES[0], "service_name": "Demolition"}]
    mapped = map_row(make_spec(INVOICE), INVOICE_ROW, lines, resolve_projects, resolve_items)
    assert [issue.reason for issue in mapped.issues] == [
        "invoice 5: Line[1].SalesItemLineDetail.ItemRef needs a QuickBooks Item with Name "
        "'Demolition', and there is none - create it in QuickBooks or change service_name on "
        "the invoice"
    ]


def test_an_invoice_without_lines_is_an_issue() -> None:
    mapped = map_row(make_spec(INVOICE), INVOICE_ROW, [], resolve_projects, resolve_items)
    assert [issue.reason for issue in mapped.issues] == [
        "invoice 5: Line has no lines - add at least one line to the invoice"
    ]


def test_map_frame_keeps_every_row_and_skips_deleted_ones() -> None:
    spec = make_spec(CUSTOMER)
    frame = pd.DataFrame([
        CLIENT_ROW,
        {**CLIENT_ROW, "id": 18, "email": None},
        {**CLIENT_ROW, "id": 19, "deleted_at": dt.datetime(2024, 5, 3)},
    ])
    mapped = map_frame(spec, frame)
    assert list(mapped.columns) == mapped_columns(spec)
    assert list(mapped[SOURCE_KEY]) == ["17", "18", "19"]
    assert list(mapped[DELETED]) == [False, False, True]
    assert mapped.loc[2, PAYLOAD] == {}
    assert mapped.loc[0, "BillAddr.City"] == "Springfield"
    assert mapped["PrimaryEmailAddr.Address"].isna().tolist() == [False, True, True]
    assert all(issues == [] for issues in mapped[ISSUES])


def test_map_frame_groups_child_lines_by_parent() -> None:
    frame = pd.DataFrame([INVOICE_ROW, {**INVOICE_ROW, "id": 6, "number": "INV-1002"}])
    children = pd.DataFrame([*LINES, {**LINES[0], "invoice_id": 6.0, "amount": 10}])
    mapped = map_frame(make_spec(INVOICE), frame, children, resolve_projects, resolve_items)
    payloads: list[dict[str, Any]] = mapped[PAYLOAD].tolist()
    assert [len(payload["Line"]) for payload in payloads] == [3, 2]
    assert payloads[1]["Line"][0]["Amount"] == 10


def test_map_frame_names_missing_source_columns() -> None:
    frame = pd.DataFrame([{"id": 1, "name": "x"}])
    with pytest.raises(ValueError, match="lack the column.s. updated_at, created_at"):
        map_frame(make_spec(CUSTOMER), frame)


def test_map_frame_of_no_rows_has_the_columns() -> None:
    spec = make_spec(CUSTOMER)
    empty = pd.DataFrame(columns=list(CLIENT_ROW))
    assert list(map_frame(spec, empty).columns) == mapped_columns(spec)
