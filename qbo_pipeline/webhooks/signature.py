"""Intuit's `intuit-signature`: base64 of the HMAC-SHA256 of the raw body, keyed by the app's
verifier token. Compared in constant time; the token never leaves this function."""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "intuit-signature"


def signature_of(body: bytes, verifier_token: str) -> str:
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """True only when `signature` is the token's signature of exactly `body`."""
    if not signature:
        return False
    return hmac.compare_digest(signature_of(body, verifier_token).encode("ascii"),
                               signature.strip().encode("utf-8", "replace"))
