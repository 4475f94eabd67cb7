"""The QBO query language: parse a SELECT statement and run it over plain records.

Pure: no HTTP, no storage. It follows Intuit's "Query operations and syntax" page for the
Accounting API:

    SELECT * | count(*) | Field[, Field ...] FROM Entity
        [WHERE Field Op Value [AND Field Op Value ...]]
        [ORDERBY | ORDER BY Field [ASC | DESC][, ...]]
        [STARTPOSITION n] [MAXRESULTS m]

with the operators =, <, >, <=, >=, IN and LIKE (wildcard ``%`` only), no OR, backslash
escapes inside single-quoted strings, STARTPOSITION 1-based (default 1), MAXRESULTS at most
1000 (default 100), and names-list records that are inactive left out unless the query
filters on ``Active``.

The HTTP layer turns :class:`QuerySyntaxError` into QBO's fault 4000 ("Error parsing query")
and :class:`QueryValidationError` into fault 4001 ("Invalid query"): each error carries its
``code``, ``message`` and ``detail``.

Where QBO's documentation is silent the emulator chooses, and says so here:
- string comparisons (=, IN, LIKE, <, >, ORDER BY) ignore case;
- strings that both look like numbers compare as numbers (so ``Id > '9'`` finds ``'10'``);
- a date-only value compares by calendar day, against the stored value's own local day;
  a date-time without an offset takes the offset of the value it is compared with;
- absent fields sort before every value (so last under DESC), ties keep Id order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NoReturn

DEFAULT_START_POSITION = 1
DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_LIMIT = 1000

# Names-list entities: QBO's query leaves their inactive records out unless asked for them.
NAMES_LIST_ENTITIES = frozenset(
    {"Customer", "Vendor", "Employee", "Item", "Account", "Class", "Term"}
)

# QBO writes a null as a string holding one space: `WHERE Notes = ' '`.
QBO_NULL = " "

Scalar = str | Decimal | bool
ConditionValue = Scalar | tuple[Scalar, ...]


class QuerySyntaxError(ValueError):
    """A query QBO would refuse to parse: fault 4000, "Error parsing query"."""

    code = "4000"
    message = "Error parsing query"
    kind = "QueryParserError"

    def __init__(self, reason: str, *, text: str, offset: int) -> None:
        self.reason = reason
        self.line, self.column = _line_and_column(text, offset)
        self.detail = f"{self.kind}: {reason} (at line {self.line}, column {self.column})"
        super().__init__(self.detail)


class QueryValidationError(QuerySyntaxError):
    """A query that parses but asks for what QBO refuses (an entity it does not have,
    MAXRESULTS over its limit): fault 4001, "Invalid query"."""

    code = "4001"
    message = "Invalid query"
    kind = "QueryValidationError"


@dataclass(frozen=True)
class Condition:
    """One `Field Op Value` filter; for IN the value is a tuple."""

    field: str
    operator: str  # "=", "<", ">", "<=", ">=", "IN" or "LIKE"
    value: ConditionValue


@dataclass(frozen=True)
class OrderBy:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    entity: str
    select_count: bool
    fields: tuple[str, ...] | None  # None means `*`
    conditions: tuple[Condition, ...]
    order_by: tuple[OrderBy, ...]
    start_position: int
    max_results: int


@dataclass(frozen=True)
class QueryResult:
    """The requested page. total_count counts every match, whatever the page."""

    rows: list[dict[str, Any]]
    total_count: int
    start_position: int
    max_results: int


# --------------------------------------------------------------------------- tokens

_TOKEN_PATTERN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<open_string>')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<operator><=|>=|<>|!=|=|<|>)
  | (?P<punctuation>[(),*])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPED_CHARACTER = re.compile(r"\\(.)", re.DOTALL)
_KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDERBY", "ORDER", "BY"}
    | {"ASC", "DESC", "STARTPOSITION", "MAXRESULTS", "TRUE", "FALSE"}
)


@dataclass(frozen=True)
class _Token:
    kind: str  # a group name of _TOKEN_PATTERN, or "end"
    text: str
    offset: int

    @property
    def word(self) -> str:
        """The upper-cased name, for keyword checks; empty for other kinds."""
        return self.text.upper() if self.kind == "name" else ""

    def describe(self) -> str:
        return "the end of the query" if self.kind == "end" else f'"{self.text}"'


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    offset = 0
    while offset < len(text):
        found = _TOKEN_PATTERN.match(text, offset)
        if found is None:
            _reject_character(text, offset)
        kind = found.lastgroup or ""
        if kind == "open_string":
            raise QuerySyntaxError(
                "unterminated string: the quote opened here is never closed; "
                "end it with ' and write a quote inside it as \\'",
                text=text,
                offset=offset,
            )
        if kind != "space":
            tokens.append(_Token(kind, found.group(), offset))
        offset = found.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _reject_character(text: str, offset: int) -> NoReturn:
    character = text[offset]
    hint = ""
    if character in '"\u2018\u2019\u201c\u201d':
        hint = "; QBO strings take straight single quotes: 'like this'"
    raise QuerySyntaxError(f'unexpected character "{character}"{hint}', text=text, offset=offset)


def _string_value(token: _Token) -> str:
    return _ESCAPED_CHARACTER.sub(r"\1", token.text[1:-1])


# --------------------------------------------------------------------------- parser


def parse_query(text: str, known_entities: Iterable[str]) -> Query:
    """Parse one QBO SELECT statement; the entity comes back in its canonical spelling.

    Raises QuerySyntaxError (or its subclass QueryValidationError) naming what is wrong
    and where.
    """
    return _Parser(text, known_entities).parse()


def filters_on_active(query: Query) -> bool:
    """True when the query itself filters on Active, so inactive records stay in."""
    return any(condition.field.casefold() == "active" for condition in query.conditions)


class _Parser:
    def __init__(self, text: str, known_entities: Iterable[str]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.entities = {name.casefold(): name for name in known_entities}

    def parse(self) -> Query:
        self.expect("SELECT", "SELECT to start the query")
        select_count, fields = self.parse_selection()
        self.expect("FROM", "FROM after the selected fields")
        entity = self.parse_entity()
        conditions = self.parse_where()
        order_by = self.parse_order_by()
        start_position, max_results = self.parse_paging(bool(conditions), bool(order_by))
        return Query(
            entity, select_count, fields, conditions, order_by, start_position, max_results
        )

    # reading tokens

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        """Consume the next token when it is this keyword or punctuation."""
        token = self.peek()
        if token.word == text or (token.kind in ("punctuation", "operator") and token.text == text):
            self.index += 1
            return True
        return False

    def expect(self, text: str, expected: str) -> None:
        if not self.accept(text):
            self.fail(self.peek(), expected)

    def fail(self, token: _Token, expected: str, hint: str = "") -> NoReturn:
        reason = f"Encountered {token.describe()}, expected {expected}"
        raise QuerySyntaxError(
            reason + (f"; {hint}" if hint else ""), text=self.text, offset=token.offset
        )

    def expect_field(self, expected: str) -> str:
        token = self.peek()
        if token.kind != "name" or token.word in _KEYWORDS:
            self.fail(token, expected)
        self.index += 1
        return token.text

    # clauses

    def parse_selection(self) -> tuple[bool, tuple[str, ...] | None]:
        if self.accept("*"):
            return False, None
        if self.peek().word == "COUNT" and self.peek(1).text == "(":
            self.index += 2
            self.expect("*", "* inside count(*)")
            self.expect(")", ") to close count(*)")
            return True, None
        fields = [self.expect_field("*, count(*) or a list of field names")]
        while self.accept(","):
            fields.append(self.expect_field("a field name after the comma"))
        return False, tuple(fields)

    def parse_entity(self) -> str:
        token = self.peek()
        is_name = token.kind == "name" and token.word not in _KEYWORDS
        canonical = self.entities.get(token.text.casefold()) if is_name else None
        if canonical is None:
            known = ", ".join(sorted(self.entities.values()))
            if is_name:
                # QBO parses a name there and then finds no such entity: fault 4001
                # "QueryValidationError: Metadata not found for Entity: TaxService"
                # (quickbooks-ruby issue 628).
                raise QueryValidationError(
                    f"Metadata not found for Entity: {token.text} (queryable entities are: "
                    f"{known})",
                    text=self.text,
                    offset=token.offset,
                )
            self.fail(token, f"an entity name after FROM (one of: {known})")
        self.index += 1
        if self.peek().text == ",":
            expected = _expected_clauses(filtered=False, ordered=False, paging=set())
            self.fail(self.peek(), expected, "QBO queries one entity at a time")
        return canonical

    def parse_where(self) -> tuple[Condition, ...]:
        if not self.accept("WHERE"):
            return ()
        conditions = [self.parse_condition()]
        while self.accept("AND"):
            conditions.append(self.parse_condition())
        if self.peek().word == "OR":
            self.fail(
                self.peek(),
                _expected_clauses(filtered=True, ordered=False, paging=set()),
                "QBO does not support OR: use IN (...) or run one query per alternative",
            )
        return tuple(conditions)

    def parse_condition(self) -> Condition:
        field = self.expect_field("a field name to filter on")
        token = self.advance()
        operator = token.word if token.kind == "name" else token.text
        if token.kind == "operator" and operator not in ("<>", "!="):
            return Condition(field, operator, self.parse_scalar())
        if operator == "IN":
            return Condition(field, operator, self.parse_value_list())
        if operator == "LIKE":
            return Condition(field, operator, self.parse_pattern())
        self.fail(
            token,
            "an operator: =, <, >, <=, >=, IN or LIKE",
            "QBO has no not-equal or NOT operator" if operator in ("<>", "!=", "NOT") else "",
        )

    def parse_scalar(self) -> Scalar:
        token = self.advance()
        if token.kind == "string":
            return _string_value(token)
        if token.kind == "number":
            return Decimal(token.text)
        if token.word in ("TRUE", "FALSE"):
            return token.word == "TRUE"
        self.fail(token, "a value: 'quoted text', a number, true or false")

    def parse_value_list(self) -> tuple[Scalar, ...]:
        self.expect("(", "( to open the IN list, as in Id IN ('1', '2')")
        values = [self.parse_scalar()]
        while self.accept(","):
            values.append(self.parse_scalar())
        self.expect(")", ") or , in the IN list")
        return tuple(values)

    def parse_pattern(self) -> str:
        token = self.peek()
        if token.kind != "string":
            self.fail(token, "a quoted pattern after LIKE, as in '%Smith%'")
        self.index += 1
        return _string_value(token)

    def parse_order_by(self) -> tuple[OrderBy, ...]:
        if self.peek().word == "ORDER" and self.peek(1).word == "BY":
            self.index += 2
        elif not self.accept("ORDERBY"):
            return ()
        keys = [self.parse_sort_key()]
        while self.accept(","):
            keys.append(self.parse_sort_key())
        return tuple(keys)

    def parse_sort_key(self) -> OrderBy:
        field = self.expect_field("a field name to order by")
        if self.accept("DESC"):
            return OrderBy(field, descending=True)
        self.accept("ASC")
        return OrderBy(field)

    def parse_paging(self, filtered: bool, ordered: bool) -> tuple[int, int]:
        """STARTPOSITION and MAXRESULTS, each at most once, in either order; then the end."""
        given: dict[str, int] = {}
        while (word := self.peek().word) in ("STARTPOSITION", "MAXRESULTS") and word not in given:
            self.index += 1
            given[word] = self.parse_count(word)
        if self.peek().kind != "end":
            if given:
                filtered = ordered = True  # no clause may follow paging
            self.fail(self.peek(), _expected_clauses(filtered, ordered, set(given)))
        start_position = given.get("STARTPOSITION", DEFAULT_START_POSITION)
        return start_position, given.get("MAXRESULTS", DEFAULT_MAX_RESULTS)

    def parse_count(self, keyword: str) -> int:
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit():
            self.fail(token, f"a whole number after {keyword}")
        self.index += 1
        value = int(token.text)
        if value < 1:
            raise QueryValidationError(
                f"{keyword} value {value} is too small. Min allowed value is 1",
                text=self.text,
                offset=token.offset,
            )
        if keyword == "MAXRESULTS" and value > MAX_RESULTS_LIMIT:
            raise QueryValidationError(
                f"MAXRESULTS value {value} is too large. Max allowed value is "
                f"{MAX_RESULTS_LIMIT}; page through larger results with STARTPOSITION",
                text=self.text,
                offset=token.offset,
            )
        return value


def _expected_clauses(filtered: bool, ordered: bool, paging: set[str]) -> str:
    """What may come next, for messages: only the clauses still allowed at this point."""
    options: list[str] = []
    if not ordered:
        options += ["AND", "ORDERBY"] if filtered else ["WHERE", "ORDERBY"]
    options += [word for word in ("STARTPOSITION", "MAXRESULTS") if word not in paging]
    return "one of: " + ", ".join(options + ["the end of the query"])


# --------------------------------------------------------------------------- evaluation


def run_query(
    query: Query, records: Iterable[dict[str, Any]], *, hide_inactive: bool
) -> QueryResult:
    """Filter, order, page and project records as QBO answers the query.

    hide_inactive: the entity is a names list (see NAMES_LIST_ENTITIES); its records with
    Active false are left out unless the query filters on Active.
    """
    skip_inactive = hide_inactive and not filters_on_active(query)
    matched = [
        record
        for record in records
        if not (skip_inactive and record.get("Active") is False)
        and all(_matches(record, condition) for condition in query.conditions)
    ]
    rows: list[dict[str, Any]] = []
    if not query.select_count:
        first = query.start_position - 1
        page = _ordered(matched, query.order_by)[first : first + query.max_results]
        rows = [_project(record, query.fields) for record in page]
    return QueryResult(rows, len(matched), query.start_position, query.max_results)


def _lookup(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, field names matched without case; None when absent."""
    current: Any = record
    for part in path.split("."):
        key = _find_key(current, part) if isinstance(current, dict) else None
        if key is None:
            return None
        current = current[key]
    return current


