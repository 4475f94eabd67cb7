"""Source row -> QBO-shaped payload, as a spec's field mappings say.

Only the fields that flow to QBO (push and two-way) are mapped: a pull-only field is never
sent, so it is not in the payload, the mapped frame or the push validation. The way back,
QBO record -> source columns, is `reverse.py`.

A value that cannot be produced (an unresolved reference, a missing lookup, a value of the
wrong type, bytes that are not UTF-8, NaN) is a `RowIssue` of that row, never an exception: the
other rows go on. `map_frame` also checks what the sync relies on besides the fields (the key,
the change stamp, the soft-delete flag, one row per key: `source_rows.py`).
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import pandas as pd

from qbo_pipeline.specs import (
    Direction,
    EntitySpec,
    FieldMapping,
    LookupTarget,
    MappingKind,
    RefTarget,
    SettingValue,
    ValueType,
)
from qbo_pipeline.specs.checks import LINES_FIELD
from qbo_pipeline.sync.issues import RowIssue, row_issue
from qbo_pipeline.sync.lines import grouped_lines
from qbo_pipeline.sync.source_rows import duplicate_key_issues, source_row_issues
from qbo_pipeline.sync.values import (
    coerce,
    deleted_mark,
    describe_character,
    get_path,
    is_missing,
    quoted,
    read_source_value,
    set_path,
    source_key_of,
    to_decimal,
    to_json_value,
    unsafe_characters,
)

ResolveRef = Callable[[str, str], str | None]
"""(spec name, source key) -> the QBO Id linked to that record, or None."""


@dataclass(frozen=True)
class NotCreated:
    """A looked-up record QBO lacks and the sync could not create on the fly: why not."""

    problem: str
    fix: str


ResolveLookup = Callable[[str, str, str], "str | NotCreated | None"]
"""(QBO entity, QBO field, value) -> the Id of the QBO record with that value, or None, or
why the record the lookup creates on the fly could not be made."""

# Columns of a mapped frame besides one column per mapped QBO field path. QBO field names
# are PascalCase, so these lower-case names cannot collide with them.
SOURCE_KEY = "source_key"
UPDATED_AT = "updated_at"
BUSINESS_DATE = "business_date"
DELETED = "deleted"
PAYLOAD = "payload"
CHILD_LINES = "child_lines"
TAX_LINE = "tax_line"
ISSUES = "issues"
META_COLUMNS = (SOURCE_KEY, UPDATED_AT, BUSINESS_DATE, DELETED, PAYLOAD, CHILD_LINES, TAX_LINE,
                ISSUES)


def resolve_nothing(*_: str) -> None:
    """A resolver for specs without references: nothing is linked."""
    return None


def default_fix(spec: EntitySpec, mapping: FieldMapping, rule: str = "type") -> str:
    """What to change when a field breaks `rule`: the spec's hint for that rule, or the
    columns it reads (`type`: its value could not be read or converted)."""
    if hint := mapping.hint_for(rule):
        return hint
    columns = mapping.source_columns
    if not columns:
        return "correct the mapping spec"
    return f"correct {' / '.join(columns)} on the {spec.record_label}"


@dataclass(frozen=True)
class MappedRow:
    """The payload of one source row, and the issues that keep it from being synced."""

    source_key: str
    payload: dict[str, Any]
    child_lines: tuple[dict[str, Any], ...] = ()
    tax_line: dict[str, Any] | None = None
    issues: tuple[RowIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues


def capitalized(spec: EntitySpec, mapping: FieldMapping, value: Any) -> bool:
    """Whether a record's value goes to QBO in capital letters: the spec's `uppercase` is on
    (as the company has it), the field only pushes (a capitalized value read back would
    change the source) and is text that is not an e-mail address."""
    return (spec.uppercase is True and isinstance(value, str) and not mapping.email
            and spec.flow_of(mapping) is Direction.PUSH)


class _FieldProblem(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass
class _RowMapper:
    spec: EntitySpec
    source_key: str
    resolve_ref: ResolveRef
    resolve_lookup: ResolveLookup | None
    issues: list[RowIssue] = field(default_factory=list)

    def map_fields(self, fields: Mapping[str, FieldMapping], row: Mapping[str, Any],
                   prefix: str = "") -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for path, mapping in fields.items():
            try:
                value = self.evaluate(mapping, row)
            except _FieldProblem as problem:
                self.issues.append(row_issue(self.spec, self.source_key, prefix + path,
                                             problem.problem, problem.fix))
                continue
            if value is not None:
                if not prefix and capitalized(self.spec, mapping, value):
                    value = value.upper()
                set_path(payload, path, value)
        return payload

    def evaluate(self, mapping: FieldMapping, row: Mapping[str, Any]) -> Any:
        kind = mapping.kind
        if kind is MappingKind.CONSTANT:
            return copy.deepcopy(mapping.constant)
        if kind is MappingKind.REF:
            assert mapping.ref is not None
            return self._resolve_ref(mapping.ref, row)
        if kind is MappingKind.LOOKUP:
            assert mapping.lookup is not None
            return self._resolve_lookup(mapping, mapping.lookup, row)
        if kind is MappingKind.TEMPLATE:
            assert mapping.template is not None
            raw = _render(mapping, row, self.spec)
        else:
            assert mapping.column is not None
            raw = _column(row, mapping.column)
        try:
            return coerce(raw, mapping.type)
        except ValueError as error:
            raise _FieldProblem(f"is wrong: {error}", default_fix(self.spec, mapping)) from None

    def _resolve_ref(self, target: RefTarget,
                     row: Mapping[str, Any]) -> dict[str, str] | str | None:
        raw = self._read(row, target.column)
        if is_missing(raw):
            return None
        key = source_key_of(raw)
        qbo_id = self.resolve_ref(target.spec, key)
        if qbo_id is None:
            other = target.spec.replace("_", " ")
            raise _FieldProblem(f"refers to {other} {key}, which is not in QuickBooks yet",
                                f"sync {other} {key} first (check its quarantined problems)")
        if target.id_only:
            return qbo_id
        return {"value": qbo_id} if target.type is None else {"value": qbo_id,
                                                              "type": target.type}

    def _resolve_lookup(self, mapping: FieldMapping, target: LookupTarget,
                        row: Mapping[str, Any]) -> dict[str, str] | None:
        raw = target.value if target.column is None else self._read(row, target.column)
        value = to_json_value(raw)
        if value is None:
            value = lookup_default(target)
        if value is None:
            return None
        if mapping.plain_text and (found_unsafe := unsafe_characters(str(value))):
            # No QuickBooks name a person typed holds these: do not even ask QBO for it.
            position, character = found_unsafe[0]
            raise _FieldProblem(f"looks up {quoted(value)}, which holds "
                                f"{describe_character(character)} at position {position}",
                                default_fix(self.spec, mapping, "plain_text"))
        found = self.resolve_lookup(target.qbo_entity, target.by, str(value)) \
            if self.resolve_lookup is not None else None
        if isinstance(found, NotCreated):
            raise _FieldProblem(found.problem, found.fix)
        if found is None:
            raise _FieldProblem(
                f"needs a QuickBooks {target.qbo_entity} with {target.by} {quoted(value)}, "
                "and there is none", f"create it in QuickBooks {self._change(target, row)}")
        return {"value": found}

    def _change(self, target: LookupTarget, row: Mapping[str, Any]) -> str:
        """What else fixes a lookup that found nothing: the value's column, the setting its
        default comes from, or the spec."""
        if target.column is None:
            return "or change the lookup in the mapping spec"
        if target.default_setting is not None and is_missing(row.get(target.column)):
            return (f"or set {target.column} on the {self.spec.record_label}, or change the "
                    f"company setting {target.default_setting} (`qbo-pipeline settings set "
                    f"{target.default_setting} NAME`)")
        return f"or change {target.column} on the {self.spec.record_label}"

    def _read(self, row: Mapping[str, Any], column: str) -> Any:
        """A column's value as the sync uses it (bytes decoded, NaN refused)."""
        try:
            return read_source_value(_column(row, column))
        except ValueError as error:
            raise _FieldProblem(f"is wrong: {error}",
                                f"correct {column} on the {self.spec.record_label}") from None


