"""Bad source values, in the pure core: every value is checked before it is used, and a row
that cannot be read, decoded, parsed or converted is quarantined with a reason naming the
column and the problem; never an exception, never a silent default, never a dropped row."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from qbo_pipeline.specs import SpecError, ValueType, load_specs
from qbo_pipeline.sync.mapping import SOURCE_KEY, map_frame, map_row
from qbo_pipeline.sync.scope import HeldRow, due_again, on_or_after_start
from qbo_pipeline.sync.selection import select_frame
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline.sync.validation import validate_frame, validate_pulled
from qbo_pipeline.sync.values import (
    coerce,
    deleted_mark,
    quoted,
    read_source_value,
    to_decimal,
    to_json_value,
    to_moment,
    unsafe_characters,
)
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, SERVICE, make_spec

SHIPPED = load_specs(Path(__file__).resolve().parents[2] / "mapping_specs")
NOW = dt.datetime(2024, 5, 1, 12)


# --- single values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "value_type", "problem"), [
    (b"AB\xffC", None, "invalid UTF-8 bytes at position 3"),
    (b"\xc3", ValueType.STRING, "invalid UTF-8 bytes at position 1"),
    ("abc", ValueType.NUMBER, "'abc' is not a number"),
    ("NaN", ValueType.NUMBER, "'NaN' is not a number"),
    (Decimal("NaN"), ValueType.NUMBER, "NaN is not a number"),
    (Decimal("sNaN"), None, "NaN is not a number"),
    (float("inf"), ValueType.NUMBER, "'inf' is not a finite number"),
    (Decimal("-Infinity"), None, "'-Infinity' is not a finite number"),
    ("inf", ValueType.INTEGER, "'inf' is not a whole number"),
    ("1e20", ValueType.NUMBER, "'1e20' is too large (more than 15 digits"),
    (10 ** 30, None, "is too large (more than 15 digits"),
    ("maybe", ValueType.BOOLEAN, "'maybe' is not yes/no"),
    (2, ValueType.BOOLEAN, "'2' is not yes/no"),
    (0.5, ValueType.BOOLEAN, "'0.5' is not yes/no"),
    ("2026-02-30", ValueType.DATE, "'2026-02-30' is not a date (YYYY-MM-DD)"),
    ("0000-00-00", ValueType.DATE, "'0000-00-00' is not a date (YYYY-MM-DD)"),
    ("2024-05-02 garbage", ValueType.DATE, "is not a date (YYYY-MM-DD)"),
    (20240502, ValueType.DATE, "'20240502' is not a date (YYYY-MM-DD)"),
    ("ab\ud800", None, "a lone UTF-16 surrogate) at position 3"),
    (dt.timedelta(hours=1), None, "holds a timedelta value"),
    ({"a": float("nan")}, None, "is not plain JSON"),
])
def test_a_value_that_cannot_be_used_says_why(value: Any, value_type: ValueType | None,
                                              problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        coerce(value, value_type)


@pytest.mark.parametrize(("value", "expected"), [
    ("TRUE", True), (" yes ", True), ("Y", True), ("t", True), (1, True), (Decimal("1.0"), True),
    (1.0, True), ("False", False), ("NO", False), ("n", False), ("F", False), (0, False),
    (Decimal(0), False), (True, True), ("1", True), ("0", False),
])
def test_only_clear_booleans_are_accepted(value: Any, expected: bool) -> None:
    assert coerce(value, ValueType.BOOLEAN) is expected


def test_a_float_nan_is_pandas_no_value_but_a_database_nan_is_no_number() -> None:
    # pandas turns a None among numbers or text into float NaN: that is "no value".
    assert read_source_value(float("nan")) is None
    assert coerce(float("nan"), ValueType.NUMBER) is None
    with pytest.raises(ValueError, match="NaN is not a number"):
        coerce(Decimal("NaN"), ValueType.NUMBER)


@pytest.mark.parametrize("value", [Decimal("sNaN"), Decimal("1E+999999999"),
                                   pytest.param(10 ** 5000, id="5000 digits"),
                                   "1e400", float("inf"), Decimal("Infinity"), b"1", "1,5"])
def test_numbers_never_raise_when_read_for_comparison(value: Any) -> None:
    number = to_decimal(value)
    assert number is None or number.is_finite()
    to_json_value(value)  # no OverflowError, no InvalidOperation, no memory blow-up


def test_bytes_that_are_utf8_are_text() -> None:
    assert coerce("Zoë".encode(), None) == "Zoë"


@pytest.mark.parametrize(("value", "moment"), [
    ("2025-03-14 23:00:00.000000", dt.datetime(2025, 3, 14, 23, tzinfo=dt.UTC)),
    (dt.datetime(2025, 3, 14, 23), dt.datetime(2025, 3, 14, 23, tzinfo=dt.UTC)),
    (dt.date(2025, 3, 14), dt.datetime(2025, 3, 14, tzinfo=dt.UTC)),
    ("0000-00-00 00:00:00", None), ("2026-02-30 10:00:00", None), ("yesterday", None),
    (1710457200, None), (b"\xff", None), (None, None),
])
def test_a_stamp_is_a_time_or_nothing(value: Any, moment: dt.datetime | None) -> None:
    assert to_moment(value) == moment


@pytest.mark.parametrize(("value", "deleted"), [
    (None, False), (dt.datetime(2024, 5, 1), True), ("2024-05-01 10:00:00", True), (1, True),
    (0, False), ("false", False), ("no", False), ("yes", True),
])
def test_a_soft_delete_mark_is_a_time_or_a_flag(value: Any, deleted: bool) -> None:
    assert deleted_mark(value) is deleted


def test_an_unclear_soft_delete_mark_is_an_error() -> None:
    with pytest.raises(ValueError, match="'maybe' is neither a time nor yes/no"):
        deleted_mark("maybe")


def test_reasons_show_invisible_characters_escaped() -> None:
    assert quoted("Acme\u202e\x07\tX") == "'Acme\\u202e\\x07\\x09X'"
    assert quoted("x" * 500).endswith("...'")


def test_control_and_direction_characters_are_found_but_tab_and_newlines_are_not() -> None:
    text = "a\tb\nc\r\x00\x1b\x7f\x85\u202a\u202e\u2066\u2069\u200b"
    assert [c for _, c in unsafe_characters(text)] == list(
        "\x00\x1b\x7f\x85\u202a\u202e\u2066\u2069")


# --- rows: mapped and validated --------------------------------------------------------------


def client(**values: Any) -> dict[str, Any]:
    row = {"id": 1, "name": "Acme", "active": True, "address_line1": None, "city": None,
           "email": "ap@acme.test", "first_name": None, "updated_at": NOW, "created_at": NOW,
           "deleted_at": None}
    return {**row, **values}


def held(spec_text: str, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, list[str]]:
    """The reasons of every quarantined row, by key; checks that no row is lost on the way."""
    spec = make_spec(spec_text)
    result = validate_frame(spec, map_frame(spec, pd.DataFrame(rows, dtype=object), **kwargs))
    assert len(result.valid) + len(result.quarantined) == len(rows)
    found: dict[str, list[str]] = {}
    for row in result.quarantined:
        found.setdefault(row.source_key, []).extend(row.reasons)
    return found


def test_undecodable_text_quarantines_its_row_and_the_others_go_on() -> None:
    found = held(CUSTOMER, [client(id=1, name=b"AB\xffC"), client(id=2, name="Bolt")])
    assert found == {"1": ["client 1: DisplayName is wrong: invalid UTF-8 bytes at position 3 "
                           "(b'AB\\xffC') - correct name on the client"]}


def test_text_nan_infinity_and_unclear_flags_are_quarantined_with_the_value() -> None:
    found = held(CUSTOMER, [client(id=1, active="maybe"), client(id=2, active=2),
                            client(id=3, active=Decimal("NaN")), client(id=4, active="No")])
    assert found == {
        "1": ["client 1: Active is wrong: 'maybe' is not yes/no (true, false, 1, 0) - correct "
              "active on the client"],
        "2": ["client 2: Active is wrong: '2' is not yes/no (true, false, 1, 0) - correct "
              "active on the client"],
        "3": ["client 3: Active is wrong: NaN is not a number - correct active on the client"],
    }


@pytest.mark.parametrize("stamp", [None, "0000-00-00 00:00:00", "never", b"\xff", 17])
def test_a_row_without_a_usable_updated_at_is_quarantined_naming_the_column(stamp: Any) -> None:
    found = held(CUSTOMER, [client(id=5, updated_at=stamp), client(id=6)])
    assert list(found) == ["5"]
    [reason] = found["5"]
    assert reason.startswith("client 5: updated_at: ")
    assert reason.endswith("- set updated_at on the client to the time it last changed: the "
                           "sync reads a row when its updated_at moves")


def test_an_unclear_soft_delete_mark_quarantines_instead_of_deleting() -> None:
    spec = make_spec(CUSTOMER)
    frame = map_frame(spec, pd.DataFrame([client(id=7, deleted_at="maybe"),
                                          client(id=8, deleted_at="false")], dtype=object))
    assert frame["deleted"].tolist() == [False, False]  # 'false' is no delete either
    result = validate_frame(spec, frame)
    assert [row.reasons for row in result.quarantined] == [[
        "client 7: deleted_at: 'maybe' is neither a time nor yes/no (true, false, 1, 0) - "
        "correct deleted_at on the client"]]


def test_rows_sharing_a_key_are_each_quarantined_never_merged() -> None:
    spec = make_spec(CUSTOMER)
    rows = [client(id=3, name="A"), client(id=3, name="B", deleted_at=NOW), client(id=4)]
    result = validate_frame(spec, map_frame(spec, pd.DataFrame(rows, dtype=object)))
    reason = ("client 3: id: '3' is the key of 2 rows read together - make the source return "
              "one row per id (check its query's joins)")
    # Both rows are held (the deleted one is no delete), and counted: read = valid + held.
    assert [(row.source_key, row.reasons) for row in result.quarantined] == [
        ("3", [reason]), ("3", [reason])]
    assert result.valid[SOURCE_KEY].tolist() == ["4"]
    assert [(row.source_key, row.reasons) for row in result.held_by_key()] == [("3", [reason])]


def test_a_row_without_a_key_is_quarantined() -> None:
    found = held(CUSTOMER, [client(id=None)])
    assert found == {"(no key)": [
        "client (no key): id: empty - fill in id on the client in the source"]}


TIME_QUERY = """
name: time_entry
qbo_entity: TimeActivity
source:
  query: SELECT * FROM time_entries
  primary_key: id
  updated_at: updated_at
  business_date: work_date
  column_types: {hours: number, approved: boolean}
