"""The error catalog: every fault the pipeline can meet on its way to QBO, in one table.

Each entry says what QBO (or the network, or Intuit's token service) answers, the words our
message starts with, the fix a person can act on, and the exception the client raises. The
exception classes in ``errors.py`` take their class and their fix from here, and the README's
"Error catalog" table is generated from this table (``catalog_markdown``) and checked against
it by a test, so the code, the docs and the tests cannot drift apart.

An entry is found by a fault's QBO code first, then by the code's family (an unknown 2xxx is
a validation fault, an unknown 6xxx a business rule), then by the HTTP status. Entries with
neither codes nor statuses (the token service, the network, the source's own checks) are
chosen by name where the failure is seen.

No message carries a token or a secret: QBO's faults never echo them, the token service's
body is read for its ``error`` field only, and a transport exception is told by its type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    """One kind of fault and what to do about it."""

    key: str
    fault: str  # what is answered, as a reader of Intuit's error list would name it
    message: str  # the words our message gives after naming the record
    fix: str
    error: str  # the name of the exception class raised (``qbo_pipeline.qbo.errors``)
    codes: tuple[str, ...] = ()
    family: str = ""  # the first digit of the unknown codes this entry takes (2xxx, 6xxx)
    statuses: tuple[int, ...] = ()  # HTTP statuses taken when no code decides
    # A write refused for what it carries: held back with the message until the record (or
    # one it refers to) changes. Otherwise the push re-reads it now (a stale SyncToken), or
    # the next run tries again (the fault passes, or a person fixes the connection).
    held_back: bool = False

    def fix_for(self, realm_id: str | None) -> str:
        """The fix with its ``--realm R`` naming the company (as it stands without one)."""
        return self.fix.replace("--realm R", f"--realm {realm_id}") if realm_id else self.fix


# The least QuickBooks Online plan that writes each entity (Intuit's plan pages; seed 003:
# "You need a QuickBooks Online Essentials plan or better if you intend to sync your times";
# Intuit's 5020 example: "Purchase Order creation is available only in QBO Plus").
PLAN_NEEDED: dict[str, str] = {
    "TimeActivity": "Essentials", "Bill": "Essentials", "PurchaseOrder": "Plus",
}


def plan_needed(entity: str) -> str:
    """The plan to upgrade to for `entity` (Plus, the fullest, when the table does not say)."""
    return PLAN_NEEDED.get(entity, "Plus")


# Seed 001 says "Settings -> Integrations" of its own app; ours is the command line.
RECONNECT = "disconnect and reconnect the company (qbo-pipeline connect --realm R)"

CATALOG: tuple[CatalogEntry, ...] = (
    # --- connection and tokens (seed 001's first two messages, seed 003's "reconnect") -------
    CatalogEntry(
        "no_connection", "no tokens stored for the company",
        "No active QuickBooks connection",
        "connect the company (qbo-pipeline connect --realm R)", "ConnectionExpiredError"),
    CatalogEntry(
        "token_refresh_failed", "token endpoint: invalid_grant on refresh",
        "Token refresh failed: the refresh token expired (100 days after its last rotation) "
        "or was revoked", RECONNECT, "ConnectionExpiredError"),
    CatalogEntry(
        "authorization_code_refused", "token endpoint: invalid_grant on code exchange",
        "Connecting failed: the authorization code was already used or expired",
        "connect again (qbo-pipeline connect): a code is good once, for a few minutes",
        "ConnectionExpiredError"),
    CatalogEntry(
        "token_request_refused", "token endpoint: HTTP 4xx (invalid_client...)",
        "Intuit's token service refused the app's credentials",
        "check QBO_CLIENT_ID, QBO_CLIENT_SECRET and the redirect URI against the app's keys "
        "on developer.intuit.com", "TokenEndpointError"),
    CatalogEntry(
        "token_service_unavailable", "token endpoint: HTTP 5xx or unreachable, after retries",
        "Intuit's token service is unavailable",
        "nothing to change: nothing was written, and the next run tries again",
        "TokenEndpointError"),
    CatalogEntry(
        "authentication_failed", "3200 / HTTP 401 (after one refresh)",
        "QuickBooks refused the access token (AuthenticationFailed)", RECONNECT,
        "AuthError", codes=("3200",), statuses=(401,)),
    CatalogEntry(
        "authorization_failed", "3100 / HTTP 403",
        "QuickBooks refused access to this company (the user who connected it lost access, "
        "or the token is for another company)",
        "have an admin of the QuickBooks company " + RECONNECT, "AuthError",
        codes=("3100",), statuses=(403,)),
    # --- limits -------------------------------------------------------------------------------
    CatalogEntry(
        "throttled", "3001 / HTTP 429",
        "QB API error (429): rate limited; the client waited and retried, and QBO still "
        "refused", "wait 60 seconds and run the sync again (QBO allows 500 requests a minute "
        "per company, 10 at once)", "ThrottledError", codes=("3001",), statuses=(429,)),
    CatalogEntry(
        "plan_limit", "6190 Invalid Company Status",
        "The QuickBooks subscription has ended, was canceled or has a billing problem: QBO "
        "allows reads only", "renew the QuickBooks Online subscription (or a plan that "
        "includes the feature), then run the sync again", "PlanLimitError", codes=("6190",)),
    CatalogEntry(
        "feature_not_in_plan", "5020 Permission Denied Error",
        "The company's QuickBooks Online plan does not include this feature (seed 003: time "
        "activities need Essentials or better); the records wait, none is held back",
        "upgrade the company to a QuickBooks Online plan that includes it, or switch the "
        "entity's sync off (qbo-pipeline settings set <spec>.enabled false --realm R)",
        "FeatureNotInPlanError", codes=("5020",)),
    # --- the record as sent ---------------------------------------------------------------------
    CatalogEntry(
        "stale_sync_token", "5010 Stale Object Error / HTTP 400",
        "QB API error (400): stale SyncToken, someone edited the record in QuickBooks",
        "none needed: the push re-reads the record, re-diffs it and retries (a conflict is "
        "raised if both sides changed a field); if listed, run the sync again",
        "StaleObjectError", codes=("5010",)),
    CatalogEntry(
        "required_field_missing", "2020 Required param missing",
        "QuickBooks needs a field the record does not have",
        "fill the field QBO names in the source record, or map it in the mapping spec, "
        "then re-sync", "ValidationError", codes=("2020",), held_back=True),
    CatalogEntry(
        "unsupported_property", "2010 Request has invalid or unsupported property",
        "QuickBooks does not know a field the mapping spec sends",
        "remove or rename the field QBO names in the mapping spec (mapping_specs/), then "
        "re-sync", "ValidationError", codes=("2010",), held_back=True),
    CatalogEntry(
        "invalid_reference", "2500 Invalid Reference Id",
        "The record refers to a QuickBooks record that does not exist",
        "sync the record it refers to first, or correct the reference in the source; the "
        "record is retried when what it refers to changes", "ValidationError",
        codes=("2500",), held_back=True),
    CatalogEntry(
        "invalid_value", "any other 2xxx (2030, 2040, 2050...)",
        "QuickBooks refused a field's value",
        "correct the field QBO names in the source record or the mapping spec, then re-sync",
        "ValidationError", family="2", held_back=True),
    CatalogEntry(
        "query_refused", "4000 / 4001 query errors",
        "QuickBooks refused a query the pipeline built",
        "a bug or an unsupported filter: check the spec's filter, and report the query "
        "with its intuit_tid", "ValidationError", codes=("4000", "4001"), held_back=True),
    CatalogEntry(
        "object_not_found", "610 Object Not Found / HTTP 404",
        "The QuickBooks record, or one it refers to, was deleted or made inactive",
        "restore it in QuickBooks, or clear the link so the record is re-created",
        "ObjectNotFoundError", codes=("610",), statuses=(404,), held_back=True),
    CatalogEntry(
        "duplicate_name", "6240 Duplicate Name Exists Error",
        "The name is already used by another QuickBooks record",
        "link the existing QBO record (match by its name: DisplayName, or Name of an "
        "account, item or class) or give this record a different name", "DuplicateNameError",
        codes=("6240",), held_back=True),
    CatalogEntry(
        "duplicate_doc_number", "6140 Duplicate Document Number Error",
        "The document number is already used by another transaction of this type",
        "link the existing QBO transaction (match by DocNumber) or renumber this one",
        "DuplicateDocNumberError", codes=("6140",), held_back=True),
    CatalogEntry(
        "business_validation", "6000 business validation error",
        "A QuickBooks business rule refused the record",
        "read QBO's detail (which rule, which field), correct the record or the company's "
        "setting it names, then re-sync", "ValidationError", codes=("6000",), held_back=True),
    CatalogEntry(
        "business_rule", "any other 6xxx (6210 closed books...)",
        "A QuickBooks business rule refused the record",
        "read QBO's detail and correct the record or the company setting it names (for a "
        "closed period, the closing date in QuickBooks), then re-sync", "ValidationError",
        family="6", held_back=True),
    CatalogEntry(
        "refused", "any other fault of a 4xx answer (500 Unsupported Operation...)",
        "QuickBooks refused the request",
        "read QBO's code and detail in Intuit's error list, correct the record or the "
        "mapping spec, then re-sync", "ValidationError", statuses=(400,), held_back=True),
    # --- the service and the network -----------------------------------------------------------
    CatalogEntry(
        "service_error", "HTTP 5xx, after retries",
        "QuickBooks is unavailable (server error)",
        "nothing to change: run the sync again later; writes carry a requestid, so nothing "
        "is written twice", "QBOServiceError", statuses=(500, 502, 503, 504)),
    CatalogEntry(
        "network_unreachable", "connection refused, reset or no DNS, after retries",
        "Could not reach QuickBooks",
        "check the network and QBO_BASE_URL (or QBO_ENVIRONMENT), then run the sync again; "
        "nothing is written twice", "QBOServiceError"),
    CatalogEntry(
        "network_timeout", "no answer within the timeout, after retries",
        "QuickBooks did not answer in time",
        "run the sync again (QBO can be slow at peak times, or raise the client timeout); "
        "writes carry a requestid, so nothing is written twice", "QBOServiceError"),
    # --- seed 001's "Failed to sync customer": a missing email ---------------------------------
    CatalogEntry(
        "missing_email", "6420 Email Address is required",
        "Failed to sync customer: the customer is missing an email address (its invoices "
        "are sent by email)",
        "add an email to the client in the source (or send its invoices by print), then "
        "re-sync", "ValidationError", codes=("6420",), held_back=True),
    CatalogEntry(
        "source_record_invalid", "no request: the mapping spec's checks refuse the row",
        "Failed to sync: the source record breaks a rule of its mapping spec (e.g. a "
        "customer missing an email address)",
        "correct the source record as the message says (e.g. add an email to the client); "
        "it is synced by the next run", "RowIssue", held_back=True),
)

_BY_KEY = {entry.key: entry for entry in CATALOG}


def entry(key: str) -> CatalogEntry:
    """The entry named ``key`` (a ``KeyError`` names the known keys)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no error catalog entry {key!r}; known: {', '.join(_BY_KEY)}") from None


def entry_for(codes: Iterable[str], status: int | None) -> CatalogEntry:
    """The entry of a QBO fault: by its codes in order, their family, then the HTTP status;
    an answer with neither (a batch item's fault with no code) is a refusal."""
    codes = [code for code in codes if code]
    for code in codes:
        for candidate in CATALOG:
            if code in candidate.codes:
                return candidate
    for code in codes:
        for candidate in CATALOG:
            if candidate.family and len(code) == 4 and code.startswith(candidate.family):
                return candidate
    if status is not None:
        for candidate in CATALOG:
            if status in candidate.statuses:
                return candidate
        if status >= 500:
            return _BY_KEY["service_error"]
    return _BY_KEY["refused"]


def catalog_markdown() -> str:
    """The README's table, one row per entry, in the catalog's order."""
    rows = ["| Key | Fault | Message | Fix | Held back |", "|---|---|---|---|---|"]
    for item in CATALOG:
        cells = (f"`{item.key}`", item.fault, item.message, item.fix,
                 "yes" if item.held_back else "no")
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)
