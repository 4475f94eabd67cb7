"""QBO record -> source column values: the way back of `mapping.py`, for the fields that pull.

Per field kind (only fields whose flow is pull or two_way are read back):

- `column`: QBO's value converted by the field's `type` (number -> Decimal, integer -> int,
  boolean -> bool, date -> datetime.date, string -> str; untyped: the JSON value as is);
- `template`: the text parsed back into its columns (`specs.models.template_pattern`: the
  literal parts are the separators, each column a non-greedy group, anchored; an earlier
  column takes the shortest text that lets the rest match, so `"{number} - {name}"` reads
  "P-7 - Kitchen - phase 2" as number "P-7", name "Kitchen - phase 2");
- `ref`: `{"value": <QBO Id>}` back to the source key of the referenced spec's record, through
  the links (`ResolveSourceKey`);
- `lookup` by Name: the reference's `name`.

A missing value (absent, null, blank) gives None for each column. A value that cannot be read
back is a `RowIssue` of the record, never an exception: the record is quarantined, the others
go on. A pulled record that has no source row yet is keyed `qbo:<Id>` (`qbo_record_key`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qbo_pipeline.specs import QBO_ENTITIES, EntitySpec, FieldMapping, MappingKind, ValueType
from qbo_pipeline.specs.models import template_pattern
from qbo_pipeline.sync.mapping import RowIssue
from qbo_pipeline.sync.values import coerce, get_path, is_missing, source_key_of, to_decimal

ResolveSourceKey = Callable[[str, str], str | None]
"""(spec name, QBO Id) -> the source key of that spec's record linked to the Id, or None."""

QBO_KEY_PREFIX = "qbo:"


def resolve_no_source_key(*_: str) -> None:
    """A resolver for specs that pull no reference: nothing is linked."""
    return None


def qbo_record_key(qbo_id: str) -> str:
    """The key of a pulled QBO record that has no source row yet: `qbo:<Id>`."""
    return f"{QBO_KEY_PREFIX}{qbo_id}"


def record_key(source_key: str | None, qbo_id: str) -> str:
    """The source key when there is a source row, else `qbo:<Id>`."""
    return source_key if source_key is not None else qbo_record_key(qbo_id)


def qbo_id_of(record: Mapping[str, Any]) -> str:
    return source_key_of(record.get("Id"))


@dataclass(frozen=True)
class UnmappedRecord:
    """The source column values of one QBO record, and the issues that keep it from the source.

    `values` holds every pulled column (None for empty ones); `by_field` the same values
    grouped by the QBO field path they come from (a field with an issue is left out of both).
    """

    qbo_id: str
    values: dict[str, Any]
    issues: tuple[RowIssue, ...] = ()
    by_field: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues


class _PullProblem(Exception):
    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def pulled_issue(spec: EntitySpec, key: str, qbo_id: str, path: str, problem: str,
                 fix: str | None = None) -> RowIssue:
    """`QuickBooks Item 12: Name is required - correct it in QuickBooks`, or, for a record
    with a source row, `service 3: Name ... - correct it in QuickBooks Item 12`."""
    in_qbo = f"QuickBooks {spec.qbo_entity} {qbo_id}"
    if key.startswith(QBO_KEY_PREFIX):
        who, fix = in_qbo, fix or "correct it in QuickBooks"
    else:
        who, fix = f"{spec.record_label} {key}", fix or f"correct it in {in_qbo}"
    return RowIssue(key, path, f"{who}: {path} {problem} - {fix}")


def unmap_record(spec: EntitySpec, qbo_record: Mapping[str, Any],
                 resolve_source_key: ResolveSourceKey = resolve_no_source_key, *,
                 source_key: str | None = None,
                 ref_entities: Mapping[str, str] | None = None) -> UnmappedRecord:
    """The source columns of the spec's pulled fields, read from one QBO record.

    `source_key` (the linked source row, if any) only names the record in issues;
    `ref_entities` (spec name -> its QBO entity) names referenced records in issues, e.g.
    "refers to QuickBooks Customer 58" (without it the entity is guessed from the path).
    """
    qbo_id = qbo_id_of(qbo_record)
    key = record_key(source_key, qbo_id)
    values: dict[str, Any] = {}
    by_field: dict[str, dict[str, Any]] = {}
    issues: list[RowIssue] = []
    for path, mapping in spec.pulled_fields.items():
        try:
            columns = unmap_field(spec, path, mapping, qbo_record, resolve_source_key,
                                  ref_entities or {})
        except _PullProblem as problem:
            issues.append(pulled_issue(spec, key, qbo_id, path, problem.problem, problem.fix))
            continue
        by_field[path] = columns
        values.update(columns)
    return UnmappedRecord(qbo_id, values, tuple(issues), by_field)