def lookup_default(target: LookupTarget) -> str | None:
    """What a lookup looks for when its column is empty: its default, as the company has it
    (`sync.settings.for_company` fills in a setting's value)."""
    default = target.default
    if isinstance(default, SettingValue):
        assert default.value is not None, "map a spec resolved by settings.for_company"
        return default.value or None  # an optional setting left empty names no record
    return default


def _column(row: Mapping[str, Any], column: str) -> Any:
    if column not in row:
        raise _FieldProblem(f"reads column '{column}', which the source rows do not have",
                            "fix the mapping spec or the source query")
    return row[column]


class _TemplateFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        # Fractional numbers become exact decimals without trailing zeros, so that
        # "{rate:%}" of 0.0850 reads 8.5% and "{hours}" of 7.50 reads 7.5.
        if isinstance(value, (float, Decimal)):
            value = to_decimal(value)
        return super().format_field(value, format_spec)


def _render(mapping: FieldMapping, row: Mapping[str, Any], spec: EntitySpec) -> str | None:
    # A template a setting chooses is resolved per company first (`settings.for_company`).
    assert isinstance(mapping.template, str), "map a spec resolved by settings.for_company"
    template = mapping.template
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    several = len(set(names)) > 1
    values = {name: _template_value(mapping, row, spec, name, several) for name in names}
    if any(is_missing(value) for value in values.values()):
        return None
    try:
        return _TemplateFormatter().vformat(template, (), values)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        raise _FieldProblem(f"cannot be built from template {template!r}: {error}",
                            default_fix(spec, mapping)) from None


