"""Fixtures of the emulator tests: a company on a module's own emulator, a manual OAuth clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbo_pipeline.emulator.oauth.models import OAuthSettings
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline_tests.conftest import ConnectedRealm, connect_realm
from qbo_pipeline_tests.emulator.test_oauth_tokens import ManualClock


@pytest.fixture
def company(server: EmulatorServer) -> Iterator[ConnectedRealm]:
    """A fresh company on the `server` of the test module (modules that switch faults, limits
    or webhooks run an emulator of their own, so their switches never reach other tests)."""
    connected = connect_realm(server.base_url)
    yield connected
    connected.session.close()


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def clocked_server(clock: ManualClock) -> Iterator[EmulatorServer]:
    """An emulator whose OAuth server reads the manual clock (time only moves forward)."""
    with EmulatorServer(EmulatorConfig(oauth=OAuthSettings(clock=clock))) as server:
        yield server
