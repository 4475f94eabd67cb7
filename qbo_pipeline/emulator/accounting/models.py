"""The QBO backend: companies (realms), their objects and QBO's rules, without any HTTP.

Thread-safe: one re-entrant lock guards all companies; every public operation is one
"transaction" whose writes go to the store together and whose change events are published
after the lock is released (a listener that fails never breaks the request).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from qbo_pipeline.emulator.accounting import query as qbo_query
from qbo_pipeline.emulator.accounting.entities import (
    APPLIED_TYPES,
    COMPUTED_FIELDS,
    ENTITY_SPECS,
    FIRST_DOC_NUMBER,
    QUERYABLE_ENTITIES,
    READ_ONLY_FIELDS,
    EntitySpec,
    applied_amounts,
    apply_rules,
    as_number,
    check_id,
    is_blank,
    lines,
    money,
    place_under,
    spec_for,
)
from qbo_pipeline.emulator.accounting.persistence import ChangeSet, StoredRealm, open_store
from qbo_pipeline.emulator.accounting.properties import refuse_unknown_properties
from qbo_pipeline.emulator.events import ChangeEvent, ChangeListener
from qbo_pipeline.emulator.exceptions import (
    AccountPeriodClosed,
    BusinessValidation,
    CDCEntityNotSupported,
    CDCLookbackExceeded,
    DuplicateDocNumber,
    FeatureNotInPlan,
    InvalidCompanyStatus,
    InvalidRequest,
    NameListDeleteNotAllowed,
    ObjectNotFound,
    QueryParserError,
    QueryValidationError,
    RequiredParameterMissing,
    StaleObject,
    UnsupportedOperation,
)

log = logging.getLogger(__name__)

# QBO writes times in the company's time zone, to the second. The emulator's companies keep
# Pacific Standard Time all year (no daylight saving), so offsets are always visible.
COMPANY_TIMEZONE = timezone(timedelta(hours=-8))
CDC_LOOKBACK_DAYS = 30
CDC_MAX_OBJECTS = 1000
DEFAULT_PREFERENCES = {
    # "Custom transaction numbers" with the duplicate-number warning: QBO then refuses a
    # DocNumber already used by the same transaction type (6140).
    "CustomTxnNumbers": True,
    "WarnDuplicateDocNum": True,
}

# Intuit's subscription states: with these a company can be read but not written (6190).
READ_ONLY_SUBSCRIPTIONS = frozenset({"CANCELED", "EXPIRED", "SUSPENDED", "RESTRICTED"})
SUBSCRIPTION_STATUSES = frozenset({"TRIAL", "TRIALOPTIN", "SUBSCRIBED", "PAID"}
                                  | READ_ONLY_SUBSCRIPTIONS)

# Intuit's plans, and the API entities each cannot write (seed 003: time activities need
# QuickBooks Online Essentials or better; bill management also starts at Essentials). QBO's
# sandbox companies are Plus, the emulator's default.
PLANS: dict[str, frozenset[str]] = {
    "Simple Start": frozenset({"TimeActivity", "Bill"}),
    "Essentials": frozenset(),
    "Plus": frozenset(),
}
DEFAULT_PLAN = "Plus"
COMPANY_STATE_KEYS = ("BookCloseDate", "Plan", "SubscriptionStatus")

JSONObject = dict[str, Any]
Response = tuple[int, JSONObject]


def company_time(moment: datetime) -> str:
    return moment.astimezone(COMPANY_TIMEZONE).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=COMPANY_TIMEZONE)


class Realm:
    """One company: its settings and live objects, deleted-transaction tombstones, and the
    responses remembered for ``requestid``s."""

    def __init__(self, stored: StoredRealm) -> None:
        self.realm_id = stored.realm_id
        self.settings = stored.settings
        self.objects = stored.objects
        self.tombstones = stored.tombstones
        self.responses = stored.responses

    def get(self, entity: str, entity_id: str) -> JSONObject | None:
        return self.objects.get(entity, {}).get(entity_id)

    def all(self, entity: str) -> list[JSONObject]:
        return list(self.objects.get(entity, {}).values())

    def allocate_id(self) -> str:
        next_id = int(self.settings["next_id"])
        self.settings["next_id"] = next_id + 1
        return str(next_id)

    def preference(self, name: str) -> bool:
        return bool(self.settings["preferences"].get(name, DEFAULT_PREFERENCES.get(name)))

    def refuse_writes_if_read_only(self) -> None:
        """QBO's 6190 for every write while the subscription does not allow them."""
        status = str(self.settings.get("subscription_status", "SUBSCRIBED"))
        if status in READ_ONLY_SUBSCRIPTIONS:
            raise InvalidCompanyStatus(status)

    @property
    def plan(self) -> str:
        return str(self.settings.get("plan", DEFAULT_PLAN))

    def refuse_if_not_in_plan(self, spec: EntitySpec) -> None:
        """QBO's 5020 for a write of an entity the company's plan does not include."""
        if spec.name in PLANS[self.plan]:
            raise FeatureNotInPlan(spec.name, self.plan)

    def refuse_if_books_closed(self, spec: EntitySpec, record: JSONObject,
                               today: str) -> None:
        """QBO's 6200 for a transaction dated on or before the books' closing date (a record
        without a TxnDate is dated today, as QBO dates it)."""
        close_date = self.settings.get("book_close_date")
        if not close_date or spec.kind != "transaction":
            return
        txn_date = str(record.get("TxnDate") or today)
        if txn_date <= str(close_date):
            raise AccountPeriodClosed(spec.name, txn_date, str(close_date))


