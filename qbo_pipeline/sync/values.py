"""Plain-value functions shared by mapping, validation and diff.

Source rows arrive from SQLAlchemy or pandas (Decimal, numpy scalars, NaN, dates); QBO echoes
JSON (floats, strings, booleans). These functions turn both into one comparable, JSON-ready form
so that QBO's echo of what we sent never looks like a change.

A source database can hold anything in any column (SQLite keeps text in a REAL column and
invalid UTF-8 in a TEXT one), so every source value is read through `read_source_value` and
`coerce`: a value that cannot be used raises `ValueError` saying what is wrong with it, and the
caller quarantines its row. None of these functions raises anything else, whatever the input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pandas as pd

from qbo_pipeline.specs import ValueType

_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
_YES_NO = "yes/no (true, false, 1, 0)"

# A JSON number is read as a double by most clients: beyond 15 digits a double no longer holds
# every value exactly, so larger numbers would reach QuickBooks changed.
LARGEST_NUMBER = Decimal(10) ** 15
# Decimals are written out without an exponent only up to this many digits; anything larger is
# refused by `coerce` anyway, and writing out 1E+999999999 would exhaust memory.
_EXACT_DIGITS = 60
_EXACT = Context(prec=_EXACT_DIGITS + 2)

MISSING_KEY = "(no key)"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_QUOTED_LENGTH = 100  # longer values are cut in reasons: the reason must stay readable

# Characters a person would not want in a QuickBooks name or memo although QBO stores them:
# control characters (C0, DEL, C1) other than tab and line breaks, and the bidirectional
# embeddings, overrides and isolates that make text display in another order than it reads
# (U+202A-U+202E, U+2066-U+2069: "Trojan Source").
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT, pandas NA and blank strings: all mean "no value"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, bytes, bytearray, memoryview)):
        return False
    if isinstance(value, Decimal):
        return value.is_nan()  # pandas' own test raises on a signalling NaN
    try:
        return bool(pd.isna(value))  # NaN, NaT and pandas NA
    except (TypeError, ValueError, ArithmeticError):
        return False


def _native(value: Any) -> Any:
    """Unwrap numpy and pandas scalars into Python values."""
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, (Decimal, str, bytes)) and callable(item):
        try:
            return item()
        except (TypeError, ValueError, ArithmeticError):
            return value
    return value


def clean_decimal(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (100.00 -> 100)."""
    if not value.is_finite() or value.adjusted() > _EXACT_DIGITS:
        return value
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=_EXACT)
    return value.normalize(context=Context(prec=max(len(value.as_tuple().digits), 28)))


