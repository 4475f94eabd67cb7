"""What each QBO entity allows when its source record is deleted.

QBO never lets a names-list record (Customer, Vendor, Employee, Item...) be deleted: it can
only be made inactive. Some transactions can be voided, which keeps the audit trail; the
others can only be deleted. The specs are checked against this catalog at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EntityKind(StrEnum):
    NAMES_LIST = "names-list"
    TRANSACTION = "transaction"


class DeleteAction(StrEnum):
    """What a spec does in QBO when its source record is deleted."""

    INACTIVATE = "inactivate"
    VOID = "void"
    DELETE = "delete"
    IGNORE = "ignore"


@dataclass(frozen=True)
class QboEntity:
    name: str
    kind: EntityKind
    voidable: bool = False

    @property
    def delete_actions(self) -> tuple[DeleteAction, ...]:
        """The `on_source_delete` actions QBO supports for this entity."""
        if self.kind is EntityKind.NAMES_LIST:
            return (DeleteAction.INACTIVATE, DeleteAction.IGNORE)
        # A voidable transaction is voided, never deleted: deleting breaks the audit trail
        # and the sync link (seed 001: "Never delete a synced invoice in QuickBooks").
        if self.voidable:
            return (DeleteAction.VOID, DeleteAction.IGNORE)
        return (DeleteAction.DELETE, DeleteAction.IGNORE)

    @property
    def has_lines(self) -> bool:
        return self.kind is EntityKind.TRANSACTION and self.name not in ("TimeActivity",
                                                                         "Transfer")


def _names_list(*names: str) -> dict[str, QboEntity]:
    return {name: QboEntity(name, EntityKind.NAMES_LIST) for name in names}


def _transactions(*names: str, voidable: bool) -> dict[str, QboEntity]:
    return {name: QboEntity(name, EntityKind.TRANSACTION, voidable) for name in names}


QBO_ENTITIES: dict[str, QboEntity] = {
    **_names_list(
        "Account", "Class", "Customer", "Department", "Employee", "Item", "PaymentMethod",
        "TaxCode", "TaxRate", "Term", "Vendor",
    ),
    **_transactions("BillPayment", "Invoice", "Payment", "SalesReceipt", voidable=True),
    **_transactions(
        "Bill", "CreditMemo", "Deposit", "Estimate", "JournalEntry", "Purchase",
        "PurchaseOrder", "RefundReceipt", "TimeActivity", "Transfer", "VendorCredit",
        voidable=False,
    ),
}
