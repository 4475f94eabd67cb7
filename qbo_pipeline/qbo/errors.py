"""QBO's error catalog as exceptions the sync layer can act on.

QBO answers failures in three shapes: the usual JSON ``{"Fault": {"Error": [...], "type": ...}}``,
a lowercase ``{"fault": {"error": [...]}}`` on 401s, and an XML ``IntuitResponse/Fault`` on
throttling (even to JSON clients). ``error_from_response`` reads all three and picks the exception
class from QBO's error code, falling back to the HTTP status. Messages name the entity, the Id and
what to do; they never carry tokens (faults never echo them, and we add none).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, ClassVar

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

    def describe(self) -> str:
        target = " ".join(part for part in (self.entity, f"Id={self.entity_id}"
                                            if self.entity_id else "") if part)
        return f"QBO {self.operation} {target}".rstrip()


class QBOError(Exception):
    """Any failure answered by QBO (or on the way to it)."""

    advice: ClassVar[str] = "see the QBO error code in Intuit's error list"

    def __init__(self, context: RequestContext, faults: tuple[FaultDetail, ...] = (),
                 http_status: int | None = None, intuit_tid: str | None = None) -> None:
        self.context = context
        self.faults = faults
        self.http_status = http_status
        self.intuit_tid = intuit_tid
        super().__init__(self._compose())

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
        return f"{self.context.describe()} failed{status}: {reasons}. Fix: {self.advice}.{tid}"


def _describe_fault(fault: FaultDetail) -> str:
    text = f"{fault.code} {fault.message}".strip()
    if fault.detail and fault.detail != fault.message:
        text += f": {fault.detail}"
    if fault.element:
        text += f" (field {fault.element})"
    return text


class ValidationError(QBOError):
    """2020, 2050, 2500, 4000, 6000...: QBO refused the payload or query as written."""

    advice = "correct the field QBO names in the source record or the mapping spec, then re-sync"


class StaleObjectError(ValidationError):
    """5010: the SyncToken sent is not the current one; re-read, re-diff, then write again."""

    advice = "someone edited the record in QBO; re-read it, re-diff and retry the write"


class DuplicateNameError(ValidationError):
    """6240: the DisplayName is already used by a Customer, Vendor or Employee (or an item's,
    an account's, a class's or a term's Name by another of its list)."""

    advice = ("link the existing QBO record (match by DisplayName) or give this record a "
              "different name")

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

    advice = "link the existing QBO transaction (match by DocNumber) or renumber this one"


class ObjectNotFoundError(QBOError):
    """610: the record (or one it refers to) does not exist, or is inactive or deleted."""

    advice = ("the QBO record or one it refers to was deleted or made inactive; restore it in "
              "QBO or clear the link so the record is re-created")


class ThrottledError(QBOError):
    """3001 / HTTP 429: over QBO's rate limits even after waiting and retrying."""

    advice = "QBO is rate limiting this company; wait a minute and run the sync again"


class AuthError(QBOError):
    """3200 / HTTP 401 (token refused) and 3100 / HTTP 403 (not allowed for this company)."""

    advice = "reconnect QuickBooks (Settings -> Integrations)"


class QBOServiceError(QBOError):
    """HTTP 5xx or an unreachable QBO, after retries."""

    advice = ("QBO is unavailable; writes carry a requestid, so running the sync again is safe "
              "and writes nothing twice")


class ConnectionExpiredError(AuthError):
    """The refresh token was refused (``invalid_grant``): only a person can reconnect."""

    def __init__(self, realm_id: str, reason: str = "invalid_grant") -> None:
        self.realm_id = realm_id
        self.reason = reason
        Exception.__init__(
            self,
            f"QBO connection for realm {realm_id} expired or was revoked ({reason}): "
            f"reconnect QuickBooks (Settings -> Integrations)",
        )


class TokenEndpointError(AuthError):
    """The OAuth token endpoint failed for another reason than a refused grant."""

    def __init__(self, realm_id: str, status: int | None, reason: str) -> None:
        self.realm_id = realm_id
        self.status = status
        answered = "failed" if status is None else f"answered HTTP {status}"
        Exception.__init__(
            self, f"QBO token endpoint {answered} ({reason}) for realm {realm_id}: "
                  f"{self.advice_for(status)}")

    @staticmethod
    def advice_for(status: int | None) -> str:
        """Intuit's service failing (5xx, unreachable: retried already) is not a setting to
        fix; a refused request (4xx) is."""
        if status is None or status >= 500:
            return ("Intuit's token service is unavailable; nothing was written, and the next "
                    "run tries again")
        return "check the client id, client secret and redirect URI in the QBO settings"


class ConsentError(Exception):
    """The consent screen's redirect cannot complete a connection (refused, forged or cut
    short). The message names what is wrong, never a code, state or token."""


_CLASS_BY_CODE: dict[str, type[QBOError]] = {
    "5010": StaleObjectError,
    "6240": DuplicateNameError,
    "6140": DuplicateDocNumberError,
    "610": ObjectNotFoundError,
    "3001": ThrottledError,
    "3200": AuthError,
    "3100": AuthError,
}


def _class_for(status: int | None, faults: tuple[FaultDetail, ...]) -> type[QBOError]:
    for fault in faults:
        if fault.code in _CLASS_BY_CODE:
            return _CLASS_BY_CODE[fault.code]
    if status == 429:
        return ThrottledError
    if status in (401, 403):
        return AuthError
    if status is not None and status >= 500:
        return QBOServiceError
    if status == 404:
        return ObjectNotFoundError
    if status is None or status == 400 or faults:
        return ValidationError
    return QBOError


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
    refusal (re-read and retry), nor is a throttle, an outage or a refused token."""
    if isinstance(error, StaleObjectError):
        return False
    return isinstance(error, ValidationError | ObjectNotFoundError)
