"""Checks that need a whole spec: paths, keys and policies that refer to each other.

Each check yields `(spec path, problem)` pairs so that the loader can report every problem
of every spec at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from qbo_pipeline.qbo.entities import QBO_ENTITIES as QBO_CATALOG
from qbo_pipeline.qbo.fields import Aggregate, field_at, nearest
from qbo_pipeline.specs.entities import QBO_ENTITIES, EntityKind
from qbo_pipeline.specs.filters import (
    ConditionError,
    qbo_condition_fields,
    sql_filter_problem,
    sql_query_problem,
)
from qbo_pipeline.specs.models import (
    COLUMN_NAME,
    SPEC_NAME,
    Direction,
    EntitySpec,
    FieldMapping,
    LinesSpec,
    MappingKind,
    PullSpec,
    PullTarget,
    QboDeleteAction,
)
from qbo_pipeline.specs.paths import (
    LINES_FIELD,
    detail_type_problem,
    kind_problem,
    line_shape,
    mapped_problem,
    path_problem,
    record_shape,
    refers_to,
)

Problem = tuple[str, str]


def spec_problems(spec: EntitySpec, file_stem: str | None = None) -> list[Problem]:
    """Every problem of one spec that its models alone cannot see."""
    return [
        *_name_problems(spec, file_stem),
        *_entity_problems(spec),
        *_source_problems(spec),
        *_field_map_problems("fields", spec.fields, record_shape(spec.qbo_entity)),
        *_computed_problems(spec),
        *_lines_problems(spec),
        *_position_problems(spec),
        *_match_key_problems(spec),
        *_conflict_problems(spec),
        *_choice_problems(spec),
        *_setting_problems(spec),
        *_push_problems(spec),
        *_direction_problems(spec),
        *_pull_problems(spec),
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
        *others, last = (action.value for action in entity.delete_actions)
        allowed = f"{', '.join(others)} or {last}" if others else last
        yield "on_source_delete", (
            f"'{spec.on_source_delete.value}' is not possible for a {entity.kind.value} "
            f"entity ({entity.name}): use {allowed}"
        )
    if spec.lines is not None and not entity.has_lines:
        yield "lines", f"{entity.name} records have no lines"


def _unknown_entity(name: str) -> str:
    text = f"unknown QBO entity '{name}'"
    if name in QBO_CATALOG:
        return (f"{text}: {name} is company data that QuickBooks fills in itself - it is read, "
                f"never synced (syncable: {', '.join(sorted(QBO_ENTITIES))})")
    if near := nearest(name, list(QBO_ENTITIES)):
        text += f" - did you mean '{near}'?"
    return f"{text} (known: {', '.join(sorted(QBO_ENTITIES))})"


def _source_problems(spec: EntitySpec) -> Iterator[Problem]:
    if spec.source.filter is not None and (problem := sql_filter_problem(spec.source.filter)):
        yield "source.filter", problem
    if spec.source.query is not None and (problem := sql_query_problem(spec.source.query)):
        yield "source.query", problem


def _field_map_problems(prefix: str, fields: Mapping[str, FieldMapping],
                        shape: Aggregate | None) -> Iterator[Problem]:
    """Each mapped path is a field of `shape` (the record, or one line) that can take the
    mapping's value; `shape` is None when the entity is unknown (reported on its own)."""
    for path, mapping in fields.items():
        where = f"{prefix}.{path}"
        if problem := _mapped_path_problem(path, mapping, shape):
            yield where, problem
        if mapping.lookup is not None:
            yield from _lookup_problems(where, path, mapping, shape)
    yield from _overlap_problems(prefix, fields)


def _mapped_path_problem(path: str, mapping: FieldMapping, shape: Aggregate | None) -> str | None:
    if problem := path_problem(shape, path, written=True):
        return problem
    return kind_problem(path, field_at(shape, path), mapping) if shape is not None else None


