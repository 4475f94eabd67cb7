"""QBO's two webhook payloads, read into plain events.

- CloudEvents (Intuit's current format): a JSON array of events, each with `specversion`, `id`,
  `type` (`qbo.<entity>.<operation>.v1`, the entity in lower case), `time`, `intuitentityid`
  (the record's Id), `intuitaccountid` (the realm) and a `data` object.
- The legacy format: `{"eventNotifications": [{"realmId": ..., "dataChangeEvent": {"entities":
  [{"name", "id", "operation", "lastUpdated"}]}}]}`.

Either may carry several realms. A merge's `deletedid` / `deletedId` needs no event of its own:
the sync that follows reads every change of the entity since its cursor, the merged-away record
(reported deleted by CDC) included. An event that names no realm, entity or Id cannot be synced
and is reported back as unreadable, with its place and what it lacks; the others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qbo_pipeline.qbo.entities import QBO_ENTITIES

# The verb of a CloudEvents type, as the operation the legacy format names.
OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge",
              "voided": "Void", "emailed": "Emailed"}
_ENTITY_NAMES = {name.lower(): name for name in QBO_ENTITIES}


class PayloadError(ValueError):
    """A body in neither of QBO's formats; the message says what was expected."""


@dataclass(frozen=True)
class NotifiedEvent:
    """One change as a webhook reports it (state's `NotifiedChange` shape)."""

    realm_id: str
    entity: str
    entity_id: str
    operation: str
    last_updated: datetime | None
    event_id: str | None = None


@dataclass
class Delivery:
    """What one delivery said: its events, and those that could not be read, with why."""

    events: list[NotifiedEvent] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def read_delivery(payload: Any) -> Delivery:
    """The events of a decoded JSON body in either format."""
    if isinstance(payload, Mapping) and "eventNotifications" in payload:
        return _legacy(payload["eventNotifications"])
    if isinstance(payload, Mapping) and "specversion" in payload:
        payload = [payload]  # one CloudEvent on its own
    if isinstance(payload, list):
        return _cloudevents(payload)
    raise PayloadError("a QBO webhook body is a JSON array of CloudEvents or an object with "
                       "eventNotifications; this one is neither")


def _cloudevents(events: list[Any]) -> Delivery:
    delivery = Delivery()
    for place, event in enumerate(events):
        if not isinstance(event, Mapping):
            delivery.unreadable.append(f"event {place}: not a JSON object")
            continue
        entity, operation = _type_parts(event.get("type"))
        missing = [name for name, value in (("intuitaccountid", event.get("intuitaccountid")),
                                            ("intuitentityid", event.get("intuitentityid")),
                                            ("type qbo.<entity>.<operation>.v1", entity))
                   if not value]
        if missing:
            delivery.unreadable.append(f"event {place} (id {event.get('id')}): no "
                                       + ", no ".join(missing))
            continue
        delivery.events.append(NotifiedEvent(
            str(event["intuitaccountid"]), entity, str(event["intuitentityid"]), operation,
            _moment(event.get("time")), _text(event.get("id"))))
    return delivery


def _legacy(notifications: Any) -> Delivery:
    delivery = Delivery()
    if not isinstance(notifications, list):
        raise PayloadError("eventNotifications must be a JSON array of notifications")
    for place, notification in enumerate(notifications):
        realm_id = notification.get("realmId") if isinstance(notification, Mapping) else None
        change = notification.get("dataChangeEvent") if realm_id else None
        entities = change.get("entities") if isinstance(change, Mapping) else None
        if not realm_id or not isinstance(entities, list):
            delivery.unreadable.append(f"notification {place}: no realmId or no "
                                       "dataChangeEvent.entities")
            continue
        for number, entity in enumerate(entities):
            event = _legacy_entity(str(realm_id), entity)
            if event is None:
                delivery.unreadable.append(f"notification {place} entity {number}: no name "
                                           "or no id")
            else:
                delivery.events.append(event)
    return delivery


def _legacy_entity(realm_id: str, entity: Any) -> NotifiedEvent | None:
    if not isinstance(entity, Mapping) or not entity.get("name") or not entity.get("id"):
        return None
    return NotifiedEvent(realm_id, _entity_name(str(entity["name"])), str(entity["id"]),
                         str(entity.get("operation") or "Update"),
                         _moment(entity.get("lastUpdated")))


def _type_parts(value: Any) -> tuple[str, str]:
    """(entity, operation) of `qbo.customer.updated.v1`; ("", "") when it is not one."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) < 3 or parts[0] != "qbo" or not parts[1]:
        return "", ""
    verb = parts[2]
    return _entity_name(parts[1]), OPERATIONS.get(verb, verb.capitalize())


def _entity_name(name: str) -> str:
    """QBO's spelling of an entity (`journalentry` -> `JournalEntry`); unknown ones kept."""
    return _ENTITY_NAMES.get(name.lower(), name[:1].upper() + name[1:])


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time (QBO writes `...Z`); None when absent or unreadable: the change is
    kept all the same, it is only never taken as read already."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