def to_decimal(value: Any) -> Decimal | None:
    """The finite number a value holds (int, float, Decimal or numeric text), or None."""
    value = _native(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        number = Decimal(repr(value)) if math.isfinite(value) else None
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        number = _parse_decimal(value)
    else:
        return None
    if number is None or not number.is_finite():
        return None
    return clean_decimal(number)


def _parse_decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None


def to_json_value(value: Any) -> Any:
    """A JSON-ready version of a source value; None when the value is missing."""
    value = _native(value)
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal):
        return _decimal_json(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _decimal_json(value: Decimal) -> int | float:
    number = clean_decimal(value)
    if not number.is_finite() or number.adjusted() > _EXACT_DIGITS:
        return float(number)
    return int(number) if number == number.to_integral_value() else float(number)


# --- reading a source value ------------------------------------------------------------------


def quoted(value: Any) -> str:
    """A value as a reason shows it: in quotes, with invisible and reordering characters
    escaped (so that the reason itself displays as it reads) and long text cut."""
    text = value if isinstance(value, str) else _shown(value)
    if len(text) > _QUOTED_LENGTH:
        text = text[:_QUOTED_LENGTH] + "..."
    # Tabs and line breaks too: a reason is one line.
    escaped = "".join(_escaped(c) if _is_unsafe(c, frozenset()) or _is_surrogate(c) else c
                      for c in text)
    return f"'{escaped}'"


def _shown(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return repr(bytes(value)[: _QUOTED_LENGTH + 1])
    try:
        return str(value)
    except Exception:  # a value's own __str__ may fail; the reason must not
        return f"<{type(value).__name__}>"


def _escaped(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_surrogate(character: str) -> bool:
    return 0xD800 <= ord(character) <= 0xDFFF


def _is_unsafe(character: str, allowed: frozenset[str] = _ALLOWED_CONTROLS) -> bool:
    if character in _BIDI_CONTROLS:
        return True
    return unicodedata.category(character) == "Cc" and character not in allowed


def unsafe_characters(text: str) -> list[tuple[int, str]]:
    """The (1-based position, character) of each control or bidirectional-override
    character in `text`; tab and line breaks are allowed."""
    return [(position, c) for position, c in enumerate(text, start=1) if _is_unsafe(c)]


def describe_character(character: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`, `U+0007 (a control character)`."""
    name = unicodedata.name(character, "") or "a control character"
    return f"U+{ord(character):04X} ({name})"


def read_source_value(value: Any) -> Any:
    """A source value as the sync uses it; ValueError says why it cannot be used.

    Bytes (SQLite hands back text it cannot decode as bytes) are decoded as UTF-8; a Decimal
    NaN and infinities are not numbers QuickBooks holds; values of types no database column
    holds as text, a number, a date or a flag are refused rather than guessed at. A float NaN
    is pandas' mark for "no value" (a None in a column of numbers or text) and reads as None:
    the source reader hands a NaN the database holds on as `Decimal("NaN")`.
    """
    value = _native(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _decoded(bytes(value))
    if isinstance(value, str):
        _check_unicode(value)
        return value
    if isinstance(value, (float, Decimal)) and not isinstance(value, bool):
        _check_finite(value)
        return value
    if value is None or isinstance(value, (bool, int, dt.date, dt.time)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, dict)):
        return _json_value(value)
    if is_missing(value):  # pandas NA, NaT
        return None
    raise ValueError(f"holds a {type(value).__name__} value, which is neither text, a number, "
                     "a date nor yes/no")


def _decoded(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"invalid UTF-8 bytes at position {error.start + 1} "
                         f"({quoted(data)[1:-1]})") from None
    _check_unicode(text)
    return text


def _check_unicode(text: str) -> None:
    for position, character in enumerate(text, start=1):
        if _is_surrogate(character):
            raise ValueError(f"holds a broken character (a lone UTF-16 surrogate) at "
                             f"position {position}")


def _check_finite(number: float | Decimal) -> None:
    if isinstance(number, Decimal) and number.is_nan():
        raise ValueError("NaN is not a number")
    if isinstance(number, Decimal) and number.is_infinite() or \
            isinstance(number, float) and math.isinf(number):
        raise ValueError(f"{quoted(number)} is not a finite number")


def _json_value(value: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise ValueError(f"{quoted(value)} is not plain JSON (text, numbers, lists and "
                         "objects)") from None
    return value


def coerce(value: Any, value_type: ValueType | None) -> Any:
    """Convert a present source value to the spec's type; ValueError says what is wrong."""
    value = to_json_value(read_source_value(value))
    if value is None:
        return None
    if isinstance(value, dt.time):
        value = value.isoformat()
    if value_type is None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_size(value)
        return value
    converters = {
        ValueType.STRING: _to_string,
        ValueType.BOOLEAN: to_boolean,
        ValueType.INTEGER: _to_integer,
        ValueType.NUMBER: _to_number,
        ValueType.DATE: _to_date,
    }
    return converters[value_type](value)


def _to_string(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_boolean(value: Any) -> bool:
    """True or False for a clear yes/no value; ValueError for anything else (2, 'maybe')."""
    value = _native(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        number = to_decimal(value)
        if number is not None and number in (0, 1):
            return number == 1
        raise ValueError(f"{quoted(value)} is not {_YES_NO}")
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"{quoted(value)} is not {_YES_NO}")


def _number(value: Any, what: str) -> Decimal:
    number = None if isinstance(value, bool) else to_decimal(value)
    if number is None:
        raise ValueError(f"{quoted(value)} is not {what}")
    _check_size(number, value)
    return number


def _check_size(number: int | float | Decimal, shown: Any = None) -> None:
    exact = to_decimal(number)
    if exact is not None and abs(exact) >= LARGEST_NUMBER:
        raise ValueError(f"{quoted(number if shown is None else shown)} is too large (more "
                         "than 15 digits before the decimal point)")


def _to_integer(value: Any) -> int:
    number = _number(value, "a whole number")
    if number != number.to_integral_value():
        raise ValueError(f"{quoted(value)} is not a whole number")
    return int(number)


def _to_number(value: Any) -> int | float:
    number = _number(value, "a number")
    return int(number) if number == number.to_integral_value() else float(number)


def _to_date(value: Any) -> str:
    day = to_date(value)
    if day is None:
        raise ValueError(f"{quoted(value)} is not a date (YYYY-MM-DD)")
    return day.isoformat()


def to_date(value: Any) -> dt.date | None:
    """The calendar date a value holds (a date, a time stamp, or ISO text starting with
    YYYY-MM-DD), or None: `2026-02-30` and `0000-00-00` hold none."""
    value = _native(value)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _ISO_DATE.match(text):
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        return None


def to_moment(value: Any) -> dt.datetime | None:
    """A time stamp as an aware UTC moment (naive stamps hold UTC), or None when the value
    is empty or no time: `0000-00-00 00:00:00`, `yesterday`, a number."""
    value = _native(value)
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_DATE.match(text):
            return None
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time.min)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime(warn=False)
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range
        return None


def deleted_mark(value: Any) -> bool:
    """Whether a soft-delete column's value marks its row deleted: a time stamp or a true
    flag does, empty or a false flag does not; ValueError for text that is neither."""
    value = read_source_value(value)
    if is_missing(value):
        return False
    if isinstance(value, (bool, int, float, Decimal)):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
        if to_moment(value) is None:
            raise ValueError(f"{quoted(value)} is neither a time nor {_YES_NO}")
    return True


def source_key_of(value: Any) -> str:
    """A source primary key as text: 17, 17.0 (pandas upcasts) and "17" are all "17"; an
    empty key is MISSING_KEY (its row is quarantined, see `source_rows`)."""
    value = _native(value)
    if is_missing(value):
        return MISSING_KEY
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace").strip()
    return _shown(value).strip()


def _steps(path: str) -> Iterator[str | int]:
    """The keys of a path: `Line[0].Amount` -> "Line", 0, "Amount"."""
    for part in path.split("."):
        name, _, index = part.partition("[")
        yield name
        if index:
            yield int(index.rstrip("]"))


def top_field(path: str) -> str:
    """The record's own field a path starts in: `BillAddr` of `BillAddr.Line1`, `Line` of
    `Line[0].Amount`."""
    first = next(_steps(path))
    assert isinstance(first, str)
    return first


def get_path(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path such as `BillAddr.Line1` or `Line[0].Amount`, or None."""
    current: Any = record
    for step in _steps(path):
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return None
            current = current[step]
        elif isinstance(current, Mapping):
            current = current.get(step)
        else:
            return None
    return current


def drop_path(record: dict[str, Any], path: str) -> None:
    """Remove the value at a path (`Balance`, `BillAddr.Line1`, `Line[0].Amount`), if there."""
    *parents, leaf = list(_steps(path))
    current: Any = record
    for step in parents:
        if isinstance(step, int):
            current = current[step] if isinstance(current, list) and step < len(current) else None
        else:
            current = current.get(step) if isinstance(current, dict) else None
    if isinstance(leaf, str) and isinstance(current, dict):
        current.pop(leaf, None)
    elif isinstance(leaf, int) and isinstance(current, list) and leaf < len(current):
        current[leaf] = {}  # the items after it keep their positions


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating the nested dicts (and, for `Line[0]`, the
    list and its items) on the way."""
    steps = list(_steps(path))
    *parents, leaf = steps
    current: Any = record
    for position, step in enumerate(parents):
        following = steps[position + 1]
        current = _child(current, step, [] if isinstance(following, int) else {})
    if isinstance(leaf, int):
        _child(current, leaf, {})  # pads the list up to the position
    current[leaf] = value


def _child(container: Any, step: str | int, empty: Any) -> Any:
    """The list or dict at `step` of `container`, made `empty` if it is not there yet."""
    if isinstance(step, int):
        while len(container) <= step:
            container.append({})
        if not isinstance(container[step], type(empty)):
            container[step] = empty
        return container[step]
    child = container.get(step)
    if not isinstance(child, type(empty)):
        child = container[step] = empty
    return child


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
