"""Webhook notifications for every change, shaped, signed and delivered as QBO sends them.

- Shape: the CloudEvents format Intuit moved to (a JSON array of events with ``specversion``,
  ``id``, ``source``, ``type`` such as ``qbo.customer.created.v1``, ``datacontenttype``, ``time``,
  ``intuitentityid``, ``intuitaccountid``, ``data``), or the legacy ``eventNotifications`` /
  ``dataChangeEvent`` format as an option.
- Signature: header ``intuit-signature`` = base64(HMAC-SHA256(body, verifier token)).
- Delivery: events are gathered for ``coalesce_seconds`` and sent as one POST per realm ("event
  notifications are sent one realm ID at a time"). Anything but a 2xx within ``timeout_seconds``
  (QBO: 3 s) is retried after ``retry_delays`` (QBO: 10 s, 20 s, 30 s, then minutes and hours);
  later notifications of that realm wait behind it, as on QBO. After the last retry the
  notification is dropped and counted as failed.

Nothing here raises into the backend: ``notify`` only queues, a background thread delivers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from qbo_pipeline.emulator.events import ChangeEvent

log = logging.getLogger(__name__)

FORMATS = ("cloudevents", "legacy")
MASK = "********"

# QBO's webhook operations, as the verb in a CloudEvents type (qbo.<entity>.<verb>.v1).
OPERATION_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted",
                   "Merge": "merged", "Void": "voided", "Emailed": "emailed"}


@dataclass(frozen=True)
class WebhookSettings:
    """Where and how notifications go; ``url=None`` sends nothing (QBO with no endpoint)."""

    url: str | None = None
    verifier_token: str = "qbo-emulator-verifier-token"
    format: str = "cloudevents"
    coalesce_seconds: float = 0.5  # the sandbox sends "near real time"; production 1-5 minutes
    retry_delays: tuple[float, ...] = (10.0, 20.0, 30.0)  # QBO's first three retry intervals
    timeout_seconds: float = 3.0  # QBO wants the 200 within 3 seconds
    source: str = "intuit.qbo-emulator"

    def __post_init__(self) -> None:
        if self.url is not None and (not isinstance(self.url, str)
                                     or urlsplit(self.url).scheme not in ("http", "https")):
            raise ValueError(f"webhook url must be an http(s) URL or null, got {self.url!r}")
        if not isinstance(self.verifier_token, str) or not self.verifier_token:
            raise ValueError("webhook verifier_token must be a non-empty string")
        if self.format not in FORMATS:
            raise ValueError(f"webhook format must be one of {', '.join(FORMATS)}, "
                             f"got {self.format!r}")
        for name in ("coalesce_seconds", "timeout_seconds"):
            _require_seconds(f"webhook setting {name}", getattr(self, name))
        if not isinstance(self.retry_delays, tuple):
            raise ValueError(f"webhook retry_delays must be a list of seconds, "
                             f"got {self.retry_delays!r}")
        for delay in self.retry_delays:
            _require_seconds("each webhook retry delay", delay)

    def updated(self, changes: dict[str, Any]) -> WebhookSettings:
        """A copy with ``changes`` applied; unknown names are refused, naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown webhook setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        if isinstance(changes.get("retry_delays"), list):
            changes = {**changes, "retry_delays": tuple(changes["retry_delays"])}
        return replace(self, **changes)

    def to_public_dict(self) -> dict[str, Any]:
        """The settings with the verifier token masked: it is a secret."""
        public = asdict(self)
        public["verifier_token"] = MASK
        public["retry_delays"] = list(self.retry_delays)
        return public


def sign(body: bytes, verifier_token: str) -> str:
    """QBO's ``intuit-signature``: base64 of the HMAC-SHA256 of the raw body, keyed by the token."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """True when ``signature`` is QBO's signature of ``body``; compared in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, verifier_token), signature.strip())


