"""The ``qbo-pipeline`` command."""

from __future__ import annotations

from pathlib import Path

import click

from qbo_pipeline.source.demo_data import DemoDataError, clients_for_rows, generate_demo_data


@click.group()
@click.version_option(package_name="qbo_pipeline")
def main() -> None:
    """Keep a business application's records in sync with QuickBooks Online."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file that keeps the emulator's companies across restarts "
                   "(default: in memory).")
@click.option("--no-limits", is_flag=True, help="Turn QBO's rate limits off.")
@click.option("--webhook-url", help="POST signed change notifications to this URL.")
@click.option("--webhook-verifier", envvar="QBO_EMULATOR_WEBHOOK_VERIFIER", show_envvar=True,
              help="Verifier token that signs notifications (read from the environment variable "
                   "so it stays out of the process list).")
@click.option("--fault", "faults", multiple=True, metavar="KIND=SHARE",
              help="Answer a share (0..1) of accounting requests with a fault, e.g. "
                   "--fault server_error=0.05; kinds: server_error, service_unavailable, "
                   "throttle, slow, dropped_connection, expired_token. Repeatable.")
@click.option("--fault-seed", type=int, help="Seed for the fault draws (repeatable runs).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def emulator(host: str, port: int, state_file: Path | None, no_limits: bool,
             webhook_url: str | None, webhook_verifier: str | None, faults: tuple[str, ...],
             fault_seed: int | None, log_level: str) -> None:
    """Serve a local QuickBooks Online API (accounting v3, OAuth 2.0, webhooks)."""
    # Imported here: the emulator's web stack is not needed by the other commands.
    from qbo_pipeline.emulator.faults import FaultSettings
    from qbo_pipeline.emulator.limits import RateLimitSettings
    from qbo_pipeline.emulator.server import serve_forever
    from qbo_pipeline.emulator.service import EmulatorConfig
    from qbo_pipeline.emulator.webhooks import WebhookSettings

    webhooks = WebhookSettings(url=webhook_url)
    if webhook_verifier:
        webhooks = WebhookSettings(url=webhook_url, verifier_token=webhook_verifier)
    try:
        fault_settings = FaultSettings(seed=fault_seed).updated(_fault_shares(faults))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from exc
    config = EmulatorConfig(state_file=state_file, faults=fault_settings,
                            limits=RateLimitSettings(enabled=not no_limits), webhooks=webhooks)
    click.echo(f"QBO emulator on http://{host}:{port} "
               f"(discovery: http://{host}:{port}/.well-known/openid_configuration, "
               f"state: {state_file or 'in memory'})")
    serve_forever(config, host, port, log_level)


def _fault_shares(options: tuple[str, ...]) -> dict[str, float]:
    shares: dict[str, float] = {}
    for option in options:
        kind, _, share = option.partition("=")
        try:
            shares[kind.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(f"{option!r} is not KIND=SHARE, e.g. server_error=0.05",
                                     param_hint="--fault") from None
    return shares


@main.command("demo-data")
@click.option("--url", default="sqlite:///demo_source.sqlite", show_default=True,
              help="SQLAlchemy URL of the source database to fill.")
@click.option("--clients", type=int, help="Number of clients (everything else scales from it).")
@click.option("--rows", type=int, help="Approximate total number of rows instead of --clients.")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--reset", is_flag=True, help="Drop and recreate the demo tables first.")
def demo_data(url: str, clients: int | None, rows: int | None, seed: int, reset: bool) -> None:
    """Create and fill the demo practice-management source database."""
    if clients and rows:
        raise click.UsageError("give --clients or --rows, not both")
    count = clients or (clients_for_rows(rows) if rows else 25)
    try:
        summary = generate_demo_data(url, clients=count, seed=seed, reset=reset,
                                     progress=click.echo)
    except DemoDataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary.describe())


if __name__ == "__main__":
    main()
