"""Serving the emulator with uvicorn: in the foreground (the CLI) or in a thread (tests, demo)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from qbo_pipeline.emulator.app import create_app
from qbo_pipeline.emulator.service import Emulator, EmulatorConfig, build_emulator


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


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


class EmulatorServer:
    """An emulator on a free local port in a background thread; a context manager.

    >>> with EmulatorServer() as server:
    ...     requests.get(server.base_url + "/.well-known/openid_configuration")
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.emulator = build_emulator(config)
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(_uvicorn_config(self.emulator, self.host, self.port,
                                                      "warning"))
        self._thread = threading.Thread(target=self._server.run, name="qbo-emulator",
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the QBO emulator did not start on {self.base_url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