def _lookup_problems(where: str, path: str, mapping: FieldMapping,
                     shape: Aggregate | None) -> Iterator[Problem]:
    """The looked-up entity is known, has the `by` field, and is what the field refers to."""
    assert mapping.lookup is not None
    entity = mapping.lookup.qbo_entity
    if entity not in QBO_ENTITIES:
        yield f"{where}.lookup.qbo_entity", _unknown_entity(entity)
        if problem := path_problem(None, mapping.lookup.by):
            yield f"{where}.lookup.by", problem
        return
    if problem := path_problem(record_shape(entity), mapping.lookup.by):
        yield f"{where}.lookup.by", problem
    expected = refers_to(shape, path)
    if expected is not None and expected != entity:
        yield f"{where}.lookup.qbo_entity", (
            f"{path} refers to a QuickBooks {expected}: look up {expected} records, not "
            f"{entity} records")


def _computed_problems(spec: EntitySpec) -> Iterator[Problem]:
    """QBO fills some fields itself and ignores what is sent: they can only be read back."""
    entity = QBO_ENTITIES.get(spec.qbo_entity)
    if entity is None:
        return
    for path, mapping in spec.fields.items():
        top = path.split(".")[0].split("[")[0]  # `LinkedTxn[0].TxnId` is inside LinkedTxn
        if top in entity.fields.computed and spec.flow_of(mapping).pushes:
            yield f"fields.{path}", (
                f"QuickBooks computes {top} itself and ignores a value sent for it - give it "
                "direction: pull to read it back, or remove it")


def _overlap_problems(prefix: str, fields: Mapping[str, FieldMapping]) -> Iterator[Problem]:
    # `BillAddr` and `BillAddr.Line1` cannot both be set: one would overwrite the other.
    for path in fields:
        for other in fields:
            if other.startswith(f"{path}."):
                yield f"{prefix}.{other}", f"'{path}' is mapped as a whole and cannot have parts"


def _position_problems(spec: EntitySpec) -> Iterator[Problem]:
    """The items a spec names of one list are 0, 1, 2...: a gap would send QBO an empty item."""
    used: dict[str, set[int]] = {}
    for path in spec.fields:
        walked = ""
        for part in path.split("."):
            name, _, index = part.partition("[")
            if index and index.rstrip("]").isdigit():
                used.setdefault(f"{walked}{name}", set()).add(int(index.rstrip("]")))
            walked += f"{part}."
    for listed, positions in sorted(used.items()):
        if positions != set(range(len(positions))):
            missing = min(set(range(max(positions) + 1)) - positions)
            yield f"fields.{listed}", (
                f"items are named from position 0 with no gap, and {listed}[{missing}] has no "
                "field - renumber the positions")


def _lines_problems(spec: EntitySpec) -> Iterator[Problem]:
    lines: LinesSpec | None = spec.lines
    entity = QBO_ENTITIES.get(spec.qbo_entity)
    if lines is not None:
        # The `lines` block writes the whole Line list: a line named by position would be lost.
        for path in spec.fields:
            if path.split(".")[0].startswith(f"{LINES_FIELD}["):
                yield f"fields.{path}", (
                    "the spec's `lines` block writes every Line: map this under lines.fields, "
                    "or drop `lines` and name each line by position")
    if lines is None or (entity is not None and not entity.has_lines):
        return  # no lines, or lines the entity cannot have (reported by _entity_problems)
    shape = line_shape(spec.qbo_entity)
    for prefix, fields in (("lines.fields", lines.fields),
                           ("lines.tax_line.fields", _tax_fields(lines))):
        yield from _field_map_problems(prefix, fields, shape)
        detail = fields.get("DetailType")
        if shape is not None and detail is not None and (
                problem := detail_type_problem(shape, detail)):
            yield f"{prefix}.DetailType", problem
    if lines.tax_line is not None and "Amount" in lines.tax_line.fields:
        yield "lines.tax_line.fields.Amount", "the tax line's Amount comes from amount_column"


def _mapped_paths(spec: EntitySpec) -> set[str]:
    return set(spec.fields) | ({LINES_FIELD} if spec.lines is not None else set())


def _named_field_problem(spec: EntitySpec, path: str, mapped: set[str]) -> str | None:
    """A match key or conflict override: a QBO field of the entity, and one the spec maps."""
    if path in mapped:
        return None
    return path_problem(record_shape(spec.qbo_entity), path) or mapped_problem(path, mapped)


