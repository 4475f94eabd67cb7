"""Shape problems of a spec, as `(path, message)` pairs a spec author can act on.

Pydantic says "Input should be a valid string"; a spec author needs the value that was found
and the fix ("quote it", "write [DisplayName]", "did you mean 'fields'?"). Keys that are not
text (`1:`, YAML's `on:`/`yes:`, which read as true) are found before pydantic sees the data.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from qbo_pipeline.qbo.fields import nearest
from qbo_pipeline.specs.models import EntitySpec

Problem = tuple[str, str]
# Keys whose values are free JSON: pydantic's loc names JsonValue's union members below them.
JSON_KEYS = frozenset({"constant", "equals", "one_of", "allowed_values", "set"})
UNION_TAGS = frozenset({"str", "list[str]", "list", "dict", "int", "float", "bool"})
MAX_KEYS_LISTED = 20
_TYPE_WORDS = {
    "string_type": "text",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number",
    "finite_number": "a finite number",
    "dict_type": "a mapping of keys (`key: value` lines)",
    "model_type": "a mapping of keys (`key: value` lines)",
    "model_attributes_type": "a mapping of keys (`key: value` lines)",
    "list_type": "a list ([a, b], or `- item` lines)",
}


def key_problems(data: Any, path: str = "", stack: tuple[int, ...] = ()) -> Iterator[Problem]:
    """Every mapping key that is not text, with the path of the mapping holding it."""
    if id(data) in stack:  # YAML aliases can build data that contains itself
        return
    inner = (*stack, id(data))
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                yield path or "(top level)", _key_message(key)
                continue
            yield from key_problems(value, f"{path}.{key}" if path else key, inner)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from key_problems(item, f"{path}[{index}]", inner)


def _key_message(key: Any) -> str:
    hint = (" (YAML reads yes/no/on/off/true/false as a flag)" if isinstance(key, bool)
            else "")
    return f"the key {describe(key)} is not text{hint} - put it in quotes"


def pydantic_problems(error: ValidationError) -> Iterator[Problem]:
    """Pydantic's errors, one per path: a union's alternatives become one message."""
    merged: dict[str, list[str]] = {}
    for item in error.errors():
        merged.setdefault(location(item["loc"]), []).append(_message(item))
    for path, messages in merged.items():
        unique = list(dict.fromkeys(messages))
        yield path, (_either(unique) if len(unique) > 1 else unique[0])


def _either(messages: list[str]) -> str:
    wanted = [m.split(", not ")[0].removeprefix("should be ") for m in messages
              if m.startswith("should be ")]
    if len(wanted) == len(messages):
        found = messages[0].split(", not ", 1)[-1]
        return f"should be {' or '.join(wanted)}, not {found}"
    return "; ".join(messages)


def _message(item: ErrorDetails) -> str:
    kind, value = item["type"], item.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return _unknown_key(item["loc"])
    if kind == "enum":
        near = nearest(str(value), _enum_values(item)) if isinstance(value, str) else None
        guess = f"; did you mean '{near}'?" if near else ""
        return f"{item['msg']} (got {describe(value)}{guess})"
    if kind in _TYPE_WORDS:
        return f"should be {_TYPE_WORDS[kind]}, not {describe(value)}{_fix(kind, value)}"
    if "not a valid JSON value" in item["msg"]:
        return (f"{describe(value)} is not a plain value: quote dates and times "
                "('2024-01-01'), write lists as [a, b] and mappings as {key: value}")
    if kind.startswith(("greater_than", "less_than")):
        return f"{item['msg']} (got {describe(value)})"
    return item["msg"].removeprefix("Value error, ")


def _fix(kind: str, value: Any) -> str:
    if kind == "string_type" and isinstance(value, bool | int | float | dt.date):
        return f" - put it in quotes ('{value}') if it is meant as text"
    if kind == "list_type" and isinstance(value, str):
        return f" - write [{value}] for a list of one"
    return ""


def _enum_values(item: ErrorDetails) -> list[str]:
    expected = str((item.get("ctx") or {}).get("expected", ""))
    return [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]


def describe(value: Any) -> str:
    """A found value as a message shows it: `12`, `'Billable'`, `a list`, `a date (...)`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dt.date):
        return f"a date or time ({value.isoformat()})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def location(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a spec path: `fields.DisplayName.column`, `match_keys[0]`."""
    text, in_json = "", False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if part in UNION_TAGS and (in_json or part in ("str", "list[str]")):
            continue  # pydantic names the union member it tried; the reader needs the key
        text += f".{part}" if text else str(part)
        in_json = in_json or part in JSON_KEYS
    return text


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    known = _keys_at(loc[:-1])
    text = f"unknown key '{key}'"
    if near := nearest(key, known):
        return f"{text} - did you mean '{near}'?"
    if known and len(known) <= MAX_KEYS_LISTED:
        return f"{text} (keys here: {', '.join(known)})"
    return f"{text}: check its spelling against mapping_specs/README.md"


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a spec allows at a location, found by walking the models' annotations."""
    annotation: Any = EntitySpec
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = next((option for option in _options(annotation) if _is_model(option)), None)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _step(annotation: Any, part: int | str) -> Any:
    for option in _options(annotation):
        if _is_model(option) and isinstance(part, str):
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        origin, args = get_origin(option), get_args(option)
        if origin is dict and isinstance(part, str) and len(args) == 2:
            return args[1]
        if origin is list and isinstance(part, int) and args:
            return args[0]
    return None


def _options(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(arg for arg in get_args(annotation) if arg is not type(None))
    return (annotation,)


def _is_model(option: Any) -> bool:
    return isinstance(option, type) and issubclass(option, BaseModel)
