"""The review page, `qbo-pipeline review`: the review desk's functions behind server-side HTML
forms (Starlette and Jinja2, no JavaScript).

This module only adapts HTTP to the review functions (`review.conflicts`, `.quarantine`,
`.links`) and decides nothing of its own: what a decision does, what a retry needs, what a
relink checks are theirs. A refusal (`ReviewError`) comes back as a notice on the page the
form was sent from (post, redirect, get: a reload never sends a form twice).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from qbo_pipeline.review.conflicts import (
    ReviewError,
    apply_qbo_problems_of,
    decide,
    list_conflicts,
    show_conflict,
)
from qbo_pipeline.review.guard import AdminCredential, CsrfGuard, basic_user
from qbo_pipeline.review.links import find_duplicates, relink, show_link, unlink
from qbo_pipeline.review.quarantine import list_quarantined, retry_row
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import list_realms
from qbo_pipeline.sync.resolutions import Decision

HERE = Path(__file__).parent
CSRF_COOKIE = "qbo_review_csrf"
NOTICE_COOKIE = "qbo_review_notice"
NAME_COOKIE = "qbo_review_name"
DECISION_LABELS = {Decision.KEEP_SOURCE: "keep the source's values",
                   Decision.APPLY_QBO: "apply QuickBooks' values",
                   Decision.DISMISS: "dismiss"}
SECURITY_HEADERS = {
    # No script at all; styles from this page only; no framing (clickjacking).
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# Syncs one record now and says what it did: (realm, entity, source key) -> a sentence.
SyncRecord = Callable[[str, str, str], str]


@dataclass
class ReviewDesk:
    """What the page works on: the state DB, the specs, and how to sync one record now (None
    where the page has no way to run a sync: retrying and syncing are then not offered)."""

    sessions: sessionmaker[Session]
    specs: SpecSet
    sync_record: SyncRecord | None = None
    credential: AdminCredential | None = None
    csrf: CsrfGuard = field(default_factory=CsrfGuard)
    # One sync at a time from the page: two would only queue behind each other in QBO.
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class Notices:
    """Messages shown once on the page a form redirects to, kept here (not in the address, so
    that nobody can craft one into a link)."""

    def __init__(self, limit: int = 500) -> None:
        self._notices: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, kind: str, text: str) -> str:
        notice_id = secrets.token_urlsafe(16)
        with self._lock:
            self._notices[notice_id] = (kind, text)
            while len(self._notices) > self._limit:
                self._notices.popitem(last=False)
        return notice_id

    def pop(self, notice_id: str | None) -> dict[str, str] | None:
        with self._lock:
            found = self._notices.pop(notice_id, None) if notice_id else None
        return {"kind": found[0], "text": found[1]} if found else None


class FormRefused(Exception):
    """A form without a valid CSRF token, or from another site."""


def create_review_app(desk: ReviewDesk, hosts: list[str]) -> Starlette:
    templates = _templates()
    notices = Notices()
    page = _Pages(desk, templates, notices)
    routes = [
        Route("/", page.overview),
        Route("/conflicts", page.conflicts),
        Route("/conflicts/decide", page.decide, methods=["POST"]),
        Route("/conflicts/{conflict_id:int}", page.conflict),
        Route("/quarantine", page.quarantine),
        Route("/quarantine/retry", page.retry, methods=["POST"]),
        Route("/links", page.links),
        Route("/links/unlink", page.unlink, methods=["POST"]),
        Route("/links/relink", page.relink, methods=["POST"]),
        Route("/links/sync", page.sync, methods=["POST"]),
        Route("/duplicates", page.duplicates),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
                  Middleware(BaseHTTPMiddleware, dispatch=_guarded(desk))]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        FormRefused: page.refused, HTTPException: page.http_error})


def _templates() -> Environment:
    environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                              autoescape=select_autoescape(["html"], default=True))
    environment.filters["moment"] = _moment
    environment.filters["value"] = _value
    return environment


def _moment(value: datetime | None) -> str:
    if value is None:
        return "—"
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _value(value: Any) -> str:
    """A field's value as a person reads it: blank is said, not left empty."""
    if value is None or value == "":
        return "(empty)"
    return str(value)


