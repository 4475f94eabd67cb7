"""QBO field paths in a spec, checked against the catalog of QBO fields.

Every path a spec names - a field it maps (pushed or pulled), a line field, a match key, a
conflict override, an auto-apply condition, a lookup's `by`, a field in `pull.filter` - goes
through `path_problem`, so one misspelling is refused the same way wherever it is written,
with the nearest real field name (`CompanyNmae` -> `CompanyName`).
"""

from __future__ import annotations

import re

from qbo_pipeline.qbo.fields import (
    Aggregate,
    FieldPathError,
    FieldType,
    ListOf,
    detail_types,
    field_at,
    nearest,
)
from qbo_pipeline.specs.entities import QBO_ENTITIES
from qbo_pipeline.specs.models import EntitySpec, FieldMapping, MappingKind

# Names joined by dots; a list field's item is named by its position (`Line[0].Amount`).
_PART = r"[A-Za-z][A-Za-z0-9]*(\[[0-9]+\])?"
FIELD_PATH = re.compile(rf"^{_PART}(\.{_PART})*\Z")
# Written by the sync itself: a spec that mapped them would corrupt updates.
RESERVED_FIELDS = frozenset({"Id", "SyncToken", "sparse", "domain", "MetaData", "Line"})
LINES_FIELD = "Line"
WRITTEN_PATH = ("a field path is QBO field names joined by dots, e.g. BillAddr.Line1, with a "
                "list's item named by its position, e.g. Line[0].Amount")


def record_shape(entity: str) -> Aggregate | None:
    """The fields of a QBO record of `entity`, or None for an entity the specs cannot name."""
    found = QBO_ENTITIES.get(entity)
    return found.fields.as_aggregate if found is not None else None


def line_shape(entity: str) -> Aggregate | None:
    """The fields of one `Line` item of `entity`, named for messages ("Invoice line")."""
    found = QBO_ENTITIES.get(entity)
    line = found.fields.line if found is not None else None
    return Aggregate(f"{entity} line", line.fields) if line is not None else None


def path_problem(shape: Aggregate | None, path: str, *, written: bool = False) -> str | None:
    """Why `path` is not a field of `shape` (None: entity unknown, checked elsewhere).

    `written` paths (mapped fields) may not be the fields the sync writes itself; read paths
    (a condition on `Id`, a lookup by `Id`) may."""
    if not FIELD_PATH.match(path):
        return WRITTEN_PATH if written else (
            f"'{path}' is not a QBO field path (QBO field names joined by dots, e.g. Balance)")
    top = path.split(".")[0]
    # `Line` whole is the `lines` block's; `Line[0].Amount` names one line's field. The
    # others (`Id`, `MetaData`...) are the sync's with or without a position.
    if written and (top in RESERVED_FIELDS or (
            top.split("[")[0] in RESERVED_FIELDS and not top.startswith(f"{LINES_FIELD}["))):
        return f"'{top}' is written by the sync and cannot be mapped"
    if shape is None:
        return None
    try:
        field_at(shape, path)
    except FieldPathError as error:
        return str(error)
    return None


def mapped_problem(path: str, mapped: set[str]) -> str:
    """The message for a key or override naming a field the spec does not map."""
    text = f"'{path}' is not a mapped field"
    if near := nearest(path, sorted(mapped)):
        return f"{text} - did you mean '{near}'?"
    return f"{text} (mapped: {', '.join(sorted(mapped))})" if mapped else text


def kind_problem(path: str, field: FieldType, mapping: FieldMapping) -> str | None:
    """Why the value a mapping gives cannot go into the field (text into an address...)."""
    kind = mapping.kind
    if kind is MappingKind.CONSTANT:
        return None  # a constant may be a whole object or list: `BillAddr: {constant: {}}`
    is_reference = isinstance(field, Aggregate) and field.is_reference
    if kind is MappingKind.REF and mapping.ref is not None and mapping.ref.id_only:
        if field is None and not is_reference:
            return None
        return (f"ref with id_only gives a bare QuickBooks Id, and {path} is not a plain "
                "field - drop id_only (a reference field takes {\"value\": <Id>})")
    if kind in (MappingKind.REF, MappingKind.LOOKUP):
        if is_reference:
            return None
        hint = " (or, for a field that holds an Id such as TxnId, give the ref id_only: " \
               "true)" if kind is MappingKind.REF and field is None else ""
        return (f"{kind.value} gives a QuickBooks reference ({{\"value\": <Id>}}), and {path} "
                f"is not one - map it to a reference field such as CustomerRef or ItemRef{hint}")
    if is_reference:
        return (f"{path} is a QuickBooks reference ({{value, name}}): map it with ref (another "
                f"spec's record) or lookup (a QuickBooks record by name), or map {path}.value "
                "to a column holding the QuickBooks Id")
    if isinstance(field, ListOf):
        return f"{path} is a list in QuickBooks: map it whole with a constant list"
    if isinstance(field, Aggregate):
        first = next((name for name in field.fields if name != "Id"), "value")  # Id: QBO's
        return (f"{path} is a QuickBooks {field.type_name}, not a plain value: map its parts, "
                f"e.g. {path}.{first}")
    return None


def detail_type_problem(line: Aggregate, mapping: FieldMapping) -> str | None:
    """Why a constant DetailType is not one QBO takes on this entity's lines, or None."""
    if mapping.kind is not MappingKind.CONSTANT or not isinstance(mapping.constant, str):
        return None
    allowed = detail_types(line)
    if mapping.constant in allowed:
        return None
    text = f"'{mapping.constant}' is not a DetailType of {line.type_name}s"
    near = nearest(mapping.constant, list(allowed))
    hint = f" - did you mean '{near}'?" if near else ""
    return f"{text}{hint} (use one of: {', '.join(allowed)})"


def referenced_entity(spec: EntitySpec, spec_path: str) -> str | None:
    """The QBO entity the reference field at a spec path (`fields.ParentRef`,
    `lines.fields.SalesItemLineDetail.ItemRef`) points at, when the catalog knows it."""
    if spec_path.startswith("fields."):
        shape, path = record_shape(spec.qbo_entity), spec_path.removeprefix("fields.")
    else:  # lines.fields.<path> or lines.tax_line.fields.<path>
        shape, path = line_shape(spec.qbo_entity), spec_path.split(".fields.", 1)[-1]
    return refers_to(shape, path)


def refers_to(shape: Aggregate | None, path: str) -> str | None:
    """The entity the reference at `path` points at; None if unknown or not a reference."""
    if shape is None or path_problem(shape, path) is not None:
        return None
    found = field_at(shape, path)
    return found.refers_to if isinstance(found, Aggregate) else None
