"""The emulator's QBO query language, checked against Intuit's documented behaviour.

"Query docs" below is Intuit's Accounting API page "Query operations and syntax"; "Deep
dive" is Intuit's developer blog post "Deep dive into QuickBooks Online data queries".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from qbo_pipeline.emulator.accounting.query import (
    DEFAULT_MAX_RESULTS,
    NAMES_LIST_ENTITIES,
    Condition,
    OrderBy,
    QuerySyntaxError,
    QueryValidationError,
    filters_on_active,
    parse_query,
    run_query,
)

ENTITIES = ("Customer", "Invoice", "Item", "TimeActivity")


def customer(record_id: int, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "Id": str(record_id),
        "SyncToken": "0",
        "DisplayName": name,
        "Active": True,
        "MetaData": {
            "CreateTime": "2026-01-01T09:00:00-08:00",
            "LastUpdatedTime": "2026-01-01T09:00:00-08:00",
        },
        **fields,
    }


CUSTOMERS = [
    customer(1, "Amy's Bird Sanctuary", Balance=239, CompanyName="Amy's"),
    customer(2, "Bill's Windsurf Shop", Balance=85.5, CompanyName="Bill's"),
    customer(10, "Cool Cars", Balance=0, CompanyName="Cool Cars"),
    customer(3, "Diego Rodriguez", Balance=1000, PrimaryEmailAddr={"Address": "diego@ex.com"}),
    customer(4, "Dukes Basketball Camp", Balance=85.5, CompanyName="Dukes"),
    customer(5, "Old Client", Balance=0, Active=False),
]


def ids(text: str, records: list[dict[str, Any]] = CUSTOMERS, hide: bool = True) -> list[str]:
    result = run_query(parse_query(text, ENTITIES), records, hide_inactive=hide)
    return [row["Id"] for row in result.rows]


def syntax_error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text, ENTITIES)
    return caught.value


# ----------------------------------------------------------------------------- parsing


def test_select_star_takes_documented_defaults() -> None:
    """Query docs: STARTPOSITION starts at 1; without MAXRESULTS a response holds 100."""
    query = parse_query("SELECT * FROM Customer", ENTITIES)
    assert (query.entity, query.select_count, query.fields) == ("Customer", False, None)
    assert (query.start_position, query.max_results) == (1, DEFAULT_MAX_RESULTS)
    assert (query.conditions, query.order_by) == ((), ())


def test_keywords_entity_and_field_names_ignore_case() -> None:
    """QBO accepts `select * from customer`: keywords and names in any case (brief)."""
    query = parse_query(
        "select * from cUsToMeR where displayname = 'Cool Cars' orderby balance desc", ENTITIES
    )
    assert query.entity == "Customer"
    assert query.conditions == (Condition("displayname", "=", "Cool Cars"),)
    assert query.order_by == (OrderBy("balance", descending=True),)
    assert ids("select * from customer where displayname = 'Cool Cars'") == ["10"]


def test_order_by_written_as_one_word_or_two_parses_the_same() -> None:
    """Query docs show ORDERBY; QBO's parser also accepts ORDER BY."""
    one_word = parse_query("SELECT * FROM Customer ORDERBY DisplayName", ENTITIES)
    two_words = parse_query("SELECT * FROM Customer ORDER BY DisplayName", ENTITIES)
    assert one_word == two_words
    assert one_word.order_by == (OrderBy("DisplayName"),)


def test_paging_clauses_may_come_in_either_order() -> None:
    """QBO's parser expects STARTPOSITION or MAXRESULTS after the WHERE clause, either first."""
    first = parse_query("SELECT * FROM Item STARTPOSITION 5 MAXRESULTS 7", ENTITIES)
    second = parse_query("SELECT * FROM Item MAXRESULTS 7 STARTPOSITION 5", ENTITIES)
    assert first == second
    assert (first.start_position, first.max_results) == (5, 7)


