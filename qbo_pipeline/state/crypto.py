"""Encryption of secrets at rest (OAuth tokens) with Fernet.

The key comes from `QBO_PIPELINE_SECRET_KEY`: a Fernet key, or several separated by commas
to rotate keys (the first encrypts, all decrypt). Generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.

In production (`QBO_PIPELINE_ENV=production`, or `production=True`) the variable is required.
For local development only, a key is generated once into a key file, readable by its owner
only, and reused: `secret.key` beside the SQLite state DB whose tokens it encrypts (so a run
from any working directory finds it), or, for a state DB on a server, in the user's
configuration folder. Losing that file means reconnecting the realms, since their tokens can no
longer be read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from platformdirs import user_config_path
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker

SECRET_KEY_VARIABLE = "QBO_PIPELINE_SECRET_KEY"
ENVIRONMENT_VARIABLE = "QBO_PIPELINE_ENV"
KEY_FILE_NAME = "secret.key"
_GENERATE_HINT = (
    'generate one with python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or not the one the secrets were encrypted with."""


class SecretCipher:
    """Encrypts and decrypts secrets; never shows them in its repr or its errors."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError(f"no secret key given: set {SECRET_KEY_VARIABLE}; "
                                 f"{_GENERATE_HINT}")
        self._fernet = MultiFernet([_fernet(key, position) for position, key in
                                    enumerate(keys, start=1)])

    def __repr__(self) -> str:
        return "SecretCipher(<hidden>)"

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, encrypted: str, *, what: str) -> str:
        """The secret; `what` names it in the error if this key cannot decrypt it."""
        try:
            return self._fernet.decrypt(encrypted.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"cannot decrypt {what}: it was encrypted with another secret key; set "
                f"{SECRET_KEY_VARIABLE} to "
                "the key it was saved with (keys may be listed with commas while rotating), "
                "or reconnect the QBO company to store new tokens"
            ) from None


def _fernet(key: str, position: int) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        # The key itself is never echoed.
        raise SecretKeyError(
            f"{SECRET_KEY_VARIABLE}: key {position} is not a Fernet key (32 url-safe "
            f"base64-encoded bytes); {_GENERATE_HINT}"
        ) from None


def development_key_file(state_url: str | None) -> Path:
    """Where the development key of the state DB at `state_url` is kept (module docstring)."""
    if state_url is not None:
        parsed = make_url(state_url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                             ":memory:"):
            return Path(str(parsed.database)).absolute().parent / KEY_FILE_NAME
    return user_config_path("qbo_pipeline") / KEY_FILE_NAME


def cipher_for(sessions: sessionmaker[Session],
               environ: Mapping[str, str] | None = None) -> SecretCipher:
    """The cipher of the state DB these sessions open (its development key lies beside it)."""
    bind = sessions.kw["bind"]
    return load_cipher(environ, state_url=bind.url.render_as_string(hide_password=True))


def load_cipher(
    environ: Mapping[str, str] | None = None,
    *,
    production: bool | None = None,
    state_url: str | None = None,
    key_file: Path | None = None,
) -> SecretCipher:
    """The cipher for the configured key; see the module docstring for where it comes from
    (`key_file`, when given, replaces the development key's place)."""
    environ = os.environ if environ is None else environ
    configured = environ.get(SECRET_KEY_VARIABLE, "").strip()
    if configured:
        return SecretCipher([key for key in configured.split(",") if key.strip()])
    if production is None:
        production = environ.get(ENVIRONMENT_VARIABLE, "").lower() == "production"
    if production:
        raise SecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not set: production needs a secret key to encrypt the "
            f"QBO tokens at rest; {_GENERATE_HINT}, and keep it in your secret store"
        )
    return SecretCipher([_development_key(key_file or development_key_file(state_url))])


def _development_key(key_file: Path) -> str:
    if key_file.exists():
        return key_file.read_text(encoding="ascii").strip()
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key().decode("ascii")
    # Created owner-only from the start, never world-readable even briefly.
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
