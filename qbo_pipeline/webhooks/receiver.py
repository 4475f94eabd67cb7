"""The ASGI app QBO posts its webhooks to (`qbo-pipeline webhooks`).

Each delivery, in this order: its signature is checked (a missing or wrong `intuit-signature`
is answered 401 and nothing is stored); its events are read (either format, several realms) and
stored in the state DB in one transaction; only then is it answered 200, well within Intuit's
3 seconds, since nothing else is done here. A delivery QBO sends again (its retries, or anyone
replaying a captured one) stores nothing new: each change is stored once. The sensor turns
stored events into sync runs.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qbo_pipeline.state import store_webhook_events
from qbo_pipeline.webhooks.formats import NotifiedEvent, PayloadError, read_delivery
from qbo_pipeline.webhooks.signature import SIGNATURE_HEADER, signature_matches

log = logging.getLogger(__name__)

DEFAULT_PATH = "/qbo/webhooks"
# QBO's notifications are small (ids, no record fields); anything far larger is not one.
MAX_BODY_BYTES = 1024 * 1024


def create_webhook_app(sessions: sessionmaker[Session], verifier_token: str,
                       path: str = DEFAULT_PATH) -> Starlette:
    """The receiver on `path`; `verifier_token` is the app's, from Intuit's developer portal."""
    if not verifier_token:
        raise ValueError("the webhook verifier token is empty: set it from the app's Webhooks "
                         "page on Intuit's developer portal")

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refused(413, f"a webhook body of at most {MAX_BODY_BYTES} bytes")
        if not signature_matches(body, request.headers.get(SIGNATURE_HEADER), verifier_token):
            log.warning("webhook delivery refused: %s header missing or not the verifier "
                        "token's signature of the body", SIGNATURE_HEADER)
            return _refused(401, f"the {SIGNATURE_HEADER} header is missing or does not match "
                                 "the body")
        try:
            delivery = read_delivery(json.loads(body))
        except (ValueError, PayloadError) as exc:
            return _refused(400, str(exc) if isinstance(exc, PayloadError)
                            else "the body is not JSON")
        try:
            stored = await run_in_threadpool(_store, sessions, delivery.events)
        except SQLAlchemyError:
            log.exception("webhook events could not be stored; QBO will deliver them again")
            return _refused(503, "the state DB did not take the events; QBO retries")
        for problem in delivery.unreadable:
            log.warning("webhook event not readable, not stored: %s", problem)
        log.info("webhook delivery: %d event(s), %d new, realm(s) %s", len(delivery.events),
                 stored, ", ".join(sorted({e.realm_id for e in delivery.events})) or "none")
        return JSONResponse({"received": len(delivery.events), "stored": stored,
                             "duplicates": len(delivery.events) - stored,
                             "unreadable": delivery.unreadable})

    return Starlette(routes=[Route(path, receive, methods=["POST"])])


def _store(sessions: sessionmaker[Session], events: list[NotifiedEvent]) -> int:
    with sessions.begin() as session:
        return store_webhook_events(session, events)


def _refused(status: int, why: str) -> JSONResponse:
    return JSONResponse({"error": why}, status_code=status)
