"""Load-time checks of the filters a spec splices into queries: SQL and QBO conditions.

`source.filter` and `source.query` go into the SQL the sync builds (`(<filter>) AND ...`,
`SELECT ... FROM (<query>) AS rows`), and `pull.filter` into a QBO query. A filter that breaks
the statement it lands in would only fail at run time, so what can be seen without a database
is checked here: quotes and brackets that close, no statement separator, no comment that would
swallow the rest of the statement, and for QBO the whole condition grammar and its field names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# SQL: a quoted string ('' escapes a quote), a quoted identifier, a comment start, or a
# character that matters to the statement around the filter.
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--|/\*|[()';\"]")
_SQL_START = re.compile(r"\s*(select|with)\b", re.IGNORECASE)
_LEADING_WHERE = re.compile(r"\s*where\b", re.IGNORECASE)


def sql_filter_problem(text: str) -> str | None:
    """Why a SQL where-condition would break the query it is added to, or None."""
    if not text.strip():
        return "is empty - remove it, or give a condition such as \"status <> 'draft'\""
    if _LEADING_WHERE.match(text):
        return "starts with WHERE - give only the condition; the sync adds WHERE itself"
    return _sql_text_problem(text)


def sql_query_problem(text: str) -> str | None:
    """Why a source query cannot be read from as a table, or None."""
    if not _SQL_START.match(text):
        return "must be a SELECT (or WITH ... SELECT) statement returning the spec's columns"
    return _sql_text_problem(text)


def _sql_text_problem(text: str) -> str | None:
    depth = 0
    for found in _SQL_TOKEN.finditer(text):
        token = found.group()
        where = _position(text, found.start())
        if token in ("'", '"'):
            return f"the {token} at {where} is never closed - close it (write '' for a quote)"
        if token == ";":
            return (f"holds ';' at {where}: the sync wraps it in a statement of its own - "
                    "remove the ';'")
        if token in ("--", "/*"):
            return (f"holds a comment ({token}) at {where}, which would swallow the SQL the "
                    "sync adds after it - remove the comment")
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth < 0:
            return f"the ')' at {where} closes nothing - remove it or add its '('"
    if depth > 0:
        return f"{depth} '(' never closed - add the missing ')'"
    return None


def _position(text: str, offset: int) -> str:
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}" if line > 1 else f"character {column}"


# --------------------------------------------------------------------------- QBO conditions

# Intuit's query syntax: `Field Op Value [AND Field Op Value ...]`; no OR, no NOT, no `!=`.
_QBO_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<operator><=|>=|<>|!=|=|<|>)
      | (?P<punctuation>[(),])""",
    re.VERBOSE | re.DOTALL)
_OPERATORS = ("=", "<", ">", "<=", ">=")


class ConditionError(ValueError):
    """A QBO condition that QBO would refuse to parse."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "name" else ""


def qbo_condition_fields(text: str) -> list[str]:
    """The field paths a QBO query condition filters on ("Type = 'Service' AND Active = true"
    -> [Type, Active]); ConditionError saying what is wrong when QBO could not parse it."""
    tokens = list(_qbo_tokens(text))
    if not tokens:
        raise ConditionError("is empty - remove it, or give a condition such as "
                             "\"Type = 'Service'\"")
    fields, index = [], 0
    while True:
        field, index = _condition(tokens, index)
        fields.append(field)
        if index == len(tokens):
            return fields
        if tokens[index].word != "AND":
            hint = (" - QBO has no OR: use IN (...)" if tokens[index].word == "OR"
                    else " - join conditions with AND")
            raise ConditionError(f"expected AND or the end, found '{tokens[index].text}'{hint}")
        index += 1


def _qbo_tokens(text: str) -> Iterator[_Token]:
    offset = 0
    while offset < len(text):
        found = _QBO_TOKEN.match(text, offset)
        if found is None:
            character = text[offset]
            hint = (" - QBO strings take straight single quotes: 'like this'"
                    if character in "'\"\u2018\u2019\u201c\u201d" else "")
            raise ConditionError(f"unexpected {character!r} at character {offset + 1}{hint}")
        if found.lastgroup != "space":
            yield _Token(found.lastgroup or "", found.group())
        offset = found.end()


def _condition(tokens: list[_Token], index: int) -> tuple[str, int]:
    field = _take(tokens, index, "a field name")
    if field.kind != "name" or field.word in ("AND", "OR", "NOT", "IN", "LIKE"):
        raise ConditionError(f"expected a field name, found '{field.text}'")
    operator = _take(tokens, index + 1, f"an operator after {field.text}")
    if operator.text in _OPERATORS:
        _scalar(tokens, index + 2)
        return field.text, index + 3
    if operator.word == "LIKE":
        if _take(tokens, index + 2, "a 'pattern' after LIKE").kind != "string":
            raise ConditionError("LIKE takes a quoted pattern such as '%Design%'")
        return field.text, index + 3
    if operator.word == "IN":
        return field.text, _value_list(tokens, index + 2)
    hint = " - QBO has no not-equal operator" if operator.text in ("<>", "!=") else ""
    raise ConditionError(f"'{operator.text}' after {field.text} is not an operator: use =, <, "
                         f">, <=, >=, IN or LIKE{hint}")


def _scalar(tokens: list[_Token], index: int) -> None:
    value = _take(tokens, index, "a value")
    if value.kind not in ("string", "number") and value.word not in ("TRUE", "FALSE"):
        raise ConditionError(f"expected a value ('quoted text', a number, true or false), "
                             f"found '{value.text}'")


def _value_list(tokens: list[_Token], index: int) -> int:
    if _take(tokens, index, "'(' after IN").text != "(":
        raise ConditionError("IN takes a list in brackets: IN ('a', 'b')")
    index += 1
    while True:
        _scalar(tokens, index)
        separator = _take(tokens, index + 1, "',' or ')'")
        index += 2
        if separator.text == ")":
            return index
        if separator.text != ",":
            raise ConditionError(f"expected ',' or ')' in the IN list, found '{separator.text}'")


def _take(tokens: list[_Token], index: int, expected: str) -> _Token:
    if index >= len(tokens):
        raise ConditionError(f"ends too early: expected {expected}")
    return tokens[index]
