"""Every fault the emulator answers with, named after QBO's error catalog.

Each class carries QBO's numeric code, HTTP status, fault type, message and detail text, so this
file can be read side by side with Intuit's "Error codes" page. The HTTP layer turns a fault into
QBO's exact wire format (see ``to_json_body`` / ``to_xml_body``); the backend only raises.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape


def qbo_time(moment: datetime | None = None) -> str:
    """QBO's timestamp format for fault bodies: ISO 8601 with milliseconds and an offset."""
    moment = moment or datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds")


class QBOFault(Exception):
    """A fault as QBO returns it: ``{"Fault": {"Error": [...], "type": ...}, "time": ...}``."""

    code = "0"
    http_status = 400
    fault_type = "ValidationFault"
    message = "Unknown error"

    def __init__(self, detail: str, element: str = "") -> None:
        super().__init__(f"{self.code} {self.message}: {detail}")
        self.detail = detail
        self.element = element

    def error_item(self) -> dict[str, str]:
        return {
            "Message": self.message,
            "Detail": self.detail,
            "code": self.code,
            "element": self.element,
        }

    def fault_body(self) -> dict[str, Any]:
        """The ``Fault`` object, as used both at top level and inside a batch item."""
        return {"Error": [self.error_item()], "type": self.fault_type}

    def to_json_body(self) -> dict[str, Any]:
        return {"Fault": self.fault_body(), "time": qbo_time()}


# --- validation faults (HTTP 400, type ValidationFault) -------------------------------------


class RequiredParameterMissing(QBOFault):
    """2020: a required field is absent (``Required parameter Line is missing in the request``)."""

    code = "2020"
    message = "Required param missing, need to supply the required value for the API"

    def __init__(self, field_name: str) -> None:
        super().__init__(f"Required parameter {field_name} is missing in the request", field_name)


class InvalidFieldValue(QBOFault):
    """2050: a field's value is not acceptable (too long, bad format)."""

    code = "2050"
    message = "Invalid String"


class InvalidReference(QBOFault):
    """2500: a ``*Ref`` points at nothing (``Invalid Reference Id``)."""

    code = "2500"
    message = "Invalid Reference Id"


class InvalidRequest(QBOFault):
    """2010: the request cannot be understood (unknown operation, bad JSON)."""

    code = "2010"
    message = "Request has invalid or unsupported property"


class ObjectNotFound(QBOFault):
    """610: the object does not exist, or is inactive/deleted."""

    code = "610"
    message = "Object Not Found"

    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(
            f"Object Not Found : Something you're trying to use has been made inactive. "
            f"Check the fields with accounts, customers, items, vendors or employees. "
            f"({entity} Id={entity_id})",
        )


class StaleObject(QBOFault):
    """5010: the SyncToken sent is not the current one."""

    code = "5010"
    message = "Stale Object Error"

    def __init__(self, entity: str, entity_id: str, sent: str, current: str) -> None:
        super().__init__(
            f"Stale Object Error : You and another user were working on the same thing. "
            f"{entity} Id={entity_id} has SyncToken={current}, the request sent SyncToken={sent}.",
            "SyncToken",
        )


class DuplicateName(QBOFault):
    """6240: DisplayName already used by a Customer, Vendor or Employee (or an item's, an
    account's, a class's or a term's Name by another of its list)."""

    code = "6240"
    message = "Duplicate Name Exists Error"

    def __init__(self, existing_id: str, field_name: str = "DisplayName") -> None:
        super().__init__(f"The name supplied already exists. : Id={existing_id}", field_name)


class DuplicateDocNumber(QBOFault):
    """6140: a DocNumber already used by the same transaction type (when enforced)."""

    code = "6140"
    message = "Duplicate Document Number Error"

    def __init__(self, doc_number: str, entity: str, existing_id: str) -> None:
        super().__init__(
            f"Duplicate Document Number Error : You must specify a different number. "
            f"This number has already been used. DocNumber={doc_number} is assigned to "
            f"TxnType={entity} with TxnId={existing_id}",
            "DocNumber",
        )


