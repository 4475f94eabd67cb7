"""The HTTP transport every call to Intuit shares: urllib3's ``Retry`` on a session's adapter,
for refused or dropped connections before an answer, read timeouts and 5xx, on GET and POST,
with exponential backoff and jitter. QBO's API client (``client.py``) and the token endpoint's
``AuthClient`` (``tokens.py``) both mount it, so a 503 of either is retried the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import backoff
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qbo_pipeline.qbo.settings import QBOSettings

RETRIED_STATUSES = (500, 502, 503, 504)
P = ParamSpec("P")
R = TypeVar("R")


def build_session(settings: QBOSettings) -> requests.Session:
    """A session whose adapter retries transport failures and 5xx (see module doc)."""
    return mount_retries(requests.Session(), settings)


def mount_retries(session: requests.Session, settings: QBOSettings) -> requests.Session:
    """Give ``session`` (ours, or intuit-oauth's ``AuthClient``, itself a session) the adapter
    that retries transport failures and 5xx with backoff; returns it."""
    retry = Retry(
        total=settings.max_retries,
        backoff_factor=settings.backoff_seconds,
        backoff_jitter=settings.backoff_seconds,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=settings.concurrent_requests)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retrying_cut_bodies(call: Callable[P, R], settings: QBOSettings) -> Callable[P, R]:
    """``call`` retried with backoff when a connection is cut in the middle of an answer's
    body, which urllib3 has already handed over as a response and so cannot retry."""
    on_cut_body = backoff.on_exception(
        backoff.expo, requests.exceptions.ChunkedEncodingError,
        max_tries=settings.max_retries + 1, factor=settings.backoff_seconds,
        jitter=backoff.full_jitter)
    return on_cut_body(call)
