"""The QBO entities a spec can sync, from the catalog in ``qbo_pipeline.qbo.entities``.

QBO never lets a names-list record (Customer, Vendor, Employee, Item...) be deleted: it can
only be made inactive. Some transactions can be voided, which keeps the audit trail; the
others can only be deleted. The specs are checked against this catalog at load time.
Reference data such as CompanyInfo is read, never synced: it is left out here, so that a spec
naming it is refused as an unknown entity.
"""

from __future__ import annotations

from qbo_pipeline.qbo.entities import QBO_ENTITIES as QBO_CATALOG
from qbo_pipeline.qbo.entities import DeleteAction, EntityKind, QboEntity

QBO_ENTITIES: dict[str, QboEntity] = {
    name: entity for name, entity in QBO_CATALOG.items()
    if entity.kind is not EntityKind.REFERENCE
}

__all__ = ["QBO_ENTITIES", "DeleteAction", "EntityKind", "QboEntity"]
