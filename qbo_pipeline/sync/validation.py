"""Validate mapped rows with pandera schemas built from the spec's field rules.

Every row either passes or is quarantined with one reason per problem; no row is dropped
silently, and rows are counted one by one (two rows sharing a key are two quarantined rows).
Rows deleted in the source are not validated: they only need to be inactivated or voided,
whatever their fields hold.

A field's `hint` is the fix of the rule it is given for (`hint: {pattern: ...}`), or of every
rule of the field (`hint: ...`): a rule the hint is not for keeps the default fix, which names
the columns to correct.

The same rules guard the way back: `validate_pulled` checks QBO records, projected on the
paths of the fields that pull, before anything is written into the source, so that a value
the source would reject (a required value missing, a name too long) quarantines the record
with its reason instead of half-writing it. A pulled record with no source row yet is keyed
`qbo:<Id>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa

from qbo_pipeline.specs import Direction, EntitySpec, FieldMapping
from qbo_pipeline.specs.models import allowed_characters_pattern
from qbo_pipeline.sync.mapping import (
    CHILD_LINES,
    DELETED,
    ISSUES,
    SOURCE_KEY,
    TAX_LINE,
    RowIssue,
    default_fix,
    row_issue,
)
from qbo_pipeline.sync.reverse import pulled_issue, qbo_field_value, qbo_id_of
from qbo_pipeline.sync.values import (
    describe_character,
    get_path,
    quoted,
    to_decimal,
    unsafe_characters,
    values_equal,
)

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LINE_NUMBER = "line_number"
ROW_POSITION = "row_position"  # a line's parent row, by position in the frame validated
# pandera's name of a check -> the spec's name of the rule (the key a hint is given for)
RULE_OF_CHECK = {"not_nullable": "required"}
QBO_ID = "qbo_id"  # the QBO Id column of a frame of pulled records

IssueOf = Callable[[str, str, str, str, FieldMapping], RowIssue]
"""(record key, rule, field path, problem, mapping) -> the issue, worded for its direction."""


@dataclass(frozen=True)
class QuarantinedRow:
    """A source record held back from the sync, with every reason why."""

    source_key: str
    issues: tuple[RowIssue, ...]

    @property
    def reasons(self) -> list[str]:
        return [issue.reason for issue in self.issues]


@dataclass(frozen=True)
class ValidationResult:
    """The rows that may be synced, and the ones quarantined with their reasons."""

    valid: pd.DataFrame
    quarantined: tuple[QuarantinedRow, ...]

    @property
    def quarantined_keys(self) -> list[str]:
        return [row.source_key for row in self.quarantined]

    def held_by_key(self) -> list[QuarantinedRow]:
        """One entry per quarantined key, with the reasons of all its rows (rows that share a
        key are quarantined together, under that key)."""
        merged: dict[str, list[RowIssue]] = {}
        for row in self.quarantined:
            known = merged.setdefault(row.source_key, [])
            known.extend(i for i in row.issues if i.reason not in {k.reason for k in known})
        return [QuarantinedRow(key, tuple(issues)) for key, issues in merged.items()]

    def quarantine_frame(self) -> pd.DataFrame:
        """One row per problem: source key, field path, reason (for previews and checks)."""
        rows = [(i.source_key, i.field_path, i.reason)
                for row in self.quarantined for i in row.issues]
        return pd.DataFrame(rows, columns=["source_key", "field_path", "reason"])


def _text_check(rule: str, test: Callable[[str], bool]) -> pa.Check:
    return pa.Check(lambda value: test(str(value)), element_wise=True, name=rule)


def _number_check(rule: str, test: Callable[[Any], bool]) -> pa.Check:
    def check(value: Any) -> bool:
        number = to_decimal(value)
        return number is not None and test(number)

    return pa.Check(check, element_wise=True, name=rule)


def _plain_text(value: Any) -> bool:
    return not isinstance(value, str) or not unsafe_characters(value)


def _checks(mapping: FieldMapping) -> list[pa.Check]:
    checks = []
    if mapping.plain_text:
        checks.append(pa.Check(_plain_text, element_wise=True, name="plain_text"))
    if mapping.email:
        checks.append(_text_check("email", lambda text: EMAIL.fullmatch(text) is not None))
    if (low := mapping.min_length) is not None:
        checks.append(_text_check("min_length", lambda text: len(text) >= low))
    if (high := mapping.max_length) is not None:
        checks.append(_text_check("max_length", lambda text: len(text) <= high))
    if (pattern := mapping.pattern) is not None:
        checks.append(_text_check("pattern", lambda text: re.fullmatch(pattern, text) is not None))
    if (characters := mapping.allowed_characters) is not None:
        allowed = allowed_characters_pattern(characters)
        checks.append(_text_check("allowed_characters",
                                  lambda text: re.fullmatch(allowed, text) is not None))
    if (minimum := mapping.min) is not None:
        checks.append(_number_check("min", lambda number: number >= to_decimal(minimum)))
    if (maximum := mapping.max) is not None:
        checks.append(_number_check("max", lambda number: number <= to_decimal(maximum)))
    if (accepted := mapping.allowed_values) is not None:
        checks.append(pa.Check(lambda value: any(values_equal(value, a) for a in accepted),
                               element_wise=True, name="allowed_values"))
    return checks


def _schema(name: str, fields: Mapping[str, FieldMapping]) -> pa.DataFrameSchema:
    columns = {path: pa.Column(None, checks=_checks(mapping), nullable=not mapping.required,
                               required=True)
               for path, mapping in fields.items()}
    return pa.DataFrameSchema(columns, name=name)


def build_schema(spec: EntitySpec) -> pa.DataFrameSchema:
    """The pandera schema of a frame made by `map_frame`: one column per field sent to QBO."""
    return _schema(spec.name, spec.pushed_fields)


def build_pull_schema(spec: EntitySpec) -> pa.DataFrameSchema:
    """The schema of a frame made by `pulled_frame`: one column per field that pulls."""
    return _schema(f"{spec.name} pulled", spec.pulled_fields)


def build_line_schema(spec: EntitySpec) -> pa.DataFrameSchema | None:
    """The schema of the spec's child lines, one row per line; None without lines."""
    if spec.lines is None:
        return None
    return _schema(f"{spec.name} lines", spec.lines.fields)


