"""Checks that need a whole spec: paths, keys and policies that refer to each other.

Each check yields `(spec path, problem)` pairs so that the loader can report every problem
of every spec at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from qbo_pipeline.specs.entities import QBO_ENTITIES
from qbo_pipeline.specs.models import SPEC_NAME, EntitySpec, FieldMapping, LinesSpec

Problem = tuple[str, str]

FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")
# Written by the sync itself: a spec that mapped them would corrupt updates.
RESERVED_FIELDS = frozenset({"Id", "SyncToken", "sparse", "domain", "MetaData", "Line"})
LINES_FIELD = "Line"


def spec_problems(spec: EntitySpec, file_stem: str | None = None) -> list[Problem]:
    """Every problem of one spec that its models alone cannot see."""
    return [
        *_name_problems(spec, file_stem),
        *_entity_problems(spec),
        *_field_map_problems("fields", spec.fields),
        *_lines_problems(spec),
        *_match_key_problems(spec),
        *_conflict_problems(spec),
        *_setting_problems(spec),
    ]


def _name_problems(spec: EntitySpec, file_stem: str | None) -> Iterator[Problem]:
    if not SPEC_NAME.match(spec.name):
        yield "name", f"'{spec.name}' must be snake_case (it is used in asset keys)"
    elif file_stem is not None and spec.name != file_stem:
        yield "name", f"'{spec.name}' must match the file name '{file_stem}'"


def _entity_problems(spec: EntitySpec) -> Iterator[Problem]:
    entity = QBO_ENTITIES.get(spec.qbo_entity)
    if entity is None:
        yield "qbo_entity", _unknown_entity(spec.qbo_entity)
        return
    if spec.on_source_delete not in entity.delete_actions:
        allowed = " or ".join(action.value for action in entity.delete_actions)
        yield "on_source_delete", (
            f"'{spec.on_source_delete.value}' is not possible for a {entity.kind.value} "
            f"entity ({entity.name}): use {allowed}"
        )
    if spec.lines is not None and not entity.has_lines:
        yield "lines", f"{entity.name} records have no lines"


def _unknown_entity(name: str) -> str:
    return f"unknown QBO entity '{name}' (known: {', '.join(sorted(QBO_ENTITIES))})"


def _field_map_problems(prefix: str, fields: Mapping[str, FieldMapping]) -> Iterator[Problem]:
    for path, mapping in fields.items():
        where = f"{prefix}.{path}"
        if not FIELD_PATH.match(path):
            yield where, "a field path is QBO field names joined by dots, e.g. BillAddr.Line1"
        elif path.split(".")[0] in RESERVED_FIELDS:
            yield where, f"'{path.split('.')[0]}' is written by the sync and cannot be mapped"
        if mapping.lookup is not None and mapping.lookup.qbo_entity not in QBO_ENTITIES:
            yield f"{where}.lookup.qbo_entity", _unknown_entity(mapping.lookup.qbo_entity)
        if mapping.lookup is not None and not FIELD_PATH.match(mapping.lookup.by):
            yield f"{where}.lookup.by", f"'{mapping.lookup.by}' is not a QBO field path"
    yield from _overlap_problems(prefix, fields)


def _overlap_problems(prefix: str, fields: Mapping[str, FieldMapping]) -> Iterator[Problem]:
    # `BillAddr` and `BillAddr.Line1` cannot both be set: one would overwrite the other.
    for path in fields:
        for other in fields:
            if other.startswith(f"{path}."):
                yield f"{prefix}.{other}", f"'{path}' is mapped as a whole and cannot have parts"


def _lines_problems(spec: EntitySpec) -> Iterator[Problem]:
    lines: LinesSpec | None = spec.lines
    if lines is None:
        return
    yield from _field_map_problems("lines.fields", lines.fields)
    if lines.tax_line is not None:
        yield from _field_map_problems("lines.tax_line.fields", lines.tax_line.fields)
        if "Amount" in lines.tax_line.fields:
            yield "lines.tax_line.fields.Amount", "the tax line's Amount comes from amount_column"


def _mapped_paths(spec: EntitySpec) -> set[str]:
    return set(spec.fields) | ({LINES_FIELD} if spec.lines is not None else set())


def _match_key_problems(spec: EntitySpec) -> Iterator[Problem]:
    for index, group in enumerate(spec.match_key_groups):
        if not group:
            yield f"match_keys[{index}]", "an empty list matches nothing"
        for path in group:
            if path not in spec.fields:
                yield f"match_keys[{index}]", f"'{path}' is not a mapped field"


def _conflict_problems(spec: EntitySpec) -> Iterator[Problem]:
    mapped = _mapped_paths(spec)
    for path in spec.conflict.fields:
        if path not in mapped:
            yield f"conflict.fields.{path}", f"'{path}' is not a mapped field"


def _setting_problems(spec: EntitySpec) -> Iterator[Problem]:
    for name in spec.settings:
        if not SPEC_NAME.match(name):
            yield f"settings.{name}", f"'{name}' must be snake_case"
