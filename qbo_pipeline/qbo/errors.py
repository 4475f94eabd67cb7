"""QBO's faults as exceptions the sync layer can act on.

QBO answers failures in three shapes: the usual JSON ``{"Fault": {"Error": [...], "type": ...}}``,
a lowercase ``{"fault": {"error": [...]}}`` on 401s, and an XML ``IntuitResponse/Fault`` on
throttling (even to JSON clients). ``error_from_response`` reads all three; which exception class
is raised, and the message's words and fix, come from the one table of ``error_catalog.py`` (by
QBO's error code, its family, then the HTTP status). Messages name the entity, the Id or name,
and what to do; they never carry tokens (faults never echo them, and we add none).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, ClassVar

from qbo_pipeline.qbo.error_catalog import CatalogEntry, entry, entry_for

_XML_NAMESPACE = "{http://schema.intuit.com/finance/v3}"
_TAKEN_BY = re.compile(r"\bId=(\d+)")


@dataclass(frozen=True)
class FaultDetail:
    """One ``Error`` item of a QBO fault."""

    code: str
    message: str
    detail: str = ""
    element: str = ""


@dataclass(frozen=True)
class RequestContext:
    """What the client was doing, so an error can say which record failed."""

    operation: str
    entity: str = ""
    entity_id: str = ""
    name: str = ""  # the record's DisplayName, Name or DocNumber, when the body has one
    realm_id: str = ""  # the company, for a fix that names it (``--realm R``)

    def describe(self) -> str:
        parts = (self.entity, f"Id={self.entity_id}" if self.entity_id else "",
                 repr(self.name) if self.name else "")
        target = " ".join(part for part in parts if part)
        return f"QBO {self.operation} {target}".rstrip()


class QBOError(Exception):
    """Any failure answered by QBO (or on the way to it). ``entry`` is its error catalog
    entry: given (a failure seen before any answer), else found from the fault's codes and
    HTTP status, else the class's own."""

    catalog_key: ClassVar[str] = "refused"

    def __init__(self, context: RequestContext, faults: tuple[FaultDetail, ...] = (),
                 http_status: int | None = None, intuit_tid: str | None = None,
                 catalog_key: str | None = None) -> None:
        self.context = context
        self.faults = faults
        self.http_status = http_status
        self.intuit_tid = intuit_tid
        self.entry: CatalogEntry = self._entry(catalog_key)
        super().__init__(self._compose())

    def _entry(self, catalog_key: str | None) -> CatalogEntry:
        if catalog_key is not None:
            return entry(catalog_key)
        codes = [fault.code for fault in self.faults if fault.code]
        if not codes and self.http_status is None:
            return entry(self.catalog_key)
        return entry_for(codes, self.http_status)

    @property
    def advice(self) -> str:
        return self.entry.fix_for(self.context.realm_id)

    @property
    def code(self) -> str:
        return self.faults[0].code if self.faults else ""

    @property
    def detail(self) -> str:
        return self.faults[0].detail if self.faults else ""

    def _compose(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        reasons = "; ".join(_describe_fault(fault) for fault in self.faults) or "no fault detail"
        tid = f" [intuit_tid {self.intuit_tid}]" if self.intuit_tid else ""
        return (f"{self.context.describe()} failed{status}: {self.entry.message}: {reasons}. "
                f"Fix: {self.advice}.{tid}")


def _describe_fault(fault: FaultDetail) -> str:
    text = f"{fault.code} {fault.message}".strip()
    if fault.detail and fault.detail != fault.message:
        text += f": {fault.detail}"
    if fault.element:
        text += f" (field {fault.element})"
    return text


class ValidationError(QBOError):
    """2020, 2050, 2500, 4000, 6000...: QBO refused the payload or query as written."""

    catalog_key = "invalid_value"


class StaleObjectError(ValidationError):
    """5010: the SyncToken sent is not the current one; re-read, re-diff, then write again."""

    catalog_key = "stale_sync_token"


class DuplicateNameError(ValidationError):
    """6240: the DisplayName is already used by a Customer, Vendor or Employee (or an item's,
    an account's, a class's or a term's Name by another of its list)."""

    catalog_key = "duplicate_name"

    @property
    def on_display_name(self) -> bool:
        """True when the name refused is a DisplayName (QBO names the element; an answer
        that names none is taken as one: items and the like answer `Name`)."""
        return self.faults[0].element in ("", "DisplayName") if self.faults else True

    @property
    def taken_by(self) -> str | None:
        """The Id of the QBO record holding the name (QBO's detail ends `: Id=59`)."""
        found = _TAKEN_BY.search(self.detail)
        return found.group(1) if found else None


class DuplicateDocNumberError(ValidationError):
    """6140: the DocNumber is already used by the same transaction type."""

    catalog_key = "duplicate_doc_number"


class ObjectNotFoundError(QBOError):
    """610: the record (or one it refers to) does not exist, or is inactive or deleted."""

    catalog_key = "object_not_found"


class ThrottledError(QBOError):
    """3001 / HTTP 429: over QBO's rate limits even after waiting and retrying."""

    catalog_key = "throttled"


class PlanLimitError(QBOError):
    """6190: the company's subscription ended, was canceled or has a billing problem, so QBO
    allows reads only. Not refused for good: the same write works once the plan is renewed."""

    catalog_key = "plan_limit"


class FeatureNotInPlanError(QBOError):
    """5020: the company's plan does not include the feature written (time activities on
    Simple Start). Not refused for good: the same write works once the company upgrades, so
    the records wait instead of being held back as bad."""

    catalog_key = "feature_not_in_plan"


class AuthError(QBOError):
    """3200 / HTTP 401 (token refused) and 3100 / HTTP 403 (not allowed for this company)."""

    catalog_key = "authentication_failed"


class QBOServiceError(QBOError):
    """HTTP 5xx or an unreachable QBO, after retries."""

    catalog_key = "service_error"


def _company_message(realm_id: str, catalog_key: str, reason: str) -> str:
    """A token failure's message from the catalog: the company stands for the record, and
    the fix's ``--realm R`` names it."""
    found = entry(catalog_key)
    return f"QBO company {realm_id}: {found.message} ({reason}). Fix: {found.fix_for(realm_id)}."


class ConnectionExpiredError(AuthError):
    """No usable grant: none stored (``no_connection``), or the refresh token or code was
    refused (``invalid_grant``). Only a person can connect again."""

    def __init__(self, realm_id: str, reason: str = "invalid_grant",
                 catalog_key: str = "token_refresh_failed") -> None:
        self.realm_id = realm_id
        self.reason = reason
        self.entry = entry(catalog_key)
        Exception.__init__(self, _company_message(realm_id, catalog_key, reason))


class TokenEndpointError(AuthError):
    """The OAuth token endpoint failed for another reason than a refused grant: Intuit's
    service failing (5xx, unreachable: retried already) is not a setting to fix; a refused
    request (4xx: the app's credentials) is."""

    def __init__(self, realm_id: str, status: int | None, reason: str) -> None:
        self.realm_id = realm_id
        self.status = status
        unavailable = status is None or status >= 500
        self.entry = entry("token_service_unavailable" if unavailable
                           else "token_request_refused")
        answered = "unreachable" if status is None else f"HTTP {status}"
        Exception.__init__(self, _company_message(realm_id, self.entry.key,
                                                  f"token endpoint {answered}: {reason}"))


class ConsentError(Exception):
    """The consent screen's redirect cannot complete a connection (refused, forged or cut
    short). The message names what is wrong, never a code, state or token."""


def _classes() -> dict[str, type[QBOError]]:
    """The exception classes the catalog's ``error`` column may name, by name."""
    return {cls.__name__: cls for cls in (
        QBOError, ValidationError, StaleObjectError, DuplicateNameError,
        DuplicateDocNumberError, ObjectNotFoundError, ThrottledError, PlanLimitError,
        FeatureNotInPlanError, AuthError, QBOServiceError, ConnectionExpiredError,
        TokenEndpointError)}


def _class_for(status: int | None, faults: tuple[FaultDetail, ...]) -> type[QBOError]:
    """The class the catalog names for this answer's codes and status."""
    return _classes()[entry_for([fault.code for fault in faults], status).error]


def _json_faults(body: dict[str, Any]) -> tuple[FaultDetail, ...]:
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or []
    return tuple(
        FaultDetail(
            code=str(item.get("code") or ""),
            message=str(item.get("Message") or item.get("message") or ""),
            detail=str(item.get("Detail") or item.get("detail") or ""),
            element=str(item.get("element") or ""),
        )
        for item in errors
        if isinstance(item, dict)
    )


def _xml_faults(text: str) -> tuple[FaultDetail, ...]:
    root = ET.fromstring(text)
    faults = []
    for error in root.iter(f"{_XML_NAMESPACE}Error"):
        faults.append(FaultDetail(
            code=error.get("code", ""),
            message=(error.findtext(f"{_XML_NAMESPACE}Message") or "").strip(),
            detail=(error.findtext(f"{_XML_NAMESPACE}Detail") or "").strip(),
            element=error.get("element", ""),
        ))
    return tuple(faults)


def parse_faults(text: str) -> tuple[FaultDetail, ...]:
    """Every ``Error`` of a QBO fault body, JSON or XML; empty when the body is neither."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("<"):
            return _xml_faults(stripped)
        body = json.loads(stripped)
    except (ValueError, ET.ParseError):
        return ()
    return _json_faults(body) if isinstance(body, dict) else ()


def error_from_faults(context: RequestContext, faults: tuple[FaultDetail, ...],
                      http_status: int | None = None,
                      intuit_tid: str | None = None) -> QBOError:
    """The exception for a fault, e.g. a batch item's ``Fault`` (no HTTP status of its own)."""
    return _class_for(http_status, faults)(context, faults, http_status, intuit_tid)


def error_from_fault_body(context: RequestContext, fault: dict[str, Any]) -> QBOError:
    """The exception for a ``Fault`` object as found inside a batch item response."""
    return error_from_faults(context, _json_faults({"Fault": fault}))


def error_from_response(context: RequestContext, status: int, text: str,
                        intuit_tid: str | None = None) -> QBOError:
    """The exception for a failed HTTP answer, whatever shape its body has."""
    faults = parse_faults(text)
    if not faults:
        snippet = " ".join(text.split())[:200]
        faults = (FaultDetail(code="", message=f"unexpected response body: {snippet!r}"),)
    return error_from_faults(context, faults, status, intuit_tid)


def refused_for_good(error: QBOError) -> bool:
    """True when QBO refused a write for what it carries (a field, a duplicate name, an
    inactive record it refers to): sending the same write again gets the same answer, so the
    record waits until it or what it refers to changes. A stale SyncToken is not such a
    refusal (re-read and retry), nor is a throttle, an outage, a refused token or a lapsed
    subscription (the same write works once the plan is renewed)."""
    if isinstance(error, StaleObjectError):
        return False
    return isinstance(error, ValidationError | ObjectNotFoundError)
