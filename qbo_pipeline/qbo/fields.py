"""The fields of each QBO entity, as the Accounting API spells them, and their nested parts.

The one place that says which field paths exist: a spec's `BillAddr.Line1`, a lookup's `by`,
an auto-apply rule's `Balance` are checked against it at load time, so that a misspelt field
(`CompanyNmae`) is refused with the nearest real name instead of being sent to QBO, which
ignores or refuses it. Plain data that imports nothing of ours, beside the entity catalog in
``entities.py`` (``QboEntity.fields`` reads it). The emulator models QBO on its own and a test
checks that every field it names is here.

A field is a plain value (``None``: text, number, date, flag, or an object only ever mapped
whole), an :class:`Aggregate` of named parts (an address, a reference ``{value, name}``), or a
:class:`ListOf` aggregates (``Line``, ``LinkedTxn``), whose items a path reaches by position:
``Line[0].LinkedTxn[0].TxnId``.

Sources: Intuit's entity reference pages of the Accounting API (attributes and their types).
Fields of other regions (India's GST, France's accounts) are left out unless well known.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# On every record, written by QBO or by the sync itself: a spec may read them, never map them.
SYSTEM_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse")
# One part of a field path: a name, and a position when the name is a list (`Line[0]`).
PATH_PART = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)(?:\[(?P<index>[0-9]+)\])?\Z")
MAX_LISTED = 15  # an aggregate with more fields than this is not listed whole in a message


@dataclass(frozen=True)
class Aggregate:
    """A QBO complex type: its named parts. ``refers_to`` is the entity a reference points at
    (``CustomerRef`` -> Customer), when it is one entity."""

    type_name: str
    fields: Mapping[str, FieldType]
    refers_to: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.type_name == REFERENCE_TYPE


@dataclass(frozen=True)
class ListOf:
    """A list of aggregates in the payload: mapped whole (or through a spec's `lines`)."""

    item: Aggregate


FieldType = Aggregate | ListOf | None


@dataclass(frozen=True)
class EntityFields:
    """One entity's fields. ``computed`` are filled by QBO, which ignores a value sent for
    them (an invoice's TotalAmt and Balance): they can be read, never written."""

    entity: str
    fields: Mapping[str, FieldType]
    computed: frozenset[str] = field(default_factory=frozenset)

    @property
    def line(self) -> Aggregate | None:
        """The shape of one of the entity's `Line` items, if it has lines."""
        lines = self.fields.get("Line")
        return lines.item if isinstance(lines, ListOf) else None

    @property
    def as_aggregate(self) -> Aggregate:
        return Aggregate(self.entity, self.fields)


class FieldPathError(ValueError):
    """A field path that the entity does not have; the message says why and what is near."""


def field_at(shape: Aggregate, path: str) -> FieldType:
    """The type of the field at `path` ("BillAddr.Line1", "Line[0].Amount") in `shape`;
    FieldPathError if there is no such field, with the nearest real name."""
    current: FieldType = shape
    walked: list[str] = []
    for part in path.split("."):
        matched = PATH_PART.match(part)
        name, index = (matched["name"], matched["index"]) if matched else (part, None)
        current = _part_of(current, walked, name)
        walked.append(part)
        current = _item_of(current, walked, index)
    return current


def _part_of(current: FieldType, walked: list[str], name: str) -> FieldType:
    if isinstance(current, ListOf):
        raise FieldPathError(_whole_list(".".join(walked)))
    if current is None:
        raise FieldPathError(
            f"{'.'.join(walked)} is a plain value in QuickBooks and has no part '{name}' - "
            f"map {'.'.join(walked)} itself")
    if name not in current.fields:
        raise FieldPathError(_unknown_part(current, walked, name))
    return current.fields[name]


def _item_of(current: FieldType, walked: list[str], index: str | None) -> FieldType:
    """The item of a list field a `[n]` names; a position on anything else is refused."""
    if index is None:
        return current
    if not isinstance(current, ListOf):
        raise FieldPathError(f"{'.'.join(walked)}: only a list field takes a position [n], "
                             f"and {walked[-1].split('[')[0]} is not a list in QuickBooks")
    return current.item


def _whole_list(path: str) -> str:
    return (f"{path} is a list in QuickBooks: name one of its items by position "
            f"({path}[0].<field>), or map it whole with a constant list")


def _unknown_part(shape: Aggregate, walked: list[str], part: str) -> str:
    owner = f"a QuickBooks {shape.type_name}"
    if walked:  # name the part, and its type when that says more ("PhysicalAddress")
        owner = walked[-1] if walked[-1] == shape.type_name else f"{'.'.join(walked)} ({owner})"
    text = f"'{part}' is not a field of {owner}"
    names = sorted(shape.fields)
    if near := nearest(part, names):
        return f"{text} - did you mean '{near}'?"
    if len(names) <= MAX_LISTED:
        return f"{text} (its fields: {', '.join(names)})"
    return f"{text} - see the {shape.type_name} page of Intuit's Accounting API reference"


def nearest(word: str, candidates: list[str]) -> str | None:
    """The candidate closest to `word`, ignoring case ("companyname" -> "CompanyName")."""
    by_folded = {candidate.casefold(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[found[0]] if found else None


def detail_types(line: Aggregate) -> tuple[str, ...]:
    """The `DetailType` values a line may carry: one per detail object it can hold.

    QBO names each detail object after its type, but for DescriptionOnly lines."""
    return tuple("DescriptionOnly" if name == "DescriptionLineDetail" else name
                 for name in line.fields if name.endswith("LineDetail"))


# --------------------------------------------------------------------------- aggregates

REFERENCE_TYPE = "ReferenceType"


def ref(refers_to: str | None = None) -> Aggregate:
    """A reference to another record: ``{"value": <Id>, "name": <its name>}``."""
    return Aggregate(REFERENCE_TYPE, {"value": None, "name": None}, refers_to)


def _plain(*names: str) -> dict[str, FieldType]:
    return dict.fromkeys(names)


ADDRESS = Aggregate("PhysicalAddress", _plain(
    "Id", "Line1", "Line2", "Line3", "Line4", "Line5", "City", "Country",
    "CountrySubDivisionCode", "PostalCode", "Lat", "Long"))
EMAIL = Aggregate("EmailAddress", _plain("Address"))
PHONE = Aggregate("TelephoneNumber", _plain("FreeFormNumber"))
WEBSITE = Aggregate("WebSiteAddress", _plain("URI"))
MEMO = Aggregate("MemoRef", _plain("value"))
METADATA = Aggregate("ModificationMetaData", _plain("CreateTime", "LastUpdatedTime"))
# Purchase's payee and a deposit line's entity carry the entity type beside the Id.
TYPED_REF = Aggregate(REFERENCE_TYPE, _plain("value", "name", "type"))
LINKED_TXN = ListOf(Aggregate("LinkedTxn", _plain("TxnId", "TxnType", "TxnLineId")))
CUSTOM_FIELD = ListOf(Aggregate("CustomField", _plain("DefinitionId", "Name", "Type",
                                                       "StringValue")))
MARKUP = Aggregate("MarkupInfo", {"PercentBased": None, "Value": None, "Percent": None,
                                  "PriceLevelRef": ref(), "MarkUpIncomeAccountRef": ref("Account")})
DELIVERY = Aggregate("DeliveryInfo", _plain("DeliveryType", "DeliveryTime"))
TAX_LINE = Aggregate("TaxLine", {
    "Amount": None, "DetailType": None,
    "TaxLineDetail": Aggregate("TaxLineDetail", {
        "TaxRateRef": ref("TaxRate"), "NetAmountTaxable": None, "PercentBased": None,
        "TaxInclusiveAmount": None, "OverrideDeltaAmount": None, "TaxPercent": None})})
TXN_TAX = Aggregate("TxnTaxDetail", {"TxnTaxCodeRef": ref("TaxCode"), "TotalTax": None,
                                     "TaxLine": ListOf(TAX_LINE)})


def _system() -> dict[str, FieldType]:
    return {**dict.fromkeys(SYSTEM_FIELDS), "MetaData": METADATA}


# --------------------------------------------------------------------------- lines

def _line(name: str, *details: Aggregate, linked: bool = True) -> ListOf:
    fields: dict[str, FieldType] = {**_plain("Id", "LineNum", "Description", "Amount",
                                             "DetailType")}
    if linked:
        fields["LinkedTxn"] = LINKED_TXN
    fields.update({detail.type_name: detail for detail in details})
    return ListOf(Aggregate(name, fields))


SALES_LINE = _line(
    "SalesLine",
    Aggregate("SalesItemLineDetail", {
        "ItemRef": ref("Item"), "ClassRef": ref("Class"), "UnitPrice": None, "Qty": None,
        "TaxCodeRef": ref("TaxCode"), "ServiceDate": None, "ItemAccountRef": ref("Account"),
        "MarkupInfo": MARKUP, "DiscountRate": None, "DiscountAmt": None,
        "TaxInclusiveAmt": None, "TaxClassificationRef": ref()}),
    Aggregate("GroupLineDetail", {"GroupItemRef": ref("Item"), "Quantity": None,
                                  "Line": None}),
    Aggregate("DescriptionLineDetail", {"ServiceDate": None, "TaxCodeRef": ref("TaxCode")}),
    Aggregate("DiscountLineDetail", {
        "DiscountAccountRef": ref("Account"), "PercentBased": None, "DiscountPercent": None,
        "ClassRef": ref("Class"), "TaxCodeRef": ref("TaxCode")}),
    Aggregate("SubTotalLineDetail", {"ItemRef": ref("Item")}),
)

_EXPENSE_COMMON: dict[str, FieldType] = {
    "CustomerRef": ref("Customer"), "ClassRef": ref("Class"), "BillableStatus": None,
    "TaxCodeRef": ref("TaxCode"), "MarkupInfo": MARKUP, "TaxInclusiveAmt": None}
EXPENSE_LINE = _line(
    "ExpenseLine",
    Aggregate("AccountBasedExpenseLineDetail", {
        "AccountRef": ref("Account"), "TaxAmount": None, **_EXPENSE_COMMON}),
    Aggregate("ItemBasedExpenseLineDetail", {
        "ItemRef": ref("Item"), "UnitPrice": None, "Qty": None, "PriceLevelRef": ref(),
        **_EXPENSE_COMMON}),
)

DEPOSIT_LINE = _line("DepositLine", Aggregate("DepositLineDetail", {
    "AccountRef": ref("Account"), "Entity": TYPED_REF, "ClassRef": ref("Class"),
    "PaymentMethodRef": ref("PaymentMethod"), "CheckNum": None, "TxnType": None,
    "TaxCodeRef": ref("TaxCode"), "TaxApplicableOn": None}))

JOURNAL_LINE = _line("JournalEntryLine", Aggregate("JournalEntryLineDetail", {
    "PostingType": None, "AccountRef": ref("Account"),
    "Entity": Aggregate("EntityTypeRef", {"Type": None, "EntityRef": TYPED_REF}),
    "ClassRef": ref("Class"), "DepartmentRef": ref("Department"),
    "TaxCodeRef": ref("TaxCode"), "TaxApplicableOn": None, "TaxAmount": None,
    "BillableStatus": None}), linked=False)

# Payments apply amounts to invoices (bill payments to bills) through LinkedTxn; no detail.
PAYMENT_LINE = ListOf(Aggregate("PaymentLine", {"Amount": None, "LinkedTxn": LINKED_TXN,
                                                "LineEx": None}))


# --------------------------------------------------------------------------- names lists

def _names_list(**fields: FieldType) -> dict[str, FieldType]:
    return {**_system(), "Active": None, **fields}


def _person(**fields: FieldType) -> dict[str, FieldType]:
    """Customer, Vendor and Employee: one person or organization, one DisplayName space."""
    return _names_list(
        **_plain("Title", "GivenName", "MiddleName", "FamilyName", "Suffix", "DisplayName",
                 "PrintOnCheckName", "V4IDPseudonym"),
        PrimaryEmailAddr=EMAIL, PrimaryPhone=PHONE, Mobile=PHONE, **fields)


def _hierarchy(entity: str, flag: str) -> dict[str, FieldType]:
    """Records nested under a parent of their own list: QBO computes the name path and level."""
    return {flag: None, "ParentRef": ref(entity), "FullyQualifiedName": None}


_CUSTOMER = _person(
    **_plain("CompanyName", "Level", "Job", "BillWithParent", "Notes", "Taxable",
             "TaxExemptionReasonId", "ResaleNum", "Balance", "BalanceWithJobs",
             "OpenBalanceDate", "PreferredDeliveryMethod", "PrimaryTaxIdentifier",
             "SecondaryTaxIdentifier", "BusinessNumber", "GSTIN", "GSTRegistrationType",
             "IsProject", "Source"),
    ParentRef=ref("Customer"), FullyQualifiedName=None, AlternatePhone=PHONE, Fax=PHONE,
    WebAddr=WEBSITE, BillAddr=ADDRESS, ShipAddr=ADDRESS, DefaultTaxCodeRef=ref("TaxCode"),
    CurrencyRef=ref(), SalesTermRef=ref("Term"), PaymentMethodRef=ref("PaymentMethod"),
    ARAccountRef=ref("Account"), CustomerTypeRef=ref(),
)

_EMPLOYEE = _person(
    **_plain("SSN", "EmployeeNumber", "BirthDate", "Gender", "HiredDate", "ReleasedDate",
             "BillableTime", "BillRate", "CostRate", "Organization"),
    PrimaryAddr=ADDRESS,
)

_VENDOR = _person(
    **_plain("CompanyName", "TaxIdentifier", "AcctNum", "Vendor1099", "T4AEligible",
             "T5018Eligible", "Balance", "BillRate", "CostRate", "GSTIN", "BusinessNumber",
             "GSTRegistrationType", "TaxReportingBasis", "HasTPAR", "Source",
             "OtherContactInfo", "VendorPaymentBankDetail"),
    AlternatePhone=PHONE, Fax=PHONE, WebAddr=WEBSITE, BillAddr=ADDRESS, TermRef=ref("Term"),
    APAccountRef=ref("Account"), CurrencyRef=ref(),
)

_ITEM = _names_list(
    **_plain("Name", "Sku", "Description", "Level", "Taxable", "SalesTaxIncluded", "UnitPrice",
             "Type", "PurchaseDesc", "PurchaseTaxIncluded", "PurchaseCost", "TrackQtyOnHand",
             "QtyOnHand", "InvStartDate", "ReorderPoint", "PrintGroupedItems", "Source",
             "AbatementRate", "ReverseChargeRate", "ServiceType", "ItemCategoryType"),
    **_hierarchy("Item", "SubItem"),
    IncomeAccountRef=ref("Account"), ExpenseAccountRef=ref("Account"),
    AssetAccountRef=ref("Account"), PrefVendorRef=ref("Vendor"),
    SalesTaxCodeRef=ref("TaxCode"), PurchaseTaxCodeRef=ref("TaxCode"), ClassRef=ref("Class"),
    TaxClassificationRef=ref(),
)

_ACCOUNT = _names_list(
    **_plain("Name", "Description", "Classification", "AccountType", "AccountSubType",
             "AcctNum", "AccountAlias", "TxnLocationType", "CurrentBalance",
             "CurrentBalanceWithSubAccounts"),
    **_hierarchy("Account", "SubAccount"),
    CurrencyRef=ref(), TaxCodeRef=ref("TaxCode"),
)

_TERM = _names_list(**_plain("Name", "Type", "DiscountPercent", "DueDays", "DiscountDays",
                             "DayOfMonthDue", "DueNextMonthDays", "DiscountDayOfMonth"))

_TAX_RATE_LIST = Aggregate("TaxRateList", {"TaxRateDetail": None})
_TAX_CODE = _names_list(
    **_plain("Name", "Description", "Hidden", "Taxable", "TaxGroup", "TaxCodeConfigType"),
    SalesTaxRateList=_TAX_RATE_LIST, PurchaseTaxRateList=_TAX_RATE_LIST,
)

_TAX_RATE = _names_list(
    **_plain("Name", "Description", "RateValue", "SpecialTaxType", "DisplayType",
             "EffectiveTaxRate", "OriginalTaxRate"),
    AgencyRef=ref(), TaxReturnLineRef=ref(),
)

_COMPANY_INFO: dict[str, FieldType] = {
    **_system(),
    **_plain("CompanyName", "LegalName", "CompanyStartDate", "FiscalYearStartMonth", "Country",
             "SupportedLanguages"),
    "CompanyAddr": ADDRESS, "CustomerCommunicationAddr": ADDRESS, "LegalAddr": ADDRESS,
    "CustomerCommunicationEmailAddr": EMAIL, "Email": EMAIL, "PrimaryPhone": PHONE,
    "WebAddr": WEBSITE, "NameValue": ListOf(Aggregate("NameValue", _plain("Name", "Value"))),
}


# --------------------------------------------------------------------------- transactions

def _transaction(**fields: FieldType) -> dict[str, FieldType]:
    return {**_system(), **_plain("TxnDate", "PrivateNote", "ExchangeRate",
                                  "TransactionLocationType"),
            "CurrencyRef": ref(), **fields}


def _sales_form(**fields: FieldType) -> dict[str, FieldType]:
    """Invoice, CreditMemo, SalesReceipt, Estimate, RefundReceipt: a customer and sales lines."""
    return _transaction(
        **_plain("DocNumber", "GlobalTaxCalculation", "ApplyTaxAfterDiscount", "PrintStatus",
                 "TotalAmt", "HomeTotalAmt", "FreeFormAddress", "TxnSource"),
        CustomerRef=ref("Customer"), CustomerMemo=MEMO, BillAddr=ADDRESS, ShipAddr=ADDRESS,
        ShipFromAddr=ADDRESS, BillEmail=EMAIL, ClassRef=ref("Class"),
        DepartmentRef=ref("Department"), ProjectRef=ref("Customer"), CustomField=CUSTOM_FIELD,
        TxnTaxDetail=TXN_TAX, Line=SALES_LINE, **fields)


def _shipping() -> dict[str, FieldType]:
    return {**_plain("ShipDate", "TrackingNum", "EmailStatus"), "ShipMethodRef": ref(),
            "DeliveryInfo": DELIVERY}


def _vendor_form(**fields: FieldType) -> dict[str, FieldType]:
    """Bill, VendorCredit, PurchaseOrder: a vendor and expense lines."""
    return _transaction(
        **_plain("DocNumber", "GlobalTaxCalculation", "TotalAmt"),
        VendorRef=ref("Vendor"), APAccountRef=ref("Account"), DepartmentRef=ref("Department"),
        TxnTaxDetail=TXN_TAX, LinkedTxn=LINKED_TXN, Line=EXPENSE_LINE, **fields)


_INVOICE = _sales_form(
    **_shipping(),
    **_plain("DueDate", "Balance", "HomeBalance", "Deposit", "AllowIPNPayment",
             "AllowOnlinePayment", "AllowOnlineCreditCardPayment", "AllowOnlineACHPayment",
             "InvoiceLink"),
    SalesTermRef=ref("Term"), BillEmailCc=EMAIL, BillEmailBcc=EMAIL,
    DepositToAccountRef=ref("Account"), LinkedTxn=LINKED_TXN,
)

_CREDIT_MEMO = _sales_form(
    **_plain("EmailStatus", "Balance", "RemainingCredit"),
    SalesTermRef=ref("Term"), PaymentMethodRef=ref("PaymentMethod"),
    DepositToAccountRef=ref("Account"), LinkedTxn=LINKED_TXN,
)

_SALES_RECEIPT = _sales_form(
    **_shipping(), **_plain("PaymentRefNum", "Balance", "CreditCardPayment"),
    PaymentMethodRef=ref("PaymentMethod"), DepositToAccountRef=ref("Account"),
    LinkedTxn=LINKED_TXN,
)

_ESTIMATE = _sales_form(
    **_shipping(),
    **_plain("ExpirationDate", "AcceptedBy", "AcceptedDate", "TxnStatus", "DueDate"),
    SalesTermRef=ref("Term"), LinkedTxn=LINKED_TXN,
)

_REFUND_RECEIPT = _sales_form(
    **_plain("PaymentRefNum", "PaymentType", "Balance", "CreditCardPayment"),
    DepositToAccountRef=ref("Account"), PaymentMethodRef=ref("PaymentMethod"),
    CheckPayment=Aggregate("CheckPayment", _plain("CheckNum", "Status", "NameOnAcct",
                                                  "AcctNum", "BankName")),
)

_PAYMENT = _transaction(
    **_plain("TotalAmt", "UnappliedAmt", "PaymentRefNum", "ProcessPayment",
             "CreditCardPayment", "TxnSource"),
    CustomerRef=ref("Customer"), PaymentMethodRef=ref("PaymentMethod"),
    DepositToAccountRef=ref("Account"), ARAccountRef=ref("Account"),
    TaxExemptionRef=ref(), ProjectRef=ref("Customer"), Line=PAYMENT_LINE,
)

_BILL_PAYMENT = _transaction(
    **_plain("PayType", "TotalAmt", "DocNumber", "ProcessBillPayment"),
    VendorRef=ref("Vendor"), APAccountRef=ref("Account"), DepartmentRef=ref("Department"),
    CheckPayment=Aggregate("BillPaymentCheck", {"BankAccountRef": ref("Account"),
                                                "PrintStatus": None}),
    CreditCardPayment=Aggregate("BillPaymentCreditCard", {"CCAccountRef": ref("Account")}),
    Line=PAYMENT_LINE,
)

_BILL = _vendor_form(
    **_plain("DueDate", "Balance", "HomeBalance", "IncludeInAnnualTPAR"),
    SalesTermRef=ref("Term"), VendorAddr=ADDRESS,
)

_VENDOR_CREDIT = _vendor_form(**_plain("Balance", "IncludeInAnnualTPAR"))

_PURCHASE_ORDER = _vendor_form(
    **_plain("DueDate", "POStatus", "Memo", "EmailStatus"),
    POEmail=EMAIL, VendorAddr=ADDRESS, ShipAddr=ADDRESS, ShipTo=ref(), ShipMethodRef=ref(),
    SalesTermRef=ref("Term"), ClassRef=ref("Class"), CustomField=CUSTOM_FIELD,
)

_PURCHASE = _transaction(
    **_plain("PaymentType", "Credit", "DocNumber", "PrintStatus", "GlobalTaxCalculation",
             "TotalAmt", "TxnSource", "IncludeInAnnualTPAR"),
    AccountRef=ref("Account"), EntityRef=TYPED_REF, DepartmentRef=ref("Department"),
    RemitToAddr=ADDRESS, PaymentMethodRef=ref("PaymentMethod"), TxnTaxDetail=TXN_TAX,
    LinkedTxn=LINKED_TXN, Line=EXPENSE_LINE,
)

_DEPOSIT = _transaction(
    **_plain("TotalAmt", "HomeTotalAmt", "GlobalTaxCalculation", "TxnSource"),
    DepositToAccountRef=ref("Account"), DepartmentRef=ref("Department"),
    CashBack=Aggregate("CashBackInfo", {"AccountRef": ref("Account"), "Amount": None,
                                        "Memo": None}),
    TxnTaxDetail=TXN_TAX, Line=DEPOSIT_LINE,
)

_JOURNAL_ENTRY = _transaction(
    **_plain("DocNumber", "Adjustment", "TotalAmt", "HomeTotalAmt", "GlobalTaxCalculation"),
    TaxRateRef=ref("TaxRate"), TxnTaxDetail=TXN_TAX, Line=JOURNAL_LINE,
)

_TRANSFER = _transaction(Amount=None, FromAccountRef=ref("Account"),
                         ToAccountRef=ref("Account"))

# Time has no currency, note or lines: one duration (Hours and Minutes, or a start and end).
_TIME_ACTIVITY: dict[str, FieldType] = {
    **_system(),
    **_plain("TxnDate", "NameOf", "BillableStatus", "Taxable", "HourlyRate", "CostRate",
             "Hours", "Minutes", "BreakHours", "BreakMinutes", "StartTime", "EndTime",
             "Description", "TransactionLocationType"),
    "EmployeeRef": ref("Employee"), "VendorRef": ref("Vendor"), "CustomerRef": ref("Customer"),
    "ItemRef": ref("Item"), "ClassRef": ref("Class"), "DepartmentRef": ref("Department"),
    "PayrollItemRef": ref(), "ProjectRef": ref("Customer"),
}


# --------------------------------------------------------------------------- the catalog

_HIERARCHY_COMPUTED = frozenset({"FullyQualifiedName", "Level"})
_SALES_COMPUTED = frozenset({"TotalAmt", "HomeTotalAmt", "Balance", "HomeBalance"})


def _entity(name: str, fields: dict[str, FieldType],
            computed: frozenset[str] = frozenset()) -> EntityFields:
    return EntityFields(name, fields, frozenset(computed & fields.keys()))


_CATALOG = [
    _entity("Account", _ACCOUNT, _HIERARCHY_COMPUTED | {
        "Classification", "CurrentBalance", "CurrentBalanceWithSubAccounts"}),
    _entity("Class", _names_list(Name=None, **_hierarchy("Class", "SubClass")),
            _HIERARCHY_COMPUTED),
    _entity("Customer", _CUSTOMER, _HIERARCHY_COMPUTED | {"BalanceWithJobs", "IsProject"}),
    _entity("Department", _names_list(Name=None, **_hierarchy("Department", "SubDepartment")),
            _HIERARCHY_COMPUTED),
    _entity("Employee", _EMPLOYEE),
    _entity("Item", _ITEM, _HIERARCHY_COMPUTED),
    _entity("PaymentMethod", _names_list(Name=None, Type=None)),
    _entity("Term", _TERM, frozenset({"Type"})),
    _entity("Vendor", _VENDOR),
    _entity("TaxCode", _TAX_CODE),
    _entity("TaxRate", _TAX_RATE),
    _entity("BillPayment", _BILL_PAYMENT),
    _entity("Invoice", _INVOICE, _SALES_COMPUTED | {"InvoiceLink"}),
    _entity("Payment", _PAYMENT, frozenset({"UnappliedAmt"})),
    _entity("SalesReceipt", _SALES_RECEIPT, _SALES_COMPUTED),
    _entity("Bill", _BILL, _SALES_COMPUTED),
    # A memo lists the payments that apply its credit: QBO fills LinkedTxn in, as Balance.
    _entity("CreditMemo", _CREDIT_MEMO, _SALES_COMPUTED | {"RemainingCredit", "LinkedTxn"}),
    _entity("Deposit", _DEPOSIT, frozenset({"TotalAmt", "HomeTotalAmt"})),
    _entity("Estimate", _ESTIMATE, _SALES_COMPUTED),
    _entity("JournalEntry", _JOURNAL_ENTRY, frozenset({"TotalAmt", "HomeTotalAmt"})),
    _entity("Purchase", _PURCHASE, frozenset({"TotalAmt"})),
    _entity("PurchaseOrder", _PURCHASE_ORDER, frozenset({"TotalAmt"})),
    _entity("RefundReceipt", _REFUND_RECEIPT, _SALES_COMPUTED),
    _entity("VendorCredit", _VENDOR_CREDIT, frozenset({"TotalAmt", "Balance"})),
    _entity("TimeActivity", _TIME_ACTIVITY),
    _entity("Transfer", _TRANSFER),
    _entity("CompanyInfo", _COMPANY_INFO),
]

ENTITY_FIELDS: dict[str, EntityFields] = {entry.entity: entry for entry in _CATALOG}
