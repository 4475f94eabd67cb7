"""Plain-value functions shared by mapping, validation and diff.

Source rows arrive from SQLAlchemy or pandas (Decimal, numpy scalars, NaN, dates); QBO echoes
JSON (floats, strings, booleans). These functions turn both into one comparable, JSON-ready form
so that QBO's echo of what we sent never looks like a change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from qbo_pipeline.specs import ValueType

_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT, pandas NA and blank strings: all mean "no value"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return False
    try:
        return bool(pd.isna(value))  # NaN, NaT and pandas NA
    except (TypeError, ValueError):
        return False


def _native(value: Any) -> Any:
    """Unwrap numpy and pandas scalars into Python values."""
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, (Decimal, str, bytes)) and callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def clean_decimal(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (100.00 -> 100)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def to_decimal(value: Any) -> Decimal | None:
    """The number a value holds (int, float, Decimal or numeric text), or None."""
    value = _native(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else clean_decimal(Decimal(repr(value)))
    try:
        return clean_decimal(Decimal(str(value).strip()))
    except InvalidOperation:
        return None


def to_json_value(value: Any) -> Any:
    """A JSON-ready version of a source value; None when the value is missing."""
    value = _native(value)
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal):
        number = clean_decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def coerce(value: Any, value_type: ValueType | None) -> Any:
    """Convert a present source value to the spec's type; ValueError says what is wrong."""
    value = to_json_value(value)
    if value is None or value_type is None:
        return value
    converters = {
        ValueType.STRING: _to_string,
        ValueType.BOOLEAN: _to_boolean,
        ValueType.INTEGER: _to_integer,
        ValueType.NUMBER: _to_number,
        ValueType.DATE: _to_date,
    }
    return converters[value_type](value)


def _to_string(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"'{value}' is not yes/no (true, false, 1, 0)")


def _to_integer(value: Any) -> int:
    number = to_decimal(value)
    if number is None or number != number.to_integral_value():
        raise ValueError(f"'{value}' is not a whole number")
    return int(number)


def _to_number(value: Any) -> int | float:
    number = to_decimal(value)
    if number is None:
        raise ValueError(f"'{value}' is not a number")
    return int(number) if number == number.to_integral_value() else float(number)


def _to_date(value: Any) -> str:
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None


def source_key_of(value: Any) -> str:
    """A source primary key as text: 17, 17.0 (pandas upcasts) and "17" are all "17"."""
    value = _native(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def get_path(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path such as `BillAddr.Line1`, or None."""
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating the nested dicts on the way."""
    *parents, leaf = path.split(".")
    current = record
    for part in parents:
        child = current.get(part)
        if not isinstance(child, dict):
            child = current[part] = {}
        current = child
    current[leaf] = value


def comparable(value: Any) -> Any:
    """The form two values are compared in: missing -> None, numbers -> Decimal, text trimmed."""
    value = to_json_value(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return to_decimal(value)
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, Mapping):
        present = {key: comparable(item) for key, item in value.items()}
        return {key: item for key, item in present.items() if item is not None} or None
    return value


def values_equal(left: Any, right: Any) -> bool:
    """Equal after normalising: "10.50" == 10.5, "" == None, "true" == True, " a " == "a".

    Lists and dicts are compared item by item the same way.
    """
    return _equal(comparable(left), comparable(right))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if a == b:
        return True
    if isinstance(a, str) and not isinstance(b, str):
        a, b = b, a
    if isinstance(b, str):
        if isinstance(a, bool):
            return b.lower() in (_TRUE_WORDS if a else _FALSE_WORDS)
        if isinstance(a, Decimal):
            return to_decimal(b) == a
    return False