def unmap_field(spec: EntitySpec, path: str, mapping: FieldMapping, record: Mapping[str, Any],
                resolve_source_key: ResolveSourceKey,
                ref_entities: Mapping[str, str]) -> dict[str, Any]:
    """Column -> value of one field; raises _PullProblem when the value cannot be read back."""
    raw = get_path(record, path)
    kind = mapping.kind
    if kind is MappingKind.COLUMN:
        assert mapping.column is not None
        return {mapping.column: _typed(raw, mapping.type)}
    if kind is MappingKind.TEMPLATE:
        # A template a setting chooses never pulls (FieldMapping.reverse_problem).
        assert isinstance(mapping.template, str)
        return _parse_template(mapping.template, raw)
    if kind is MappingKind.REF:
        assert mapping.ref is not None
        entity = ref_entities.get(mapping.ref.spec) or _entity_of_path(spec, path)
        return {mapping.ref.column: _source_key_of_ref(mapping.ref.spec, entity, raw,
                                                       resolve_source_key)}
    if kind is MappingKind.LOOKUP:
        assert mapping.lookup is not None and mapping.lookup.column is not None
        return {mapping.lookup.column: _name_of_ref(mapping.lookup.qbo_entity, raw)}
    raise _PullProblem("is a constant, which never comes from QuickBooks", "fix the mapping spec")


_TYPE_WORDS = {ValueType.NUMBER: "a number", ValueType.INTEGER: "a whole number",
               ValueType.BOOLEAN: "yes/no", ValueType.DATE: "a date (YYYY-MM-DD)",
               ValueType.STRING: "text"}


def _typed(raw: Any, value_type: ValueType | None) -> Any:
    if is_missing(raw):
        return None
    if value_type is None:
        return raw
    try:
        if value_type is ValueType.NUMBER:
            number = to_decimal(raw)
            if number is None:
                raise ValueError(raw)
            return number
        converted = coerce(raw, value_type)
    except ValueError:
        raise _PullProblem(f"{raw!r} is not {_TYPE_WORDS[value_type]}") from None
    return dt.date.fromisoformat(converted) if value_type is ValueType.DATE else converted


def _parse_template(template: str, raw: Any) -> dict[str, Any]:
    pattern = template_pattern(template)
    if is_missing(raw):
        return dict.fromkeys(pattern.groupindex)
    found = pattern.match(str(raw).strip())
    if found is None:
        raise _PullProblem(f"'{raw}' does not read as {template!r}",
                           f"rename it in QuickBooks to the form {template!r}")
    return {name: text.strip() for name, text in found.groupdict().items()}


def _ref_id(raw: Any) -> str | None:
    value = raw.get("value") if isinstance(raw, Mapping) else raw
    return None if is_missing(value) else source_key_of(value)


def _source_key_of_ref(spec_name: str, entity: str, raw: Any,
                       resolve_source_key: ResolveSourceKey) -> str | None:
    qbo_id = _ref_id(raw)
    if qbo_id is None:
        return None
    key = resolve_source_key(spec_name, qbo_id)
    if key is None:
        label = spec_name.replace("_", " ")
        raise _PullProblem(f"refers to QuickBooks {entity} {qbo_id}, which no {label} is "
                           "linked to", "sync or link it first")
    return key


def _name_of_ref(entity: str, raw: Any) -> str | None:
    qbo_id = _ref_id(raw)
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if not is_missing(name):
        return str(name).strip()
    if qbo_id is None:
        return None
    raise _PullProblem(f"holds QuickBooks {entity} {qbo_id} without its name",
                       "read the record again from QuickBooks")


def _entity_of_path(spec: EntitySpec, path: str) -> str:
    """A reference's QBO entity guessed from its field name: CustomerRef -> Customer;
    ParentRef is a record of the spec's own entity."""
    name = path.split(".")[-1].removesuffix("Ref")
    if name == "Parent":
        return spec.qbo_entity
    return name if name in QBO_ENTITIES else "record"


def qbo_field_value(mapping: FieldMapping, path: str, record: Mapping[str, Any] | None) -> Any:
    """QBO's value of a field in payload form, as the base records it: a reference or lookup
    as `{"value": <Id>}` (QBO's `name` is its own addition), anything else as QBO holds it."""
    raw = get_path(record, path)
    if mapping.kind in (MappingKind.REF, MappingKind.LOOKUP):
        qbo_id = _ref_id(raw)
        return None if qbo_id is None else {"value": qbo_id}
    return None if is_missing(raw) else raw


def compared_leaf(mapping: FieldMapping, path: str) -> str:
    """The leaf a pulled field is compared at when neither the source nor the base holds it:
    a reference's Id, else the field itself."""
    if mapping.kind in (MappingKind.REF, MappingKind.LOOKUP):
        return f"{path}.value"
    return path
