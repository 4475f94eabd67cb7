"""The emulator as one object: the backend and the services around it, built from a config.

Each part keeps its own state and rules and knows no HTTP; ``app.py`` puts HTTP in front.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qbo_pipeline.emulator.accounting.models import QBOBackend
from qbo_pipeline.emulator.faults import FaultInjector, FaultSettings
from qbo_pipeline.emulator.latency import Latency, LatencySettings
from qbo_pipeline.emulator.limits import RateLimiter, RateLimitSettings
from qbo_pipeline.emulator.oauth.models import OAuthServer, OAuthSettings
from qbo_pipeline.emulator.webhooks import WebhookDispatcher, WebhookSettings


@dataclass
class EmulatorConfig:
    """Everything the emulator can be started with; every part has working defaults."""

    state_file: Path | None = None  # None: state in memory only
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)


@dataclass
class Emulator:
    """The parts of a running emulator, shared by the HTTP handlers."""

    config: EmulatorConfig
    backend: QBOBackend
    oauth: OAuthServer
    limiter: RateLimiter
    faults: FaultInjector
    webhooks: WebhookDispatcher
    latency: Latency

    def close(self) -> None:
        self.webhooks.close()
        self.backend.close()


def build_emulator(config: EmulatorConfig | None = None) -> Emulator:
    config = config or EmulatorConfig()
    backend = QBOBackend(state_file=config.state_file)
    webhooks = WebhookDispatcher(config.webhooks)
    backend.subscribe(webhooks.notify)
    return Emulator(
        config=config,
        backend=backend,
        oauth=OAuthServer(config.oauth, on_connect=backend.ensure_realm),
        limiter=RateLimiter(config.limits),
        faults=FaultInjector(config.faults),
        webhooks=webhooks,
        latency=Latency(config.latency),
    )
