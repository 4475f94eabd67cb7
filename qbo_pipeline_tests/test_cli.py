"""The `qbo-pipeline emulator` command serves a real emulator, configured from its options."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline.emulator.server import free_port
from qbo_pipeline_tests.conftest import connect_realm


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the emulator command exited early"
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


@pytest.fixture
def emulator_command(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    state = tmp_path / "emulator.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "qbo_pipeline.cli", "emulator", "--port", str(port),
         "--state", str(state), "--fault", "server_error=0", "--log-level", "warning"])
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base_url}/.well-known/openid_configuration", process)
        yield base_url, state
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_emulator_command_serves_qbo_and_keeps_state_in_the_file(
        emulator_command: tuple[str, Path]) -> None:
    base_url, state = emulator_command
    realm = connect_realm(base_url)
    created = realm.post("customer", {"DisplayName": "Cli Test Co"})
    assert created.status_code == 200, created.text
    assert state.exists() and state.stat().st_size > 0


def test_emulator_command_refuses_a_bad_fault_switch() -> None:
    result = CliRunner().invoke(main, ["emulator", "--fault", "server_error=1.5"])
    assert result.exit_code != 0
    assert "server_error" in result.output and "between 0 and 1" in result.output