fields:
  Hours: {column: whole_hours, type: integer, min: 0, max: 24}
  TxnDate: {column: work_date, type: date, required: true}
  HourlyRate: {column: rate, type: number}
on_source_delete: ignore
settings:
  approved_only:
    description: Only approved time
    default: true
    when: {column: approved, equals: true}
"""


def entry(**values: Any) -> dict[str, Any]:
    row = {"id": 1, "hours": Decimal("1.5"), "whole_hours": 1, "work_date": dt.date(2024, 5, 1),
           "rate": Decimal("100.00"), "approved": True, "updated_at": NOW}
    return {**row, **values}


def test_column_types_catch_text_hours_that_sql_turned_into_zero() -> None:
    # SQLite's CAST(ROUND('abc' * 60) AS INTEGER) / 60 is 0: without the check, 0 hours.
    found = held(TIME_QUERY, [entry(id=1, hours="abc", whole_hours=0), entry(id=2)])
    assert found == {"1": ["time entry 1: hours: 'abc' is not a number - correct hours on the "
                           "time entry"]}


def test_invalid_dates_infinite_and_text_numbers_are_quarantined() -> None:
    found = held(TIME_QUERY, [entry(id=1, work_date="2026-02-30"),
                              entry(id=2, work_date="0000-00-00"),
                              entry(id=3, rate=float("inf")), entry(id=4, rate="NaN")])
    assert found == {
        "1": ["time entry 1: TxnDate is wrong: '2026-02-30' is not a date (YYYY-MM-DD) - "
              "correct work_date on the time entry"],
        "2": ["time entry 2: TxnDate is wrong: '0000-00-00' is not a date (YYYY-MM-DD) - "
              "correct work_date on the time entry"],
        "3": ["time entry 3: HourlyRate is wrong: 'inf' is not a finite number - correct "
              "rate on the time entry"],
        "4": ["time entry 4: HourlyRate is wrong: 'NaN' is not a number - correct rate on the "
              "time entry"],
    }


def test_a_setting_lets_an_unclear_flag_through_to_be_quarantined() -> None:
    spec = make_spec(TIME_QUERY)
    frame = pd.DataFrame([entry(id=1, approved="maybe"), entry(id=2, approved=False),
                          entry(id=3)], dtype=object)
    selected = select_frame(spec, frame)
    assert selected["id"].tolist() == [1, 3]  # not skipped without a word: held with a reason
    found = held(TIME_QUERY, selected.to_dict("records"))
    assert found == {"1": ["time entry 1: approved: 'maybe' is not yes/no (true, false, 1, 0) "
                           "- correct approved on the time entry"]}


def test_the_start_date_rule_lets_an_unreadable_date_through() -> None:
    # pandas reads the number 5 as 1970-01-01: the row would be skipped as too old.
    spec = SHIPPED["invoice"]
    dates = pd.Series([5, "2026-02-30", b"\xff", dt.date(1999, 1, 1), "2024-06-01"],
                      dtype=object)
    assert on_or_after_start(spec, dates, dt.date(2024, 1, 1)).tolist() == [
        True, True, True, False, True]


INVOICE_ROW = {"id": 5, "project_id": 3, "number": "INV-1", "issue_date": dt.date(2024, 5, 2),
               "tax_rate": Decimal("0.085"), "tax_amount": "n/a", "updated_at": NOW,
               "deleted_at": None}
LINE = {"invoice_id": 5, "line_no": 1, "description": "ok", "amount": 5, "quantity": 1,
        "service_name": "Labor"}


def test_an_unreadable_tax_amount_is_an_issue_not_a_missing_tax_line() -> None:
    mapped = map_row(make_spec(INVOICE), INVOICE_ROW, [LINE], lambda spec, key: "58",
                     lambda entity, by, value: "31")
    assert [issue.reason for issue in mapped.issues] == [
        "invoice 5: Line[tax].Amount is wrong: 'n/a' is not a number - correct tax_amount on "
        "the invoice"]


def test_an_infinite_line_amount_never_reaches_the_payload() -> None:
    mapped = map_row(make_spec(INVOICE), {**INVOICE_ROW, "tax_amount": 0},
                     [{**LINE, "amount": float("inf")}], lambda spec, key: "58",
                     lambda entity, by, value: "31")
    assert [issue.reason for issue in mapped.issues] == [
        "invoice 5: Line[1].Amount is wrong: 'inf' is not a finite number - correct amount "
        "on the invoice"]


def test_a_lookup_value_with_control_characters_is_never_sent_to_quickbooks() -> None:
    asked: list[str] = []

    def lookup(entity: str, by: str, value: str) -> str:
        asked.append(value)
        return "31"

    mapped = map_row(make_spec(INVOICE), {**INVOICE_ROW, "tax_amount": 0},
                     [{**LINE, "service_name": "Lab\x00or"}], lambda spec, key: "58", lookup)
    assert asked == []
    assert [issue.reason for issue in mapped.issues] == [
        "invoice 5: Line[1].SalesItemLineDetail.ItemRef looks up 'Lab\\x00or', which holds "
        "U+0000 (a control character) at position 4 - correct service_name on the invoice"]


PROJECT_TEMPLATE = """
name: project
qbo_entity: Customer
source: {table: projects, primary_key: id, updated_at: updated_at}
fields:
  DisplayName: {template: "{number} - {name}", required: true}
