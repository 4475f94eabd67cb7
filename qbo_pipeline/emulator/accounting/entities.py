"""Per-entity rules of the QBO Accounting API: required fields, references, computed fields.

Pure functions over plain dicts: the backend (``models.py``) holds the state and calls these
with a :class:`Lookup` over one company's objects. Sources for the rules are Intuit's entity
reference pages (the "Required"/"Conditionally required" markers and the business rules of
each entity) unless a comment says otherwise.
"""

from __future__ import annotations

import calendar
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from qbo_pipeline.emulator.exceptions import (
    BusinessValidation,
    DuplicateName,
    EmailAddressRequired,
    IllegalCharacters,
    InvalidFieldValue,
    InvalidId,
    InvalidReference,
    ObjectNotFound,
    RequiredParameterMissing,
    SubLevelLimit,
)

NAME_ENTITIES = ("Customer", "Vendor", "Employee")  # one DisplayName namespace across them
MAX_CUSTOMER_LEVEL = 4  # a top-level customer is level 0; QBO allows 4 levels of sub-customers
MAX_DOC_NUMBER_LENGTH = 21
FIRST_DOC_NUMBER = 1001  # a new company's first invoice number
READ_ONLY_FIELDS = frozenset(
    {"Id", "SyncToken", "MetaData", "domain", "sparse", "FullyQualifiedName", "Level"}
)


# Fields QBO computes; whatever a request sends for them is ignored.
COMPUTED_FIELDS: dict[str, tuple[str, ...]] = {
    "Invoice": ("TotalAmt", "Balance", "LinkedTxn"),
    "CreditMemo": ("TotalAmt", "Balance", "RemainingCredit", "LinkedTxn"),
    "Purchase": ("TotalAmt",),
    "Bill": ("TotalAmt", "Balance"),
    "Deposit": ("TotalAmt",),
    "Payment": ("UnappliedAmt",),
    "Account": ("Classification", "CurrentBalance", "CurrentBalanceWithSubAccounts"),
    "Customer": ("BalanceWithJobs",),
    "Term": ("Type",),
}

# QBO's home currency reference, filled in on names and accounts a request leaves it off
# (the emulator's companies are single-currency US companies).
HOME_CURRENCY = {"value": "USD", "name": "United States Dollar"}


class Lookup(Protocol):
    """Read access to one company's live (not deleted) objects."""

    def get(self, entity: str, entity_id: str) -> dict[str, Any] | None: ...

    def all(self, entity: str) -> list[dict[str, Any]]: ...


Rule = Callable[[Lookup, dict[str, Any]], None]


