"""Records a lookup needs that QBO lacks, created on the fly before the record that needs them
(seed 003: "If you create a new service in HoursLogger, it is created in QuickBooks the next
time you sync a time or invoice with that service"; "All users, customers, and services will
be created on the fly if they don't already exist in QuickBooks Online").

A lookup with `create: {spec: service}` names the spec whose mapping makes the record: its own
row of the looked-up value when the source has one, else a row holding only that value in the
column the spec maps the looked-up field from (`name` for `Name`), the spec's constants and
defaults filling in the rest (`Type: Service`, the income account the company's settings
name). This module decides what to create and why a record cannot be; `steps.push` asks QBO
and creates it. A lookup of a fixed value (the "Sales Tax" item) never creates anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qbo_pipeline.specs import EntitySpec, FieldMapping, LookupTarget
from qbo_pipeline.sync.mapping import (
    NotCreated,
    ResolveLookup,
    is_deleted,
    map_row,
    mapped_record,
)
from qbo_pipeline.sync.validation import validate_frame
from qbo_pipeline.sync.values import (
    get_path,
    quoted,
    read_source_value,
    source_key_of,
    to_json_value,
    unsafe_characters,
    values_equal,
)


@dataclass(frozen=True)
class Wanted:
    """A record a lookup looks for, and creates through `spec` when QBO has none."""

    spec: str
    qbo_entity: str
    by: str
    value: str
    column: str  # the referring record's column the value is read from

    @property
    def key(self) -> tuple[str, str, str]:
        """As a lookup resolver is asked for it: (QBO entity, field, value)."""
        return (self.qbo_entity, self.by, self.value)


@dataclass(frozen=True)
class NewRecord:
    """What to create for a wanted record: the payload, the creating spec's row it is made
    from (None: made from the looked-up value alone), and why it cannot be created."""

    wanted: Wanted
    source_key: str | None
    payload: dict[str, Any]
    base: dict[str, Any]  # what both sides hold once it is created: the link's base
    reasons: tuple[str, ...] = ()


def creating_lookups(fields: Mapping[str, FieldMapping]) -> list[LookupTarget]:
    """The lookups among `fields` that create what they do not find."""
    return [m.lookup for m in fields.values()
            if m.lookup is not None and m.lookup.create is not None]


def creating_specs(spec: EntitySpec) -> list[str]:
    """The specs that `spec`'s lookups create records with."""
    return sorted({m.lookup.create.spec for m in spec.all_fields().values()
                   if m.lookup is not None and m.lookup.create is not None})


def wanted_records(spec: EntitySpec, rows: Iterable[Mapping[str, Any]],
                   children: Iterable[Mapping[str, Any]] = ()) -> list[Wanted]:
    """Each record the spec's creating lookups look for over its rows (record fields) and
    their line rows (line fields), once, in the order first met. Deleted rows want nothing; a
    value the mapping refuses (unreadable, invisible characters) is left to its reason."""
    row_list = [row for row in rows if not is_deleted(spec, row)]
    parents = {source_key_of(row.get(spec.source.primary_key)) for row in row_list}
    found: dict[tuple[str, str, str, str], Wanted] = {}
    line_rows: list[Mapping[str, Any]] = []
    if spec.lines is not None:
        parent_key = spec.lines.parent_key
        line_rows = [c for c in children if source_key_of(c.get(parent_key)) in parents]
    for lookups, over in ((creating_lookups(spec.fields), row_list),
                          (creating_lookups(spec.lines.fields) if spec.lines else [], line_rows)):
        for lookup, row in ((lookup, row) for row in over for lookup in lookups):
            if (wanted := _wanted(lookup, row)) is not None:
                found.setdefault((wanted.spec, *wanted.key), wanted)
    return list(found.values())


def _wanted(lookup: LookupTarget, row: Mapping[str, Any]) -> Wanted | None:
    assert lookup.create is not None and lookup.column is not None
    try:
        value = to_json_value(read_source_value(row.get(lookup.column)))
    except ValueError:
        return None
    if value is None or unsafe_characters(str(value)):
        return None
    return Wanted(lookup.create.spec, lookup.qbo_entity, lookup.by, str(value), lookup.column)


def value_column(creator: EntitySpec, by: str) -> str:
    """The column the creating spec maps the looked-up field from (checked at load time)."""
    column = creator.fields[by].column
    assert column is not None, f"spec {creator.name} maps {by} from no column"
    return column


def new_record(creator: EntitySpec, wanted: Wanted, own_rows: Sequence[Mapping[str, Any]],
               resolve_lookup: ResolveLookup) -> NewRecord:
    """The record to create through `creator`: mapped from its row of the wanted value (the
    first not deleted among `own_rows`), else from a row holding only that value; with the
    reasons it cannot be created, as its spec's mapping and rules give them."""
    column = value_column(creator, wanted.by)
    own = next((row for row in own_rows if not is_deleted(creator, row)
                and values_equal(row.get(column), wanted.value)), None)
    row = own if own is not None else _value_row(creator, column, wanted.value)
    mapped = map_row(creator, row, resolve_lookup=resolve_lookup)
    frame = pd.DataFrame([mapped_record(creator, mapped, row)])
    reasons = tuple(issue.reason for held in validate_frame(creator, frame).quarantined
                    for issue in held.issues)
    base = {path: value for path in creator.pushed_fields
            if (value := get_path(mapped.payload, path)) is not None}
    return NewRecord(wanted, mapped.source_key if own is not None else None, mapped.payload,
                     base, reasons)


def _value_row(creator: EntitySpec, column: str, value: str) -> dict[str, Any]:
    """A row of the creating spec holding only the looked-up value; it is named by that value
    in reasons (`service 'Design': ...`)."""
    columns = [*creator.source.columns, *(c for m in creator.fields.values()
                                          for c in m.source_columns)]
    row: dict[str, Any] = dict.fromkeys(columns)
    row[creator.source.primary_key] = quoted(value)
    row[column] = value
    return row


def not_created(record: NewRecord) -> NotCreated:
    """Why the record needing `record` is held back: the reasons it cannot be created."""
    wanted = record.wanted
    return NotCreated(f"needs a QuickBooks {wanted.qbo_entity} with {wanted.by} "
                      f"{quoted(wanted.value)}, which the sync creates on the fly through spec "
                      f"{wanted.spec}, and cannot ({'; '.join(record.reasons)})",
                      "fix what stops it, and the record is synced with it")


def refused(wanted: Wanted, error: str, referring: EntitySpec) -> NotCreated:
    """Why the record needing `wanted` is held back: QBO refused to create it."""
    return NotCreated(f"needs a QuickBooks {wanted.qbo_entity} with {wanted.by} "
                      f"{quoted(wanted.value)}, and QuickBooks refused to create it: {error}",
                      f"correct it in QuickBooks, or change {wanted.column} on the "
                      f"{referring.record_label}")