on_source_delete: inactivate
"""


def test_a_template_names_the_column_it_cannot_read() -> None:
    rows = [{"id": 4, "number": "P-7", "name": b"K\xe9k", "updated_at": NOW}]
    assert held(PROJECT_TEMPLATE, rows) == {"4": [
        "project 4: DisplayName is wrong: name: invalid UTF-8 bytes at position 2 (b'K\\xe9k') "
        "- correct number / name on the project"]}


# --- text a person would not want ------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202a",
                                       "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
                                       "\u2067", "\u2068", "\u2069"])
def test_control_and_direction_characters_are_refused_by_default(character: str) -> None:
    found = held(CUSTOMER, [client(id=1, first_name=f"Ann{character}a")])
    [reason] = found["1"]
    assert reason.startswith(f"client 1: GivenName {quoted('Ann' + character + 'a')} holds "
                             f"control or text-direction characters: U+{ord(character):04X}")
    assert "at position 4" in reason and character not in reason


def test_tabs_and_line_breaks_are_plain_text() -> None:
    assert held(CUSTOMER, [client(id=1, first_name="Ann\tMarie\r\nSmith")]) == {}


def test_a_spec_can_relax_plain_text_per_field() -> None:
    relaxed = CUSTOMER.replace("GivenName: {column: first_name}",
                               "GivenName: {column: first_name, plain_text: false}")
    assert held(relaxed, [client(id=1, first_name="Ann\u202e")]) == {}


def test_a_pulled_value_with_an_override_character_is_quarantined() -> None:
    result = validate_pulled(make_spec(SERVICE), {"qbo:12": {"Id": "12", "Name": "Saw\u202e"}})
    assert [row.reasons for row in result.quarantined] == [[
        "QuickBooks Item 12: Name 'Saw\\u202e' holds control or text-direction characters: "
        "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 4, which QuickBooks would store but no "
        "one can see or type - correct it in QuickBooks"]]


# --- hints belong to their rule --------------------------------------------------------------


def shipped_client(**values: Any) -> dict[str, Any]:
    row = {name: None for name in ("email", "phone", "contact_first_name", "contact_last_name",
                                   "address_line1", "address_line2", "city", "state",
                                   "postal_code", "deleted_at")}
    return {**row, "id": 1, "name": "Acme", "active": True, "email": "ap@acme.test",
            "created_at": NOW, "updated_at": NOW, **values}


def test_the_shipped_client_hint_is_only_the_fix_of_its_pattern() -> None:
    spec = as_configured(SHIPPED, "client")
    rows = [shipped_client(id=1, name="Acme: West"), shipped_client(id=2, name=None),
            shipped_client(id=3, name="x" * 501)]
    result = validate_frame(spec, map_frame(spec, pd.DataFrame(rows, dtype=object)))
    reasons = {row.source_key: row.reasons for row in result.quarantined}
    assert reasons["1"] == ["client 1: DisplayName 'Acme: West' does not match the pattern "
                            "[^:\\t\\n]* - remove any ':' from the client name"]
    # Not "- remove any ':' from the client name": that is the fix of another rule.
    assert reasons["2"] == ["client 2: DisplayName is required - fill in name on the client"]
    assert reasons["3"][0] == ("client 3: DisplayName is 501 characters, more than the 500 "
                               "allowed - correct name on the client")


def test_a_text_hint_still_covers_every_rule_of_its_field() -> None:
    found = held(CUSTOMER, [client(id=1, email=None), client(id=2, email="ap at acme")])
    assert found["1"] == ["client 1: PrimaryEmailAddr.Address is required - add an email to "
                          "the client"]
    assert found["2"][0].endswith("is not a valid email address - add an email to the client")


def test_a_hint_for_a_rule_the_field_lacks_is_a_spec_mistake() -> None:
    text = CUSTOMER.replace("hint: add an email to the client",
                            "hint: {patern: add an email}")
    with pytest.raises(SpecError, match="hint.patern: the field has no rule 'patern'"):
        make_spec(text)


# --- held rows without a stamp ---------------------------------------------------------------


def test_a_held_row_without_a_stamp_is_read_again_every_run() -> None:
    rows = [HeldRow("7", NOW, unstamped=True), HeldRow("8", NOW)]
    assert due_again(rows, {}) == ["7"]
    assert due_again(rows, {}, read_keys=["7"]) == []
