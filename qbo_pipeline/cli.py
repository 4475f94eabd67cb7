"""The ``qbo-pipeline`` command."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlencode

import click

from qbo_pipeline.source.demo_data import (
    SERVICES,
    DemoDataError,
    clients_for_rows,
    generate_demo_data,
)
from qbo_pipeline.specs import SpecError, SpecSet

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from qbo_pipeline.defs.runner import SyncReport, SyncResources
    from qbo_pipeline.specs import SpecSet

T = TypeVar("T")


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


# --- connect, sync, demo ---------------------------------------------------------------------

# The demo invoices name these Items ("Sales Tax" carries the tax line), looked up by name.
DEMO_TAX_ITEM = "Sales Tax"
# Every new emulator company has this income account in its starter chart of accounts.
EMULATOR_STARTER_INCOME_ACCOUNT = "1"
CONNECT_HINT = ("connect one with `qbo-pipeline connect` (or run `qbo-pipeline demo` for a demo "
                "company)")


@main.command()
@click.option("--realm", help="Reconnect this company (emulator: the same company back after a "
                              "restart).")
def connect(realm: str | None) -> None:
    """Connect a QBO company: consent, then its tokens are stored encrypted in the state DB.

    Against the local emulator, consent is immediate; against QBO, open the printed address,
    consent, and paste the address QBO redirected to.
    """
    from qbo_pipeline.defs.runner import SyncResources

    resources = SyncResources.from_env()
    realm_id = _guarded(lambda: connect_company(resources, realm))
    click.echo(f"connected QBO company {realm_id}; sync it with `qbo-pipeline sync`")


def connect_company(resources: SyncResources, realm_id: str | None = None) -> str:
    """The OAuth authorization-code flow; an emulator consents at once, QBO needs a person."""
    import requests

    from qbo_pipeline.defs.runner import complete_connection, token_provider

    state = secrets.token_urlsafe(16)
    url = token_provider(resources.qbo, resources.state_db).authorization_url(state)
    if realm_id:
        url += "&" + urlencode({"realm_id": realm_id})
    consent = requests.get(url, allow_redirects=False, timeout=30)
    location = consent.headers.get("Location", "")
    if not location.startswith(resources.qbo.redirect_uri):
        click.echo(f"Open this address, consent, and paste the address you are sent to:\n{url}")
        location = click.prompt("redirected to")
    return complete_connection(resources.qbo, resources.state_db, location, state)


@main.command()
@click.option("--realm", "realms", multiple=True,
              help="QBO company (realm id) to sync; repeatable (default: every connected one).")
@click.option("--entity", help="Sync only this mapping spec (and the specs it refers to).")
@click.option("--id", "record_key", help="Sync only this source record of --entity "
                                         "(a per-record sync).")
def sync(realms: tuple[str, ...], entity: str | None, record_key: str | None) -> None:
    """Sync what changed since the last sync, through the Dagster definitions.

    Configured by the same environment variables as `dagster dev` (QBO_SOURCE_URL,
    QBO_STATE_URL, QBO_BASE_URL, ...); runs are recorded in the instance at DAGSTER_HOME.
    """
    specs = _load_specs()
    from qbo_pipeline.defs.runner import SyncResources, chain_keys, connected_realms

    if record_key is not None and entity is None:
        raise click.UsageError("--id needs --entity: which spec's record is it?")
    resources = SyncResources.from_env()
    if entity is not None:
        _guarded(lambda: chain_keys(specs, entity))
    connected = connected_realms(resources.state_db)
    if not connected:
        raise click.ClickException(f"no QBO company is connected in {resources.state_db.url}: "
                                   f"{CONNECT_HINT}")
    unknown = sorted(set(realms) - set(connected))
    if unknown:
        raise click.ClickException(f"realm {', '.join(unknown)} is not connected (connected: "
                                   f"{', '.join(connected)}); {CONNECT_HINT}")
    with _dagster_instance(None) as instance:
        reports = [_sync_realm(specs, resources, instance, realm_id, entity, record_key)
                   for realm_id in realms or connected]
    for report in reports:
        _fail_on_failed_records(report)


def _sync_realm(specs: SpecSet, resources: SyncResources, instance: DagsterInstance,
                realm_id: str, entity: str | None, record_key: str | None) -> SyncReport:
    from qbo_pipeline.defs.runner import run_sync

    click.echo(f"syncing realm {realm_id}"
               + (f", {entity}" if entity else "") + (f" {record_key}" if record_key else ""))
    report = _guarded(lambda: run_sync(specs, resources, instance, realm_id, spec_name=entity,
                                       record_key=record_key, progress=click.echo))
    click.echo(_counts_table(report.counts))
    return report


@main.command()
@click.option("--workdir", default=Path(".qbo_pipeline/demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the demo's databases (recreated on every run).")
@click.option("--clients", default=25, show_default=True, type=int,
              help="Number of demo clients (everything else scales from it).")
def demo(workdir: Path, clients: int) -> None:
    """Sync a demo company end to end: emulator, demo source DB, connection, Dagster run."""
    specs = _load_specs()
    from qbo_pipeline.emulator.server import EmulatorServer
    from qbo_pipeline.emulator.service import EmulatorConfig

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("emulator.sqlite", "state.sqlite"):
        (workdir / stale).unlink(missing_ok=True)
    click.echo("1/4 starting the QBO emulator")
    with EmulatorServer(EmulatorConfig(state_file=workdir / "emulator.sqlite")) as server:
        resources = _demo_resources(workdir, server.base_url)
        click.echo("2/4 creating the demo source database")
        _guarded(lambda: generate_demo_data(resources.source_db.url, clients=clients,
                                            reset=True))
        click.echo("3/4 connecting a demo QBO company through OAuth")
        realm_id = _guarded(lambda: connect_company(resources))
        _guarded(lambda: seed_demo_items(server.base_url, realm_id))
        click.echo(f"4/4 syncing company {realm_id} through Dagster")
        with _dagster_instance(workdir / "dagster_home") as instance:
            from qbo_pipeline.defs.runner import run_sync

            report = _guarded(lambda: run_sync(specs, resources, instance, realm_id,
                                               progress=click.echo))
            _print_demo_summary(resources, report)
    click.echo(_ui_instructions(workdir, resources, instance_home(workdir), realm_id))
    _fail_on_failed_records(report)


def _fail_on_failed_records(report: SyncReport) -> None:
    failed = {entity: numbers["failed"] for entity, numbers in report.counts.items()
              if numbers.get("failed")}
    if failed:
        listed = ", ".join(f"{entity} {count}" for entity, count in failed.items())
        raise click.ClickException(f"QBO refused some records of realm {report.realm_id} "
                                   f"({listed}): their reasons are "
                                   "printed above the summary, and in the run's logs")


def _demo_resources(workdir: Path, emulator_url: str) -> SyncResources:
    from qbo_pipeline.defs.resources import (
        DISCOVERY_PATH,
        EMULATOR_CLIENT_ID,
        EMULATOR_CLIENT_SECRET,
        EMULATOR_REDIRECT_URI,
        QBOConnection,
        SourceDatabase,
        StateDatabase,
    )
    from qbo_pipeline.defs.runner import SyncResources

    qbo = QBOConnection(base_url=emulator_url, environment=emulator_url + DISCOVERY_PATH,
                        client_id=EMULATOR_CLIENT_ID, client_secret=EMULATOR_CLIENT_SECRET,
                        redirect_uri=EMULATOR_REDIRECT_URI, backoff_seconds=0.05,
                        throttle_backoff_seconds=0.5)
    return SyncResources(SourceDatabase(url=f"sqlite:///{workdir / 'source.sqlite'}"),
                         StateDatabase(url=f"sqlite:///{workdir / 'state.sqlite'}"), qbo)


def seed_demo_items(emulator_url: str, realm_id: str) -> None:
    """Create the Items the demo invoices look up by name, through the emulator's admin API
    (in a real company they exist already)."""
    import requests

    names = [DEMO_TAX_ITEM, *(service for service, _ in SERVICES)]
    items = [{"Name": name, "Type": "Service",
              "IncomeAccountRef": {"value": EMULATOR_STARTER_INCOME_ACCOUNT}} for name in names]
    response = requests.post(f"{emulator_url}/admin/realms/{realm_id}/seed",
                             json={"Item": items}, timeout=30)
    if response.status_code != 200:
        raise click.ClickException(f"the emulator refused the demo Items "
                                   f"({response.status_code}): {response.text[:300]}")


def instance_home(workdir: Path) -> Path:
    return Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") \
        else workdir / "dagster_home"


@contextmanager
def _dagster_instance(home: Path | None) -> Iterator[DagsterInstance]:
    """The instance at DAGSTER_HOME; else one in `home` (so the UI can show the runs), else a
    throwaway one."""
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        instance = DagsterInstance.get()
    elif home is not None:
        home.mkdir(parents=True, exist_ok=True)
        instance = DagsterInstance.local_temp(tempdir=str(home))
    else:
        click.echo("DAGSTER_HOME is not set: this run is not recorded for the UI")
        instance = DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()


def _print_demo_summary(resources: SyncResources, report: SyncReport) -> None:
    from qbo_pipeline.defs.runner import quarantined_rows

    click.echo(f"\nSynced demo company {report.realm_id} (Dagster run {report.run_id}):")
    click.echo(_counts_table(report.counts))
    held = quarantined_rows(resources.state_db, report.realm_id)
    click.echo(f"\nQuarantined rows ({len(held)}), held back until fixed in the source:")
    for row in held:
        # Each reason already names its record ("client 2: ... - add an email to the client").
        click.echo(f"  {'; '.join(map(str, row.reasons))}")


def _counts_table(counts: dict[str, dict[str, int]]) -> str:
    columns = ("created", "updated", "unchanged", "quarantined", "conflicts", "failed")
    lines = [f"  {'entity':<12}" + "".join(f"{name:>12}" for name in columns)]
    for entity, numbers in counts.items():
        lines.append(f"  {entity:<12}" + "".join(f"{numbers.get(name, 0):>12}"
                                                 for name in columns))
    return "\n".join(lines)


def _ui_instructions(workdir: Path, resources: SyncResources, home: Path, realm_id: str) -> str:
    return "\n".join([
        "\nTo see these runs in the Dagster UI (and run more), in one terminal keep the emulator",
        "running with the demo company, then reconnect it (the emulator keeps tokens in memory):",
        f"  qbo-pipeline emulator --state {workdir / 'emulator.sqlite'}",
        "and in another, from this folder:",
        f"  export QBO_SOURCE_URL={resources.source_db.url}",
        f"  export QBO_STATE_URL={resources.state_db.url}",
        f"  export DAGSTER_HOME={home}",
        f"  qbo-pipeline connect --realm {realm_id}",
        "  dagster dev -w workspace.yaml",
        "then open http://127.0.0.1:3000 (Assets: one group per entity; Runs: this sync).",
    ])


def _load_specs() -> SpecSet:
    """The specs the Dagster definitions are built from; a bad spec is a clear error."""
    try:
        from qbo_pipeline.defs.definitions import specs
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc
    return specs


def _guarded(action: Callable[[], T]) -> T:
    """Run a step; a known failure becomes a clear message and a non-zero exit."""
    from qbo_pipeline.defs.runner import SyncRunError
    from qbo_pipeline.qbo import QBOError
    from qbo_pipeline.state import SecretKeyError

    try:
        return action()
    except (SyncRunError, DemoDataError, QBOError, SecretKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # an unreachable QBO or database
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


if __name__ == "__main__":
    main()
