"""The real processes the chaos harness drives: the QBO emulator (`qbo-pipeline emulator`) and
`qbo-pipeline` commands (`sync`, `connect`), each a subprocess it can SIGKILL at any moment."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import requests

CLI = [sys.executable, "-m", "qbo_pipeline.cli"]
ADMIN_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 60.0
DISCOVERY_PATH = "/.well-known/openid_configuration"


class ChaosError(Exception):
    """The harness itself could not go on (a process would not start): not a pipeline bug."""


class Emulator:
    """`qbo-pipeline emulator` on a fixed port, its companies kept in a state file so that a
    SIGKILL and a restart find them again (tokens, kept in memory, do not survive)."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.state_file = workdir / "emulator.sqlite"
        self.log_path = workdir / "emulator.log"
        self.base_url = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._seen: Counter[str] = Counter()  # faults counted so far by this process
        self.injected: Counter[str] = Counter()  # faults injected over every process

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [*CLI, "emulator", "--port", str(self.port), "--state", str(self.state_file),
             "--log-level", "warning"], stdout=self._log, stderr=subprocess.STDOUT)
        self._seen = Counter()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.alive:
                raise ChaosError(f"the emulator exited at start; see {self.log_path}")
            try:
                requests.get(self.base_url + DISCOVERY_PATH, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise ChaosError(f"the emulator did not answer on {self.base_url}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, whatever it was doing."""
        if self._process is None:
            return
        if self.alive:
            self.count_faults()
            self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process = None
        if self._log is not None:
            self._log.close()

    def stop(self) -> None:
        if self._process is not None and self.alive:
            self.count_faults()
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)
        self._process = None
        if self._log is not None:
            self._log.close()

    # --- the admin API (no token) ------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, self.base_url + path, json=body,
                                    timeout=ADMIN_TIMEOUT_SECONDS)
        if response.status_code >= 400:
            raise ChaosError(f"emulator {method} {path}: {response.status_code} "
                             f"{response.text[:300]}")
        return response.json()

    def set_faults(self, shares: dict[str, float], slow_seconds: float, seed: int) -> None:
        self.admin("DELETE", "/admin/faults")
        self.admin("PUT", "/admin/faults", {**shares, "slow_seconds": slow_seconds, "seed": seed})

    def schedule_fault(self, kind: str, count: int, target: str = "accounting") -> None:
        self.admin("POST", "/admin/faults/scheduled",
                   {"kind": kind, "count": count, "target": target})

    def clear_faults(self) -> None:
        self.admin("DELETE", "/admin/faults")

    def count_faults(self) -> None:
        """Add the faults injected since the last count (the emulator counts per process)."""
        try:
            now = Counter(self.admin("GET", "/admin/faults")["injected"])
        except (requests.RequestException, ChaosError):
            return  # a dying emulator: its last few faults go uncounted
        self.injected.update(now - self._seen)
        self._seen = now

    def dump(self, realm_id: str) -> dict[str, list[dict[str, Any]]]:
        objects: dict[str, list[dict[str, Any]]] = self.admin(
            "GET", f"/admin/realms/{realm_id}/dump")["objects"]
        return objects

    def edit(self, realm_id: str, entity: str, qbo_id: str, changes: dict[str, Any]) -> None:
        """A bookkeeper's edit in QBO now (bumps SyncToken and LastUpdatedTime)."""
        self.admin("POST", f"/admin/realms/{realm_id}/{entity}/{qbo_id}/edit", changes)


class Command:
    """One `qbo-pipeline` command in a subprocess; its output is read line by line in a
    thread (so that the harness can kill it when a given step starts) and kept in a log."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args = args
        self.started = time.monotonic()
        self.output: list[str] = []
        self.killed = False
        self.code: int | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._log = log.open("a")
        self._log.write(f"\n$ qbo-pipeline {' '.join(args)}\n")
        self.process = subprocess.Popen(
            [*CLI, *args], env={**env, "PYTHONUNBUFFERED": "1"}, cwd=cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self.process.poll() is None

    def new_lines(self) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                break
        self.output.extend(lines)
        self._log.writelines(line + "\n" for line in lines)
        return lines

    def kill(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.killed = True
        self.wait(30)

    def wait(self, timeout: float) -> int:
        """The exit code; a command past `timeout` is killed (and its code is -9)."""
        if self.code is not None:
            return self.code
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        self.new_lines()
        self._log.write(f"(exit {code}{', killed' if self.killed else ''})\n")
        self._log.close()
        self.code = code
        return code


def run_command(args: list[str], env: dict[str, str], cwd: Path, log: Path,
                timeout: float) -> tuple[int, list[str]]:
    command = Command(args, env, cwd, log)
    code = command.wait(timeout)
    return code, command.output


def pipeline_environment(workdir: Path, base_url: str, secret_key: str, sync_start: str,
                         specs: Path) -> dict[str, str]:
    """The variables `qbo-pipeline` and `dagster dev` read (see the README)."""
    return {**os.environ,
            "QBO_SOURCE_URL": f"sqlite:///{workdir / 'source.sqlite'}",
            "QBO_STATE_URL": f"sqlite:///{workdir / 'state.sqlite'}",
            "QBO_BASE_URL": base_url,
            "QBO_PIPELINE_SECRET_KEY": secret_key,
            "QBO_SYNC_START_DATE": sync_start,
            "QBO_MAPPING_SPECS": str(specs),
            "DAGSTER_HOME": str(workdir / "dagster_home")}