def _find_key(mapping: dict[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    folded = name.casefold()
    return next((key for key in mapping if key.casefold() == folded), None)


_ORDER_TESTS: dict[str, Callable[[int], bool]] = {
    "=": lambda order: order == 0,
    "<": lambda order: order < 0,
    ">": lambda order: order > 0,
    "<=": lambda order: order <= 0,
    ">=": lambda order: order >= 0,
}


def _matches(record: dict[str, Any], condition: Condition) -> bool:
    stored = _lookup(record, condition.field)
    value = condition.value
    if isinstance(value, tuple):
        return any(_equals(stored, item) for item in value)
    if condition.operator == "LIKE":
        return isinstance(value, str) and _like(stored, value)
    if condition.operator == "=":
        return _equals(stored, value)
    order = None if stored is None else _compare(stored, value)
    return order is not None and _ORDER_TESTS[condition.operator](order)


def _equals(stored: Any, wanted: Scalar) -> bool:
    if wanted == QBO_NULL:
        return stored is None or stored == ""
    return stored is not None and _compare(stored, wanted) == 0


def _like(stored: Any, pattern: str) -> bool:
    if stored is None or isinstance(stored, dict | list):
        return False
    text = str(stored).lower() if isinstance(stored, bool) else str(stored)
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None


def _sign(left: Any, right: Any) -> int:
    return (left > right) - (left < right)


def _compare(stored: Any, wanted: Scalar) -> int | None:
    """Order of stored against wanted (-1, 0, 1), or None when they cannot be compared."""
    if isinstance(stored, bool):
        flag = _as_bool(wanted)
        return None if flag is None else _sign(stored, flag)
    if isinstance(stored, int | float | Decimal):
        number = _as_number(wanted)
        return None if number is None else _sign(Decimal(str(stored)), number)
    if isinstance(stored, str):
        return _compare_text(stored, wanted)
    return None


def _compare_text(stored: str, wanted: Scalar) -> int | None:
    if isinstance(wanted, bool):
        return _sign(stored.casefold(), str(wanted).lower())
    stored_number, wanted_number = _as_number(stored), _as_number(wanted)
    if stored_number is not None and wanted_number is not None:
        return _sign(stored_number, wanted_number)
    if isinstance(wanted, Decimal):
        return None
    stored_time, wanted_time = _as_temporal(stored), _as_temporal(wanted)
    if stored_time is not None and wanted_time is not None:
        return _compare_temporal(stored_time, wanted_time)
    return _sign(stored.casefold(), wanted.casefold())


def _as_bool(value: Scalar) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.casefold() in ("true", "false"):
        return value.casefold() == "true"
    return None


_NUMBER_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def _as_temporal(value: str) -> date | datetime | None:
    if _DATE_TEXT.fullmatch(value):
        return date.fromisoformat(value)
    if _DATE_TIME_TEXT.fullmatch(value):
        return datetime.fromisoformat(value)
    return None


def _compare_temporal(stored: date | datetime, wanted: date | datetime) -> int:
    if isinstance(stored, datetime) and isinstance(wanted, datetime):
        # A wall-clock value without offset is read in the other value's zone.
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=wanted.tzinfo)
        elif wanted.tzinfo is None:
            wanted = wanted.replace(tzinfo=stored.tzinfo)
        return _sign(stored, wanted)
    return _sign(_day(stored), _day(wanted))


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _ordered(records: Sequence[dict[str, Any]], order_by: tuple[OrderBy, ...]) -> list[dict]:
    """Id order first, then each sort key from last to first: stable sorts nest."""
    ordered = sorted(records, key=_sort_key_of("Id"))
    for key in reversed(order_by):
        ordered.sort(key=_sort_key_of(key.field), reverse=key.descending)
    return ordered


def _sort_key_of(field: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda record: _sort_key(_lookup(record, field))


def _sort_key(value: Any) -> tuple[int, Any]:
    """A key that orders any mix of values: absent, booleans, numbers, times, text."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float | Decimal):
        return (2, Decimal(str(value)))
    if not isinstance(value, str):
        return (5, str(value))
    number = _as_number(value)
    if number is not None:
        return (2, number)
    moment = _as_temporal(value)
    if moment is not None:
        return (3, _as_instant(moment))
    return (4, value.casefold())


def _as_instant(moment: date | datetime) -> datetime:
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _project(record: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """The whole record for `*`; else the selected fields, marked sparse as QBO does."""
    if fields is None:
        return copy.deepcopy(record)
    row: dict[str, Any] = {key: record[key] for key in ("Id", "SyncToken") if key in record}
    for path in fields:
        _copy_path(record, path, row)
    row["domain"] = record.get("domain", "QBO")
    row["sparse"] = True
    return copy.deepcopy(row)


def _copy_path(source: dict[str, Any], path: str, target: dict[str, Any]) -> None:
    """Copy the value at a dotted path, keeping the record's own spelling of each name."""
    keys: list[str] = []
    current: Any = source
    for part in path.split("."):
        key = _find_key(current, part) if isinstance(current, dict) else None
        if key is None:
            return  # QBO leaves out properties without a value
        keys.append(key)
        current = current[key]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = current