def _match_key_problems(spec: EntitySpec) -> Iterator[Problem]:
    for index, group in enumerate(spec.match_key_groups):
        if not group:
            yield f"match_keys[{index}]", "an empty list matches nothing"
        for path in group:
            if problem := _named_field_problem(spec, path, set(spec.fields)):
                yield f"match_keys[{index}]", problem


def _conflict_problems(spec: EntitySpec) -> Iterator[Problem]:
    mapped = _mapped_paths(spec)
    for path in spec.conflict.fields:
        if problem := _named_field_problem(spec, path, mapped):
            yield f"conflict.fields.{path}", problem


def _choice_problems(spec: EntitySpec) -> Iterator[Problem]:
    """What a company's choice changes: mapped fields' policies, and a direction that only
    narrows the spec's own (its assets are built from the spec's, for every company)."""
    if spec.by_setting is None:
        return
    mapped = _mapped_paths(spec)
    for choice, change in spec.by_setting.choices.items():
        where = f"by_setting.choices.{choice}"
        for path in change.conflict_fields:
            if problem := _named_field_problem(spec, path, mapped):
                yield f"{where}.conflict_fields.{path}", problem
        if change.when is not None and spec.by_setting.setting in spec.settings:
            yield f"{where}.when", (
                f"the spec has a setting named {spec.by_setting.setting!r} too: rename it, "
                "the rows a choice syncs are filtered under the company setting's name")
        if change.direction not in (None, Direction.PUSH, spec.direction):
            yield f"{where}.direction", (
                f"a choice can keep the spec's direction ({spec.direction.value}) or make it "
                f"push, not {change.direction.value}: give the spec itself the widest "
                "direction a company may choose (its assets are built from it)")


def _setting_problems(spec: EntitySpec) -> Iterator[Problem]:
    for name in spec.settings:
        if not SPEC_NAME.match(name):
            yield f"settings.{name}", f"'{name}' must be snake_case"


def _push_problems(spec: EntitySpec) -> Iterator[Problem]:
    """What a spec that sends records to QBO must say."""
    if not spec.pushes:
        return
    if "on_source_delete" not in spec.model_fields_set:
        yield "on_source_delete", "is required"
    entity = QBO_ENTITIES.get(spec.qbo_entity)
    if (entity is not None and entity.kind is EntityKind.TRANSACTION
            and spec.source.business_date is None):
        yield "source.business_date", (
            f"is required: {entity.name} records pushed to QuickBooks are dated by it "
            "(backfills and the sync start date go by it)")


def _direction_problems(spec: EntitySpec) -> Iterator[Problem]:
    """Every field that flows back from QBO must be readable back into source columns."""
    for path, mapping in spec.fields.items():
        where = f"fields.{path}"
        if not mapping.source_columns:
            yield from _no_column_problems(spec, where, mapping)
        elif spec.flow_of(mapping).pulls and (problem := mapping.reverse_problem):
            yield where, (f"{problem}, so QuickBooks' value cannot flow back - give it "
                          "direction: push")
    yield from _line_direction_problems(spec)


def _no_column_problems(spec: EntitySpec, where: str, mapping: FieldMapping) -> Iterator[Problem]:
    what = "a constant" if mapping.kind is MappingKind.CONSTANT else "a lookup of a fixed value"
    if mapping.direction is not None and mapping.direction.pulls:
        yield f"{where}.direction", (f"{what} never comes from QuickBooks: it has no source "
                                     "column to write to - remove direction or make it push")
    elif mapping.direction is None and spec.direction is Direction.PULL:
        yield where, (f"{what} is only ever sent to QuickBooks, and this spec pulls - remove it "
                      "or give it direction: push (to pull only some records, use pull.filter)")


def _line_direction_problems(spec: EntitySpec) -> Iterator[Problem]:
    lines = spec.lines
    if lines is None:
        return
    if spec.direction is Direction.PULL:
        yield "lines", "lines are only ever pushed, and this spec pulls"
    for prefix, fields in (("lines.fields", lines.fields),
                           ("lines.tax_line.fields", _tax_fields(lines))):
        for path, mapping in fields.items():
            if mapping.direction is not None and mapping.direction.pulls:
                yield f"{prefix}.{path}.direction", "line fields are only ever pushed"


