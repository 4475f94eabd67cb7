"""The properties QBO knows on each names-list entity, and the refusal of any other (2010).

QBO reads a request body with a strict JSON reader: a property its schema does not have is not
ignored but refused whole, with fault 2010 "Request has invalid or unsupported property" (a
misspelt ``DisplayNmae``, an invoice field on a customer). So the emulator must know every
property QBO knows, or it would refuse what QBO accepts: the lists below are the union of
Intuit's entity reference pages (Accounting API v3, minor version 75) and the attributes of
Intuit's v3 SDK data classes (``IPPCustomer``, ``IPPNameBase``, ``IPPVendor``, ``IPPItem`` and
so on), read-only and region-specific ones included, because QBO accepts a body that carries
them back as it read them.

Nested objects are checked too where their shape is small and fixed (addresses, e-mail, phone,
web address, references, MetaData); larger nested types (``JobInfo``, ``CustomField``,
``VendorPaymentBankDetail``...) are taken as sent. Transactions are not checked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qbo_pipeline.emulator.exceptions import UnknownProperty


def _names(*groups: Iterable[str]) -> frozenset[str]:
    return frozenset(name for group in groups for name in group)


# IntuitEntity: what every entity carries (``domain``, ``status`` and ``sparse`` are the XML
# attributes, properties in JSON).
_ENTITY = ("Id", "SyncToken", "MetaData", "CustomField", "AttachableRef", "domain", "status",
           "sparse")

# NameBase: what Customer, Vendor and Employee share.
_NAME_BASE = (
    "IntuitId", "Organization", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix",
    "FullyQualifiedName", "CompanyName", "DisplayName", "PrintOnCheckName", "UserId", "Active",
    "V4IDPseudonym", "PrimaryPhone", "AlternatePhone", "Mobile", "Fax", "PrimaryEmailAddr",
    "WebAddr", "OtherContactInfo", "DefaultTaxCodeRef",
)

_CUSTOMER = (
    "Taxable", "BillAddr", "ShipAddr", "OtherAddr", "ContactName", "AltContactName", "Notes",
    "Job", "BillWithParent", "RootCustomerRef", "ParentRef", "Level", "CustomerTypeRef",
    "SalesTermRef", "SalesRepRef", "TaxGroupCodeRef", "TaxRateRef", "PaymentMethodRef",
    "CCDetail", "PriceLevelRef", "Balance", "OpenBalanceDate", "BalanceWithJobs", "CreditLimit",
    "AcctNum", "CurrencyRef", "OverDueBalance", "TotalRevenue", "TotalExpense",
    "PreferredDeliveryMethod", "ResaleNum", "JobInfo", "TDSEnabled", "CustomerEx",
    "SecondaryTaxIdentifier", "ARAccountRef", "PrimaryTaxIdentifier", "TaxExemptionReasonId",
    "IsProject", "BusinessNumber", "GSTIN", "GSTRegistrationType", "Source", "ClientEntityId",
    "IsCISContractor", "CISRate",
)

_VENDOR = (
    "ContactName", "AltContactName", "Notes", "BillAddr", "ShipAddr", "OtherAddr", "TaxCountry",
    "TaxIdentifier", "TaxIdEffectiveDate", "BusinessNumber", "ParentRef", "VendorTypeRef",
    "TermRef", "PrefillAccountRef", "Balance", "BillRate", "OpenBalanceDate", "CreditLimit",
    "AcctNum", "Vendor1099", "T4AEligible", "T5018Eligible", "CurrencyRef", "TDSEnabled",
    "TDSEntityTypeId", "TDSSectionTypeId", "TDSOverrideThreshold", "TaxReportingBasis",
    "APAccountRef", "VendorEx", "GSTIN", "GSTRegistrationType", "IsSubContractor",
    "SubcontractorType", "CISRate", "HasTPAR", "VendorPaymentBankDetail", "Source", "CostRate",
    "AgencyVerificationStatus", "AgencyVerificationStatusMsg", "AgencyVerificationTSUTC",
    "CompanyRegistrationNumber",
)

_EMPLOYEE = (
    "EmployeeType", "EmployeeNumber", "SSN", "PrimaryAddr", "OtherAddr", "BillableTime",
    "BillRate", "CostRate", "BirthDate", "Gender", "HiredDate", "ReleasedDate", "UseTimeEntry",
    "EmployeeEx",
)

_ITEM = (
    "Name", "Sku", "Description", "Active", "SubItem", "ParentRef", "Level",
    "FullyQualifiedName", "Taxable", "SalesTaxIncluded", "PercentBased", "UnitPrice",
    "RatePercent", "Type", "PaymentMethodRef", "UOMSetRef", "IncomeAccountRef", "PurchaseDesc",
    "PurchaseTaxIncluded", "PurchaseCost", "ExpenseAccountRef", "COGSAccountRef",
    "AssetAccountRef", "PrefVendorRef", "AvgCost", "TrackQtyOnHand", "QtyOnHand",
    "QtyOnPurchaseOrder", "QtyOnSalesOrder", "ReorderPoint", "ManPartNum", "DepositToAccountRef",
    "SalesTaxCodeRef", "PurchaseTaxCodeRef", "InvStartDate", "BuildPoint", "PrintGroupedItems",
    "SpecialItem", "SpecialItemType", "ItemGroupDetail", "ItemAssemblyDetail", "AbatementRate",
    "ReverseChargeRate", "ServiceType", "ItemCategoryType", "ItemEx", "TaxClassificationRef",
    "UQCDisplayText", "UQCId", "ClassRef", "Source",
)

_ACCOUNT = (
    "Name", "SubAccount", "ParentRef", "Description", "FullyQualifiedName", "AccountAlias",
    "TxnLocationType", "Active", "Classification", "AccountType", "AccountSubType",
    "AccountPurposes", "AcctNum", "AcctNumExtn", "BankNum", "OpeningBalance",
    "OpeningBalanceDate", "CurrentBalance", "CurrentBalanceWithSubAccounts", "CurrencyRef",
    "TaxAccount", "TaxCodeRef", "OnlineBankingEnabled", "FIName", "JournalCodeRef", "AccountEx",
)

_CLASS = ("Name", "SubClass", "ParentRef", "FullyQualifiedName", "Active", "ClassEx")

_TERM = ("Name", "Active", "Type", "DiscountPercent", "DueDays", "DiscountDays", "DayOfMonthDue",
         "DueNextMonthDays", "DiscountDayOfMonth", "SalesTermEx")

KNOWN_PROPERTIES: dict[str, frozenset[str]] = {
    "Customer": _names(_ENTITY, _NAME_BASE, _CUSTOMER),
    "Vendor": _names(_ENTITY, _NAME_BASE, _VENDOR),
    "Employee": _names(_ENTITY, _NAME_BASE, _EMPLOYEE),
    "Item": _names(_ENTITY, _ITEM),
    "Account": _names(_ENTITY, _ACCOUNT),
    "Class": _names(_ENTITY, _CLASS),
    "Term": _names(_ENTITY, _TERM),
}

# The small fixed nested types, by QBO's type name.
NESTED_TYPES: dict[str, frozenset[str]] = {
    "PhysicalAddress": frozenset({
        "Id", "Line1", "Line2", "Line3", "Line4", "Line5", "City", "Country", "CountryCode",
        "County", "CountrySubDivisionCode", "PostalCode", "PostalCodeSuffix", "Lat", "Long",
        "Tag", "Note"}),
    "EmailAddress": frozenset({"Address", "Default", "Tag"}),
    "TelephoneNumber": frozenset({"DeviceType", "CountryCode", "AreaCode", "ExchangeCode",
                                  "Extension", "FreeFormNumber", "Default", "Tag"}),
    "WebSiteAddress": frozenset({"URI", "Default", "Tag"}),
    "ReferenceType": frozenset({"value", "name", "type"}),
    "ModificationMetaData": frozenset({"CreatedByRef", "CreateTime", "LastModifiedByRef",
                                       "LastUpdatedTime", "LastChangedInQB", "Synchronized"}),
}

_NESTED_BY_PROPERTY: dict[str, str] = {
    **dict.fromkeys(("BillAddr", "ShipAddr", "OtherAddr", "PrimaryAddr"), "PhysicalAddress"),
    "PrimaryEmailAddr": "EmailAddress",
    **dict.fromkeys(("PrimaryPhone", "AlternatePhone", "Mobile", "Fax"), "TelephoneNumber"),
    "WebAddr": "WebSiteAddress",
    "MetaData": "ModificationMetaData",
}


def nested_type(name: str) -> str | None:
    """QBO's type for a property whose parts are checked; every ``...Ref`` is a reference."""
    if name in _NESTED_BY_PROPERTY:
        return _NESTED_BY_PROPERTY[name]
    # AttachableRef is not a reference but a list of attachment links, its own larger type.
    return "ReferenceType" if name.endswith("Ref") and name != "AttachableRef" else None


def refuse_unknown_properties(entity: str, body: Any) -> None:
    """QBO's 2010 for the first property of `body` that `entity` does not have, nested
    addresses, phones, e-mails and references included; nothing for unchecked entities."""
    known = KNOWN_PROPERTIES.get(entity)
    if known is None or not isinstance(body, dict):
        return
    for name, value in body.items():
        if name not in known:
            raise UnknownProperty(name, entity)
        type_name = nested_type(name)
        if type_name is not None:
            # OtherAddr is a list of addresses; the others are one object.
            for part in value if isinstance(value, list) else [value]:
                _refuse_unknown_parts(type_name, part, name)


def _refuse_unknown_parts(type_name: str, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        return
    for name, inner in value.items():
        if name not in NESTED_TYPES[type_name]:
            raise UnknownProperty(name, type_name, f"{path}.{name}")
        if type_name == "ModificationMetaData" and name.endswith("Ref"):
            _refuse_unknown_parts("ReferenceType", inner, f"{path}.{name}")