def test_in_list_and_scalar_kinds_are_parsed() -> None:
    """Query docs: values are (Value [,Value]), 'value_in_quote', value_without_quote, true,
    false."""
    query = parse_query(
        "SELECT * FROM Customer WHERE Id IN ('1', '2') AND Balance >= 85.5 AND Active = false",
        ENTITIES,
    )
    assert [condition.value for condition in query.conditions] == [
        ("1", "2"),
        Decimal("85.5"),
        False,
    ]


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Balance = 85.5", ["2", "4"]),
        ("Balance < 85.5", ["10"]),
        ("Balance > 85.5", ["1", "3"]),
        ("Balance <= 85.5", ["2", "4", "10"]),
        ("Balance >= 239", ["1", "3"]),
        ("Balance > '200'", ["1", "3"]),
    ],
)
def test_comparison_operators_on_numbers(condition: str, expected: list[str]) -> None:
    """Query docs: operators =, <, >, <=, >=; numeric fields compare as numbers, also when
    the value is quoted (Intuit's own example: `Balance > '0'`)."""
    assert ids(f"SELECT * FROM Customer WHERE {condition}") == expected


def test_numeric_strings_compare_as_numbers() -> None:
    """QBO Ids are numeric strings: Id > '9' must find Id '10', not only '9' and above
    as text."""
    assert ids("SELECT * FROM Customer WHERE Id > '3'") == ["4", "10"]


def test_string_equality_and_ordering_ignore_case() -> None:
    """QBO matches names regardless of case (its duplicate-name rule does too)."""
    assert ids("SELECT * FROM Customer WHERE DisplayName = 'COOL CARS'") == ["10"]
    assert ids("SELECT * FROM Customer WHERE DisplayName < 'c'") == ["1", "2"]


def test_in_list_matches_any_listed_value() -> None:
    """Query docs: IN takes a parenthesised list, as in `Id IN ('1', '2')`."""
    assert ids("SELECT * FROM Customer WHERE Id IN ('4', '1', '99')") == ["1", "4"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("'Cool%'", ["10"]),
        ("'%Shop'", ["2"]),
        ("'%bird%'", ["1"]),
        ("'%'", ["1", "2", "3", "4", "10"]),
        ("'Cool Cars'", ["10"]),
        ("'Cool'", []),
    ],
)
def test_like_with_percent_wildcards(pattern: str, expected: list[str]) -> None:
    """Query docs: LIKE wildcards are limited to % (zero or more characters), at the start,
    the end or both; without % the whole value must match."""
    assert ids(f"SELECT * FROM Customer WHERE DisplayName LIKE {pattern}") == expected


def test_like_treats_underscore_as_a_plain_character() -> None:
    """Query docs: % is the only wildcard, so _ matches only itself."""
    records = [customer(1, "A_B"), customer(2, "AxB")]
    assert ids("SELECT * FROM Customer WHERE DisplayName LIKE 'A_B'", records) == ["1"]


def test_escaped_quote_inside_a_string() -> None:
    """Deep dive: use a backslash to escape an apostrophe, as in 'Amy\\'s Bird Sanctuary'."""
    query = parse_query(
        r"SELECT * FROM Customer WHERE DisplayName = 'Amy\'s Bird Sanctuary'", ENTITIES
    )
    assert query.conditions[0].value == "Amy's Bird Sanctuary"
    assert ids(r"SELECT * FROM Customer WHERE DisplayName LIKE 'Bill\'s%'") == ["2"]


def test_nested_fields_use_dots() -> None:
    """Query docs and Intuit examples filter on dotted properties such as
    MetaData.LastUpdatedTime and PrimaryEmailAddr.Address."""
    text = "SELECT * FROM Customer WHERE PrimaryEmailAddr.Address = 'diego@ex.com'"
    assert ids(text) == ["3"]
    assert ids("SELECT * FROM Customer WHERE primaryemailaddr.address LIKE '%@ex.com'") == ["3"]


def test_booleans_compare_with_true_and_false() -> None:
    """Query docs: true and false are values without quotes (`Active = true`)."""
    records = [customer(1, "A", Taxable=True), customer(2, "B", Taxable=False)]
    assert ids("SELECT * FROM Customer WHERE Taxable = true", records) == ["1"]
    assert ids("SELECT * FROM Customer WHERE Taxable = false", records) == ["2"]


def test_a_single_space_stands_for_null() -> None:
    """Query docs: null is represented as the string ' ' (a space within single quotes)."""
    records = [customer(1, "A", Notes="call first"), customer(2, "B")]
    assert ids("SELECT * FROM Customer WHERE Notes = ' '", records) == ["2"]


def test_absent_or_incomparable_fields_match_nothing() -> None:
    """QBO returns only the properties with values; a filter on a missing one finds nothing."""
    assert ids("SELECT * FROM Customer WHERE Nickname = 'x'") == []
    assert ids("SELECT * FROM Customer WHERE Balance > 'lots'") == []
    assert ids("SELECT * FROM Customer WHERE MetaData > '1'") == []