def _template_value(mapping: FieldMapping, row: Mapping[str, Any], spec: EntitySpec,
                    column: str, several: bool) -> Any:
    try:
        return read_source_value(_column(row, column))
    except ValueError as error:
        # Several columns make the text: the reason says which one is wrong.
        which = f"{column}: " if several else ""
        raise _FieldProblem(f"is wrong: {which}{error}", default_fix(spec, mapping)) from None


def map_row(spec: EntitySpec, row: Mapping[str, Any], children: Sequence[Mapping[str, Any]] = (),
            resolve_ref: ResolveRef = resolve_nothing,
            resolve_lookup: ResolveLookup | None = None) -> MappedRow:
    """Map one source row (and its child line rows) to a QBO payload with nested fields."""
    source_key = source_key_of(row[spec.source.primary_key])
    mapper = _RowMapper(spec, source_key, resolve_ref, resolve_lookup)
    payload = mapper.map_fields(spec.pushed_fields, row)
    child_lines: list[dict[str, Any]] = []
    tax_line = None
    if spec.lines is not None:
        ordered = _in_line_order(spec, children)
        for number, child in enumerate(ordered, start=1):
            child_lines.append(mapper.map_fields(spec.lines.fields, child, f"Line[{number}]."))
        tax_line = _tax_line(spec, row, mapper)
        if not child_lines:
            mapper.issues.append(row_issue(spec, source_key, LINES_FIELD, "has no lines",
                                           f"add at least one line to the {spec.record_label}"))
        sent = child_lines if spec.lines.group is None else _grouped(
            spec, source_key, ordered, resolve_ref, resolve_lookup)
        payload[LINES_FIELD] = sent + ([tax_line] if tax_line else [])
    return MappedRow(source_key, payload, tuple(child_lines), tax_line, tuple(mapper.issues))


def _grouped(spec: EntitySpec, source_key: str, ordered: Sequence[Mapping[str, Any]],
             resolve_ref: ResolveRef, resolve_lookup: ResolveLookup | None
             ) -> list[dict[str, Any]]:
    """The lines QBO gets when the spec groups them (seed 002's aggregated items). Each
    source line was mapped and checked on its own (its rules name the line as the source
    has it); the combined lines hold the same values, so their mapping finds nothing new."""
    assert spec.lines is not None and spec.lines.group is not None
    combiner = _RowMapper(spec, source_key, resolve_ref, resolve_lookup)
    return [combiner.map_fields(spec.lines.fields, combined, f"Line[{number}].")
            for number, combined in enumerate(grouped_lines(spec.lines.group, ordered),
                                              start=1)]


