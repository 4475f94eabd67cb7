"""The end of QBO's OAuth consent: reading the redirect that brings a person back.

After consent, QBO redirects to our redirect URI with ``code`` (the authorization code, to
swap for tokens), ``realmId`` (the company connected) and the ``state`` we sent, or with an
``error`` when the person declined. ``state`` is our guard against a forged redirect: only the
one this connection was started with is accepted.

A redirect URI on this machine (``http://localhost:<port>/...`` or ``http://127.0.0.1:...``)
can be received by a small local server (``local_callback``); any other is an app's own server,
and the address the browser ends on is handed back by a person instead.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse, urlsplit

from qbo_pipeline.qbo.errors import ConsentError

# Names that reach this machine's loopback interface; a browser resolves both itself.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
# What a consent redirect always carries: a code and a state, or an error.
_ANSWER_PARAMETERS = ("code", "state", "error")
# OAuth error codes are short words ("access_denied"); anything longer is not echoed.
_ERROR_CODE_LIMIT = 60


@dataclass(frozen=True)
class ConsentResult:
    """A consent QBO granted: the company, and the code to swap for its tokens."""

    realm_id: str
    code: str = field(repr=False)  # a one-time credential: never in logs


def parse_consent_redirect(redirect_url: str, expected_state: str) -> ConsentResult:
    """The realm and code of a consent redirect, once its ``state`` is checked.

    Raises ``ConsentError`` when QBO refused the connection, when the state is not the one the
    connection was started with, or when the code or realmId is missing."""
    if not expected_state:
        raise ValueError("parse_consent_redirect: expected_state must be the state the "
                         "connection was started with")
    query = {name: values[0] for name, values in parse_qs(urlparse(redirect_url).query).items()}
    # The state first, in constant time (it is a secret shared with the consent screen): an
    # error redirect carries it too (RFC 6749 4.1.2.1), so a forged "error=" cannot cancel a
    # connection someone is consenting to.
    if not hmac.compare_digest(query.get("state", "").encode(), expected_state.encode()):
        raise ConsentError("the consent redirect's state does not match the one this "
                           "connection was started with: start the connection again")
    if "error" in query:
        raise ConsentError(f"QBO refused the connection: {_error_code(query['error'])}")
    missing = [name for name in ("code", "realmId") if not query.get(name)]
    if missing:
        raise ConsentError(f"the consent redirect carries no {' and no '.join(missing)}: "
                           f"start the connection again")
    return ConsentResult(query["realmId"], query["code"])


def _error_code(error: str) -> str:
    printable = "".join(char for char in error if char.isprintable())
    return printable[:_ERROR_CODE_LIMIT] or "no reason given"


@dataclass(frozen=True)
class CallbackAddress:
    """Where a local server receives the consent redirect: a port of 127.0.0.1 and a path."""

    port: int
    path: str


def local_callback(redirect_uri: str) -> CallbackAddress | None:
    """The local address a redirect URI sends the browser to, or None when it leads elsewhere.

    Only plain ``http`` on localhost or 127.0.0.1 qualifies: a local server has no certificate
    for ``https``, and any other host is not this machine."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        return None
    try:
        port = parts.port or 80
    except ValueError:  # a port that is not a number, or out of range
        return None
    return CallbackAddress(port, parts.path or "/")


def carries_consent_answer(request_target: str) -> bool:
    """Whether a request to the callback is a consent redirect (a code, a state or an error),
    not a person opening the callback address by hand."""
    query = parse_qs(urlparse(request_target).query)
    return any(name in query for name in _ANSWER_PARAMETERS)
