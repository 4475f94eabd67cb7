"""The entity catalog: complete for what the emulator serves, and agreeing with it.

The emulator models QBO on its own (it imports nothing of the pipeline), so that a mistake in
the catalog is not copied into the QBO the tests run against; these tests keep the two in step.
"""

from __future__ import annotations

import pytest

from qbo_pipeline import specs
from qbo_pipeline.emulator.accounting import query as emulator_query
from qbo_pipeline.emulator.accounting.entities import ENTITY_SPECS, NAME_ENTITIES
from qbo_pipeline.qbo.entities import (
    CDC_ENTITIES,
    QBO_ENTITIES,
    DeleteAction,
    EntityKind,
    QboEntity,
    qbo_entity,
)

SERVED = sorted(ENTITY_SPECS)
EMULATOR_KINDS = {"name": EntityKind.NAMES_LIST, "transaction": EntityKind.TRANSACTION}


def test_every_entity_the_emulator_serves_is_in_the_catalog() -> None:
    assert set(SERVED) - set(QBO_ENTITIES) == set()


@pytest.mark.parametrize("name", SERVED)
def test_the_catalog_and_the_emulator_agree(name: str) -> None:
    served, entity = ENTITY_SPECS[name], QBO_ENTITIES[name]
    assert entity.in_cdc == served.in_cdc
    assert entity.voidable == served.voidable
    assert _kind_as_served(entity) == served.kind


def _kind_as_served(entity: QboEntity) -> str:
    """The emulator's word for a kind: what the API cannot create is "reference" to it."""
    if not entity.creatable:
        return "reference"
    return next(word for word, kind in EMULATOR_KINDS.items() if kind is entity.kind)


def test_the_emulators_query_hides_inactive_records_of_exactly_the_names_lists() -> None:
    creatable_lists = {name for name in SERVED
                       if QBO_ENTITIES[name].has_active and QBO_ENTITIES[name].creatable}
    assert creatable_lists == emulator_query.NAMES_LIST_ENTITIES


def test_the_shared_display_name_entities_are_names_lists() -> None:
    assert all(QBO_ENTITIES[name].kind is EntityKind.NAMES_LIST for name in NAME_ENTITIES)


def test_cdc_serves_neither_time_activity_nor_tax_codes_nor_company_info() -> None:
    assert {"TimeActivity", "TaxCode", "TaxRate", "CompanyInfo"}.isdisjoint(CDC_ENTITIES)
    assert {"Customer", "Invoice", "Bill", "Item"} <= CDC_ENTITIES
    assert {name for name, e in QBO_ENTITIES.items() if e.in_cdc} == CDC_ENTITIES


def test_lines_and_active_flags() -> None:
    assert QBO_ENTITIES["Invoice"].has_lines and QBO_ENTITIES["JournalEntry"].has_lines
    assert not QBO_ENTITIES["TimeActivity"].has_lines
    assert not QBO_ENTITIES["Transfer"].has_lines
    assert not QBO_ENTITIES["Customer"].has_lines
    assert QBO_ENTITIES["Customer"].has_active and QBO_ENTITIES["TaxCode"].has_active
    assert not QBO_ENTITIES["Invoice"].has_active
    assert not QBO_ENTITIES["CompanyInfo"].has_active


@pytest.mark.parametrize(("name", "actions"), [
    ("Customer", (DeleteAction.INACTIVATE, DeleteAction.IGNORE)),
    ("Invoice", (DeleteAction.VOID, DeleteAction.REPORT, DeleteAction.IGNORE)),
    ("Bill", (DeleteAction.DELETE, DeleteAction.REPORT, DeleteAction.IGNORE)),
    ("CompanyInfo", (DeleteAction.IGNORE,)),
])
def test_delete_actions_follow_the_kind(name: str, actions: tuple[DeleteAction, ...]) -> None:
    assert QBO_ENTITIES[name].delete_actions == actions


def test_specs_see_the_same_entities_but_reference_data() -> None:
    assert specs.QboEntity is QboEntity and specs.EntityKind is EntityKind
    assert specs.DeleteAction is DeleteAction
    syncable = {name for name, entity in QBO_ENTITIES.items()
                if entity.kind is not EntityKind.REFERENCE}
    assert syncable == set(specs.QBO_ENTITIES)
    assert all(specs.QBO_ENTITIES[name] is QBO_ENTITIES[name] for name in specs.QBO_ENTITIES)


def test_an_unknown_entity_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown QBO entity 'Budget' .*Customer"):
        qbo_entity("Budget")
    assert qbo_entity("Invoice") is QBO_ENTITIES["Invoice"]