# ----------------------------------------------------------------------------- dates


def stamped(record_id: int, updated: str) -> dict[str, Any]:
    record = customer(record_id, f"C{record_id}")
    record["MetaData"] = {"CreateTime": updated, "LastUpdatedTime": updated}
    return record


# 18:00 UTC, 13:00 UTC and 08:30 UTC on 2026-11-01, written in three zones.
STAMPED = [
    stamped(1, "2026-11-01T10:00:00-08:00"),
    stamped(2, "2026-11-01T13:00:00Z"),
    stamped(3, "2026-11-01T10:30:00+02:00"),
]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("> '2026-11-01T17:00:00Z'", ["1"]),
        ("= '2026-11-01T13:00:00-05:00'", ["1"]),
        ("< '2026-11-01T06:00:00-08:00'", ["2", "3"]),
        (">= '2026-11-01T13:00:00+00:00'", ["1", "2"]),
        ("<= '2026-11-01T10:30:00+0200'", ["3"]),
    ],
)
def test_date_times_compare_as_instants_across_zones(condition: str, expected: list[str]) -> None:
    """Query docs' example filters `MetaData.LastUpdatedTime > '2011-08-10T10:20:30-0700'`:
    an offset-qualified time is an instant, whatever zone each side is written in."""
    assert ids(f"SELECT * FROM Customer WHERE MetaData.LastUpdatedTime {condition}", STAMPED) == (
        expected
    )


def test_date_time_without_offset_reads_as_the_other_sides_wall_clock() -> None:
    """Intuit examples also filter with `'2024-06-01T00:00:00'` (no offset); the emulator
    reads such a time in the zone of the value it is compared with."""
    text = "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime = '2026-11-01T10:00:00'"
    assert ids(text, STAMPED) == ["1"]
    wall_clock = [stamped(1, "2026-11-01T10:00:00"), stamped(2, "2026-11-01T11:00:00")]
    text = "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2026-11-01T10:30:00-08:00'"
    assert ids(text, wall_clock) == ["2"]


def test_date_only_values_compare_by_calendar_day() -> None:
    """Intuit examples filter `TxnDate >= '2024-01-01'`: a date compares by day, and against
    a date-time by that value's own local day."""
    invoices = [
        {"Id": "1", "TxnDate": "2026-10-31"},
        {"Id": "2", "TxnDate": "2026-11-01"},
        {"Id": "3", "TxnDate": "2026-11-02"},
    ]
    assert ids("SELECT * FROM Invoice WHERE TxnDate >= '2026-11-01'", invoices, False) == ["2", "3"]
    assert ids("SELECT * FROM Invoice WHERE TxnDate = '2026-11-01'", invoices, False) == ["2"]
    late_evening = [
        stamped(1, "2026-10-31T23:30:00-08:00"),
        stamped(2, "2026-11-01T00:10:00-08:00"),
    ]
    text = "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime >= '2026-11-01'"
    assert ids(text, late_evening) == ["2"]


# ----------------------------------------------------------------------------- ordering


def test_default_order_is_by_id_as_a_number() -> None:
    """Without ORDERBY the emulator answers in Id order; Ids are numbers held as strings."""
    assert ids("SELECT * FROM Customer") == ["1", "2", "3", "4", "10"]


def test_order_by_ascending_and_descending() -> None:
    """Query docs: OrderByClause = PropertyName [DESC | ASC]; ascending by default."""
    assert ids("SELECT * FROM Customer ORDERBY DisplayName") == ["1", "2", "10", "3", "4"]
    assert ids("SELECT * FROM Customer ORDERBY DisplayName ASC") == ["1", "2", "10", "3", "4"]
    assert ids("SELECT * FROM Customer ORDERBY DisplayName DESC") == ["4", "3", "10", "2", "1"]


def test_order_by_several_keys_with_mixed_directions() -> None:
    """Query docs: the ORDERBY clause takes a comma-separated list of properties."""
    text = "SELECT * FROM Customer ORDER BY Balance DESC, DisplayName DESC"
    assert ids(text) == ["3", "1", "4", "2", "10"]


