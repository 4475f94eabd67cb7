"""Mapping specs: typed models of `mapping_specs/*.yaml` and their loader."""

from qbo_pipeline.specs.entities import QBO_ENTITIES, DeleteAction, EntityKind, QboEntity
from qbo_pipeline.specs.loader import SpecError, SpecSet, load_spec, load_specs, parse_spec
from qbo_pipeline.specs.models import (
    Condition,
    ConflictPolicy,
    ConflictSpec,
    Direction,
    EntitySpec,
    FieldMapping,
    LinesSpec,
    LookupTarget,
    MappingKind,
    RefTarget,
    SettingSpec,
    SourceSpec,
    TaxLineSpec,
    ValueType,
)

__all__ = [
    "QBO_ENTITIES",
    "Condition",
    "ConflictPolicy",
    "ConflictSpec",
    "DeleteAction",
    "Direction",
    "EntityKind",
    "EntitySpec",
    "FieldMapping",
    "LinesSpec",
    "LookupTarget",
    "MappingKind",
    "QboEntity",
    "RefTarget",
    "SettingSpec",
    "SourceSpec",
    "SpecError",
    "SpecSet",
    "TaxLineSpec",
    "ValueType",
    "load_spec",
    "load_specs",
    "parse_spec",
]