class BusinessValidation(QBOFault):
    """6000: a business rule of QBO's refuses the request (detail says which)."""

    code = "6000"
    message = "A business validation error has occurred while processing your request"


class InvalidCompanyStatus(QBOFault):
    """6190: the company's subscription ended, was canceled, is suspended or has a billing
    problem, so QBO allows reads only (Intuit's "subscription states" page)."""

    code = "6190"
    message = "Invalid Company Status"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"Subscription period has ended or been canceled or there was a billing problem: "
            f"the company's subscription is {status}, so data can be read but not added or "
            f"changed until the subscription is active again.")


class FeatureNotInPlan(QBOFault):
    """5020: the company's QuickBooks Online plan does not include the feature (Intuit's error
    codes list: "You have issued a request against a feature for which your product is not
    entitled", its example Purchase Order creation, available only in QBO Plus)."""

    code = "5020"
    message = "Permission Denied Error"

    def __init__(self, entity: str, plan: str) -> None:
        super().__init__(
            f"You have issued a request against a feature for which your product is not "
            f"entitled: {entity} is not available in QuickBooks Online {plan}.", entity)


class AccountPeriodClosed(QBOFault):
    """6200: the bookkeeper closed the books through a date; a transaction dated on or
    before it can be neither written nor changed through the API."""

    code = "6200"
    message = "Account Period Closed"

    def __init__(self, entity: str, txn_date: str, close_date: str) -> None:
        super().__init__(
            f"Account Period Closed, cannot update through services API: {entity} dated "
            f"{txn_date} falls in a period closed through {close_date}.", "TxnDate")


class EmailAddressRequired(QBOFault):
    """6420: a customer whose invoices go by email (``PreferredDeliveryMethod`` Email) has no
    ``PrimaryEmailAddr``."""

    code = "6420"
    message = "Email Address is required"

    def __init__(self) -> None:
        super().__init__(
            "Email Address is required: the customer's PreferredDeliveryMethod is Email, so "
            "PrimaryEmailAddr.Address must be supplied.", "PrimaryEmailAddr")


class SubLevelLimit(QBOFault):
    """6180: a customer, account, class or item nested deeper than QBO's five levels."""

    code = "6180"
    message = "Sub Level Limit"


class QueryParserError(QBOFault):
    """4000: the query text cannot be parsed."""

    code = "4000"
    message = "Error parsing query"


class QueryValidationError(QBOFault):
    """4001: the query parses but asks for something not allowed (e.g. MAXRESULTS over 1000)."""

    code = "4001"
    message = "Invalid query"


class RequestIdTooLong(QBOFault):
    """6000: a ``requestid`` longer than QBO accepts (50 characters; 36 on batch).

    QBO answers this as a business validation error, e.g. "You cannot enter more than 50
    characters in the request_id field. You tried entering 8182e07bba..., which is 68
    characters." (reported in intuit/QuickBooks-V3-Java-SDK issue 180).
    """

    code = "6000"
    message = "A business validation error has occurred while processing your request"

    def __init__(self, limit: int, request_id: str = "", field_name: str = "request_id") -> None:
        super().__init__(
            f"Business Validation Error: You cannot enter more than {limit} characters in the "
            f"{field_name} field. You tried entering {request_id[:10]}..., which is "
            f"{len(request_id)} characters.",
            "requestid",
        )


class BatchTooLarge(QBOFault):
    """1040 family: a batch with more than 30 items is refused whole."""

    code = "1040"
    message = "Batch size limit exceeded"

    def __init__(self, count: int) -> None:
        super().__init__(f"A batch may hold at most 30 BatchItemRequest items; got {count}.")


# --- service faults ---------------------------------------------------------------------------