def test_order_by_date_time_orders_by_instant_and_ties_keep_id_order() -> None:
    """QBO sorts MetaData.LastUpdatedTime by time, not by its text in various zones."""
    records = [*STAMPED, stamped(4, "2026-11-01T05:00:00-08:00")]
    assert ids("SELECT * FROM Customer ORDERBY MetaData.LastUpdatedTime", records) == [
        "3",
        "2",
        "4",
        "1",
    ]


def test_records_without_the_sort_field_come_first_ascending() -> None:
    """QBO leaves out properties without values; the emulator sorts them as lowest."""
    assert ids("SELECT * FROM Customer ORDERBY CompanyName")[0] == "3"
    assert ids("SELECT * FROM Customer ORDERBY CompanyName DESC")[-1] == "3"


# ----------------------------------------------------------------------------- paging


def numbered(count: int) -> list[dict[str, Any]]:
    return [customer(number, f"Customer {number}") for number in range(1, count + 1)]


def test_startposition_is_one_based_and_maxresults_sizes_the_page() -> None:
    """Query docs: STARTPOSITION is the 1-based position of the first entity returned and
    MAXRESULTS the most entities in the response."""
    result = run_query(
        parse_query("SELECT * FROM Customer STARTPOSITION 3 MAXRESULTS 2", ENTITIES),
        numbered(6),
        hide_inactive=True,
    )
    assert [row["Id"] for row in result.rows] == ["3", "4"]
    assert (result.start_position, result.max_results, result.total_count) == (3, 2, 6)


def test_a_page_past_the_end_is_empty() -> None:
    """QBO answers an empty QueryResponse when STARTPOSITION is beyond the last match."""
    assert ids("SELECT * FROM Customer STARTPOSITION 7", numbered(6)) == []


def test_default_page_holds_100_records() -> None:
    """Query docs: if MAXRESULTS is not given the response holds at most 100 entities."""
    assert len(ids("SELECT * FROM Customer", numbered(150))) == 100
    assert ids("SELECT * FROM Customer STARTPOSITION 101", numbered(150))[0] == "101"


def test_maxresults_up_to_1000_is_accepted() -> None:
    """Query docs: the maximum number of entities in one response is 1000."""
    assert parse_query("SELECT * FROM Customer MAXRESULTS 1000", ENTITIES).max_results == 1000


def test_maxresults_over_1000_is_an_invalid_query() -> None:
    """QBO answers `QueryValidationError: value 1500 is too large. Max allowed value is 1000`
    (fault 4001, "Invalid query")."""
    error = syntax_error("SELECT * FROM Customer MAXRESULTS 1500")
    assert isinstance(error, QueryValidationError)
    assert (error.code, error.message) == ("4001", "Invalid query")
    assert "1500 is too large" in str(error) and "1000" in str(error)
    assert error.column == len("SELECT * FROM Customer MAXRESULTS ") + 1


def test_startposition_below_one_is_an_invalid_query() -> None:
    """Query docs: positions start at 1, so 0 names no entity."""
    error = syntax_error("SELECT * FROM Customer STARTPOSITION 0")
    assert isinstance(error, QueryValidationError)
    assert "STARTPOSITION value 0" in str(error)


# ----------------------------------------------------------------------------- count, fields


def test_count_returns_the_number_of_matches_and_no_rows() -> None:
    """Query docs: count(*) returns the number of records that satisfy the query criteria."""
    query = parse_query("SELECT COUNT(*) FROM Customer WHERE Balance > 0 MAXRESULTS 1", ENTITIES)
    assert query.select_count
    result = run_query(query, CUSTOMERS, hide_inactive=True)
    assert (result.total_count, result.rows) == (4, [])


def test_selected_fields_come_back_sparse_with_id_and_sync_token() -> None:
    """QBO answers `SELECT Id, DisplayName FROM Customer` with objects holding the chosen
    properties plus Id, SyncToken, domain and sparse=true."""
    text = "SELECT displayname, PrimaryEmailAddr.Address, Nickname FROM Customer WHERE Id = '3'"
    rows = run_query(parse_query(text, ENTITIES), CUSTOMERS, hide_inactive=True).rows
    assert rows == [
        {
            "Id": "3",
            "SyncToken": "0",
            "DisplayName": "Diego Rodriguez",
            "PrimaryEmailAddr": {"Address": "diego@ex.com"},
            "domain": "QBO",
            "sparse": True,
        }
    ]


