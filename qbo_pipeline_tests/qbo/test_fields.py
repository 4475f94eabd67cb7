"""The catalog of QBO fields: complete for the entity catalog, and agreeing with the emulator.

The emulator names QBO's fields on its own (required fields, computed ones, references and
line details); these tests keep every name it uses in the one catalog the spec loader reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbo_pipeline.emulator.accounting.entities import (
    _LINE_DETAILS,
    COMPUTED_FIELDS,
    ENTITY_SPECS,
    READ_ONLY_FIELDS,
    REFERENCE_TARGETS,
)
from qbo_pipeline.emulator.accounting.properties import (
    KNOWN_PROPERTIES,
    NESTED_TYPES,
    nested_type,
)
from qbo_pipeline.qbo.entities import QBO_ENTITIES
from qbo_pipeline.qbo.fields import (
    ENTITY_FIELDS,
    SYSTEM_FIELDS,
    Aggregate,
    FieldPathError,
    FieldType,
    ListOf,
    detail_types,
    field_at,
    nearest,
)
from qbo_pipeline.specs.paths import RESERVED_FIELDS

SERVED = sorted(ENTITY_SPECS)
# QBO takes an invoice's LinkedTxn on create (to bill an estimate or time); the emulator does
# not model that and fills it itself.
WRITABLE_IN_QBO = {("Invoice", "LinkedTxn")}


def test_every_entity_has_fields_and_lines_where_it_has_lines() -> None:
    assert set(ENTITY_FIELDS) == set(QBO_ENTITIES)
    for name, entity in QBO_ENTITIES.items():
        assert entity.fields is ENTITY_FIELDS[name]
        assert (entity.fields.line is not None) == entity.has_lines, name
        assert ("Active" in entity.fields.fields) == entity.has_active, name
        assert set(SYSTEM_FIELDS) <= set(entity.fields.fields), name
        assert entity.fields.computed <= set(entity.fields.fields), name


def test_the_sync_reserves_every_system_field() -> None:
    assert set(SYSTEM_FIELDS) <= RESERVED_FIELDS


@pytest.mark.parametrize("name", SERVED)
def test_the_fields_the_emulator_requires_and_defaults_exist(name: str) -> None:
    served, fields = ENTITY_SPECS[name], ENTITY_FIELDS[name].fields
    assert {field for group in served.required for field in group} <= set(fields)
    assert set(served.defaults) <= set(fields)


@pytest.mark.parametrize("name", sorted(COMPUTED_FIELDS))
def test_what_the_emulator_computes_the_catalog_calls_computed(name: str) -> None:
    computed = {field for field in COMPUTED_FIELDS[name] if (name, field) not in WRITABLE_IN_QBO}
    assert set(COMPUTED_FIELDS[name]) <= set(ENTITY_FIELDS[name].fields)
    assert computed <= ENTITY_FIELDS[name].computed


def test_the_emulators_read_only_fields_exist() -> None:
    every_field = {field for entry in ENTITY_FIELDS.values() for field in entry.fields}
    assert every_field >= READ_ONLY_FIELDS


def _references(entity: str, shape: Aggregate) -> Iterator[tuple[str, Aggregate]]:
    for name, field in shape.fields.items():
        inner: FieldType = field.item if isinstance(field, ListOf) else field
        if isinstance(inner, Aggregate):
            if inner.is_reference:
                yield name, inner
            else:
                yield from _references(entity, inner)


@pytest.mark.parametrize("name", sorted(ENTITY_FIELDS))
def test_references_point_where_the_emulator_resolves_them(name: str) -> None:
    for field, ref in _references(name, ENTITY_FIELDS[name].as_aggregate):
        if field in REFERENCE_TARGETS:
            assert ref.refers_to == (REFERENCE_TARGETS[field] or name), (name, field)


@pytest.mark.parametrize("name", sorted(_LINE_DETAILS))
def test_every_line_detail_the_emulator_takes_is_in_the_catalog(name: str) -> None:
    line = ENTITY_FIELDS[name].line
    assert line is not None
    assert set(_LINE_DETAILS[name]) <= set(detail_types(line))


@pytest.mark.parametrize("name", sorted(KNOWN_PROPERTIES))
def test_the_emulator_takes_every_field_the_catalog_names(name: str) -> None:
    """The emulator refuses a property it does not know (QBO's 2010), so every field a spec
    may map - nested parts of addresses, phones and references included - must be one it
    knows, or the pipeline would be refused by the emulator where QBO takes it."""
    known = KNOWN_PROPERTIES[name]
    for field, shape in ENTITY_FIELDS[name].fields.items():
        assert field in known, (name, field)
        type_name = nested_type(field)
        inner = shape.item if isinstance(shape, ListOf) else shape
        if type_name is not None and isinstance(inner, Aggregate):
            assert set(inner.fields) <= NESTED_TYPES[type_name], (name, field)


def test_the_shipped_specs_field_names_are_real_qbo_fields() -> None:
    customer = ENTITY_FIELDS["Customer"].as_aggregate
    assert field_at(customer, "PrimaryEmailAddr.Address") is None
    assert field_at(customer, "BillAddr.CountrySubDivisionCode") is None
    parent = field_at(customer, "ParentRef")
    assert isinstance(parent, Aggregate) and parent.refers_to == "Customer"
    invoice_line = ENTITY_FIELDS["Invoice"].line
    assert invoice_line is not None
    item = field_at(invoice_line, "SalesItemLineDetail.ItemRef")
    assert isinstance(item, Aggregate) and item.refers_to == "Item"
    assert field_at(ENTITY_FIELDS["Invoice"].as_aggregate, "CustomerMemo.value") is None


@pytest.mark.parametrize(("entity", "path", "expected"), [
    ("Customer", "CompanyNmae", "'CompanyNmae' is not a field of a QuickBooks Customer - did "
     "you mean 'CompanyName'?"),
    ("Customer", "PrimaryEmailAddr.Adress", "'Adress' is not a field of PrimaryEmailAddr (a "
     "QuickBooks EmailAddress) - did you mean 'Address'?"),
    ("Customer", "DisplayName.First", "DisplayName is a plain value in QuickBooks and has no "
     "part 'First'"),
    ("Invoice", "LinkedTxn.TxnId", "LinkedTxn is a list in QuickBooks"),
    ("Invoice", "CustomerRef.id", "(its fields: name, value)"),
    ("Employee", "Zzz", "see the Employee page of Intuit's Accounting API reference"),
])
def test_a_path_that_is_not_there_says_what_is(entity: str, path: str, expected: str) -> None:
    with pytest.raises(FieldPathError) as raised:
        field_at(ENTITY_FIELDS[entity].as_aggregate, path)
    assert expected in str(raised.value)


def test_nearest_ignores_case_and_gives_up_on_strangers() -> None:
    assert nearest("displayname", ["DisplayName", "GivenName"]) == "DisplayName"
    assert nearest("Zzz", ["DisplayName", "GivenName"]) is None