class InternalServerError(QBOFault):
    """Injected 500/503: QBO's generic service fault."""

    code = "10000"
    http_status = 500
    fault_type = "SystemFault"
    message = "An application error has occurred while processing your request"


class ThrottleExceeded(QBOFault):
    """3001: over QBO's request rate limits. QBO answers this one in XML, even to JSON clients."""

    code = "3001"
    http_status = 429
    fault_type = "SERVICE"  # as QBO's real XML bodies say: <Fault type="SERVICE">
    message = "message=ThrottleExceeded; errorCode=003001; statusCode=429"

    DETAIL = "The request limit was reached.  Try again later"

    def __init__(self, detail: str = DETAIL) -> None:
        super().__init__(detail)

    def to_xml_body(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{qbo_time()}">'
            f'<Fault type="{self.fault_type}"><Error code="{self.code}">'
            f"<Message>{escape(self.message)}</Message><Detail>{escape(self.detail)}</Detail>"
            "</Error></Fault></IntuitResponse>"
        )


class AuthenticationFailed(QBOFault):
    """3200: missing, expired or revoked access token. QBO uses a lowercase ``fault`` shape here."""

    code = "3200"
    http_status = 401
    fault_type = "AUTHENTICATION"
    message = "message=AuthenticationFailed; errorCode=003200; statusCode=401"

    def to_json_body(self) -> dict[str, Any]:
        return {
            "warnings": None,
            "intuitObject": None,
            "fault": {
                "error": [
                    {
                        "message": self.message,
                        "detail": self.detail,
                        "code": self.code,
                        "element": None,
                    }
                ],
                "type": self.fault_type,
            },
            "report": None,
            "queryResponse": None,
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": None,
            "requestId": None,
            "time": int(datetime.now(UTC).timestamp() * 1000),
            "status": None,
            "cdcresponse": [],
        }


class AuthorizationFailed(QBOFault):
    """3100: the token is valid but not for this company (realm)."""

    code = "3100"
    http_status = 403
    fault_type = "AUTHORIZATION"
    message = "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"


# --- OAuth 2.0 errors (RFC 6749 shape, as Intuit's OAuth server answers) ---------------------
# These are not QBO faults: the token, revoke and authorization endpoints answer with
# ``{"error": ..., "error_description": ...}`` (RFC 6749 section 5.2), never a ``Fault`` body.


class OAuthError(Exception):
    """An OAuth 2.0 error response: ``error`` code, human description, HTTP status."""

    error = "invalid_request"
    http_status = 400

    def __init__(self, description: str) -> None:
        super().__init__(f"{self.error}: {description}")
        self.description = description

    def to_json_body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidClient(OAuthError):
    """401 ``invalid_client``: client id or secret wrong or missing (HTTP Basic auth)."""

    error = "invalid_client"
    http_status = 401


class InvalidGrant(OAuthError):
    """400 ``invalid_grant``: the code or refresh token is unknown, spent, expired or revoked."""

    error = "invalid_grant"


class InvalidOAuthRequest(OAuthError):
    """400 ``invalid_request``: a required parameter is missing or malformed."""

    error = "invalid_request"


class InvalidScope(OAuthError):
    """400 ``invalid_scope``: a scope is unknown, or none grants QuickBooks or OpenID access."""

    error = "invalid_scope"


class InvalidToken(OAuthError):
    """401 ``invalid_token`` (RFC 6750): the Bearer token for UserInfo is bad or expired."""

    error = "invalid_token"
    http_status = 401


class InsufficientScope(OAuthError):
    """403 ``insufficient_scope`` (RFC 6750): the token lacks the scope the endpoint needs."""

    error = "insufficient_scope"
    http_status = 403


class UnsupportedGrantType(OAuthError):
    """400 ``unsupported_grant_type``: only authorization_code and refresh_token exist."""

    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    """400 ``unsupported_response_type``: the authorization endpoint only issues codes."""

    error = "unsupported_response_type"


# --- accounting API faults added with the backend (validation, CDC, operations) -------------