def _problem(rule: str, mapping: FieldMapping, value: Any) -> str:
    text, shown = str(value), quoted(value)
    problems = {
        "not_nullable": lambda: "is required",
        "email": lambda: f"{shown} is not a valid email address",
        "min_length": lambda: f"{shown} is {len(text)} characters, "
                              f"fewer than the {mapping.min_length} required",
        "max_length": lambda: f"is {len(text)} characters, "
                              f"more than the {mapping.max_length} allowed",
        "pattern": lambda: f"{shown} does not match the pattern {mapping.pattern}",
        "allowed_characters": lambda: f"{shown} contains characters that are not allowed: "
                                      f"{_disallowed(text, mapping)}",
        "plain_text": lambda: f"{shown} holds {_unsafe(text)}, which QuickBooks would store "
                              "but no one can see or type",
        "min": lambda: f"{text} is below the minimum of {mapping.min:g}",
        "max": lambda: f"{text} is above the maximum of {mapping.max:g}",
        "allowed_values": lambda: f"{shown} is not one of "
                                  f"{', '.join(map(str, mapping.allowed_values or []))}",
    }
    return problems[rule]()


def _unsafe(text: str) -> str:
    found = unsafe_characters(text)
    listed = ", ".join(f"{describe_character(c)} at position {position}"
                       for position, c in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f"control or text-direction characters: {listed}{more}"


def _disallowed(text: str, mapping: FieldMapping) -> str:
    allowed = re.compile(allowed_characters_pattern(mapping.allowed_characters or ""))
    return " ".join(quoted(c) for c in dict.fromkeys(text) if not allowed.fullmatch(c))


def _fix(spec: EntitySpec, check: str, mapping: FieldMapping) -> str:
    """The fix of a broken check: the hint given for its rule, else the default. A hint given
    for another rule is not this one's fix (client.yaml's "remove any ':'" is the fix of its
    pattern, not of a missing or too long name)."""
    rule = RULE_OF_CHECK.get(check, check)
    if rule == "required" and not mapping.hint_for(rule) and mapping.source_columns:
        return f"fill in {' / '.join(mapping.source_columns)} on the {spec.record_label}"
    return default_fix(spec, mapping, rule)


def _schema_issues(spec: EntitySpec, schema: pa.DataFrameSchema, frame: pd.DataFrame,
                   fields: Mapping[str, FieldMapping], path_of: Callable[[int, str], str],
                   issue_of: IssueOf | None = None) -> Iterator[tuple[int, RowIssue]]:
    """Run `schema` over `frame` (positional index) and turn each failure into an issue, with
    the position of the failing row in `frame`."""
    issue_of = issue_of or _source_issue_maker(spec)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for failure in errors.failure_cases.to_dict("records"):
            column, rule, position = failure["column"], failure["check"], failure["index"]
            if column not in fields or position is None or pd.isna(position):
                raise ValueError(f"spec {spec.name}: the frame to validate is not shaped as "
                                 f"map_frame makes it ({rule} on {column})") from errors
            mapping = fields[str(column)]
            key = str(frame.at[int(position), SOURCE_KEY])
            problem = _problem(str(rule), mapping, failure["failure_case"])
            yield int(position), issue_of(key, str(rule), path_of(int(position), str(column)),
                                          problem, mapping)


def _source_issue_maker(spec: EntitySpec) -> IssueOf:
    def issue_of(key: str, rule: str, path: str, problem: str,
                 mapping: FieldMapping) -> RowIssue:
        return row_issue(spec, key, path, problem, _fix(spec, rule, mapping))

    return issue_of


def _line_frame(spec: EntitySpec, rows: pd.DataFrame, column: str,
                fields: Mapping[str, FieldMapping]) -> pd.DataFrame:
    records = []
    for row, (key, lines) in enumerate(zip(rows[SOURCE_KEY], rows[column], strict=True)):
        line_list = lines if isinstance(lines, list) else [lines] if lines else []
        for number, line in enumerate(line_list, start=1):
            values = {path: get_path(line, path) for path in fields}
            records.append({SOURCE_KEY: key, ROW_POSITION: row, LINE_NUMBER: number, **values})
    return pd.DataFrame(records, columns=[SOURCE_KEY, ROW_POSITION, LINE_NUMBER, *fields],
                        dtype=object)


def _rule_issues(spec: EntitySpec, rows: pd.DataFrame) -> Iterator[tuple[int, RowIssue]]:
    """Every broken rule of `rows` (positional index), with the position of its row."""
    yield from _schema_issues(spec, build_schema(spec), rows, spec.pushed_fields,
                              lambda _, path: path)
    if spec.lines is None:
        return
    lines = _line_frame(spec, rows, CHILD_LINES, spec.lines.fields)
    numbers: list[int] = lines[LINE_NUMBER].tolist()
    line_schema = build_line_schema(spec)
    assert line_schema is not None
    yield from _of_parent(lines, _schema_issues(
        spec, line_schema, lines, spec.lines.fields,
        lambda position, path: f"Line[{numbers[position]}].{path}"))
    tax = spec.lines.tax_line
    if tax is not None:
        taxes = _line_frame(spec, rows, TAX_LINE, tax.fields)
        yield from _of_parent(taxes, _schema_issues(
            spec, _schema(f"{spec.name} tax line", tax.fields), taxes, tax.fields,
            lambda _, path: f"Line[tax].{path}"))


def _of_parent(lines: pd.DataFrame, issues: Iterator[tuple[int, RowIssue]]
               ) -> Iterator[tuple[int, RowIssue]]:
    """Line issues placed on their parent row."""
    parents: list[int] = lines[ROW_POSITION].tolist()
    for position, issue in issues:
        yield parents[position], issue


def validate_frame(spec: EntitySpec, frame: pd.DataFrame) -> ValidationResult:
    """Split a frame made by `map_frame` into valid rows and quarantined rows with reasons:
    one quarantined row per source row, so that read = valid + quarantined row for row."""
    if frame.empty:  # a run with nothing to do need not build the spec's schemas
        return ValidationResult(frame, ())
    deleted = frame[DELETED].astype(bool).to_numpy()
    active = frame[~deleted].reset_index(drop=True)
    by_row: dict[int, list[RowIssue]] = {}
    for position, issues in enumerate(active[ISSUES]):
        if issues:
            by_row[position] = list(issues)
    unmapped = {(position, i.field_path) for position, issues in by_row.items() for i in issues}
    for position, issue in _rule_issues(spec, active):
        # A field that could not be mapped is empty too: its mapping issue says it all.
        if (position, issue.field_path) not in unmapped:
            by_row.setdefault(position, []).append(issue)
    quarantined = tuple(QuarantinedRow(str(active.at[position, SOURCE_KEY]), tuple(issues))
                        for position, issues in sorted(by_row.items()))
    held = [False] * len(frame)
    active_positions = [position for position, gone in enumerate(deleted) if not gone]
    for position in by_row:
        held[active_positions[position]] = True
    return ValidationResult(frame[~pd.Series(held, index=frame.index, dtype=bool)],
                            quarantined)


def pulled_frame(spec: EntitySpec, records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """QBO records projected on the paths of the fields that pull: one row per record (keyed
    by its record key: the source key, or `qbo:<Id>`), its QBO Id, then one column per field
    holding QBO's value (a reference's or lookup's Id)."""
    pulled = spec.pulled_fields
    rows = [{SOURCE_KEY: key, QBO_ID: qbo_id_of(record),
             **{path: qbo_field_value(mapping, path, record) for path, mapping in pulled.items()}}
            for key, record in records.items()]
    return pd.DataFrame(rows, columns=[SOURCE_KEY, QBO_ID, *pulled])


def validate_pulled(spec: EntitySpec,
                    records: Mapping[str, Mapping[str, Any]]) -> ValidationResult:
    """Split QBO records (record key -> record) into those whose pulled values meet the
    spec's rules and those quarantined, with one reason per broken rule."""
    frame = pulled_frame(spec, records).reset_index(drop=True)
    qbo_ids = dict(zip(frame[SOURCE_KEY], frame[QBO_ID], strict=True))

    def issue_of(key: str, check: str, path: str, problem: str,
                 mapping: FieldMapping) -> RowIssue:
        # A hint is written for whoever fixes the value: for a field that only pulls, that is
        # the bookkeeper in QuickBooks; otherwise the default names the QuickBooks record.
        rule = RULE_OF_CHECK.get(check, check)
        fix = mapping.hint_for(rule) if spec.flow_of(mapping) is Direction.PULL else None
        return pulled_issue(spec, key, qbo_ids[key], path, problem, fix)

    by_key: dict[str, list[RowIssue]] = {}
    for _, issue in _schema_issues(spec, build_pull_schema(spec), frame, spec.pulled_fields,
                                   lambda _, path: path, issue_of):
        by_key.setdefault(issue.source_key, []).append(issue)
    quarantined = tuple(QuarantinedRow(key, tuple(issues)) for key, issues in by_key.items())
    return ValidationResult(frame[~frame[SOURCE_KEY].isin(list(by_key))], quarantined)