def test_select_star_returns_whole_records_as_copies() -> None:
    """QBO answers `SELECT *` with every property; the emulator's store must not change
    when a caller edits an answer."""
    rows = run_query(
        parse_query("SELECT * FROM Customer WHERE Id = '3'", ENTITIES),
        CUSTOMERS,
        hide_inactive=True,
    ).rows
    assert rows == [CUSTOMERS[3]]
    rows[0]["PrimaryEmailAddr"]["Address"] = "changed@ex.com"
    assert CUSTOMERS[3]["PrimaryEmailAddr"] == {"Address": "diego@ex.com"}


# ----------------------------------------------------------------------------- inactive


def test_names_lists_hide_inactive_records_by_default() -> None:
    """Deep dive: `SELECT * FROM Customer` retrieves all *active* customers."""
    assert "Customer" in NAMES_LIST_ENTITIES and "Invoice" not in NAMES_LIST_ENTITIES
    assert "5" not in ids("SELECT * FROM Customer")
    assert "5" in ids("SELECT * FROM Customer", hide=False)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Active = false", ["5"]),
        ("Active IN (true, false)", ["1", "2", "3", "4", "5", "10"]),
        ("active = true", ["1", "2", "3", "4", "10"]),
    ],
)
def test_filtering_on_active_reveals_inactive_records(condition: str, expected: list[str]) -> None:
    """QBO returns inactive names-list records only when the query filters on Active, e.g.
    `WHERE Active = false` or `WHERE Active IN (true, false)`."""
    query = parse_query(f"SELECT * FROM Customer WHERE {condition}", ENTITIES)
    assert filters_on_active(query)
    assert ids(f"SELECT * FROM Customer WHERE {condition}") == expected


def test_filters_on_active_is_false_for_other_fields() -> None:
    """Only a filter on Active itself lifts QBO's inactive filter."""
    assert not filters_on_active(parse_query("SELECT * FROM Customer WHERE Id = '5'", ENTITIES))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "says", "column"),
    [
        ("SELECT * FROM Customer WHERE Id = '1' OR Id = '2'", "QBO does not support OR", 39),
        ("SELECT * Customer", 'Encountered "Customer", expected FROM', 10),
        ("SELECT * FROM Customer WHERE DisplayName = 'Cool", "unterminated string", 44),
        ("SELECT * FROM Customer WHERE Id != '1'", "no not-equal", 33),
        ('SELECT * FROM Customer WHERE Id = "1"', "straight single quotes", 35),
        ("SELECT * FROM Customer, Invoice", "one entity at a time", 23),
        ("SELECT count(Id) FROM Customer", "* inside count(*)", 14),
        ("SELECT * FROM Customer WHERE DisplayName LIKE Cool", "quoted pattern", 47),
        ("SELECT * FROM Customer WHERE Active = yes", "true or false", 39),
        ("SELECT * FROM Customer ORDERBY", "a field name to order by", 31),
        ("SELECT * FROM Customer GROUP BY Id", "expected one of: WHERE, ORDERBY", 24),
        ("", "expected SELECT", 1),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, says: str, column: int) -> None:
    """QBO answers fault 4000 "Error parsing query" with a Detail that names the token met
    and its position (`QueryParserError: Encountered ... at line 1, column 52`)."""
    error = syntax_error(text)
    assert not isinstance(error, QueryValidationError)
    assert (error.code, error.message) == ("4000", "Error parsing query")
    assert says in str(error)
    assert (error.line, error.column) == (1, column)
    assert str(error).startswith("QueryParserError: ")


def test_unknown_entity_is_a_validation_error_that_lists_the_queryable_ones() -> None:
    """QBO parses the name and then finds no such entity: 4001 "Invalid query" with
    "QueryValidationError: Metadata not found for Entity: TaxService" (quickbooks-ruby issue
    628); the emulator adds which entities it serves."""
    error = syntax_error("SELECT * FROM Custmer")
    assert isinstance(error, QueryValidationError)
    assert (error.code, error.message) == ("4001", "Invalid query")
    assert str(error).startswith("QueryValidationError: Metadata not found for Entity: Custmer")
    assert (error.line, error.column) == (1, 15)
    assert "Customer, Invoice, Item, TimeActivity" in str(syntax_error("SELECT * FROM Bill"))


def test_error_position_counts_lines() -> None:
    """QBO reports parse errors by line and column; queries may span lines."""
    error = syntax_error("SELECT *\nFROM Customer\nWHERE Id = '1' OR Id = '2'")
    assert (error.line, error.column) == (3, 16)