def _tax_fields(lines: LinesSpec) -> Mapping[str, FieldMapping]:
    return lines.tax_line.fields if lines.tax_line is not None else {}


def _pull_problems(spec: EntitySpec) -> Iterator[Problem]:
    pulled = list(spec.pulled_fields)
    if spec.pull is None:
        if pulled:
            yield "pull", (f"is required: {', '.join(pulled)} flow from QuickBooks (direction "
                           "pull or two_way) - add a pull section saying where they land")
        return
    if not pulled:
        yield "pull", ("no field flows from QuickBooks (direction pull or two_way), so the "
                       "pull section does nothing - remove it")
        return
    if spec.source.table is None:
        yield "source.query", ("a spec that pulls writes QuickBooks values into a table: name "
                               "it in source.table instead of a query")
    yield from _pull_target_problems(spec.pull)
    yield from _pull_filter_problems(spec, spec.pull)
    yield from _qbo_id_column_problems(spec, spec.pull)
    yield from _qbo_delete_problems(spec, spec.pull)
    yield from _auto_apply_problems(spec, spec.pull)


def _pull_target_problems(pull: PullSpec) -> Iterator[Problem]:
    if pull.target is PullTarget.UPSERT and pull.qbo_id_column is None:
        yield "pull.qbo_id_column", ("is required for target: upsert (the source column that "
                                     "holds each row's QuickBooks Id)")


def _pull_filter_problems(spec: EntitySpec, pull: PullSpec) -> Iterator[Problem]:
    """`pull.filter` joins QBO's query as is: it must parse, on fields the entity has."""
    if pull.filter is None:
        return
    try:
        fields = qbo_condition_fields(pull.filter)
    except ConditionError as error:
        yield "pull.filter", f"not a QBO query condition: {error}"
        return
    shape = record_shape(spec.qbo_entity)
    for path in fields:
        if problem := path_problem(shape, path):
            yield "pull.filter", problem


def _qbo_id_column_problems(spec: EntitySpec, pull: PullSpec) -> Iterator[Problem]:
    """The QBO Id column is the sync's to write: no pulled value may land in it too."""
    column = pull.qbo_id_column
    if column is None:
        return
    for path, mapping in spec.pulled_fields.items():
        if column in mapping.source_columns:
            yield "pull.qbo_id_column", (f"'{column}' is also where fields.{path} is pulled to "
                                         "- give the QBO Id a column of its own")
    for index, rule in enumerate(pull.auto_apply):
        if column in rule.set_columns:
            yield f"pull.auto_apply[{index}].set.{column}", (
                f"'{column}' holds the QBO Id, which the sync writes itself")


def _qbo_delete_problems(spec: EntitySpec, pull: PullSpec) -> Iterator[Problem]:
    action = pull.on_qbo_delete
    if action is QboDeleteAction.SET_DELETED and spec.source.deleted is None:
        yield "pull.on_qbo_delete", ("set_deleted needs source.deleted, the soft-delete column "
                                     "to set - add it or use mark_inactive or ignore")
    if action is QboDeleteAction.MARK_INACTIVE and inactive_column(spec) is None:
        yield "pull.on_qbo_delete", ("mark_inactive needs pull.inactive_column, or an Active "
                                     "field mapped to a column - add one of them")


def inactive_column(spec: EntitySpec) -> str | None:
    """The column `mark_inactive` sets to false: `pull.inactive_column`, else Active's column."""
    if spec.pull is not None and spec.pull.inactive_column is not None:
        return spec.pull.inactive_column
    active = spec.fields.get("Active")
    return active.column if active is not None else None


def _auto_apply_problems(spec: EntitySpec, pull: PullSpec) -> Iterator[Problem]:
    shape = record_shape(spec.qbo_entity)
    for index, rule in enumerate(pull.auto_apply):
        where = f"pull.auto_apply[{index}]"
        if problem := path_problem(shape, rule.when.field):
            yield f"{where}.when.field", problem
        if not rule.set_columns:
            yield f"{where}.set", "sets no column"
        for column in rule.set_columns:
            if not COLUMN_NAME.match(column):
                yield f"{where}.set.{column}", (f"'{column}' is not a plain column name "
                                                "(letters, digits and underscores)")