def qbo_webhook_time(moment: datetime) -> str:
    """UTC with milliseconds and a ``Z``, as in Intuit's samples (``2025-09-08T20:52:31.657Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cloudevents_payload(events: Iterable[ChangeEvent], source: str) -> list[dict[str, Any]]:
    """One CloudEvent per change; ``data`` carries no record fields, as on QBO."""
    return [
        {
            "specversion": "1.0",
            "id": f"{uuid.uuid4()}-{event.entity}-{event.entity_id}",
            "source": source,
            "type": f"qbo.{event.entity.lower()}.{_verb(event.operation)}.v1",
            "datacontenttype": "application/json",
            "time": qbo_webhook_time(event.last_updated),
            "intuitentityid": event.entity_id,
            "intuitaccountid": event.realm_id,
            "data": {},
        }
        for event in events
    ]


def legacy_payload(realm_id: str, events: Iterable[ChangeEvent]) -> dict[str, Any]:
    """The ``eventNotifications`` format: one notification per realm, its changed entities."""
    entities = [{"name": event.entity, "id": event.entity_id, "operation": event.operation,
                 "lastUpdated": qbo_webhook_time(event.last_updated)} for event in events]
    return {"eventNotifications": [{"realmId": realm_id,
                                    "dataChangeEvent": {"entities": entities}}]}


def notification_body(realm_id: str, events: Sequence[ChangeEvent],
                      settings: WebhookSettings) -> bytes:
    payload: Any = (cloudevents_payload(events, settings.source)
                    if settings.format == "cloudevents" else legacy_payload(realm_id, events))
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


@dataclass
class _Gathering:
    """Events of one realm waiting for the coalescing interval to end."""

    since: float
    events: list[ChangeEvent] = field(default_factory=list)


@dataclass
class _Delivery:
    """One notification body for one realm, with its delivery attempts so far."""

    realm_id: str
    body: bytes
    attempts: int = 0
    due: float = 0.0


class WebhookDispatcher:
    """Queues change events and delivers them from a background thread; never raises on notify."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._inbox: queue.Queue[ChangeEvent | None] = queue.Queue()
        self._gathering: dict[str, _Gathering] = {}
        self._outbox: dict[str, deque[_Delivery]] = {}
        self._counts = {"delivered": 0, "failed": 0, "attempts": 0}
        self._idle = threading.Event()
        self._idle.set()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qbo-emulator-webhooks",
                                        daemon=True)
        self._thread.start()

    @property
    def settings(self) -> WebhookSettings:
        return self._settings

    def configure(self, **changes: Any) -> WebhookSettings:
        """Change the URL, verifier token, format or timing at run time."""
        with self._lock:
            self._settings = self._settings.updated(changes)
            return self._settings

    def describe(self) -> dict[str, Any]:
        """Public settings (token masked) and delivery counts."""
        with self._lock:
            pending = sum(len(d) for d in self._outbox.values()) + len(self._gathering)
            return {"settings": self._settings.to_public_dict(),
                    "deliveries": {**self._counts, "pending": pending}}

    def notify(self, event: ChangeEvent) -> None:
        """Queue one change for notification; returns at once and never raises."""
        try:
            if self._closing.is_set() or self._settings.url is None:
                return
            with self._lock:
                self._idle.clear()
                self._inbox.put(event)
        except Exception:  # a notification must never break the write that caused it
            log.exception("webhook notification for %s %s could not be queued",
                          event.entity, event.entity_id)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is delivered or given up on; True if it happened."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is gathered now (one attempt each), then stop the thread."""
        self._closing.set()
        self._inbox.put(None)
        self._thread.join(timeout)

    # --- the delivery thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                self._receive(self._seconds_until_next_due())
                self._seal_gathered(force=self._closing.is_set())
                self._send_due()
            except Exception:  # the thread must outlive any one bad notification
                log.exception("webhook delivery thread hit an unexpected error")
            if self._closing.is_set() and not self._has_pending():
                self._idle.set()
                return
            self._mark_idle_if_done()

    def _receive(self, wait: float | None) -> None:
        try:
            item = self._inbox.get(timeout=wait)
        except queue.Empty:
            return
        while item is not None or not self._inbox.empty():
            if item is not None:
                gathering = self._gathering.setdefault(item.realm_id,
                                                       _Gathering(time.monotonic()))
                gathering.events.append(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _seconds_until_next_due(self) -> float | None:
        if self._closing.is_set():
            return 0.0
        settings = self._settings
        moments = [g.since + settings.coalesce_seconds for g in self._gathering.values()]
        moments += [d[0].due for d in self._outbox.values() if d]
        if not moments:
            return None
        return max(0.0, min(moments) - time.monotonic())

    def _seal_gathered(self, force: bool) -> None:
        settings = self._settings
        now = time.monotonic()
        for realm_id, gathering in list(self._gathering.items()):
            if force or now - gathering.since >= settings.coalesce_seconds:
                del self._gathering[realm_id]
                body = notification_body(realm_id, gathering.events, settings)
                with self._lock:
                    self._outbox.setdefault(realm_id, deque()).append(
                        _Delivery(realm_id, body, due=now))

    def _send_due(self) -> None:
        for realm_id, deliveries in list(self._outbox.items()):
            # Only the oldest notification of a realm is tried: later ones wait behind it.
            while deliveries and (self._closing.is_set() or deliveries[0].due <= time.monotonic()):
                if not self._attempt(deliveries[0]):
                    break
                deliveries.popleft()
            if not deliveries:
                with self._lock:
                    self._outbox.pop(realm_id, None)

    def _attempt(self, delivery: _Delivery) -> bool:
        """Try once; True when the delivery is finished (sent, or given up on)."""
        settings = self._settings
        if settings.url is None:
            return True  # webhooks switched off meanwhile: QBO would not send either
        delivery.attempts += 1
        sent = _post(settings.url, delivery.body, sign(delivery.body, settings.verifier_token),
                     settings.timeout_seconds)
        with self._lock:
            self._counts["attempts"] += 1
            if sent:
                self._counts["delivered"] += 1
                return True
            retries_left = len(settings.retry_delays) - (delivery.attempts - 1)
            if retries_left <= 0 or self._closing.is_set():
                self._counts["failed"] += 1
                log.warning("webhook notification for realm %s not delivered to %s after %d "
                            "attempts; dropped", delivery.realm_id, _safe_url(settings.url),
                            delivery.attempts)
                return True
        delivery.due = time.monotonic() + settings.retry_delays[delivery.attempts - 1]
        return False

    def _has_pending(self) -> bool:
        return bool(self._gathering) or any(self._outbox.values()) or not self._inbox.empty()

    def _mark_idle_if_done(self) -> None:
        with self._lock:
            if not self._has_pending():
                self._idle.set()


def _post(url: str, body: bytes, signature: str, timeout: float) -> bool:
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "intuit-signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError, ValueError) as error:
        log.info("webhook delivery to %s failed: %s", _safe_url(url), error)
        return False
    return 200 <= status < 300


def _safe_url(url: str) -> str:
    # The query string might carry a secret of the receiver's; logs name the endpoint only.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _verb(operation: str) -> str:
    return OPERATION_VERBS.get(operation, operation.lower())


def _require_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
