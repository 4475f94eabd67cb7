"""The local server that receives QBO's consent redirect: one answer, then it stops.

A person consents in a browser; QBO then sends that browser to the redirect URI with the code,
the state and the realmId (or an error). When the redirect URI is on this machine
(``oauth.local_callback``), ``ConsentReceiver`` listens on 127.0.0.1 only, answers only the
callback path, and hands the first redirect to ``finish``, which checks it and swaps the code
(QBO protocol, not this module's); the person's browser is then shown the outcome. Whatever
that outcome, the first redirect ends the wait: a forged one aborts the connection.
"""

from __future__ import annotations

import html
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

from qbo_pipeline.qbo.errors import ConsentError
from qbo_pipeline.qbo.oauth import CallbackAddress, carries_consent_answer

LOOPBACK = "127.0.0.1"

Finish = Callable[[str], str]
"""Completes the connection from the redirect's address (or just its path and query); returns
the realm id connected. Raises ``ConsentError`` for a redirect that cannot connect."""

# A browser may open a connection and send nothing on it (a preconnect): let it go after this.
_IDLE_CONNECTION_SECONDS = 10
# How often the serving thread looks whether it is asked to stop.
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class _Page:
    """What the person's browser is shown."""

    status: HTTPStatus
    title: str
    text: str

    def body(self) -> bytes:
        title, text = html.escape(self.title), html.escape(self.text)
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
                f"</head><body><h1>{title}</h1><p>{text}</p></body></html>").encode()


@dataclass(frozen=True)
class _Outcome:
    """The first redirect's result, for the thread waiting in ``ConsentReceiver.wait``."""

    realm_id: str | None = None
    error: Exception | None = None


_NOT_FOUND = _Page(HTTPStatus.NOT_FOUND, "Not found",
                   "This server only waits for QuickBooks' consent redirect.")
_NOT_A_REDIRECT = _Page(HTTPStatus.BAD_REQUEST, "Waiting for QuickBooks",
                        "This address receives QuickBooks' answer once you consent: open the "
                        "consent address the terminal shows.")
_ALREADY_ANSWERED = _Page(HTTPStatus.CONFLICT, "Already answered",
                          "This connection already received QuickBooks' answer or stopped "
                          "waiting: see the terminal.")


class ConsentReceiver:
    """Listens on 127.0.0.1 for the consent redirect, in a background thread; a context
    manager (the port is free again once it exits)."""

    def __init__(self, address: CallbackAddress, finish: Finish) -> None:
        self.address = address
        self._finish = finish
        self._lock = threading.Lock()
        self._claimed = threading.Event()
        self._outcome: queue.Queue[_Outcome] = queue.Queue(maxsize=1)
        self._server: _CallbackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.address.port}{self.address.path}"

    def __enter__(self) -> ConsentReceiver:
        try:
            server = _CallbackServer((LOOPBACK, self.address.port), _CallbackHandler)
        except OSError as error:
            raise ConsentError(
                f"cannot listen for the consent redirect on {LOOPBACK}:{self.address.port} "
                f"({error.strerror or error}): stop the program using that port, or register "
                "a redirect URI with another port (http://localhost:<port>/callback) for the "
                "app with Intuit and set QBO_REDIRECT_URI to it") from None
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(_POLL_SECONDS,),
                                        name="qbo-consent-callback", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def wait(self, timeout_seconds: float) -> str:
        """The realm id ``finish`` connected from the first redirect (its error is raised
        here instead), or a ``ConsentError`` when none came within ``timeout_seconds``."""
        # Claiming on timeout makes a redirect arriving just then get "already answered",
        # never a connection nobody waits for.
        if not self._claimed.wait(timeout_seconds) and self._claim():
            raise ConsentError(
                f"nobody consented within {duration_words(timeout_seconds)} (no redirect reached "
                f"{self.url}): start the connection again (`qbo-pipeline connect`; --timeout "
                "gives more time) and finish the consent screen in a browser on this machine")
        outcome = self._outcome.get()
        if outcome.error is not None:
            raise outcome.error
        assert outcome.realm_id is not None
        return outcome.realm_id

    def answer(self, request_target: str) -> tuple[_Page, _Outcome | None]:
        """The page for one GET, and the outcome when it was the redirect that ends the wait."""
        if urlsplit(request_target).path != self.address.path:
            return _NOT_FOUND, None
        if not carries_consent_answer(request_target):
            return _NOT_A_REDIRECT, None
        if not self._claim():
            return _ALREADY_ANSWERED, None
        try:
            realm_id = self._finish(request_target)
        except ConsentError as error:  # refused, forged or incomplete: safe to show
            return _Page(HTTPStatus.BAD_REQUEST, "Not connected",
                         f"{error}. The terminal says the same."), _Outcome(error=error)
        except Exception as error:  # the terminal reports it, where the connection started
            return _Page(HTTPStatus.BAD_GATEWAY, "Not connected",
                         "Connecting failed: the terminal says why."), _Outcome(error=error)
        return _Page(HTTPStatus.OK, "Connected",
                     f"QuickBooks company {realm_id} is connected. You can close this tab."), \
            _Outcome(realm_id=realm_id)

    def report(self, outcome: _Outcome) -> None:
        self._outcome.put(outcome)

    def _claim(self) -> bool:
        """True for the one caller that gets to end the wait (a redirect, or the timeout)."""
        with self._lock:
            if self._claimed.is_set():
                return False
            self._claimed.set()
            return True


class _CallbackServer(ThreadingHTTPServer):
    receiver: ConsentReceiver


class _CallbackHandler(BaseHTTPRequestHandler):
    timeout = _IDLE_CONNECTION_SECONDS

    def do_GET(self) -> None:  # the name http.server dispatches a GET to
        receiver = cast(_CallbackServer, self.server).receiver
        page, outcome = receiver.answer(self.path)
        try:
            self._send(page)
        finally:
            # Reported once the page is sent (the waiting thread may end the process right
            # after), and even when the browser left before it: the wait must end.
            if outcome is not None:
                receiver.report(outcome)

    def _send(self, page: _Page) -> None:
        body = page.body()
        self.send_response(page.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        # The address holds a one-time code: no cache keeps it, no later request refers to it.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # the base class names it so
        """Silent: every request line of the redirect carries the authorization code."""


def duration_words(seconds: float) -> str:
    """"5 minutes", "90 seconds": a wait as a person reads it."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"
