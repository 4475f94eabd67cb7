"""Properties of the pure core under any input: whatever each mapped column holds (bytes, NaN,
infinities, huge numbers, control characters, impossible dates, values of any type, None),
every row maps to a payload that passes validation or is quarantined with a reason; never an
exception, never a dropped row (rows in = valid + quarantined)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from qbo_pipeline.specs import ValueType
from qbo_pipeline.sync.mapping import DELETED, PAYLOAD, SOURCE_KEY, map_frame
from qbo_pipeline.sync.validation import validate_frame
from qbo_pipeline.sync.values import coerce, unsafe_characters
from qbo_pipeline_tests.sync.sample_specs import make_spec

FAST = settings(max_examples=40, deadline=None)

# Values that look like something else: the tricky ones, beside arbitrary values of every type.
LOOKALIKES = ["", " ", "NaN", "nan", "inf", "-Infinity", "1e400", "1e20", "0000-00-00",
              "2026-02-30", "2024-05-02", "2024-05-02 10:00:00", "maybe", "yes", "0", "1", "2",
              "Acme\u202e", "a\x00b", "a:b", "9" * 30, "\u0661\u0662", "  12.50 ", "\ud800"]
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=20)
SOURCE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10 ** 40), 10 ** 40),
    st.floats(), st.decimals(), ANY_TEXT, st.binary(max_size=8), st.dates(), st.datetimes(),
    st.times(), st.timedeltas(), st.sampled_from(LOOKALIKES),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.floats(),
                                                         max_size=2),
)
KEYS = st.one_of(st.integers(0, 3), SOURCE_VALUES)  # small ints make repeated keys likely
GOOD_TIME = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1))

INVOICE = """
name: invoice
qbo_entity: Invoice
source:
  table: invoices
  primary_key: id
  updated_at: updated_at
  business_date: issue_date
  deleted: deleted_at
  column_types: {flag: boolean, hours: number}
fields:
  CustomerRef: {ref: {spec: project, column: project_id}, required: true}
  DocNumber: {column: number, required: true, max_length: 21, pattern: "[^:]*"}
  TxnDate: {column: issue_date, type: date, required: true}
  DueDate: {column: due_date, type: date}
  PrivateNote: {template: "{number} - {note}", max_length: 60}
  CustomerMemo.value: {column: note, type: string, min_length: 1}
  ExchangeRate: {column: rate, type: number, min: 0, max: 1000}
  AllowOnlineCreditCardPayment: {column: flag, type: boolean}
  Deposit: {column: rate, type: integer}
  TxnSource: {column: raw, allowed_values: [a, b]}
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    DetailType: {constant: SalesItemLineDetail}
    Description: {column: description}
    Amount: {column: amount, type: number, required: true, min: 0}
    SalesItemLineDetail.Qty: {column: quantity, type: number}
    SalesItemLineDetail.ItemRef: {lookup: {qbo_entity: Item, column: service_name},
                                  required: true}
  tax_line:
    amount_column: tax_amount
    fields:
      DetailType: {constant: SalesItemLineDetail}
      Description: {template: "Tax ({tax_rate:%})"}
on_source_delete: void
"""
SPEC = make_spec(INVOICE)
COLUMNS = ["project_id", "number", "issue_date", "due_date", "note", "rate", "flag", "raw",
           "hours", "tax_rate", "tax_amount", "deleted_at"]
LINE_COLUMNS = ["line_no", "description", "amount", "quantity", "service_name"]


@st.composite
def source_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        row = {column: draw(SOURCE_VALUES) for column in COLUMNS}
        row["id"] = draw(KEYS)
        row["updated_at"] = draw(st.one_of(GOOD_TIME, SOURCE_VALUES))
        rows.append(row)
    return rows


@st.composite
def line_rows(draw: st.DrawFn, parents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        line = {column: draw(SOURCE_VALUES) for column in LINE_COLUMNS}
        line["invoice_id"] = draw(st.one_of(st.sampled_from([row["id"] for row in parents]),
                                            SOURCE_VALUES))
        lines.append(line)
    return lines


def resolve_project(_: str, key: str) -> str | None:
    return "58" if key in ("1", "2") else None


def resolve_item(_entity: str, _by: str, value: str) -> str | None:
    return None if value.startswith("x") else "31"


def text_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in text_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in text_in(item)]
    return []


def check_split(rows: list[dict[str, Any]], lines: list[dict[str, Any]],
                as_objects: bool) -> None:
    frame = pd.DataFrame(rows, dtype=object) if as_objects else pd.DataFrame(rows)
    children = pd.DataFrame(lines, columns=["invoice_id", *LINE_COLUMNS],
                            dtype=object if as_objects else None)
    mapped = map_frame(SPEC, frame, children, resolve_project, resolve_item)
    result = validate_frame(SPEC, mapped)
    # Never a dropped row: every row is valid or quarantined, and counted once.
    assert len(result.valid) + len(result.quarantined) == len(rows)
    for held in result.quarantined:
        assert held.reasons, held
        assert all(reason.startswith(f"invoice {held.source_key}: ") and " - " in reason
                   for reason in held.reasons)
    keys = mapped[SOURCE_KEY].tolist()
    for key, deleted, payload in zip(result.valid[SOURCE_KEY], result.valid[DELETED],
                                     result.valid[PAYLOAD], strict=True):
        assert keys.count(key) == 1  # a repeated key is never synced
        if deleted:
            continue
        json.dumps(payload, allow_nan=False)  # no NaN, no infinity, nothing but JSON
        assert not any(unsafe_characters(text) for text in text_in(payload))
    # What passed passes again: validation decides the same on its own output.
    assert not validate_frame(SPEC, result.valid).quarantined


@FAST
@given(st.data())
def test_any_rows_are_synced_or_quarantined_never_lost(data: st.DataObject) -> None:
    rows = data.draw(source_rows())
    check_split(rows, data.draw(line_rows(rows)), as_objects=True)


@FAST
@given(st.data())
def test_rows_in_a_pandas_frame_of_any_dtype_are_never_lost_either(data: st.DataObject) -> None:
    rows = data.draw(source_rows())
    check_split(rows, data.draw(line_rows(rows)), as_objects=False)


@settings(max_examples=300, deadline=None)
@given(SOURCE_VALUES, st.sampled_from([None, *ValueType]))
def test_a_value_converts_to_plain_json_or_says_why_not(value: Any,
                                                        value_type: ValueType | None) -> None:
    try:
        converted = coerce(value, value_type)
    except ValueError as error:
        assert str(error)
        return
    json.dumps(converted, allow_nan=False)