class QBOBackend:
    """All companies of one emulator, with QBO's rules; the HTTP layer only translates."""

    def __init__(self, state_file: Path | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._changes = ChangeSet()
        self._pending_events: list[ChangeEvent] = []
        self._listeners: list[ChangeListener] = []
        self._clock = clock or (lambda: datetime.now(UTC))
        self._store = open_store(state_file)
        self._realms = {realm_id: Realm(stored)
                        for realm_id, stored in self._store.load().items()}

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        outermost = False
        events: list[ChangeEvent] = []
        try:
            with self._lock:
                outermost = self._depth == 0
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                    if outermost:
                        changes, self._changes = self._changes, ChangeSet()
                        events, self._pending_events = self._pending_events, []
                        self._store.write(changes)
        finally:
            if outermost:
                self._publish(events)

    def _publish(self, events: list[ChangeEvent]) -> None:
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a subscriber's failure must not fail the API call
                    log.exception("change listener %r failed on %s", listener, event)

    def _now(self) -> datetime:
        return self._clock()

    def _today(self) -> str:
        return self._now().astimezone(COMPANY_TIMEZONE).date().isoformat()

    def _realm(self, realm_id: str) -> Realm:
        realm = self._realms.get(realm_id)
        if realm is None:
            raise InvalidRequest(
                f"Company {realm_id} does not exist in this emulator; connect it through "
                f"OAuth (or POST /admin/realms/{realm_id}/reset) first", "realmId")
        return realm

    def _save(self, realm: Realm, entity: str, record: JSONObject) -> None:
        realm.objects.setdefault(entity, {})[record["Id"]] = record
        self._changes.objects[(realm.realm_id, entity, record["Id"])] = record
        self._changes.realms[realm.realm_id] = realm.settings

    def _emit(self, realm: Realm, entity: str, record: JSONObject, operation: str) -> None:
        updated = parse_time(record["MetaData"]["LastUpdatedTime"])
        self._pending_events.append(
            ChangeEvent(realm.realm_id, entity, record["Id"], operation, updated)
        )

    # ------------------------------------------------------------------ companies

    def realm_exists(self, realm_id: str) -> bool:
        with self._lock:
            return realm_id in self._realms

    def realm_ids(self) -> list[str]:
        with self._lock:
            return list(self._realms)

    def ensure_realm(self, realm_id: str) -> None:
        """Create the company as a new QBO company starts, unless it exists already."""
        with self._transaction():
            if realm_id not in self._realms:
                self._new_company(realm_id)

    def reset_realm(self, realm_id: str) -> None:
        """Forget everything in the company and start it again as a new company."""
        with self._transaction():
            self._realms.pop(realm_id, None)
            self._changes.dropped_realms.add(realm_id)
            self._changes.realms.pop(realm_id, None)
            # Writes still pending for the old company must not outlive its reset.
            pending = self._changes
            pending.objects = {key: value for key, value in pending.objects.items()
                               if key[0] != realm_id}
            pending.tombstones = {key: value for key, value in pending.tombstones.items()
                                  if key[0] != realm_id}
            pending.responses = {key: value for key, value in pending.responses.items()
                                 if key[0] != realm_id}
            self._new_company(realm_id)

    def set_preference(self, realm_id: str, name: str, value: bool) -> None:
        """Change a company preference (``WarnDuplicateDocNum``, ``CustomTxnNumbers``)."""
        with self._transaction():
            realm = self._realm(realm_id)
            realm.settings["preferences"][name] = value
            self._changes.realms[realm_id] = realm.settings

    def set_company_state(self, realm_id: str, changes: JSONObject) -> JSONObject:
        """What a bookkeeper changes in QBO's screens, not through the API: the subscription
        (``SubscriptionStatus``), the plan (``Plan``: Simple Start, Essentials or Plus) and
        the books' closing date (``BookCloseDate``, or null to reopen them). CompanyInfo's
        ``NameValue`` shows the subscription and the plan (``OfferingSku``), as QBO's does.
        Returns the company's state after the change."""
        unknown = sorted(set(changes) - set(COMPANY_STATE_KEYS))
        if unknown:
            raise InvalidRequest(f"Unknown company setting(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(COMPANY_STATE_KEYS)}", unknown[0])
        with self._transaction():
            realm = self._realm(realm_id)
            if "SubscriptionStatus" in changes:
                realm.settings["subscription_status"] = _subscription(
                    changes["SubscriptionStatus"])
            if "Plan" in changes:
                realm.settings["plan"] = _plan(changes["Plan"])
            if "BookCloseDate" in changes:
                realm.settings["book_close_date"] = _close_date(changes["BookCloseDate"])
            self._show_subscription(realm)
            self._changes.realms[realm_id] = realm.settings
            return {"SubscriptionStatus": _subscription_of(realm), "Plan": realm.plan,
                    "BookCloseDate": realm.settings.get("book_close_date")}

    def _show_subscription(self, realm: Realm) -> None:
        """CompanyInfo's NameValue with the company's subscription and plan."""
        info = realm.get("CompanyInfo", "1")
        if info is None:
            return
        shown = {**info, "NameValue": _subscription_name_values(realm)}
        if shown != info:
            shown["MetaData"] = {**info["MetaData"],
                                 "LastUpdatedTime": company_time(self._now())}
            self._save(realm, "CompanyInfo", shown)

    def seed_realm(self, realm_id: str, objects: dict[str, list[JSONObject]]
                   ) -> dict[str, list[JSONObject]]:
        """Create the given objects through the normal rules, in order; returns them created."""
        created: dict[str, list[JSONObject]] = {}
        with self._transaction():
            self.ensure_realm(realm_id)
            for entity, bodies in objects.items():
                spec = self._writable_spec(entity)
                created[spec.name] = [self.create(realm_id, spec.name, body) for body in bodies]
        return created

    def dump_realm(self, realm_id: str) -> dict[str, list[JSONObject]]:
        """Every live object of the company, by entity, in Id order."""
        with self._lock:
            realm = self._realm(realm_id)
            return {
                entity: copy.deepcopy(sorted(records.values(), key=_id_order))
                for entity, records in realm.objects.items() if records
            }

    def _new_company(self, realm_id: str) -> None:
        now = self._now()
        realm = Realm(StoredRealm(realm_id, {
            "next_id": 1, "preferences": dict(DEFAULT_PREFERENCES), "created": company_time(now),
        }))
        self._realms[realm_id] = realm
        self._changes.realms[realm_id] = realm.settings
        self._store_reference(realm, "CompanyInfo", {
            "Id": "1", "CompanyName": f"Sandbox Company {realm_id}",
            "LegalName": f"Sandbox Company {realm_id}", "Country": "US",
            "CompanyStartDate": now.astimezone(COMPANY_TIMEZONE).date().isoformat(),
            "FiscalYearStartMonth": "January",
            "NameValue": _subscription_name_values(realm),
        })
        for code, taxable in (("TAX", True), ("NON", False)):
            self._store_reference(realm, "TaxCode", {
                "Id": code, "Name": code, "Description": "Taxable" if taxable else "Non-Taxable",
                "Taxable": taxable, "TaxGroup": False, "Active": True,
            })
        for entity, body in _starter_objects():
            self._create(realm, self._writable_spec(entity), body, publish=False)

    def _store_reference(self, realm: Realm, entity: str, body: JSONObject) -> None:
        stamp = company_time(self._now())
        record = {**body, "SyncToken": "0", "domain": "QBO", "sparse": False,
                  "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self._save(realm, entity, record)

    # ------------------------------------------------------------------ single objects

    def create(self, realm_id: str, entity: str, body: JSONObject) -> JSONObject:
        spec = self._writable_spec(entity)
        # QBO reads the body before anything else, so an unknown property fails first.
        refuse_unknown_properties(spec.name, body)
        with self._transaction():
            realm = self._realm(realm_id)
            realm.refuse_writes_if_read_only()
            realm.refuse_if_not_in_plan(spec)
            return self._create(realm, spec, body, publish=True)

    def read(self, realm_id: str, entity: str, entity_id: str) -> JSONObject:
        spec = self._spec(entity)
        with self._lock:
            realm = self._realm(realm_id)
            if spec.name == "CompanyInfo" and entity_id == realm_id:
                entity_id = "1"  # QBO reads CompanyInfo at /companyinfo/<realmId>
            return copy.deepcopy(self._current(realm, spec, check_id(spec, entity_id)))

    def update(self, realm_id: str, entity: str, body: JSONObject) -> JSONObject:
        """Full update (writable fields left out are cleared) or sparse (``"sparse": true``)."""
        spec = self._writable_spec(entity)
        refuse_unknown_properties(spec.name, body)
        with self._transaction():
            realm = self._realm(realm_id)
            realm.refuse_writes_if_read_only()
            realm.refuse_if_not_in_plan(spec)
            current = self._checked_current(realm, spec, body, "update")
            return self._update(realm, spec, current, body, operation="Update")

    def bookkeeper_edit(self, realm_id: str, entity: str, entity_id: str,
                        changes: JSONObject) -> JSONObject:
        """Apply a change as a person editing in QBO's screens now: a sparse update that needs
        no SyncToken, bumps it and LastUpdatedTime, and publishes the change. QBO's screens
        change what its API only reads (a tax code made inactive), so any entity is editable."""
        spec = self._spec(entity)
        refuse_unknown_properties(spec.name, changes)
        with self._transaction():
            realm = self._realm(realm_id)
            current = self._current(realm, spec, check_id(spec, entity_id))
            body = {**changes, "Id": entity_id, "SyncToken": current["SyncToken"],
                    "sparse": True}
            return self._update(realm, spec, current, body, operation="Update")

    def backdate(self, realm_id: str, entity: str, entity_id: str,
                 last_updated: datetime) -> JSONObject:
        """Make a record look last changed at `last_updated`, as a record a bookkeeper changed
        then would (a test of what "modified within the last 2 weeks" reads): its
        MetaData.LastUpdatedTime, and CreateTime when that was later. Nothing is published:
        the change happened in the past."""
        spec = self._spec(entity)
        with self._transaction():
            realm = self._realm(realm_id)
            record = self._current(realm, spec, check_id(spec, entity_id))
            stamp = company_time(last_updated)
            meta = record["MetaData"]
            if parse_time(meta["CreateTime"]) > last_updated:
                meta["CreateTime"] = stamp
            meta["LastUpdatedTime"] = stamp
            self._save(realm, spec.name, record)
            return copy.deepcopy(record)

    def delete(self, realm_id: str, entity: str, body: JSONObject) -> JSONObject:
        """Delete a transaction; names-list objects can only be made inactive."""
        spec = self._spec(entity)
        if spec.kind == "name":
            raise NameListDeleteNotAllowed(spec.name)
        if not spec.deletable:
            raise UnsupportedOperation("delete", spec.name)
        with self._transaction():
            realm = self._realm(realm_id)
            realm.refuse_writes_if_read_only()
            realm.refuse_if_not_in_plan(spec)
            current = self._checked_current(realm, spec, body, "delete")
            realm.refuse_if_books_closed(spec, current, self._today())
            self._refuse_if_paid(realm, spec, current, "delete")
            entity_id = current["Id"]
            del realm.objects[spec.name][entity_id]
            stamp = company_time(self._now())
            realm.tombstones.setdefault(spec.name, {})[entity_id] = stamp
            self._changes.objects[(realm_id, spec.name, entity_id)] = None
            self._changes.tombstones[(realm_id, spec.name, entity_id)] = stamp
            current["MetaData"]["LastUpdatedTime"] = stamp
            self._emit(realm, spec.name, current, "Delete")
            if spec.name == "Payment":
                self._refresh_linked(realm, current, previous=None)
            return {"status": "Deleted", "domain": "QBO", "Id": entity_id}

    def void(self, realm_id: str, entity: str, body: JSONObject) -> JSONObject:
        """Void: amounts become zero, the object stays, PrivateNote says "Voided"."""
        spec = self._spec(entity)
        if not spec.voidable:
            raise UnsupportedOperation("void", spec.name,
                                       "QBO voids Invoice and Payment through the API")
        with self._transaction():
            realm = self._realm(realm_id)
            realm.refuse_writes_if_read_only()
            realm.refuse_if_not_in_plan(spec)
            current = self._checked_current(realm, spec, body, "void")
            realm.refuse_if_books_closed(spec, current, self._today())
            self._refuse_if_paid(realm, spec, current, "void")
            voided = copy.deepcopy(current)
            for line in lines(voided):
                line["Amount"] = 0
                detail = line.get("SalesItemLineDetail")
                if isinstance(detail, dict) and "Qty" in detail:
                    detail["Qty"] = 0
            if isinstance(voided.get("TxnTaxDetail"), dict):
                voided["TxnTaxDetail"]["TotalTax"] = 0
            voided["TotalAmt"] = 0
            voided["PrivateNote"] = "Voided"
            voided["sparse"] = True
            return self._update(realm, spec, current, voided, operation="Void")

    # ------------------------------------------------------------------ query and CDC

    def query(self, realm_id: str, text: str) -> JSONObject:
        """Run a QBO query; the ``QueryResponse`` object as QBO returns it."""
        try:
            parsed = qbo_query.parse_query(text, QUERYABLE_ENTITIES)
        except qbo_query.QueryValidationError as error:
            raise QueryValidationError(error.detail) from error
        except qbo_query.QuerySyntaxError as error:
            raise QueryParserError(error.detail) from error
        with self._lock:
            records = self._realm(realm_id).all(parsed.entity)
            result = qbo_query.run_query(
                parsed, records, hide_inactive=parsed.entity in qbo_query.NAMES_LIST_ENTITIES
            )
        if parsed.select_count:
            return {"totalCount": result.total_count}
        if not result.rows:
            return {}  # QBO answers an empty page with an empty QueryResponse
        return {parsed.entity: result.rows, "startPosition": result.start_position,
                "maxResults": len(result.rows)}

    def cdc(self, realm_id: str, entities: list[str], changed_since: datetime) -> JSONObject:
        """Objects of the given entities changed at or after changed_since (30 days at most).

        The answer is the ``CDCResponse`` list item: ``{"QueryResponse": [...]}`` with one
        element per requested entity. Deleted transactions come as ``status: Deleted``.
        """
        specs = self._cdc_specs(entities)
        now = self._now()
        if changed_since.tzinfo is None:
            changed_since = changed_since.replace(tzinfo=COMPANY_TIMEZONE)
        if changed_since < now - timedelta(days=CDC_LOOKBACK_DAYS):
            raise CDCLookbackExceeded(changed_since.isoformat(), CDC_LOOKBACK_DAYS)
        # QBO stamps changes to the second: compare at that resolution.
        since = changed_since.replace(microsecond=0)
        with self._lock:
            realm = self._realm(realm_id)
            changes = [change for spec in specs for change in _changes_of(realm, spec, since)]
        changes.sort(key=lambda change: (change[0], _id_order(change[2])))
        kept = changes[:CDC_MAX_OBJECTS]
        responses: list[JSONObject] = []
        for spec in specs:
            found = [record for _, entity, record in kept if entity == spec.name]
            responses.append({spec.name: found, "startPosition": 1, "maxResults": len(found),
                              "totalCount": len(found)} if found else {})
        return {"QueryResponse": responses}

    def _cdc_specs(self, entities: list[str]) -> list[EntitySpec]:
        if not entities:
            raise RequiredParameterMissing("entities")
        supported = ", ".join(spec.name for spec in ENTITY_SPECS.values() if spec.in_cdc)
        specs: list[EntitySpec] = []
        for name in entities:
            spec = spec_for(name.strip())
            if spec is None or not spec.in_cdc:
                raise CDCEntityNotSupported(name.strip(), supported)
            if spec not in specs:
                specs.append(spec)
        return specs

    # ------------------------------------------------------------------ idempotency

    def idempotent(self, realm_id: str, request_id: str,
                   action: Callable[[], Response]) -> Response:
        """Run a write once per ``requestid``: a repeat answers the first response, unchanged.

        The action runs under the backend lock, so two concurrent repeats cannot both write.
        """
        with self._transaction():
            realm = self._realm(realm_id)
            remembered = realm.responses.get(request_id)
            if remembered is not None:
                return remembered[0], copy.deepcopy(remembered[1])
            status, body = action()
            realm.responses[request_id] = (status, copy.deepcopy(body))
            self._changes.responses[(realm_id, request_id)] = (status, body)
            return status, body

    # ------------------------------------------------------------------ rules in motion

    def _spec(self, entity: str) -> EntitySpec:
        spec = spec_for(entity)
        if spec is None:
            known = ", ".join(spec.path for spec in ENTITY_SPECS.values())
            raise InvalidRequest(f"Unsupported entity {entity!r}; the emulator serves: {known}",
                                 "entity")
        return spec

    def _writable_spec(self, entity: str) -> EntitySpec:
        spec = self._spec(entity)
        if not spec.writable:
            raise UnsupportedOperation("create/update", spec.name, "it is read-only in the API")
        return spec

    def _current(self, realm: Realm, spec: EntitySpec, entity_id: str) -> JSONObject:
        found = realm.get(spec.name, str(entity_id))
        if found is None:
            raise ObjectNotFound(spec.name, str(entity_id))
        return found

    def _checked_current(self, realm: Realm, spec: EntitySpec, body: JSONObject,
                         operation: str) -> JSONObject:
        """The stored object an update/delete/void names, after its Id and SyncToken check."""
        if not isinstance(body, dict):
            raise InvalidRequest(f"The {operation} body must be a {spec.name} object")
        if is_blank(body.get("Id")):
            raise RequiredParameterMissing("Id")
        entity_id = check_id(spec, body["Id"])
        if is_blank(body.get("SyncToken")):
            raise RequiredParameterMissing("SyncToken")
        current = self._current(realm, spec, entity_id)
        if str(body["SyncToken"]) != current["SyncToken"]:
            raise StaleObject(spec.name, current["Id"], str(body["SyncToken"]),
                              current["SyncToken"])
        return current

    def _create(self, realm: Realm, spec: EntitySpec, body: JSONObject,
                *, publish: bool) -> JSONObject:
        record = _writable_part(spec, body)
        if spec.auto_doc_number and is_blank(record.get("DocNumber")):
            record["DocNumber"] = _next_doc_number(realm, spec.name)
        self._validate(realm, spec, record)
        stamp = company_time(self._now())
        record.update({"Id": realm.allocate_id(), "SyncToken": "0", "domain": "QBO",
                       "sparse": False, "MetaData": {"CreateTime": stamp,
                                                     "LastUpdatedTime": stamp}})
        self._after_validation(realm, spec, record, previous=None)
        self._save(realm, spec.name, record)
        if publish:
            self._emit(realm, spec.name, record, "Create")
        self._after_save(realm, spec, record, previous=None)
        return copy.deepcopy(record)

    def _update(self, realm: Realm, spec: EntitySpec, current: JSONObject, body: JSONObject,
                *, operation: str) -> JSONObject:
        sparse = body.get("sparse") in (True, "true", "True")
        record = copy.deepcopy(current) if sparse else {}
        if sparse:
            for name in READ_ONLY_FIELDS | set(COMPUTED_FIELDS.get(spec.name, ())):
                record.pop(name, None)
        record.update(_writable_part(spec, body))
        record["Id"] = current["Id"]
        self._validate(realm, spec, record)
        record.update({
            "SyncToken": str(int(current["SyncToken"]) + 1), "domain": "QBO", "sparse": False,
            "MetaData": {**current["MetaData"],
                         "LastUpdatedTime": company_time(self._now())},
        })
        self._after_validation(realm, spec, record, previous=current)
        self._save(realm, spec.name, record)
        self._emit(realm, spec.name, record, operation)
        self._after_save(realm, spec, record, previous=current)
        return copy.deepcopy(record)

    def _validate(self, realm: Realm, spec: EntitySpec, record: JSONObject) -> None:
        if spec.kind == "transaction" and is_blank(record.get("TxnDate")):
            # Intuit: TxnDate "defaults to the current date if not specified".
            record["TxnDate"] = self._today()
        realm.refuse_if_books_closed(spec, record, self._today())
        apply_rules(spec, realm, record)
        if spec.checks_doc_number and realm.preference("WarnDuplicateDocNum"):
            _refuse_duplicate_doc_number(realm, spec, record)

    def _after_validation(self, realm: Realm, spec: EntitySpec, record: JSONObject,
                          previous: JSONObject | None) -> None:
        if spec.name in APPLIED_TYPES:
            applied = _applied_to(realm, spec.name, record["Id"])
            if applied > money(record["TotalAmt"]):
                used = "payments" if spec.name == "Invoice" else "payments using its credit"
                raise BusinessValidation(
                    f"{spec.name} Id={record['Id']} would total {record['TotalAmt']} but "
                    f"{used} of {applied} are applied to it; change or delete the payments "
                    "first", "TotalAmt")
            _set_open_amount(realm, spec.name, record)

    def _after_save(self, realm: Realm, spec: EntitySpec, record: JSONObject,
                    previous: JSONObject | None) -> None:
        if spec.name == "Payment":
            self._refresh_linked(realm, record, previous)
        if previous is not None and previous.get("FullyQualifiedName") != record.get(
            "FullyQualifiedName"
        ):
            self._rename_descendants(realm, spec.name, record)

    def _refresh_linked(self, realm: Realm, payment: JSONObject,
                        previous: JSONObject | None) -> None:
        """The invoices and credit memos a payment links, or linked before this change."""
        for txn_type in APPLIED_TYPES:
            touched = set(applied_amounts(payment, txn_type)) | set(
                applied_amounts(previous or {}, txn_type))
            self._refresh_open_amounts(realm, txn_type, touched)

    def _refresh_open_amounts(self, realm: Realm, txn_type: str, txn_ids: set[str]) -> None:
        """Payments change invoice balances and credit memos' remaining credit; QBO then bumps
        the changed transaction's SyncToken too."""
        for txn_id in sorted(txn_ids, key=_id_order):
            linked = realm.get(txn_type, txn_id)
            if linked is None:
                continue
            before = _open_state(linked)
            refreshed = copy.deepcopy(linked)
            _set_open_amount(realm, txn_type, refreshed)
            if _open_state(refreshed) == before:
                continue
            refreshed["SyncToken"] = str(int(linked["SyncToken"]) + 1)
            refreshed["MetaData"]["LastUpdatedTime"] = company_time(self._now())
            self._save(realm, txn_type, refreshed)
            self._emit(realm, txn_type, refreshed, "Update")

    def _rename_descendants(self, realm: Realm, entity: str, parent: JSONObject) -> None:
        """Children's FullyQualifiedName, Level and ParentRef name follow a renamed or moved
        parent, down the whole tree, as QBO shows them. The children keep their SyncToken
        (whether QBO moves it is not documented; no client's copy of a child goes stale)."""
        label = "DisplayName" if entity == "Customer" else "Name"
        for child in realm.all(entity):
            if (child.get("ParentRef") or {}).get("value") == parent["Id"]:
                renamed = copy.deepcopy(child)
                place_under(entity, renamed, parent, label)
                self._save(realm, entity, renamed)
                self._rename_descendants(realm, entity, renamed)

    def _refuse_if_paid(self, realm: Realm, spec: EntitySpec, current: JSONObject,
                        operation: str) -> None:
        if spec.name in APPLIED_TYPES and _applied_to(realm, spec.name, current["Id"]) > 0:
            raise BusinessValidation(
                f"{spec.name} Id={current['Id']} has payments applied; {operation} or unlink "
                f"those payments before you {operation} the invoice", "Id")


# ---------------------------------------------------------------------- module functions


def _subscription(value: Any) -> str:
    status = str(value).upper()
    if status not in SUBSCRIPTION_STATUSES:
        raise InvalidRequest(f"SubscriptionStatus {value!r} is not one of "
                             f"{', '.join(sorted(SUBSCRIPTION_STATUSES))}", "SubscriptionStatus")
    return status


def _plan(value: Any) -> str:
    for plan in PLANS:
        if str(value).strip().lower() == plan.lower():
            return plan
    raise InvalidRequest(f"Plan {value!r} is not one of {', '.join(PLANS)}", "Plan")


def _subscription_of(realm: Realm) -> str:
    return str(realm.settings.get("subscription_status", "SUBSCRIBED"))


def _subscription_name_values(realm: Realm) -> list[JSONObject]:
    """The NameValue pairs of QBO's CompanyInfo that say what the company subscribes to."""
    return [{"Name": "SubscriptionStatus", "Value": _subscription_of(realm)},
            {"Name": "OfferingSku", "Value": f"QuickBooks Online {realm.plan}"}]


def _close_date(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidRequest(f"BookCloseDate {value!r} is not a date (YYYY-MM-DD) or null",
                             "BookCloseDate") from None


def _id_order(value: Any) -> tuple[int, str]:
    text = value["Id"] if isinstance(value, dict) else str(value)
    return (int(text), "") if text.isdigit() else (1 << 62, text)


def _writable_part(spec: EntitySpec, body: JSONObject) -> JSONObject:
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a {spec.name} object")
    skipped = READ_ONLY_FIELDS | set(COMPUTED_FIELDS.get(spec.name, ()))
    return {name: copy.deepcopy(value) for name, value in body.items() if name not in skipped}


def _next_doc_number(realm: Realm, entity: str) -> str:
    numbers = [int(str(record.get("DocNumber"))) for record in realm.all(entity)
               if str(record.get("DocNumber", "")).isdigit()]
    return str(max(numbers, default=FIRST_DOC_NUMBER - 1) + 1)


def _refuse_duplicate_doc_number(realm: Realm, spec: EntitySpec, record: JSONObject) -> None:
    doc_number = record.get("DocNumber")
    if is_blank(doc_number):
        return
    scope = spec.doc_number_scope
    for other in realm.all(spec.name):
        same_scope = scope is None or (other.get(scope) or {}).get("value") == (
            record.get(scope) or {}).get("value")
        if (other["Id"] != record.get("Id") and same_scope
                and str(other.get("DocNumber")) == str(doc_number)):
            raise DuplicateDocNumber(str(doc_number), spec.name, other["Id"])


def _applied_to(realm: Realm, txn_type: str, txn_id: str) -> Decimal:
    return sum((applied_amounts(payment, txn_type).get(txn_id, Decimal(0))
                for payment in realm.all("Payment")), Decimal(0))


def _open_state(record: JSONObject) -> tuple[Any, ...]:
    return (record.get("Balance"), record.get("RemainingCredit"), record.get("LinkedTxn"))


def _set_open_amount(realm: Realm, txn_type: str, record: JSONObject) -> None:
    """Balance = TotalAmt minus what payments apply to the invoice, or use of the credit
    memo's credit (whose RemainingCredit QBO keeps equal to its Balance); LinkedTxn lists
    those payments."""
    applied = Decimal(0)
    links: list[JSONObject] = []
    for payment in sorted(realm.all("Payment"), key=_id_order):
        amount = applied_amounts(payment, txn_type).get(record["Id"])
        if amount:
            applied += amount
            links.append({"TxnId": payment["Id"], "TxnType": "Payment"})
    record["Balance"] = as_number(money(record["TotalAmt"]) - applied)
    if txn_type == "CreditMemo":
        record["RemainingCredit"] = record["Balance"]
    if links:
        record["LinkedTxn"] = links
    else:
        record.pop("LinkedTxn", None)


def _changes_of(realm: Realm, spec: EntitySpec, since: datetime
                ) -> Iterator[tuple[datetime, str, JSONObject]]:
    for record in realm.all(spec.name):
        updated = parse_time(record["MetaData"]["LastUpdatedTime"])
        if updated >= since:
            yield updated, spec.name, copy.deepcopy(record)
    for entity_id, deleted_at in realm.tombstones.get(spec.name, {}).items():
        deleted = parse_time(deleted_at)
        if deleted >= since:
            yield deleted, spec.name, {"Id": entity_id, "status": "Deleted", "domain": "QBO",
                                       "MetaData": {"LastUpdatedTime": deleted_at}}


def _starter_objects() -> list[tuple[str, JSONObject]]:
    """A new QBO company's chart of accounts, terms and the "Services" item.

    Accounts get Ids 1.. in this order, so the Services item's income account is Id 1.
    """
    accounts = [
        ("Services", "Income", "ServiceFeeIncome"),
        ("Sales of Product Income", "Income", "SalesOfProductIncome"),
        ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
        ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
        ("Checking", "Bank", "Checking"),
        ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
        ("Office Supplies", "Expense", "OfficeGeneralAdministrativeExpenses"),
        ("Travel", "Expense", "Travel"),
        ("Cost of Labor", "Cost of Goods Sold", "CostOfLaborCos"),
        ("Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    ]
    # Created after the item, so that the records above keep their Ids: a new QBO company
    # also has a credit card account to pay card purchases from, and these expense accounts.
    later_accounts = [
        ("Credit Card", "Credit Card", "CreditCard"),
        ("Meals and Entertainment", "Expense", "EntertainmentMeals"),
        ("Supplies and Materials", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ]
    starters: list[tuple[str, JSONObject]] = [
        ("Account", {"Name": name, "AccountType": kind, "AccountSubType": subtype})
        for name, kind, subtype in accounts
    ]
    starters += [("Term", {"Name": name, "DueDays": days})
                 for name, days in (("Due on receipt", 0), ("Net 15", 15), ("Net 30", 30),
                                    ("Net 60", 60))]
    starters.append(("Item", {"Name": "Services", "Type": "Service",
                              "IncomeAccountRef": {"value": "1"}}))
    starters += [("Account", {"Name": name, "AccountType": kind, "AccountSubType": subtype})
                 for name, kind, subtype in later_accounts]
    return starters
