"""Serving the receiver with uvicorn: in the foreground (the CLI) or in a thread (tests)."""

from __future__ import annotations

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.serving import BackgroundServer, free_port
from qbo_pipeline.webhooks.receiver import DEFAULT_PATH, create_webhook_app


def webhook_config(sessions: sessionmaker[Session], verifier_token: str, host: str, port: int,
                   path: str = DEFAULT_PATH, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(create_webhook_app(sessions, verifier_token, path), host=host,
                          port=port, log_level=log_level, access_log=log_level == "debug")


class WebhookServer(BackgroundServer):
    """The receiver on a free local port in a background thread; a context manager."""

    name = "the webhook receiver"

    def __init__(self, sessions: sessionmaker[Session], verifier_token: str,
                 host: str = "127.0.0.1", port: int | None = None,
                 path: str = DEFAULT_PATH) -> None:
        self.path = path
        super().__init__(webhook_config(sessions, verifier_token, host,
                                        port or free_port(host), path, "warning"))

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def __enter__(self) -> WebhookServer:
        self.start()
        return self