def _in_line_order(spec: EntitySpec,
                   children: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    assert spec.lines is not None
    order_by = spec.lines.order_by

    def position(child: Mapping[str, Any]) -> tuple[bool, Decimal, str]:
        value = child.get(order_by)
        number = to_decimal(value)
        return (number is None, number or Decimal(0), str(value))

    return sorted(children, key=position)


def _tax_line(spec: EntitySpec, row: Mapping[str, Any],
              mapper: _RowMapper) -> dict[str, Any] | None:
    assert spec.lines is not None
    tax = spec.lines.tax_line
    if tax is None:
        return None
    try:
        amount = coerce(row.get(tax.amount_column), ValueType.NUMBER)
    except ValueError as error:
        # Not "no tax": an amount that cannot be read must not leave the tax off the invoice.
        mapper.issues.append(row_issue(spec, mapper.source_key, f"{LINES_FIELD}[tax].Amount",
                                       f"is wrong: {error}", f"correct {tax.amount_column} on "
                                       f"the {spec.record_label}"))
        return None
    if amount is None or amount == 0:
        return None
    line = {"Amount": amount}
    line.update(mapper.map_fields(tax.fields, row, "Line[tax]."))
    return line


def mapped_columns(spec: EntitySpec) -> list[str]:
    """The columns of a frame made by `map_frame`: bookkeeping columns, then the paths of
    the fields sent to QBO."""
    return [*META_COLUMNS, *spec.pushed_fields]


def is_deleted(spec: EntitySpec, row: Mapping[str, Any]) -> bool:
    """True when the spec's soft-delete column is set (a timestamp, or a true flag). A value
    that is neither is no delete: `source_rows` quarantines the row with the reason."""
    column = spec.source.deleted
    if column is None:
        return False
    try:
        return deleted_mark(row.get(column))
    except ValueError:
        return False


def map_frame(spec: EntitySpec, frame: pd.DataFrame, children: pd.DataFrame | None = None,
              resolve_ref: ResolveRef = resolve_nothing,
              resolve_lookup: ResolveLookup | None = None) -> pd.DataFrame:
    """Map a frame of source rows; one output row per input row, in `mapped_columns` order.

    Deleted rows are not mapped (their payload is empty): they only need their key.
    """
    missing = [c for c in spec.source.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"spec {spec.name}: the source rows lack the column(s) "
                         f"{', '.join(missing)} named in its source section")
    lines_by_parent = _group_children(spec, children)
    rows = frame_records(frame)
    keys = [source_key_of(row[spec.source.primary_key]) for row in rows]
    duplicates = duplicate_key_issues(spec, keys)
    records = []
    for position, (row, source_key) in enumerate(zip(rows, keys, strict=True)):
        problems = source_row_issues(spec, row, source_key)
        if position in duplicates:
            problems.append(duplicates[position])
        # A row the sync cannot rely on is never taken for a delete: it is quarantined.
        deleted = not problems and is_deleted(spec, row)
        mapped = MappedRow(source_key, {}) if deleted else map_row(
            spec, row, lines_by_parent.get(source_key, []), resolve_ref, resolve_lookup)
        records.append(mapped_record(spec, mapped, row, deleted, problems))
    return pd.DataFrame(records, columns=mapped_columns(spec))


def mapped_record(spec: EntitySpec, mapped: MappedRow, row: Mapping[str, Any],
                  deleted: bool = False, problems: Sequence[RowIssue] = ()) -> dict[str, Any]:
    """One row of a frame made by `map_frame`: the row's bookkeeping, its payload and issues
    (`problems`: those of the row itself), and the value of each pushed field."""
    business_date = spec.source.business_date
    record = {
        SOURCE_KEY: mapped.source_key,
        UPDATED_AT: row.get(spec.source.updated_at),
        BUSINESS_DATE: row.get(business_date) if business_date is not None else None,
        DELETED: deleted,
        PAYLOAD: mapped.payload,
        CHILD_LINES: list(mapped.child_lines),
        TAX_LINE: mapped.tax_line,
        ISSUES: [*problems, *mapped.issues],
    }
    record.update({path: get_path(mapped.payload, path) for path in spec.pushed_fields})
    return record


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a frame as dicts keyed by column name."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _group_children(spec: EntitySpec,
                    children: pd.DataFrame | None) -> dict[str, list[dict[str, Any]]]:
    if spec.lines is None or children is None:
        return {}
    parent_key = spec.lines.parent_key
    if parent_key not in children.columns:
        raise ValueError(f"spec {spec.name}: the line rows lack the parent key column "
                         f"'{parent_key}'")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for child in frame_records(children):
        grouped.setdefault(source_key_of(child[parent_key]), []).append(child)
    return grouped