@dataclass(frozen=True)
class EntitySpec:
    """How one QBO entity behaves: what it needs, what QBO computes, what may be done to it."""

    name: str
    kind: str  # "name" (names list), "transaction" or "reference" (read-only lists)
    required: tuple[tuple[str, ...], ...] = ()  # each group: at least one field must be present
    defaults: dict[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()  # validate and fill computed fields, in order
    voidable: bool = False
    in_cdc: bool = True
    auto_doc_number: bool = False
    doc_number_scope: str | None = None  # DocNumber unique per this ref (e.g. VendorRef) if set

    @property
    def path(self) -> str:
        return self.name.lower()

    @property
    def writable(self) -> bool:
        return self.kind != "reference"

    @property
    def deletable(self) -> bool:
        return self.kind == "transaction"

    @property
    def checks_doc_number(self) -> bool:
        return self.kind == "transaction" and self.name not in ("Payment", "TimeActivity")

    @property
    def numeric_ids(self) -> bool:
        """QBO numbers what the API writes; the read-only lists have ids like ``TAX``."""
        return self.writable


# --------------------------------------------------------------------------- small functions


def money(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except ArithmeticError as error:
        raise InvalidFieldValue(f"Amount {value!r} is not a number", "Amount") from error


def as_number(amount: Decimal) -> float | int:
    """QBO writes amounts as JSON numbers: 100 stays 100, 12.5 stays 12.5."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def lines(record: dict[str, Any]) -> list[dict[str, Any]]:
    found = record.get("Line") or []
    if not isinstance(found, list):
        raise InvalidFieldValue("Line must be a list of line objects", "Line")
    return found


def require(record: dict[str, Any], *names: str) -> None:
    if all(is_blank(record.get(name)) for name in names):
        raise RequiredParameterMissing(names[0] if len(names) == 1 else " or ".join(names))


# --------------------------------------------------------------------------- references

# Reference fields and the entity they point at. EntityRef (Purchase payee) carries its type.
REFERENCE_TARGETS: dict[str, str] = {
    "CustomerRef": "Customer",
    "VendorRef": "Vendor",
    "EmployeeRef": "Employee",
    "ItemRef": "Item",
    "ClassRef": "Class",
    "SalesTermRef": "Term",
    "TermRef": "Term",
    "TaxCodeRef": "TaxCode",
    "AccountRef": "Account",
    "IncomeAccountRef": "Account",
    "ExpenseAccountRef": "Account",
    "AssetAccountRef": "Account",
    "DepositToAccountRef": "Account",
    "ARAccountRef": "Account",
    "APAccountRef": "Account",
    "ParentRef": "",  # same entity as the record (Customer, Account, Class, Item)
}


def _references(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (field name, ref object) pair inside a record, lines included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in REFERENCE_TARGETS or key == "EntityRef":
                if isinstance(inner, dict):
                    yield key, inner
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _target_of(entity: str, key: str, ref: dict[str, Any]) -> str:
    if key == "ParentRef":
        return entity
    if key == "EntityRef":
        return str(ref.get("type") or "Vendor")
    return REFERENCE_TARGETS[key]


def resolve_references(entity: str, lookup: Lookup, record: dict[str, Any]) -> None:
    """Check every *Ref points at an existing, active object and fill in its name, as QBO does.

    A missing object is QBO's 2500 "Invalid Reference Id"; an inactive one is 610.
    """
    for key, ref in _references(record):
        ref_id = ref.get("value")
        if is_blank(ref_id):
            raise RequiredParameterMissing(f"{key}.value")
        target = _target_of(entity, key, ref)
        found = lookup.get(target, str(ref_id))
        if found is None:
            raise InvalidReference(
                f"Invalid Reference Id : {key} points at {target} Id={ref_id}, which does not "
                f"exist in this company",
                key,
            )
        if found.get("Active") is False:
            raise ObjectNotFound(target, str(ref_id))
        label = found.get("FullyQualifiedName") or found.get("DisplayName") or found.get("Name")
        if label:
            ref["name"] = label


# --------------------------------------------------------------------------- names lists

_NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
_ILLEGAL_NAME_CHARACTERS = re.compile(r"[:\t\n\r]")


def derive_display_name(lookup: Lookup, record: dict[str, Any]) -> None:
    """QBO builds DisplayName from the name parts, or the company name, when it is absent."""
    if is_blank(record.get("DisplayName")):
        person = " ".join(str(record[part]) for part in _NAME_PARTS if record.get(part))
        derived = person or record.get("CompanyName")
        if not derived:
            raise RequiredParameterMissing("DisplayName")
        record["DisplayName"] = str(derived)
    name = str(record["DisplayName"])
    if _ILLEGAL_NAME_CHARACTERS.search(name):
        raise IllegalCharacters("DisplayName", name)
    record.setdefault("PrintOnCheckName", name)


def unique_display_name(lookup: Lookup, record: dict[str, Any]) -> None:
    """DisplayName is unique across Customer, Vendor and Employee, ignoring case (6240).

    Inactive records keep their name, so they count too.
    """
    wanted = str(record["DisplayName"]).casefold()
    for entity in NAME_ENTITIES:
        for other in lookup.all(entity):
            # Ids come from one counter per company, so an equal Id is this very record.
            if other["Id"] != record.get("Id") and _folded(other.get("DisplayName")) == wanted:
                raise DuplicateName(other["Id"])


def _folded(value: Any) -> str:
    return str(value or "").casefold()


def unique_name(entity: str) -> Rule:
    """Items, accounts and classes have unique names within their own list (6240)."""

    def rule(lookup: Lookup, record: dict[str, Any]) -> None:
        wanted = str(record["Name"]).casefold()
        for other in lookup.all(entity):
            if other["Id"] != record.get("Id") and _folded(other.get("Name")) == wanted:
                raise DuplicateName(other["Id"], "Name")

    return rule


# Per hierarchy: the flag a child carries, whether QBO writes the flag as false on a top-level
# record (customers, accounts and classes show Job/SubAccount/SubClass false; a top-level
# item's response has no SubItem), and whether QBO shows Level (customers and items only,
# and only below the top: Intuit's samples of top-level records carry no Level).
_HIERARCHY_FLAGS: dict[str, tuple[str, bool, bool]] = {
    "Customer": ("Job", True, True),
    "Item": ("SubItem", False, True),
    "Account": ("SubAccount", True, False),
    "Class": ("SubClass", True, False),
}


def hierarchy(entity: str, label: str) -> Rule:
    """FullyQualifiedName "Parent:Child" (and Level) from ParentRef, as QBO computes them.

    Children carry ``Job: true`` (customers), ``SubItem`` / ``SubAccount`` / ``SubClass``.
    QBO allows at most 5 levels (levels 0 to 4). Names cannot hold ':', so a record's depth is
    the number of ':' in its parent's FullyQualifiedName plus one.
    """
    flag, flag_on_top, _ = _HIERARCHY_FLAGS[entity]

    def rule(lookup: Lookup, record: dict[str, Any]) -> None:
        parent_ref = record.get("ParentRef")
        name = str(record[label])
        record.pop("Level", None)
        if not parent_ref:
            if record.get(flag) is True:
                raise RequiredParameterMissing("ParentRef")
            if flag_on_top:
                record[flag] = False
            record["FullyQualifiedName"] = name
            return
        if record.get(flag) is not True:
            raise RequiredParameterMissing(flag)
        parent = lookup.get(entity, str(parent_ref.get("value")))
        if parent is None:  # resolve_references already reported unknown ids
            raise InvalidReference(f"ParentRef {parent_ref.get('value')} not found", "ParentRef")
        _refuse_cycle(lookup, entity, record, parent)
        level = depth_below(parent)
        if level > MAX_CUSTOMER_LEVEL:
            raise SubLevelLimit(
                f"{entity} {name!r} would be at level {level + 1}; QBO allows at most "
                f"{MAX_CUSTOMER_LEVEL + 1} levels (a parent and {MAX_CUSTOMER_LEVEL} levels of "
                f"sub-{entity.lower()}s)",
                "ParentRef",
            )
        place_under(entity, record, parent, label)

    return rule


def depth_below(parent: dict[str, Any]) -> int:
    """The level of a child of `parent` (0 is the top)."""
    return str(parent["FullyQualifiedName"]).count(":") + 1


def place_under(entity: str, record: dict[str, Any], parent: dict[str, Any], label: str) -> None:
    """A child's FullyQualifiedName, Level (where QBO shows it) and ParentRef name, from its
    parent as it is now: called on write and again when the parent is renamed or moved."""
    record["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{record[label]}"
    if _HIERARCHY_FLAGS[entity][2]:
        record["Level"] = depth_below(parent)
    record["ParentRef"] = {**record["ParentRef"], "name": parent["FullyQualifiedName"]}


def _refuse_cycle(lookup: Lookup, entity: str, record: dict[str, Any],
                  parent: dict[str, Any]) -> None:
    ancestor: dict[str, Any] | None = parent
    while ancestor is not None:
        if record.get("Id") and ancestor["Id"] == record["Id"]:
            raise BusinessValidation(
                f"{entity} Id={record['Id']} cannot be its own parent or ancestor", "ParentRef"
            )
        parent_ref = ancestor.get("ParentRef")
        ancestor = lookup.get(entity, str(parent_ref["value"])) if parent_ref else None


def no_colon_in(label: str) -> Rule:
    def rule(lookup: Lookup, record: dict[str, Any]) -> None:
        if _ILLEGAL_NAME_CHARACTERS.search(str(record[label])):
            raise IllegalCharacters(label, str(record[label]))

    return rule


ITEM_TYPES = ("Service", "NonInventory", "Inventory", "Category", "Group")
_SOLD_ITEM_TYPES = ("Service", "NonInventory", "Inventory")

# Which accounts an item's references may name. Intuit's Item page asks for "Sales of Product
# Income" and "Cost of Goods Sold" accounts, but QBO takes any income account (its sample
# service items post to "Landscaping Services", a new company's "Services" item to
# "Services") and, on the purchase side, expense accounts too; the asset account of an
# inventory item is an Other Current Asset one.
_ITEM_ACCOUNT_TYPES: dict[str, tuple[str, ...]] = {
    "IncomeAccountRef": ("Income", "Other Income"),
    "ExpenseAccountRef": ("Cost of Goods Sold", "Expense", "Other Expense"),
    "AssetAccountRef": ("Other Current Asset",),
}


def item_type(lookup: Lookup, record: dict[str, Any]) -> None:
    if record.get("Type") not in ITEM_TYPES:
        raise InvalidFieldValue(
            f"Item Type {record.get('Type')!r} is not one of {', '.join(ITEM_TYPES)}", "Type")


def item_defaults(lookup: Lookup, record: dict[str, Any]) -> None:
    """What QBO fills in on an item that is sold or bought (Intuit's Item samples: Taxable,
    UnitPrice and PurchaseCost 0, TrackQtyOnHand, the tax-included flags); a category or
    group item carries none of them."""
    if record["Type"] not in _SOLD_ITEM_TYPES:
        return
    for name, value in (("Taxable", False), ("SalesTaxIncluded", False),
                        ("PurchaseTaxIncluded", False), ("UnitPrice", 0), ("PurchaseCost", 0),
                        ("TrackQtyOnHand", record["Type"] == "Inventory")):
        if record.get(name) is None:
            record[name] = value


def item_accounts(lookup: Lookup, record: dict[str, Any]) -> None:
    """The accounts an item needs, and their types.

    A service or non-inventory item posts its sales to an income account; one that is only
    bought has an expense account instead. An inventory item needs the income, expense (cost
    of goods sold) and asset accounts, its quantity on hand and the date it starts from, and
    must track its quantity (QBO: "if Track quantity on hand is turned off, the item cannot be
    of type Inventory"). An account of the wrong type is QBO's "Invalid account type".
    """
    kind = record["Type"]
    if kind in ("Service", "NonInventory"):
        require(record, "IncomeAccountRef", "ExpenseAccountRef")
    elif kind == "Inventory":
        for name in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "QtyOnHand",
                     "InvStartDate"):
            require(record, name)
        if record.get("TrackQtyOnHand") is not True:
            raise BusinessValidation(
                "Business Validation Error: When you create an item, if Track quantity on "
                "hand is turned off, the item cannot be of type Inventory.", "TrackQtyOnHand")
    for name, allowed in _ITEM_ACCOUNT_TYPES.items():
        _refuse_account_type(lookup, record.get(name), allowed, name,
                             f"it must be one of: {', '.join(allowed)}", field=name)


_ACCOUNT_CLASSIFICATION = {
    "Bank": "Asset", "Other Current Asset": "Asset", "Fixed Asset": "Asset",
    "Other Asset": "Asset", "Accounts Receivable": "Asset",
    "Equity": "Equity",
    "Expense": "Expense", "Other Expense": "Expense", "Cost of Goods Sold": "Expense",
    "Accounts Payable": "Liability", "Credit Card": "Liability",
    "Long Term Liability": "Liability", "Other Current Liability": "Liability",
    "Income": "Revenue", "Other Income": "Revenue",
}


def account_classification(lookup: Lookup, record: dict[str, Any]) -> None:
    """Classification follows AccountType; balances are QBO's (read-only, and 0 here since the
    emulator does not post transactions to accounts)."""
    account_type = record.get("AccountType")
    if account_type not in _ACCOUNT_CLASSIFICATION:
        raise InvalidFieldValue(
            f"AccountType {account_type!r} is not one of: "
            + ", ".join(sorted(_ACCOUNT_CLASSIFICATION)),
            "AccountType",
        )
    record["Classification"] = _ACCOUNT_CLASSIFICATION[account_type]
    record["CurrentBalance"] = record["CurrentBalanceWithSubAccounts"] = 0


def term_due(lookup: Lookup, record: dict[str, Any]) -> None:
    """STANDARD terms count days (DueDays), DATE_DRIVEN ones name a day of the month; Intuit's
    Term sample shows a standard term's DiscountDays and DiscountPercent as 0 when not set."""
    require(record, "DueDays", "DayOfMonthDue")
    standard = record.get("DueDays") is not None
    record["Type"] = "STANDARD" if standard else "DATE_DRIVEN"
    if record.get("DiscountPercent") is None:
        record["DiscountPercent"] = 0
    if standard and record.get("DiscountDays") is None:
        record["DiscountDays"] = 0


def customer_taxable(lookup: Lookup, record: dict[str, Any]) -> None:
    """Customer reference, Taxable: "Default behavior with minor version 10 and above: true,
    if DefaultTaxCodeRef is defined or false if TaxExemptionReasonId is set" (and false when
    neither is, as Intuit's samples without a tax code show)."""
    if record.get("Taxable") is None:
        record["Taxable"] = (not is_blank(record.get("DefaultTaxCodeRef"))
                             and is_blank(record.get("TaxExemptionReasonId")))


def email_for_email_delivery(lookup: Lookup, record: dict[str, Any]) -> None:
    """QBO's 6420: a customer whose invoices are sent by email needs an email address."""
    address = (record.get("PrimaryEmailAddr") or {}).get("Address")
    if record.get("PreferredDeliveryMethod") == "Email" and is_blank(address):
        raise EmailAddressRequired()


# --------------------------------------------------------------------------- transactions

_LINE_DETAILS: dict[str, tuple[str, ...]] = {
    "Invoice": ("SalesItemLineDetail", "GroupLineDetail", "DescriptionOnly",
                "DiscountLineDetail", "SubTotalLineDetail"),
    "CreditMemo": ("SalesItemLineDetail", "DescriptionOnly", "DiscountLineDetail",
                   "SubTotalLineDetail"),
    "Purchase": ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail"),
    "Bill": ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail"),
    "Deposit": ("DepositLineDetail",),
}


def line_shapes(entity: str) -> Rule:
    """Each line names a DetailType allowed for the entity and carries that detail and Amount."""
    allowed = _LINE_DETAILS[entity]

    def rule(lookup: Lookup, record: dict[str, Any]) -> None:
        for position, line in enumerate(lines(record), start=1):
            detail_type = line.get("DetailType")
            where = f"Line[{position}]"
            if is_blank(detail_type):
                raise RequiredParameterMissing(f"{where}.DetailType")
            if detail_type not in allowed:
                raise InvalidFieldValue(
                    f"{where}.DetailType {detail_type!r} is not allowed on {entity}; use one of "
                    + ", ".join(allowed),
                    "DetailType",
                )
            needs_amount = detail_type not in ("DescriptionOnly", "SubTotalLineDetail",
                                               "GroupLineDetail")
            if needs_amount and line.get("Amount") is None:
                raise RequiredParameterMissing(f"{where}.Amount")
            if detail_type in ("AccountBasedExpenseLineDetail", "DepositLineDetail"):
                detail = line.get(detail_type) or {}
                if detail_type == "AccountBasedExpenseLineDetail" or not line.get("LinkedTxn"):
                    require(detail, "AccountRef")

    return rule


def number_lines(record: dict[str, Any]) -> None:
    """Lines sent with an Id keep it; new lines get the next free number, as QBO does."""
    used = [int(line["Id"]) for line in lines(record) if str(line.get("Id", "")).isdigit()]
    next_id = max(used, default=0) + 1
    for line in lines(record):
        if is_blank(line.get("Id")):
            line["Id"] = str(next_id)
            next_id += 1
        line["LineNum"] = int(line["Id"])


def sales_totals(lookup: Lookup, record: dict[str, Any]) -> None:
    """TotalAmt = sale lines - discounts + tax; the SubTotalLine is recomputed and appended."""
    kept = [line for line in lines(record) if line.get("DetailType") != "SubTotalLineDetail"]
    record["Line"] = kept
    number_lines(record)
    subtotal = sum((money(line.get("Amount")) for line in kept
                    if line.get("DetailType") == "SalesItemLineDetail"), Decimal(0))
    discount = sum((money(line.get("Amount")) for line in kept
                    if line.get("DetailType") == "DiscountLineDetail"), Decimal(0))
    tax = money((record.get("TxnTaxDetail") or {}).get("TotalTax"))
    kept.append({"Amount": as_number(subtotal), "DetailType": "SubTotalLineDetail",
                 "SubTotalLineDetail": {}})
    record["TotalAmt"] = as_number(subtotal - discount + tax)


# Intuit's Invoice reference: PrintStatus and EmailStatus take these values, NotSet by default.
PRINT_STATUSES = ("NotSet", "NeedToPrint", "PrintComplete")
EMAIL_STATUSES = ("NotSet", "NeedToSend", "EmailSent")


def invoice_statuses(lookup: Lookup, record: dict[str, Any]) -> None:
    for name, allowed in (("PrintStatus", PRINT_STATUSES), ("EmailStatus", EMAIL_STATUSES)):
        if record.get(name) not in allowed:
            raise InvalidFieldValue(f"{name} {record.get(name)!r} must be one of "
                                    + ", ".join(allowed), name)


def due_date(lookup: Lookup, record: dict[str, Any]) -> None:
    """Intuit's Invoice reference: DueDate, when not sent, is "calculated based on the sales
    terms" (SalesTermRef), else it is the TxnDate (the models date a record today first)."""
    term_ref = record.get("SalesTermRef")
    _fill_due_date(lookup, record, term_ref if isinstance(term_ref, dict) else None)


def bill_due_date(lookup: Lookup, record: dict[str, Any]) -> None:
    """A bill without a DueDate is due by its term (the bill's SalesTermRef, else the
    vendor's TermRef) counted from TxnDate, or on TxnDate itself without one."""
    term_ref = record.get("SalesTermRef")
    if not isinstance(term_ref, dict):
        vendor = lookup.get("Vendor", str((record.get("VendorRef") or {}).get("value")))
        term_ref = (vendor or {}).get("TermRef")
    _fill_due_date(lookup, record, term_ref if isinstance(term_ref, dict) else None)


def _fill_due_date(lookup: Lookup, record: dict[str, Any],
                   term_ref: dict[str, Any] | None) -> None:
    if not is_blank(record.get("DueDate")) or is_blank(record.get("TxnDate")):
        return
    try:
        txn_date = date.fromisoformat(str(record["TxnDate"]))
    except ValueError:
        raise InvalidFieldValue(f"TxnDate {record['TxnDate']!r} is not a date (yyyy-MM-dd)",
                                "TxnDate") from None
    term = lookup.get("Term", str(term_ref.get("value"))) if term_ref is not None else None
    record["DueDate"] = _due_by_term(txn_date, term).isoformat()


def _due_by_term(txn_date: date, term: dict[str, Any] | None) -> date:
    """A standard term's DueDays after the date; a date-driven term's DayOfMonthDue, on or
    after the date (the last day of a shorter month); no term: the date itself."""
    if term is None:
        return txn_date
    if term.get("DueDays") is not None:
        return txn_date + timedelta(days=int(term["DueDays"]))
    day = int(term.get("DayOfMonthDue") or txn_date.day)
    year, month = txn_date.year, txn_date.month
    if day < txn_date.day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def line_totals(lookup: Lookup, record: dict[str, Any]) -> None:
    number_lines(record)
    total = sum((money(line.get("Amount")) for line in lines(record)), Decimal(0))
    record["TotalAmt"] = as_number(total)


def open_balance(lookup: Lookup, record: dict[str, Any]) -> None:
    """Bills start fully open (bill payments are not emulated)."""
    record["Balance"] = record["TotalAmt"]


def open_credit(lookup: Lookup, record: dict[str, Any]) -> None:
    """A new credit memo has all its credit remaining; the payments that apply it lower
    RemainingCredit (and Balance, which QBO keeps equal to it) after validation."""
    record["Balance"] = record["RemainingCredit"] = record["TotalAmt"]


# Where a purchase is paid from, by PaymentType (Intuit's Purchase reference, AccountRef:
# "Check - bank account, CreditCard - credit card account"; cash leaves a bank account too).
PAYMENT_ACCOUNT_TYPES: dict[str, tuple[str, ...]] = {
    "Cash": ("Bank",), "Check": ("Bank",), "CreditCard": ("Credit Card",),
}
# The accounts an expense line (AccountBasedExpenseLineDetail) may post to.
EXPENSE_ACCOUNT_TYPES = ("Expense", "Other Expense", "Cost of Goods Sold")


def purchase_payment_type(lookup: Lookup, record: dict[str, Any]) -> None:
    if record.get("PaymentType") not in PAYMENT_ACCOUNT_TYPES:
        raise InvalidFieldValue(
            f"PaymentType {record.get('PaymentType')!r} is not one of Cash, Check, CreditCard",
            "PaymentType",
        )


# What a payment line may link: an invoice it pays, or a credit memo whose credit it uses.
# Intuit's Payment reference: a credit memo is applied to an invoice by a payment whose lines
# link both, the credit's line counting against the invoice's (TotalAmt 0 when the credit
# covers the whole amount applied).
APPLIED_TYPES = ("Invoice", "CreditMemo")


def payment_account(lookup: Lookup, record: dict[str, Any]) -> None:
    """A purchase's AccountRef is the account it is paid from: a bank account for a check or
    cash, a credit card account for a card (6000 otherwise, as QBO refuses it)."""
    allowed = PAYMENT_ACCOUNT_TYPES[str(record["PaymentType"])]
    _refuse_account_type(lookup, record.get("AccountRef"), allowed, "AccountRef",
                         _needs(f"a {record['PaymentType']} purchase is paid from", allowed))


def expense_line_accounts(lookup: Lookup, record: dict[str, Any]) -> None:
    """Each expense line posts to an expense, other expense or cost of goods sold account."""
    for position, line in enumerate(lines(record), start=1):
        detail = line.get("AccountBasedExpenseLineDetail")
        if isinstance(detail, dict):
            _refuse_account_type(lookup, detail.get("AccountRef"), EXPENSE_ACCOUNT_TYPES,
                                 f"Line[{position}].AccountBasedExpenseLineDetail.AccountRef",
                                 _needs("an expense line posts to", EXPENSE_ACCOUNT_TYPES))


def _refuse_account_type(lookup: Lookup, ref: Any, allowed: tuple[str, ...], where: str,
                         rule: str, field: str = "AccountRef") -> None:
    """6000 "Invalid account type" when `ref` (the reference at `where`) names an account of
    none of the `allowed` types; `rule` says which it needs, `field` is the fault's element."""
    if not isinstance(ref, dict) or is_blank(ref.get("value")):
        return
    account = lookup.get("Account", str(ref["value"]))
    if account is not None and account.get("AccountType") not in allowed:
        raise BusinessValidation(
            "Business Validation Error: Invalid account type: You need to select a different "
            f"type of account for this transaction. {where} points at Account "
            f"Id={account['Id']} ({account.get('Name')!r}), a {account.get('AccountType')} "
            f"account; {rule}", field)


def _needs(what: str, allowed: tuple[str, ...]) -> str:
    return f"{what} an account of type: {', '.join(allowed)}"


ACCOUNTS_PAYABLE = "Accounts Payable"


def payables_account(lookup: Lookup, record: dict[str, Any]) -> None:
    """A bill is owed through an Accounts Payable account: QBO fills in the company's A/P
    account when the bill names none (Intuit's Bill sample: APAccountRef "Accounts Payable
    (A/P)"), and refuses one of another type."""
    ref = record.get("APAccountRef")
    if not isinstance(ref, dict) or is_blank(ref.get("value")):
        payable = next((account for account in lookup.all("Account")
                        if account.get("AccountType") == ACCOUNTS_PAYABLE), None)
        if payable is not None:
            record["APAccountRef"] = {"value": payable["Id"], "name": payable["Name"]}
        return
    _refuse_account_type(lookup, ref, (ACCOUNTS_PAYABLE,), "APAccountRef",
                         _needs("a bill is owed on", (ACCOUNTS_PAYABLE,)))


def expense_line_defaults(lookup: Lookup, record: dict[str, Any]) -> None:
    """Intuit's Purchase and Bill samples show an expense line's BillableStatus NotBillable when
    none was sent; a Billable line must name the customer it is billed to (6000)."""
    for position, line in enumerate(lines(record), start=1):
        detail = line.get(str(line.get("DetailType")))
        if not isinstance(detail, dict) or line.get("DetailType") not in (
                "AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail"):
            continue
        detail.setdefault("BillableStatus", "NotBillable")
        if detail["BillableStatus"] == "Billable" and is_blank(detail.get("CustomerRef")):
            raise BusinessValidation(
                f"Business Validation Error: Line[{position}] is Billable but names no "
                "CustomerRef: a billable expense is billed to a customer", "BillableStatus")


def deposit_to_bank(lookup: Lookup, record: dict[str, Any]) -> None:
    """A Deposit goes into a Bank account (6000 "Invalid account type" otherwise)."""
    _refuse_account_type(lookup, record.get("DepositToAccountRef"), ("Bank",),
                         "DepositToAccountRef", _needs("a deposit goes into", ("Bank",)))


def deposit_links(lookup: Lookup, record: dict[str, Any]) -> None:
    """A line linked to a payment (LinkedTxn TxnType Payment) moves that payment out of
    Undeposited Funds: the payment exists (2500), waits there (6000: one deposited to a bank
    account already is not deposited again, nor is one another deposit holds) and the line
    deposits its whole amount (6000)."""
    for position, line in enumerate(lines(record), start=1):
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") != "Payment":
                continue
            payment = lookup.get("Payment", str(link.get("TxnId")))
            if payment is None:
                raise InvalidReference(
                    f"Invalid Reference Id : Line[{position}].LinkedTxn points at Payment "
                    f"Id={link.get('TxnId')}, which does not exist", "LinkedTxn")
            _check_undeposited(lookup, record, position, payment)
            if money(line.get("Amount")) != money(payment.get("TotalAmt")):
                raise BusinessValidation(
                    f"Line[{position}] deposits {money(line.get('Amount'))} of Payment "
                    f"Id={payment['Id']}, whose amount is {money(payment.get('TotalAmt'))}: a "
                    "payment is deposited whole", "Amount")


def _check_undeposited(lookup: Lookup, deposit: dict[str, Any], position: int,
                       payment: dict[str, Any]) -> None:
    account = lookup.get("Account", str((payment.get("DepositToAccountRef") or {}).get("value")))
    held_by = next((other["Id"] for other in lookup.all("Deposit")
                    if other["Id"] != deposit.get("Id") and payment["Id"] in _deposited(other)),
                   None)
    if account is None or account.get("AccountSubType") != UNDEPOSITED_FUNDS_SUBTYPE:
        where = "another account"
    elif held_by is not None:
        where = f"Deposit Id={held_by}"
    else:
        return
    raise BusinessValidation(
        f"Business Validation Error: Line[{position}] links Payment Id={payment['Id']}, which "
        f"is not in Undeposited Funds (it is in {where}): a payment is deposited once",
        "LinkedTxn")


def _deposited(deposit: dict[str, Any]) -> set[str]:
    """The Ids of the payments a deposit's lines link."""
    return {str(link.get("TxnId")) for line in lines(deposit)
            for link in line.get("LinkedTxn") or [] if link.get("TxnType") == "Payment"}


def payment_lines(lookup: Lookup, record: dict[str, Any]) -> None:
    """Payment lines apply amounts to invoices of the same customer and use credit memos of
    that customer; what the invoices get beyond the credits comes from TotalAmt, whose rest
    stays unapplied."""
    number_lines(record)
    for position, line in enumerate(lines(record), start=1):
        amount = money(line.get("Amount"))
        for link in line.get("LinkedTxn") or []:
            _check_payment_link(lookup, record, position, link, amount)
    charged = sum(applied_amounts(record, "Invoice").values(), Decimal(0))
    credited = sum(applied_amounts(record, "CreditMemo").values(), Decimal(0))
    if credited > charged:
        raise BusinessValidation(
            f"The payment uses {credited} of credit but applies only {charged} to invoices; "
            "a credit is used against an invoice of the same payment", "Line")
    total = money(record.get("TotalAmt"))
    if charged - credited > total:
        raise BusinessValidation(
            f"The payment lines apply {charged - credited} beyond the credits used but "
            f"TotalAmt is {total}; TotalAmt must cover every line",
            "TotalAmt",
        )
    record["UnappliedAmt"] = as_number(total - (charged - credited))


def _check_payment_link(lookup: Lookup, payment: dict[str, Any], position: int,
                        link: dict[str, Any], amount: Decimal) -> None:
    txn_type = link.get("TxnType")
    if txn_type not in APPLIED_TYPES:
        raise InvalidFieldValue(
            f"Line[{position}].LinkedTxn TxnType {txn_type!r} must be Invoice or "
            "CreditMemo", "LinkedTxn")
    linked = lookup.get(str(txn_type), str(link.get("TxnId")))
    if linked is None:
        raise InvalidReference(
            f"Invalid Reference Id : Line[{position}].LinkedTxn points at {txn_type} "
            f"Id={link.get('TxnId')}, which does not exist", "LinkedTxn")
    if linked["CustomerRef"]["value"] != payment["CustomerRef"]["value"]:
        raise BusinessValidation(
            f"{txn_type} Id={linked['Id']} belongs to customer "
            f"{linked['CustomerRef']['value']}, not to the payment's customer "
            f"{payment['CustomerRef']['value']}", "LinkedTxn")
    open_amount = money(linked.get("TotalAmt")) - applied_by_others(lookup, payment, linked,
                                                                   str(txn_type))
    if amount > open_amount:
        # QBO's 6000 detail for this rule starts "The payments you entered add up to more"
        # (as integrators' help pages quote it); the rest says which line, invoice and balance.
        what = "open balance" if txn_type == "Invoice" else "remaining credit"
        raise BusinessValidation(
            f"Business Validation Error: The payments you entered add up to more than the "
            f"{what}: Line[{position}] applies {amount} to {txn_type} "
            f"Id={linked['Id']}, whose {what} is {open_amount}", "Amount")


# Where a payment's money may go: QBO deposits to a bank account or to Undeposited Funds
# (an Other Current Asset account), whose payments a later Deposit moves to the bank.
DEPOSIT_ACCOUNT_TYPES = ("Bank", "Other Current Asset")
UNDEPOSITED_FUNDS_SUBTYPE = "UndepositedFunds"


def deposit_account(lookup: Lookup, record: dict[str, Any]) -> None:
    """A payment that names no account goes to Undeposited Funds, as in QBO; one that names
    an account must name a bank or other current asset account."""
    ref = record.get("DepositToAccountRef")
    if not isinstance(ref, dict) or is_blank(ref):
        funds = next((account for account in lookup.all("Account")
                      if account.get("AccountSubType") == UNDEPOSITED_FUNDS_SUBTYPE), None)
        if funds is not None:
            record["DepositToAccountRef"] = {"value": funds["Id"], "name": funds["Name"]}
        return
    account = lookup.get("Account", str(ref.get("value")))
    if account is not None and account.get("AccountType") not in DEPOSIT_ACCOUNT_TYPES:
        raise BusinessValidation(
            f"DepositToAccountRef points at Account Id={account['Id']} ({account.get('Name')}), "
            f"an {account.get('AccountType')} account: a payment is deposited to a Bank or "
            "Other Current Asset account", "DepositToAccountRef")


def applied_by_others(lookup: Lookup, payment: dict[str, Any], linked: dict[str, Any],
                      txn_type: str = "Invoice") -> Decimal:
    """What every other payment already applies to this invoice (or uses of this credit)."""
    return sum(
        (applied_amounts(other, txn_type).get(str(linked["Id"]), Decimal(0))
         for other in lookup.all("Payment") if other["Id"] != payment.get("Id")),
        Decimal(0),
    )


def applied_amounts(payment: dict[str, Any], txn_type: str = "Invoice") -> dict[str, Decimal]:
    """Id of each linked transaction of `txn_type` (Invoice, CreditMemo) -> the amount this
    payment applies to it (for a credit memo: the credit it uses)."""
    applied: dict[str, Decimal] = {}
    for line in lines(payment):
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") == txn_type:
                key = str(link.get("TxnId"))
                applied[key] = applied.get(key, Decimal(0)) + money(line.get("Amount"))
    return applied


def time_activity(lookup: Lookup, record: dict[str, Any]) -> None:
    """NameOf says who worked (Employee or Vendor, with the matching ref); then the duration."""
    name_of = record.get("NameOf")
    if name_of not in ("Employee", "Vendor"):
        if is_blank(name_of):
            raise RequiredParameterMissing("NameOf")
        raise InvalidFieldValue(f"NameOf {name_of!r} must be Employee or Vendor", "NameOf")
    require(record, f"{name_of}Ref")
    has_duration = not is_blank(record.get("Hours")) or not is_blank(record.get("Minutes"))
    has_span = not is_blank(record.get("StartTime")) and not is_blank(record.get("EndTime"))
    if not (has_duration or has_span):
        raise RequiredParameterMissing("Hours or Minutes, or StartTime and EndTime")


# --------------------------------------------------------------------------- the catalog


def _name_rules() -> tuple[Rule, ...]:
    return (derive_display_name, unique_display_name)


def _build_specs() -> dict[str, EntitySpec]:
    # Defaults are what Intuit's sample responses show on a record created without them.
    active = {"Active": True}
    specs = [
        EntitySpec("Customer", "name",
                   defaults={**active, "BillWithParent": False, "Balance": 0,
                             "BalanceWithJobs": 0, "CurrencyRef": HOME_CURRENCY,
                             "PreferredDeliveryMethod": "Print"},
                   rules=(*_name_rules(), customer_taxable, email_for_email_delivery,
                          hierarchy("Customer", "DisplayName"))),
        EntitySpec("Vendor", "name",
                   defaults={**active, "Vendor1099": False, "Balance": 0,
                             "CurrencyRef": HOME_CURRENCY},
                   rules=_name_rules()),
        EntitySpec("Employee", "name", defaults={**active, "BillableTime": False},
                   rules=_name_rules()),
        EntitySpec("Item", "name", required=(("Name",), ("Type",)), defaults=dict(active),
                   rules=(no_colon_in("Name"), unique_name("Item"), item_type, item_defaults,
                          item_accounts, hierarchy("Item", "Name"))),
        EntitySpec("Account", "name", required=(("Name",), ("AccountType",)),
                   defaults={**active, "CurrencyRef": HOME_CURRENCY},
                   rules=(no_colon_in("Name"), unique_name("Account"), account_classification,
                          hierarchy("Account", "Name"))),
        EntitySpec("Class", "name", required=(("Name",),), defaults=dict(active),
                   rules=(no_colon_in("Name"), unique_name("Class"), hierarchy("Class", "Name"))),
        EntitySpec("Term", "name", required=(("Name",),), defaults=dict(active),
                   rules=(unique_name("Term"), term_due)),
        # Intuit's CDC page: CDC serves every entity but JournalCode, TaxAgency,
        # TimeActivity, TaxCode and TaxRate.
        EntitySpec("TaxCode", "reference", in_cdc=False),
        EntitySpec("CompanyInfo", "reference", in_cdc=False),
        EntitySpec("Invoice", "transaction", required=(("CustomerRef",), ("Line",)),
                   defaults={"CurrencyRef": HOME_CURRENCY, "PrintStatus": "NotSet",
                             "EmailStatus": "NotSet", "ApplyTaxAfterDiscount": False},
                   rules=(line_shapes("Invoice"), sales_totals, invoice_statuses, due_date),
                   voidable=True,
                   auto_doc_number=True),
        EntitySpec("CreditMemo", "transaction", required=(("CustomerRef",), ("Line",)),
                   defaults={"CurrencyRef": HOME_CURRENCY},
                   rules=(line_shapes("CreditMemo"), sales_totals, open_credit),
                   auto_doc_number=True),
        EntitySpec("Payment", "transaction", required=(("CustomerRef",), ("TotalAmt",)),
                   defaults={"ProcessPayment": False},
                   rules=(payment_lines, deposit_account), voidable=True),
        EntitySpec("Purchase", "transaction",
                   required=(("PaymentType",), ("AccountRef",), ("Line",)),
                   defaults={"CurrencyRef": HOME_CURRENCY},
                   rules=(purchase_payment_type, payment_account, line_shapes("Purchase"),
                          expense_line_defaults, expense_line_accounts, line_totals)),
        EntitySpec("Bill", "transaction", required=(("VendorRef",), ("Line",)),
                   defaults={"CurrencyRef": HOME_CURRENCY},
                   rules=(payables_account, bill_due_date, line_shapes("Bill"),
                          expense_line_defaults, expense_line_accounts, line_totals,
                          open_balance),
                   doc_number_scope="VendorRef"),
        EntitySpec("Deposit", "transaction", required=(("DepositToAccountRef",), ("Line",)),
                   rules=(deposit_to_bank, line_shapes("Deposit"), deposit_links,
                          line_totals)),
        EntitySpec("TimeActivity", "transaction", rules=(time_activity,), in_cdc=False),
    ]
    return {spec.name: spec for spec in specs}


ENTITY_SPECS: dict[str, EntitySpec] = _build_specs()
ENTITIES_BY_PATH: dict[str, EntitySpec] = {spec.path: spec for spec in ENTITY_SPECS.values()}
QUERYABLE_ENTITIES: tuple[str, ...] = tuple(ENTITY_SPECS)


def spec_for(entity: str) -> EntitySpec | None:
    """The spec for an entity named in any case ("invoice", "Invoice", "INVOICE")."""
    return ENTITIES_BY_PATH.get(entity.lower())


def check_required(spec: EntitySpec, record: dict[str, Any]) -> None:
    for group in spec.required:
        require(record, *group)
    if spec.name in ("Invoice", "CreditMemo", "Purchase", "Bill", "Deposit") and not [
        line for line in lines(record) if line.get("DetailType") != "SubTotalLineDetail"
    ]:
        raise RequiredParameterMissing("Line")


def apply_rules(spec: EntitySpec, lookup: Lookup, record: dict[str, Any]) -> None:
    """Validate a record about to be stored and fill QBO's computed fields (in place)."""
    for name, value in spec.defaults.items():
        if record.get(name) is None:
            record[name] = copy.deepcopy(value)  # a default is never shared between records
    check_required(spec, record)
    doc_number = record.get("DocNumber")
    if doc_number is not None and len(str(doc_number)) > MAX_DOC_NUMBER_LENGTH:
        raise InvalidFieldValue(
            f"String length is too long: DocNumber {doc_number!r} has {len(str(doc_number))} "
            f"characters, at most {MAX_DOC_NUMBER_LENGTH} are allowed", "DocNumber")
    resolve_references(spec.name, lookup, record)
    for rule in spec.rules:
        rule(lookup, record)


def check_id(spec: EntitySpec, entity_id: Any) -> str:
    """The Id as text; QBO's 2030 "Invalid ID" when an entity that QBO numbers is named by
    something that is not a number (``/customer/abc``, ``"Id": "x"``)."""
    text = str(entity_id)
    if spec.numeric_ids and not text.isdigit():
        raise InvalidId(text)
    return text
