"""The end of QBO's OAuth consent: reading the redirect that brings a person back.

After consent, QBO redirects to our redirect URI with ``code`` (the authorization code, to
swap for tokens), ``realmId`` (the company connected) and the ``state`` we sent, or with an
``error`` when the person declined. ``state`` is our guard against a forged redirect: only the
one this connection was started with is accepted.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from qbo_pipeline.qbo.errors import ConsentError

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
    if "error" in query:
        raise ConsentError(f"QBO refused the connection: {_error_code(query['error'])}")
    # Compared in constant time: the state is a secret shared with the consent screen.
    if not hmac.compare_digest(query.get("state", "").encode(), expected_state.encode()):
        raise ConsentError("the consent redirect's state does not match the one this "
                           "connection was started with: start the connection again")
    missing = [name for name in ("code", "realmId") if not query.get(name)]
    if missing:
        raise ConsentError(f"the consent redirect carries no {' and no '.join(missing)}: "
                           f"start the connection again")
    return ConsentResult(query["realmId"], query["code"])


def _error_code(error: str) -> str:
    printable = "".join(char for char in error if char.isprintable())
    return printable[:_ERROR_CODE_LIMIT] or "no reason given"