class IllegalCharacters(QBOFault):
    """2040: a name holds a character QBO forbids (``:`` separates parent and child; tab, newline).

    As QBO reports it: "Invalid String. The String may contain unsupported or illegal chars".
    """

    code = "2040"
    message = "Invalid String. The String may contain unsupported or illegal chars"

    def __init__(self, field_name: str, value: str) -> None:
        super().__init__(
            f"Element contains invalid characters: {field_name} {value!r} may not contain a "
            f"colon (':'), a tab or a newline",
            field_name,
        )


class UnsupportedOperation(QBOFault):
    """500: an operation the entity does not support (void a bill, create a TaxCode).

    Intuit's error list: 500 "Unsupported Operation", detail "Operation XXX is not supported."
    (the python-quickbooks maintainers met it deleting a Customer, issue 294). The Detail
    starts with QBO's sentence; what follows is the emulator's hint.
    """

    code = "500"
    message = "Unsupported Operation"

    def __init__(self, operation: str, entity: str, hint: str = "") -> None:
        super().__init__(
            f"Operation {operation.capitalize()} is not supported. ({entity}"
            + (f": {hint})" if hint else ")"),
            "operation",
        )


class NameListDeleteNotAllowed(UnsupportedOperation):
    """500 for ``operation=delete`` on a names-list entity: QBO never deletes a Customer,
    Vendor, Employee, Item, Account, Class or Term; it only makes them inactive."""

    def __init__(self, entity: str) -> None:
        super().__init__(
            "delete", entity,
            "a names-list object is never deleted; make it inactive with a sparse update "
            "that sets Active to false")


class UnknownProperty(QBOFault):
    """2010: the body names a property the entity does not have.

    QBO's JSON reader refuses it whole; the Detail is Jackson's message wrapped as QBO wraps
    it: ``Property Name:Unrecognized field "Foo" (class com.intuit.schema.finance.v3.Customer),
    not marked as ignorable specified is unsupported or invalid``.
    """

    code = "2010"
    message = "Request has invalid or unsupported property"

    def __init__(self, field_name: str, type_name: str, path: str = "") -> None:
        super().__init__(
            f'Property Name:Unrecognized field "{field_name}" (class '
            f"com.intuit.schema.finance.v3.{type_name}), not marked as ignorable specified is "
            "unsupported or invalid",
            path or field_name,
        )


class InvalidId(QBOFault):
    """2030: an Id that is not a number (``/customer/abc``, ``"Id": "x"`` on update).

    Intuit's error list: 2030 "Invalid ID", detail "Id should be a valid number. Supplied
    value:XXX".
    """

    code = "2030"
    message = "Invalid ID"

    def __init__(self, supplied: str) -> None:
        super().__init__(f"Id should be a valid number. Supplied value:{supplied}", "Id")


class CDCLookbackExceeded(QBOFault):
    """CDC only looks back 30 days; QBO refuses an older ``changedSince``."""

    code = "4001"
    message = "Invalid query"

    def __init__(self, changed_since: str, days: int) -> None:
        super().__init__(
            f"Operation cdc with changedSince date {changed_since} which is older than fixed "
            f"days is not supported. changedSince must be within the last {days} days; read "
            f"older changes with a query on MetaData.LastUpdatedTime",
            "changedSince",
        )


class CDCEntityNotSupported(QBOFault):
    """CDC covers most entities but not all (TimeActivity is one QBO leaves out)."""

    code = "4001"
    message = "Invalid query"

    def __init__(self, entity: str, supported: str) -> None:
        super().__init__(
            f"CDC does not support entity {entity}; supported entities are: {supported}. "
            f"Read {entity} changes with a query on MetaData.LastUpdatedTime",
            "entities",
        )


class BatchRequestInvalid(QBOFault):
    """2010: a batch request whose envelope is wrong (missing list, duplicate or long bId)."""

    code = "2010"
    message = "Request has invalid or unsupported property"