def _guarded(desk: ReviewDesk) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                           Awaitable[Response]]:
    """Every request: the admin credential when one is configured, the CSRF cookie, and the
    security headers."""

    async def dispatch(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.user = None
        if desk.credential is not None:
            user = basic_user(request.headers.get("authorization"), desk.credential)
            if user is None:
                return Response("The review page needs its admin user name and password.",
                                status_code=401, media_type="text/plain",
                                headers={"WWW-Authenticate":
                                         'Basic realm="QuickBooks review", charset="UTF-8"'})
            request.state.user = user
        cookie = request.cookies.get(CSRF_COOKIE)
        request.state.csrf_cookie = cookie or desk.csrf.new_cookie_token()
        response = await call_next(request)
        if cookie is None:
            response.set_cookie(CSRF_COOKIE, request.state.csrf_cookie, httponly=True,
                                samesite="strict")
        response.headers.update(SECURITY_HEADERS)
        return response

    return dispatch


class _Pages:
    def __init__(self, desk: ReviewDesk, templates: Environment, notices: Notices) -> None:
        self.desk, self.templates, self.notices = desk, templates, notices

    # --- rendering -------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200,
               **context: Any) -> HTMLResponse:
        notice = self.notices.pop(request.cookies.get(NOTICE_COOKIE))
        body = self.templates.get_template(template).render(
            request=request, notice=notice, user=request.state.user,
            name=request.cookies.get(NAME_COOKIE, ""),
            csrf=self.desk.csrf.form_token(request.state.csrf_cookie),
            here=_here(request), can_sync=self.desk.sync_record is not None,
            entities=self.desk.specs.names, realms=self._realms(), **context)
        response = HTMLResponse(body, status_code=status_code)
        if notice is not None:
            response.delete_cookie(NOTICE_COOKIE)
        return response

    def _realms(self) -> list[str]:
        with self.desk.sessions.begin() as session:
            return [realm.realm_id for realm in list_realms(session)]

    def done(self, form: FormData, kind: str, text: str, name: str | None = None) -> Response:
        """Post, redirect, get: back to the page the form was on, with a notice."""
        response = RedirectResponse(_local(str(form.get("back", "/"))), status_code=303)
        response.set_cookie(NOTICE_COOKIE, self.notices.add(kind, text), httponly=True,
                            samesite="strict")
        if name:
            response.set_cookie(NAME_COOKIE, name, httponly=True, samesite="strict",
                                max_age=365 * 24 * 3600)
        return response

    async def refused(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "refused.html", status_code=403, title="Form refused",
                           reason=str(exc))

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return self.render(request, "refused.html", status_code=status, title="Not found",
                           reason=exc.detail if isinstance(exc, HTTPException) else "")

    # --- pages -----------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        rows = await run_in_threadpool(self._overview_rows)
        return self.render(request, "overview.html", title="Overview", rows=rows)

    def _overview_rows(self) -> list[dict[str, Any]]:
        sessions, specs = self.desk.sessions, self.desk.specs
        conflicts = list_conflicts(sessions, specs)
        held = list_quarantined(sessions, specs)
        duplicates = find_duplicates(sessions, specs)
        rows = []
        for realm in self._realms():
            for entity in specs.names:
                open_ = [c for c in conflicts if (c.realm_id, c.entity) == (realm, entity)]
                row = {"realm": realm, "entity": entity, "conflicts": len(open_),
                       "oldest": min((c.created_at for c in open_), default=None),
                       "quarantined": sum(1 for q in held
                                          if (q.realm_id, q.entity) == (realm, entity)),
                       "duplicates": sum(1 for d in duplicates
                                         if (d.realm_id, d.entity) == (realm, entity))}
                rows.append(row)
        return rows

    async def conflicts(self, request: Request) -> Response:
        realm, entity, show = _filters(request, self.desk.specs)
        views = await self._reviewed(request, lambda: list_conflicts(
            self.desk.sessions, self.desk.specs, realm_id=realm, entity=entity,
            include_decided=show == "all"))
        return self.render(request, "conflicts.html", title="Conflicts", conflicts=views or [],
                           realm=realm, entity=entity, show=show, decisions=DECISION_LABELS)

    async def conflict(self, request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        try:
            view = await run_in_threadpool(show_conflict, self.desk.sessions, self.desk.specs,
                                           conflict_id)
        except ReviewError as error:
            raise HTTPException(404, str(error)) from error
        problems = await run_in_threadpool(apply_qbo_problems_of, self.desk.sessions,
                                           self.desk.specs, view)
        return self.render(request, "conflict.html", title=f"Conflict {view.id}", view=view,
                           apply_qbo_problems=problems, decisions=DECISION_LABELS)

    async def decide(self, request: Request) -> Response:
        form = await self.checked_form(request)
        ids = [int(str(i)) for i in form.getlist("conflict") if str(i).isdigit()]
        decision_text = str(form.get("decision", ""))
        who = self.who(request, form)
        try:
            if decision_text not in set(Decision):
                raise ReviewError("choose what to do with the conflicts")
            if not ids:
                raise ReviewError("tick at least one conflict to decide")
            decision = Decision(decision_text)
            views = await run_in_threadpool(decide, self.desk.sessions, self.desk.specs, ids,
                                            decision, _required(who))
        except ReviewError as error:
            return self.done(form, "error", f"Nothing was decided: {error}")
        decided = ", ".join(f"{v.id} ({v.entity} {v.source_key}, {v.name})" for v in views)
        return self.done(form, "ok", f"Conflict {decided}: {DECISION_LABELS[decision]}, "
                                     f"decided by {who}. The next sync applies it.", who)

    async def quarantine(self, request: Request) -> Response:
        realm, entity, _ = _filters(request, self.desk.specs)
        text = request.query_params.get("q", "").strip()
        rows = await self._reviewed(request, lambda: list_quarantined(
            self.desk.sessions, self.desk.specs, realm_id=realm, entity=entity))
        if text:
            needle = text.lower()
            rows = [row for row in rows or [] if needle in row.source_key.lower()
                    or any(needle in reason.lower() for reason in row.reasons)]
        return self.render(request, "quarantine.html", title="Quarantine", rows=rows or [],
                           realm=realm, entity=entity, q=text)

    async def retry(self, request: Request) -> Response:
        form = await self.checked_form(request)
        realm, entity, key = _record(form)
        sync_record = self._syncer()

        def attempt() -> str:
            return retry_row(self.desk.sessions, self.desk.specs, realm, entity, key,
                             lambda: sync_record(realm, entity, key))
        try:
            outcome = await run_in_threadpool(attempt)
        except ReviewError as error:
            return self.done(form, "error", str(error))
        return self.done(form, "ok", f"{entity} {key} passed and is released from the "
                                     f"quarantine. {outcome}")

    async def links(self, request: Request) -> Response:
        realm, entity, _ = _filters(request, self.desk.specs)
        key = request.query_params.get("key", "").strip()
        view, open_conflicts, problem = None, [], None
        if realm and entity and key:
            try:
                view = await run_in_threadpool(show_link, self.desk.sessions, self.desk.specs,
                                               realm, entity, key)
            except ReviewError as error:
                problem = str(error)
            open_conflicts = [c for c in await run_in_threadpool(
                list_conflicts, self.desk.sessions, self.desk.specs, realm_id=realm,
                entity=entity) if c.source_key == key]
        elif key:
            problem = "choose the company and the entity of the record to look up"
        return self.render(request, "links.html", title="Links", link=view, realm=realm,
                           entity=entity, key=key, problem=problem,
                           open_conflicts=open_conflicts)

    async def unlink(self, request: Request) -> Response:
        form = await self.checked_form(request)
        realm, entity, key = _record(form)
        who = self.who(request, form)
        try:
            view = await run_in_threadpool(unlink, self.desk.sessions, self.desk.specs, realm,
                                           entity, key, _required(who))
        except ReviewError as error:
            return self.done(form, "error", f"Nothing was changed: {error}")
        return self.done(form, "ok", f"{entity} {key} is no longer linked to QuickBooks "
                                     f"{view.qbo_entity} {view.qbo_id} ({view.name}); the next "
                                     "sync finds its record by the match keys, or creates it.",
                         who)

    async def relink(self, request: Request) -> Response:
        form = await self.checked_form(request)
        realm, entity, key = _record(form)
        who = self.who(request, form)
        qbo_id = str(form.get("qbo_id", "")).strip()
        try:
            if not qbo_id:
                raise ReviewError("give the Id of the QuickBooks record to link to")
            view = await run_in_threadpool(relink, self.desk.sessions, self.desk.specs, realm,
                                           entity, key, qbo_id, _required(who))
        except ReviewError as error:
            return self.done(form, "error", f"Nothing was changed: {error}")
        return self.done(form, "ok", f"{entity} {key} is linked to QuickBooks {view.qbo_entity} "
                                     f"{view.qbo_id} ({view.name}); the next sync compares them "
                                     "field by field.", who)

    async def sync(self, request: Request) -> Response:
        form = await self.checked_form(request)
        realm, entity, key = _record(form)
        sync_record = self._syncer()
        try:
            outcome = await run_in_threadpool(sync_record, realm, entity, key)
        except ReviewError as error:
            return self.done(form, "error", str(error))
        return self.done(form, "ok", f"Synced {entity} {key}. {outcome}")

    async def duplicates(self, request: Request) -> Response:
        realm, entity, _ = _filters(request, self.desk.specs)
        views = await self._reviewed(request, lambda: find_duplicates(
            self.desk.sessions, self.desk.specs, realm_id=realm, entity=entity))
        return self.render(request, "duplicates.html", title="Likely duplicates",
                           duplicates=views or [], realm=realm, entity=entity)

    # --- helpers ---------------------------------------------------------------------------

    async def _reviewed(self, request: Request, action: Callable[[], Any]) -> Any:
        try:
            return await run_in_threadpool(action)
        except ReviewError as error:
            raise HTTPException(400, str(error)) from error

    async def checked_form(self, request: Request) -> FormData:
        """The form, once its CSRF token and its origin are this page's."""
        form = await request.form()
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise FormRefused(f"this form was sent from {origin}, not from the review page")
        if not self.desk.csrf.valid(request.cookies.get(CSRF_COOKIE), str(form.get("csrf"))):
            raise FormRefused("this form has expired or did not come from the review page: "
                              "reload the page and send it again")
        return form

    def who(self, request: Request, form: FormData) -> str:
        """The person acting: the admin signed in, else the name typed in the form."""
        user: str | None = request.state.user
        return user or str(form.get("by", "")).strip()

    def _syncer(self) -> Callable[[str, str, str], str]:
        sync_record = self.desk.sync_record
        if sync_record is None:
            raise HTTPException(404, "this review page cannot run syncs")

        def locked(realm: str, entity: str, key: str) -> str:
            with self.desk.sync_lock:
                return sync_record(realm, entity, key)
        return locked


def _required(who: str) -> str:
    if not who:
        raise ReviewError("type your name in “Your name”: every change is recorded with who "
                          "made it")
    return who


def _filters(request: Request, specs: SpecSet) -> tuple[str | None, str | None, str]:
    query = request.query_params
    entity = query.get("entity") or None
    if entity is not None and entity not in specs:
        raise HTTPException(400, f"unknown entity {entity!r}: the mapping specs define "
                                 f"{', '.join(specs.names)}")
    return query.get("realm") or None, entity, query.get("show", "open")


def _record(form: FormData) -> tuple[str, str, str]:
    return (str(form.get("realm", "")), str(form.get("entity", "")),
            str(form.get("key", "")).strip())


def _here(request: Request) -> str:
    query = urlencode(list(request.query_params.multi_items()))
    return request.url.path + (f"?{query}" if query else "")


def _local(path: str) -> str:
    """Only a path of this page is a place to go back to (no open redirect)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
