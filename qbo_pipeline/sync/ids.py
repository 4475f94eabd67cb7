"""Stable hashes and request ids, so that a retried write is recognised by QBO, not repeated.

QBO remembers a `requestid` and answers a repeated one with the first answer instead of
writing again. The id is derived from the change itself: the same change retried after a
crash or a timeout gets the same id; a different change (new values, a new SyncToken) a new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

# Fixed forever: changing it would give every pending change a new request id.
REQUEST_ID_NAMESPACE = uuid.UUID("5f0c2b1e-8a4d-5e39-9c7b-2d6a41e0f3a8")
MAX_REQUEST_ID_LENGTH = 36  # QBO's limit on `requestid`


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__} value in a payload")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The payload as JSON with sorted keys and no spaces: equal payloads, equal text."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_json_default)


def payload_hash(payload: Mapping[str, Any]) -> str:
    """The SHA-256 of the canonical JSON of a payload, in hex."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def request_id(realm_id: str, spec_name: str, source_key: str, payload_hash: str) -> str:
    """A 36-character id (a UUID5) that is the same for the same change to the same record."""
    name = "\x1f".join((realm_id, spec_name, source_key, payload_hash))
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, name))


def attempt_request_id(first: str, refused: Collection[str]) -> str:
    """The request id of a new attempt at a change QBO refused under `first`.

    QBO answers a repeated requestid with its first answer, a refusal included: sending a
    refused change again under the same id would be refused for ever, even once what it
    lacked (an active employee) is there. Each answered refusal moves the change to the next
    attempt id; the same refusals give the same id, so a crash mid-attempt stays harmless.
    """
    candidate, attempt = first, 0
    while candidate in refused:
        attempt += 1
        candidate = str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{first}\x1fattempt {attempt}"))
    return candidate
