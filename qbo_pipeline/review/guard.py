"""Who may use the review page, and proof that a form was sent from it: plain functions the
web layer calls (the admin credential, the rule for where the page may listen, HTTP Basic,
CSRF tokens).

The page changes the books: it listens on 127.0.0.1 unless an admin credential is configured,
and then asks for it on every request. Every form carries a CSRF token, an HMAC of a random
cookie (SameSite=Strict) under a key that lives only in the server's memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

USER_VARIABLE = "QBO_REVIEW_USER"
PASSWORD_VARIABLE = "QBO_REVIEW_PASSWORD"
MIN_PASSWORD_LENGTH = 12
LOOPBACK_NAMES = ("localhost",)


class GuardError(Exception):
    """The page cannot be served as asked; the message says how to fix it."""


@dataclass(frozen=True)
class AdminCredential:
    user: str
    password: str = field(repr=False)  # never printed, logged or shown

    def accepts(self, user: str, password: str) -> bool:
        # Both compared in constant time, so a wrong guess tells nothing about how close it was.
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


def credential_from_env(environ: Mapping[str, str] | None = None) -> AdminCredential | None:
    """The admin credential of QBO_REVIEW_USER and QBO_REVIEW_PASSWORD, or None if neither is
    set; one without the other, or a short password, is an error."""
    environ = os.environ if environ is None else environ
    user, password = environ.get(USER_VARIABLE, "").strip(), environ.get(PASSWORD_VARIABLE, "")
    if not user and not password:
        return None
    if not user or not password:
        missing = USER_VARIABLE if not user else PASSWORD_VARIABLE
        raise GuardError(f"{missing} is not set: the admin credential needs both "
                         f"{USER_VARIABLE} and {PASSWORD_VARIABLE}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise GuardError(f"{PASSWORD_VARIABLE} is shorter than {MIN_PASSWORD_LENGTH} "
                         "characters: choose a longer one")
    return AdminCredential(user, password)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The Host headers the page answers (any other is refused: DNS rebinding)."""
    hosts = ["127.0.0.1", "localhost", "::1"] if is_loopback(host) else []
    if host not in ("0.0.0.0", "::") and host not in hosts:
        hosts.append(host)
    return hosts + [name for name in extra if name not in hosts]


def check_bind(host: str, credential: AdminCredential | None,
               extra_hosts: tuple[str, ...] = ()) -> None:
    """Refuse to listen beyond this machine without an admin credential, or on every address
    without the names the page is reached by."""
    if is_loopback(host):
        return
    if credential is None:
        raise GuardError(f"the review page would listen on {host}, beyond this machine, with no "
                         f"admin credential: set {USER_VARIABLE} and {PASSWORD_VARIABLE} "
                         "(or listen on 127.0.0.1, the default)")
    if host in ("0.0.0.0", "::") and not extra_hosts:
        raise GuardError(f"listening on every address ({host}): give --allowed-host with the "
                         "name people reach the page by, e.g. --allowed-host review.example.com")


def basic_user(authorization: str | None, credential: AdminCredential) -> str | None:
    """The user of a valid HTTP Basic `Authorization` header, else None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    if not separator or not credential.accepts(user, password):
        return None
    return user


@dataclass(frozen=True)
class CsrfGuard:
    """Double-submit tokens: the form's token is the HMAC of the browser's cookie token."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @staticmethod
    def new_cookie_token() -> str:
        return secrets.token_urlsafe(32)

    def form_token(self, cookie_token: str) -> str:
        return hmac.new(self.key, cookie_token.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie_token: str | None, form_token: str | None) -> bool:
        if not cookie_token or not form_token:
            return False
        return hmac.compare_digest(self.form_token(cookie_token), form_token)
