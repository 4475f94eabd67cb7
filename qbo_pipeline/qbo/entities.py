"""The catalog of QBO entities: what each one is and what QBO lets be done with it.

The one place that says which entities are names lists, which transactions can be voided or
carry lines, which ones the ChangeDataCapture endpoint serves and which have an ``Active``
flag; ``fields.py`` beside it says which fields each one has. Plain data that imports nothing
of ours but ``fields.py``, so that ``specs/`` (checking a spec's
``qbo_entity`` and ``on_source_delete``) and the client (choosing CDC or a query) read the same
facts. The emulator models QBO on its own (it must not import the pipeline) and a test checks
that it agrees with this catalog entity by entity.

Sources: Intuit's entity reference pages, and its change data capture page, which lists the
entities CDC does not serve (JournalCode, TaxAgency, TimeActivity, TaxCode, TaxRate).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from qbo_pipeline.qbo.fields import ENTITY_FIELDS, EntityFields


class EntityKind(StrEnum):
    NAMES_LIST = "names-list"  # Customer, Item, Account...: made inactive, never deleted
    TRANSACTION = "transaction"  # Invoice, Bill, TimeActivity...: deleted, or voided
    REFERENCE = "reference"  # company data such as CompanyInfo: read, never synced


class DeleteAction(StrEnum):
    """What a spec does in QBO when its source record is deleted."""

    INACTIVATE = "inactivate"
    VOID = "void"
    DELETE = "delete"
    # Nothing is written to QBO: the record is reported once, for a person to delete or void
    # by hand (seed 004: "Contractors Cloud contains no deletion functionality in QuickBooks").
    REPORT = "report"
    IGNORE = "ignore"


@dataclass(frozen=True)
class QboEntity:
    """One QBO entity.

    ``creatable`` is False for lists QBO fills itself (tax codes and rates come from the tax
    service, CompanyInfo from sign-up): the API reads them but creates none.
    """

    name: str
    kind: EntityKind
    voidable: bool = False
    has_lines: bool = False
    in_cdc: bool = True
    creatable: bool = True

    @property
    def fields(self) -> EntityFields:
        """The entity's fields and their parts (``qbo_pipeline.qbo.fields``)."""
        return ENTITY_FIELDS[self.name]

    @property
    def has_active(self) -> bool:
        """Names lists carry ``Active``; QBO's query leaves inactive records out unless the
        query filters on it."""
        return self.kind is EntityKind.NAMES_LIST

    @property
    def delete_actions(self) -> tuple[DeleteAction, ...]:
        """The ``on_source_delete`` actions possible for this entity."""
        if self.kind is EntityKind.NAMES_LIST:
            return (DeleteAction.INACTIVATE, DeleteAction.IGNORE)
        if self.kind is EntityKind.REFERENCE:
            return (DeleteAction.IGNORE,)
        # A voidable transaction is voided, never deleted: deleting breaks the audit trail
        # and the sync link (seed 001: "Never delete a synced invoice in QuickBooks").
        if self.voidable:
            return (DeleteAction.VOID, DeleteAction.REPORT, DeleteAction.IGNORE)
        return (DeleteAction.DELETE, DeleteAction.REPORT, DeleteAction.IGNORE)


def _names_lists(*names: str) -> list[QboEntity]:
    return [QboEntity(name, EntityKind.NAMES_LIST) for name in names]


def _transactions(*names: str, voidable: bool) -> list[QboEntity]:
    return [QboEntity(name, EntityKind.TRANSACTION, voidable, has_lines=True)
            for name in names]


_ENTITIES: list[QboEntity] = [
    *_names_lists("Account", "Class", "Customer", "Department", "Employee", "Item",
                  "PaymentMethod", "Term", "Vendor"),
    # Tax codes and rates: names lists CDC does not serve, which only QBO's tax service creates.
    *(QboEntity(name, EntityKind.NAMES_LIST, in_cdc=False, creatable=False)
      for name in ("TaxCode", "TaxRate")),
    *_transactions("BillPayment", "Invoice", "Payment", "SalesReceipt", voidable=True),
    *_transactions("Bill", "CreditMemo", "Deposit", "Estimate", "JournalEntry", "Purchase",
                   "PurchaseOrder", "RefundReceipt", "VendorCredit", voidable=False),
    # No Line array: a time entry is one duration, a transfer one amount between accounts.
    QboEntity("TimeActivity", EntityKind.TRANSACTION, in_cdc=False),
    QboEntity("Transfer", EntityKind.TRANSACTION),
    QboEntity("CompanyInfo", EntityKind.REFERENCE, in_cdc=False, creatable=False),
]

QBO_ENTITIES: dict[str, QboEntity] = {entity.name: entity for entity in _ENTITIES}
# The lists whose DisplayName is unique across all three, inactive records included (6240),
# and its longest length (Intuit's entity reference: "max 500 chars").
DISPLAY_NAME_ENTITIES = ("Customer", "Vendor", "Employee")
DISPLAY_NAME_MAX_LENGTH = 500
CDC_ENTITIES: frozenset[str] = frozenset(e.name for e in _ENTITIES if e.in_cdc)


def qbo_entity(name: str) -> QboEntity:
    """The catalog entry of an entity, by its exact QBO name ("Invoice")."""
    entity = QBO_ENTITIES.get(name)
    if entity is None:
        known = ", ".join(sorted(QBO_ENTITIES))
        raise ValueError(f"unknown QBO entity {name!r} (known: {known})")
    return entity


def newer_sync_token(first: str | None, second: str | None) -> str | None:
    """The later of two SyncTokens of one record: QBO counts them up from 0 with each save."""
    known = [token for token in (first, second) if token is not None]
    if not known:
        return None
    return max(known, key=lambda token: int(token) if token.isdigit() else -1)
