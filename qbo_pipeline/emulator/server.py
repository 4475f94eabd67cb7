"""Serving the emulator with uvicorn: in the foreground (the CLI) or in a thread (tests, demo)."""

from __future__ import annotations

import uvicorn

from qbo_pipeline.emulator.app import create_app
from qbo_pipeline.emulator.service import Emulator, EmulatorConfig, build_emulator
from qbo_pipeline.serving import BackgroundServer, free_port

__all__ = ["EmulatorServer", "free_port", "serve_forever"]


def _uvicorn_config(emulator: Emulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    # Many connections at once are normal (10 concurrent per realm, many realms): keep the
    # backlog and keep-alive generous; access logs stay off unless asked for.
    return uvicorn.Config(
        create_app(emulator), host=host, port=port, log_level=log_level,
        access_log=log_level == "debug", backlog=1024, timeout_keep_alive=30,
    )


def serve_forever(config: EmulatorConfig, host: str, port: int, log_level: str = "info") -> None:
    """Run the emulator until interrupted (Ctrl-C)."""
    emulator = build_emulator(config)
    try:
        uvicorn.Server(_uvicorn_config(emulator, host, port, log_level)).run()
    finally:
        emulator.close()


class EmulatorServer(BackgroundServer):
    """An emulator on a free local port in a background thread; a context manager.

    >>> with EmulatorServer() as server:
    ...     requests.get(server.base_url + "/.well-known/openid_configuration")
    """

    name = "the QBO emulator"

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.emulator = build_emulator(config)
        super().__init__(_uvicorn_config(self.emulator, host, port or free_port(host),
                                         "warning"))

    def stop(self) -> None:
        super().stop()
        self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self
