from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qbo_pipeline.specs import ValueType
from qbo_pipeline.sync.values import (
    coerce,
    get_path,
    is_missing,
    set_path,
    source_key_of,
    to_json_value,
    values_equal,
)


@pytest.mark.parametrize("value", [None, "", "   ", float("nan"), pd.NA, pd.NaT, np.nan])
def test_missing_values(value: Any) -> None:
    assert is_missing(value)
    assert to_json_value(value) is None


@pytest.mark.parametrize("value", [0, False, "0", [], {}])
def test_present_values(value: Any) -> None:
    assert not is_missing(value)


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("10.50"), 10.5), (Decimal("100.00"), 100), (np.int64(7), 7),
    (np.float64(2.5), 2.5), (np.bool_(True), True), (" a ", "a"),
    (dt.date(2024, 5, 2), "2024-05-02"), (dt.datetime(2024, 5, 2, 8, 30), "2024-05-02T08:30:00"),
])
def test_json_values(value: Any, expected: Any) -> None:
    converted = to_json_value(value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("value", "value_type", "expected"), [
    (1, ValueType.BOOLEAN, True), ("no", ValueType.BOOLEAN, False),
    (Decimal("7.00"), ValueType.INTEGER, 7), ("12", ValueType.NUMBER, 12),
    (Decimal("0.125"), ValueType.NUMBER, 0.125), (1001, ValueType.STRING, "1001"),
    (1001.0, ValueType.STRING, "1001"), (pd.Timestamp("2024-05-02 10:00"), ValueType.DATE,
                                         "2024-05-02"),
    (None, ValueType.INTEGER, None),
])
def test_coerce(value: Any, value_type: ValueType, expected: Any) -> None:
    assert coerce(value, value_type) == expected


@pytest.mark.parametrize(("value", "value_type", "message"), [
    ("maybe", ValueType.BOOLEAN, "'maybe' is not yes/no"),
    (7.5, ValueType.INTEGER, "'7.5' is not a whole number"),
    ("ten", ValueType.NUMBER, "'ten' is not a number"),
    ("May 2nd", ValueType.DATE, "'May 2nd' is not a date (YYYY-MM-DD)"),
])
def test_coerce_errors(value: Any, value_type: ValueType, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        coerce(value, value_type)


def test_source_keys_are_text() -> None:
    assert [source_key_of(v) for v in (17, 17.0, "17", np.int64(17), " 17 ")] == ["17"] * 5


def test_nested_paths() -> None:
    record: dict[str, Any] = {}
    set_path(record, "BillAddr.Line1", "1 Main St")
    set_path(record, "BillAddr.City", "Springfield")
    assert record == {"BillAddr": {"Line1": "1 Main St", "City": "Springfield"}}
    assert get_path(record, "BillAddr.City") == "Springfield"
    assert get_path(record, "BillAddr.City.Name") is None
    assert get_path(None, "DisplayName") is None


@pytest.mark.parametrize(("left", "right"), [
    (10.5, "10.50"), (Decimal("100.00"), 100), ("", None), (True, "true"), (True, 1),
    (" a ", "a"), ({"value": "5", "name": None}, {"value": "5"}), ({"a": None}, None),
    ([{"Qty": "1.0"}], [{"Qty": 1}]),
])
def test_equal_after_normalising(left: Any, right: Any) -> None:
    assert values_equal(left, right)


@pytest.mark.parametrize(("left", "right"), [
    (10.5, "10.51"), ("a", "A"), (False, "true"), ([1], [1, 2]), ({"a": 1}, {"b": 1}),
    (0, None),
])
def test_different_after_normalising(left: Any, right: Any) -> None:
    assert not values_equal(left, right)
