"""The ``qbo-pipeline`` command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from qbo_pipeline.source.demo_data import (
    DemoDataError,
    clients_for_rows,
    generate_demo_data,
)
from qbo_pipeline.specs import SpecError, SpecSet

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from sqlalchemy.orm import Session, sessionmaker

    from qbo_pipeline.defs.runner import SyncReport, SyncResources
    from qbo_pipeline.review.guard import AdminCredential
    from qbo_pipeline.review.web import ReviewDesk
    from qbo_pipeline.specs import SpecSet
    from qbo_pipeline.sync.scope import BusinessDates

T = TypeVar("T")
# The counts a sync's summary shows, per entity.
SUMMARY_COUNTS = ("created", "updated", "unchanged", "quarantined", "conflicts", "failed")


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
@click.option("--no-limits", is_flag=True, help="Turn QBO's rate limits off (they are QBO's: 500 "
              "requests a minute and 10 a second per company, 10 at once, 40 batches a minute).")
@click.option("--webhook-url", help="POST signed change notifications to this URL.")
@click.option("--webhook-verifier", envvar="QBO_EMULATOR_WEBHOOK_VERIFIER", show_envvar=True,
              help="Verifier token that signs notifications (read from the environment variable "
                   "so it stays out of the process list).")
@click.option("--fault", "faults", multiple=True, metavar="KIND=SHARE",
              help="Answer a share (0..1) of accounting requests with a fault, e.g. "
                   "--fault server_error=0.05; kinds: server_error, service_unavailable, "
                   "throttle, slow, dropped_connection, expired_token. Repeatable.")
@click.option("--fault-seed", type=int, help="Seed for the fault draws (repeatable runs).")
@click.option("--latency", "latencies", multiple=True, metavar="KIND=SECONDS",
              help="Answer a kind of request after QBO's pace: SECONDS, or LOW-HIGH for a "
                   "uniform draw, e.g. --latency batch=1.5-2.5; kinds: all, read, query, cdc, "
                   "write, batch. Repeatable.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def emulator(host: str, port: int, state_file: Path | None, no_limits: bool,
             webhook_url: str | None, webhook_verifier: str | None, faults: tuple[str, ...],
             fault_seed: int | None, latencies: tuple[str, ...], log_level: str) -> None:
    """Serve a local QuickBooks Online API (accounting v3, OAuth 2.0, webhooks)."""
    # Imported here: the emulator's web stack is not needed by the other commands.
    from qbo_pipeline.emulator.faults import FaultSettings
    from qbo_pipeline.emulator.latency import LatencySettings
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
    try:
        latency = LatencySettings.from_dict(_latencies(latencies), seed=fault_seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--latency") from exc
    config = EmulatorConfig(state_file=state_file, faults=fault_settings,
                            limits=RateLimitSettings(enabled=not no_limits,
                                                     requests_per_second=10),
                            webhooks=webhooks,
                            latency=latency)
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


def _latencies(options: tuple[str, ...]) -> dict[str, float | dict[str, float]]:
    delays: dict[str, float | dict[str, float]] = {}
    for option in options:
        kind, _, seconds = option.partition("=")
        low, dash, high = seconds.partition("-")
        try:
            delays[kind.strip()] = ({"low": float(low), "high": float(high)} if dash
                                    else float(seconds))
        except ValueError:
            raise click.BadParameter(f"{option!r} is not KIND=SECONDS or KIND=LOW-HIGH, e.g. "
                                     f"batch=2 or batch=1.5-2.5", param_hint="--latency") from None
    return delays


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

# How long `connect` waits for a person to sign in to Intuit and choose a company.
BROWSER_CONSENT_SECONDS = 300
CONNECT_HINT = ("connect one with `qbo-pipeline connect` (or run `qbo-pipeline demo` for a demo "
                "company)")


@main.command()
@click.option("--realm", help="Reconnect this company (emulator: the same company back after a "
                              "restart).")
@click.option("--import/--no-import", "run_import", default=None,
              help="Run the import on connect: link the source's names-list records to the "
                   "QBO records they match, import what the specs import, write nothing to "
                   "QBO (default: for a company connected for the first time).")
@click.option("--browser/--no-browser", "open_browser", default=True, show_default=True,
              help="Open the consent screen in this machine's web browser (--no-browser: only "
                   "print its address, e.g. over SSH with the redirect URI's port forwarded).")
@click.option("--timeout", "timeout_seconds", default=BROWSER_CONSENT_SECONDS,
              show_default=True, type=click.IntRange(min=1),
              help="Seconds to wait for the consent redirect to reach the local callback.")
def connect(realm: str | None, run_import: bool | None, open_browser: bool,
            timeout_seconds: int) -> None:
    """Connect a QBO company: consent, then its tokens are stored encrypted in the state DB.

    Against the emulator's development app, consent is immediate. With a QBO app whose
    redirect URI (QBO_REDIRECT_URI) is on this machine, e.g. http://localhost:8000/callback,
    the consent screen opens in the browser and a server on 127.0.0.1 at that port receives
    QBO's redirect; with any other redirect URI, paste the address QBO redirected to. A
    company connected for the first time is then imported (one Dagster run): its customers,
    employees, services... are matched to the source's records by the specs' match keys and
    linked, before any sync writes to QBO.
    """
    from qbo_pipeline.connections import connect_company, consent_for
    from qbo_pipeline.defs.runner import SyncResources, connected_realms

    resources = SyncResources.from_env()
    known = set(connected_realms(resources.state_db))
    show = _show_consent(open_browser, timeout_seconds, resources.qbo.redirect_uri)
    consent = consent_for(resources.qbo, show, _ask_redirect, timeout_seconds)
    realm_id = _guarded(lambda: connect_company(resources, realm, consent))
    click.echo(f"connected QBO company {realm_id}")
    if run_import if run_import is not None else realm_id not in known:
        _import_company(_load_specs(), resources, realm_id)
    click.echo("sync it with `qbo-pipeline sync`")


@main.command()
@click.option("--realm", required=True, help="The QBO company (realm id) to disconnect.")
def disconnect(realm: str) -> None:
    """Disconnect a QBO company: its tokens are revoked at Intuit and forgotten, and its
    partition leaves the Dagster UI; its links, conflicts, quarantine and run history stay,
    so that connecting it again goes on where it stopped."""
    from qbo_pipeline.connections import disconnect_company
    from qbo_pipeline.defs.runner import SyncResources
    from qbo_pipeline.demo import dagster_instance
    from qbo_pipeline.state.repository import StateError

    resources = SyncResources.from_env()
    try:
        with dagster_instance(None) as instance:
            done = _guarded(lambda: disconnect_company(resources, realm, instance))
    except StateError as error:
        raise click.ClickException(str(error)) from error
    if done.revoke_problem is None:
        click.echo(f"disconnected QBO company {realm}: Intuit revoked its tokens, and they are "
                   "deleted here")
    else:
        click.echo(f"disconnected QBO company {realm}: its tokens are deleted here, but Intuit "
                   f"did not confirm the revoke ({done.revoke_problem}); revoke the app in "
                   "QuickBooks (Settings -> Apps) to be sure")
    kept = ", ".join(f"{count} {kind}" for kind, count in done.kept.items())
    click.echo(f"kept for a reconnect: {kept}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def connections(as_json: bool) -> None:
    """Every QBO company the state DB knows: its name in QBO, realm id, connected since,
    last sync, token expiry and status (a refresh token expiring within 14 days is flagged
    with the fix)."""
    from qbo_pipeline.connections import list_connections
    from qbo_pipeline.defs.runner import SyncResources

    views = _guarded(lambda: list_connections(SyncResources.from_env()))
    if as_json:
        click.echo(json.dumps([view.to_json() for view in views], indent=2))
        return
    if not views:
        click.echo("no QBO company is connected: connect one with `qbo-pipeline connect`")
    for view in views:
        click.echo(f"{view.realm_id}  {view.company_name or '-'}  [{view.health.level}]")
        click.echo(f"  connected since {_when(view.connected_at)}"
                   + (f", disconnected {_when(view.disconnected_at)}"
                      if view.disconnected_at else "")
                   + f"; last sync {_when(view.last_sync)}")
        if view.disconnected_at is None:
            click.echo(f"  access token until {_when(view.access_token_expires_at)}, refresh "
                       f"token until {_when(view.refresh_token_ends_at)}")
        click.echo(f"  {view.health.message}")


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _import_company(specs: SpecSet, resources: SyncResources, realm_id: str) -> None:
    from qbo_pipeline.defs.assets import (
        MATCHED_METADATA,
        NOT_IN_QBO_METADATA,
        UNMATCHED_IN_QBO_METADATA,
    )
    from qbo_pipeline.defs.runner import run_sync
    from qbo_pipeline.demo import dagster_instance

    click.echo(f"importing company {realm_id}: matching its names lists to the source's")
    with dagster_instance(None, click.echo) as instance:
        report = _guarded(lambda: run_sync(specs, resources, instance, realm_id,
                                           importing=True, progress=click.echo))
    click.echo(f"import run {report.run_id}, nothing written to QuickBooks:")
    for entity, numbers in report.counts.items():
        click.echo(f"  {entity:<12} linked {numbers.get(MATCHED_METADATA, 0)} to the QBO "
                   f"records they match; {numbers.get(NOT_IN_QBO_METADATA, 0)} not in QBO "
                   "yet (the first sync creates them); "
                   f"{numbers.get(UNMATCHED_IN_QBO_METADATA, 0)} QBO records match none")
    for entity, numbers in report.applied.items():
        click.echo(f"  {entity:<12} imported {numbers.get('created', 0)}, updated "
                   f"{numbers.get('updated', 0)} from QBO into the source")


def _show_consent(open_browser: bool, timeout_seconds: int,
                  redirect_uri: str) -> Callable[[str], None]:
    from qbo_pipeline.qbo.callback import duration_words

    def show(consent_url: str) -> None:
        if open_browser:
            click.echo("Opening QuickBooks' consent screen in your web browser; if it does not "
                       f"open, open this address in a browser on this machine:\n{consent_url}")
        else:
            click.echo("Open this address in a browser on this machine, sign in to QuickBooks "
                       f"and choose the company to connect:\n{consent_url}")
        click.echo(f"Waiting up to {duration_words(timeout_seconds)} for QuickBooks to send the "
                   f"browser back to {redirect_uri} (Ctrl-C stops)")
        if open_browser and not _open_browser(consent_url):
            click.echo("No web browser could be opened here: open the address above yourself.")
    return show


def _open_browser(url: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _ask_redirect(consent_url: str) -> str:
    click.echo(f"Open this address, consent, and paste the address you are sent to:\n"
               f"{consent_url}")
    answer: str = click.prompt("redirected to")
    return answer


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
    from qbo_pipeline.demo import dagster_instance

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
    chosen = _automatic(specs, resources, list(realms or connected), record_key)
    with dagster_instance(None, click.echo) as instance:
        _fail_dead_runs(instance, chosen)
        reports = [_sync_realm(specs, resources, instance, realm_id, entity, record_key)
                   for realm_id in chosen]
    for report in reports:
        _fail_on_failed_records(report)


@main.command()
@click.option("--realm", "realm_id", required=True, help="QBO company (realm id) to backfill.")
@click.option("--from", "first_day", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First business date to re-sync (YYYY-MM-DD).")
@click.option("--to", "last_day", type=click.DateTime(["%Y-%m-%d"]),
              help="Last business date to re-sync (YYYY-MM-DD; default: today).")
@click.option("--entity", help="Backfill only this mapping spec (and the specs it refers to).")
def backfill(realm_id: str, first_day: datetime, last_day: datetime | None,
             entity: str | None) -> None:
    """Re-sync the transactions dated in a range of days, in one run over their months.

    The same run a backfill of those months launched from the Dagster UI gives, narrowed to
    the days asked for (run tag qbo/days); the UI then shows the months as materialized and
    each month's per-day status.
    """
    specs = _load_specs()
    from qbo_pipeline.defs.runner import SyncResources, chain_keys, connected_realms
    from qbo_pipeline.demo import dagster_instance
    from qbo_pipeline.sync.scope import BusinessDates

    last = (last_day or datetime.now(UTC)).date()
    if last < first_day.date():
        raise click.BadParameter(f"--to {last} is before --from {first_day.date()}",
                                 param_hint="--to")
    resources = SyncResources.from_env()
    if entity is not None:
        _guarded(lambda: chain_keys(specs, entity))
    if realm_id not in connected_realms(resources.state_db):
        raise click.ClickException(f"realm {realm_id} is not connected; {CONNECT_HINT}")
    dates = BusinessDates(first_day.date(), last)
    with dagster_instance(None, click.echo) as instance:
        _fail_dead_runs(instance, [realm_id])
        report = _sync_realm(specs, resources, instance, realm_id, entity, None, dates)
    _fail_on_failed_records(report)


def _automatic(specs: SpecSet, resources: SyncResources, realm_ids: list[str],
               record_key: str | None) -> list[str]:
    """The companies a sync runs for: one on manual sync only for a single record."""
    from qbo_pipeline.defs.jobs import realm_history

    if record_key is not None:
        return realm_ids
    manual = realm_history(resources.state_db, specs.settings).manual
    for realm_id in realm_ids:
        if realm_id in manual:
            click.echo(f"company {realm_id} syncs manually (setting sync_mode): sync one record "
                       "with --entity E --id K, or `qbo-pipeline settings --realm "
                       f"{realm_id} set sync_mode automatic`")
    return [realm_id for realm_id in realm_ids if realm_id not in manual]


def _fail_dead_runs(instance: DagsterInstance, realm_ids: Iterable[str]) -> None:
    """A sync killed earlier left its run STARTED: fail it, so the UI and the run queue
    see it ended, even where no daemon monitors runs."""
    from qbo_pipeline.defs.instance import fail_dead_runs

    for run_id in fail_dead_runs(instance, realm_ids):
        click.echo(f"run {run_id} had been killed: marked failed")


def _sync_one(specs: SpecSet, resources: SyncResources, realm_id: str, entity: str,
              record_key: str) -> SyncReport:
    """A per-record sync, as `sync --entity E --id K` runs it."""
    from qbo_pipeline.demo import dagster_instance

    with dagster_instance(None, click.echo) as instance:
        _fail_dead_runs(instance, [realm_id])
        return _sync_realm(specs, resources, instance, realm_id, entity, record_key)


def _sync_realm(specs: SpecSet, resources: SyncResources, instance: DagsterInstance,
                realm_id: str, entity: str | None, record_key: str | None,
                dates: BusinessDates | None = None) -> SyncReport:
    from qbo_pipeline.defs.runner import run_sync

    click.echo(f"syncing realm {realm_id}"
               + (f", {entity}" if entity else "") + (f" {record_key}" if record_key else "")
               + (f", transactions dated {dates}" if dates else ""))
    report = _guarded(lambda: run_sync(specs, resources, instance, realm_id, spec_name=entity,
                                       record_key=record_key, dates=dates,
                                       progress=click.echo))
    click.echo(_counts_tables(report))
    _echo_renamed(report)
    _echo_reported(report)
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
    from qbo_pipeline.demo import run_demo

    outcome = _guarded(lambda: run_demo(specs, workdir, clients, click.echo))
    click.echo(f"\nSynced demo company {outcome.report.realm_id} "
               f"(Dagster run {outcome.report.run_id}):")
    click.echo(_counts_tables(outcome.report))
    _echo_renamed(outcome.report)
    _echo_reported(outcome.report)
    click.echo(f"\nQuarantined rows ({len(outcome.quarantined)}), held back until fixed in the "
               "source or until a record they refer to changes:")
    for row in outcome.quarantined:
        # Each reason already names its record ("client 2: ... - add an email to the client").
        click.echo(f"  {'; '.join(map(str, row.reasons))}")
    click.echo(outcome.ui_instructions())
    _fail_on_failed_records(outcome.report)


@main.group()
def conflicts() -> None:
    """Review the conflicts (fields changed both in the source and in QBO) and decide them.

    A decision is applied by the next sync of the record's company: --keep-source pushes the
    source's values to QBO, --apply-qbo writes QBO's values into the source (fields that
    pull), --dismiss writes nothing and leaves the difference alone until a side changes.
    """


@conflicts.command("list")
@click.option("--realm", "realm_id", help="Only this QBO company (realm id).")
@click.option("--entity", help="Only this mapping spec.")
@click.option("--all", "include_decided", is_flag=True, help="Decided conflicts too.")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def conflicts_list(realm_id: str | None, entity: str | None, include_decided: bool,
                   as_json: bool) -> None:
    """List the open conflicts, oldest first."""
    from qbo_pipeline.review.conflicts import list_conflicts

    views = _reviewed(lambda sessions, specs: list_conflicts(
        sessions, specs, realm_id=realm_id, entity=entity, include_decided=include_decided))
    if as_json:
        click.echo(json.dumps([view.to_json() for view in views], indent=2, default=str))
        return
    if not views:
        click.echo("no open conflicts" if not include_decided else "no conflicts")
    for view in views:
        paths = ", ".join(str(field["path"]) for field in view.fields) or view.reason
        click.echo(f"{view.id:>6}  {view.status:<12} {view.entity} {view.source_key} "
                   f"({view.name}, QBO {view.qbo_id or '-'}, realm {view.realm_id}): {paths}")


@conflicts.command("show")
@click.argument("conflict_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def conflicts_show(conflict_id: int, as_json: bool) -> None:
    """Show one conflict: each field's source, QBO and last synced values."""
    from qbo_pipeline.review.conflicts import show_conflict

    view = _reviewed(lambda sessions, specs: show_conflict(sessions, specs, conflict_id))
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, default=str))
        return
    opened = f"{view.created_at:%Y-%m-%d %H:%M} UTC"
    click.echo(f"conflict {view.id}: {view.entity} {view.source_key} ({view.name}), QBO "
               f"{view.qbo_id or '-'}, realm {view.realm_id}, opened {opened}, {view.status}"
               + (f" by {view.decided_by}" if view.decided_by else "")
               + (f", applied by run {view.applied_by_run}" if view.applied_by_run else ""))
    if view.reason:
        click.echo(f"  {view.reason}")

    def at(moment: datetime) -> str:
        return f"{moment:%Y-%m-%d %H:%M} UTC"

    def by(what: str, run: str | None, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return f"{what} by run {run} ({at(moment)})" if run else f"{what} {at(moment)}"

    sides = ", ".join(f"{side} {at(moment)}" for side, moment in (
        ("in the source", view.source_changed_at), ("in QBO", view.qbo_changed_at)) if moment)
    runs = ", ".join(seen for seen in (by("found", view.first_seen_run, view.first_seen_at),
                                       by("last seen", view.last_seen_run, view.last_seen_at))
                     if seen)
    if sides or runs:
        click.echo("  " + "; ".join(part for part in (sides and f"changed {sides}", runs)
                                    if part))
    for field in view.fields:
        click.echo(f"  {field['path']}: source {field.get('source')!r}, QBO "
                   f"{field.get('qbo')!r}, last synced {field.get('base')!r}")


@conflicts.command("resolve")
@click.argument("conflict_ids", type=int, nargs=-1, required=True)
@click.option("--keep-source", "decision", flag_value="keep_source",
              help="Push the source's values to QBO.")
@click.option("--apply-qbo", "decision", flag_value="apply_qbo",
              help="Write QBO's values into the source.")
@click.option("--dismiss", "decision", flag_value="dismiss",
              help="Write nothing; leave this difference alone until a side changes.")
@click.option("--by", "decided_by", envvar="USER", show_envvar=True,
              help="Who decides (recorded with the decision).")
def conflicts_resolve(conflict_ids: tuple[int, ...], decision: str | None,
                      decided_by: str | None) -> None:
    """Decide one or more conflicts; the next sync applies the decision."""
    from qbo_pipeline.review.conflicts import decide
    from qbo_pipeline.sync.resolutions import Decision

    if decision is None:
        raise click.UsageError("say what to do: --keep-source, --apply-qbo or --dismiss")
    views = _reviewed(lambda sessions, specs: decide(
        sessions, specs, list(conflict_ids), Decision(decision), decided_by or ""))
    for view in views:
        click.echo(f"conflict {view.id} ({view.entity} {view.source_key}, {view.name}): "
                   f"{view.status} by {view.decided_by}; the next sync applies it")


@main.group()
def quarantine() -> None:
    """The source rows held back, with the reason and the fix of each; try one again now.

    A held row is tried again by the next sync once it changes in the source, or once a record
    it waits for syncs.
    """


@quarantine.command("list")
@click.option("--realm", "realm_id", help="Only this QBO company (realm id).")
@click.option("--entity", help="Only this mapping spec.")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def quarantine_list(realm_id: str | None, entity: str | None, as_json: bool) -> None:
    """List the rows held back now."""
    from qbo_pipeline.review.quarantine import list_quarantined

    rows = _reviewed(lambda sessions, specs: list_quarantined(sessions, specs,
                                                              realm_id=realm_id, entity=entity))
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no rows are held back")
    for row in rows:
        since = f"{row.first_seen:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{row.entity} {row.source_key} (realm {row.realm_id}, held since {since}):")
        for reason in row.reasons:
            click.echo(f"  {reason}")


@quarantine.command("retry")
@click.option("--entity", required=True, help="The row's mapping spec.")
@click.option("--id", "record_key", required=True, help="The row's source key.")
@click.option("--realm", "realm_id", help="QBO company (default: the only one connected).")
def quarantine_retry(entity: str, record_key: str, realm_id: str | None) -> None:
    """Try one held row again now (after fixing it in the source): sync that record."""
    from qbo_pipeline.defs.runner import SyncResources, connected_realms
    from qbo_pipeline.review.quarantine import retry_row

    resources = SyncResources.from_env()
    realm = realm_id or _the_connected_realm(connected_realms(resources.state_db))
    report = _reviewed(lambda sessions, specs: retry_row(
        sessions, specs, realm, entity, record_key,
        lambda: _sync_one(specs, resources, realm, entity, record_key)))
    click.echo(f"{entity} {record_key} passed and is released from the quarantine")
    _fail_on_failed_records(report)


@main.group()
def links() -> None:
    """A record's link to its QBO record: show it, remove it, or point it at another one.

    To repair a duplicate: void the duplicate in QuickBooks (never delete it), relink the
    source record to the right QBO record (or unlink it, and the next sync finds it by its match
    keys), then sync.
    """


def _record_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
            click.option("--entity", required=True, help="The record's mapping spec."),
            click.option("--id", "record_key", required=True, help="The record's source key."),
            click.option("--realm", "realm_id",
                         help="QBO company (default: the only one connected).")]):
        command = option(command)
    return command


@links.command("show")
@_record_options
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def links_show(entity: str, record_key: str, realm_id: str | None, as_json: bool) -> None:
    """Show the QBO record a source record is linked to."""
    from qbo_pipeline.review.links import show_link

    view = _reviewed(lambda sessions, specs: show_link(
        sessions, specs, _realm_or_the_one(realm_id), entity, record_key))
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, default=str))
        return
    synced = f"{view.last_synced_at:%Y-%m-%d %H:%M} UTC" if view.last_synced_at else "never"
    click.echo(f"{entity} {record_key} <-> QBO {view.qbo_entity} {view.qbo_id} ({view.name}), "
               f"SyncToken {view.sync_token}, last synced {synced}, realm {view.realm_id}")


@links.command("unlink")
@_record_options
@click.option("--by", "decided_by", envvar="USER", show_envvar=True, help="Who unlinks.")
def links_unlink(entity: str, record_key: str, realm_id: str | None,
                 decided_by: str | None) -> None:
    """Remove a link: the next sync finds the record by its match keys, or creates it."""
    from qbo_pipeline.review.links import unlink

    view = _reviewed(lambda sessions, specs: unlink(
        sessions, specs, _realm_or_the_one(realm_id), entity, record_key, _who(decided_by)))
    click.echo(f"{entity} {record_key} is no longer linked to QBO {view.qbo_entity} "
               f"{view.qbo_id}; the next sync reads it again")


@links.command("relink")
@_record_options
@click.option("--qbo-id", required=True, help="The QBO record to link it to instead.")
@click.option("--by", "decided_by", envvar="USER", show_envvar=True, help="Who relinks.")
def links_relink(entity: str, record_key: str, realm_id: str | None, qbo_id: str,
                 decided_by: str | None) -> None:
    """Link a source record to another QBO record; the next sync compares the two."""
    from qbo_pipeline.review.links import relink

    view = _reviewed(lambda sessions, specs: relink(
        sessions, specs, _realm_or_the_one(realm_id), entity, record_key, qbo_id,
        _who(decided_by)))
    click.echo(f"{entity} {record_key} is linked to QBO {view.qbo_entity} {view.qbo_id} "
               f"({view.name}); the next sync compares them field by field")


@links.command("duplicates")
@click.option("--realm", "realm_id", help="Only this QBO company (realm id).")
@click.option("--entity", help="Only this mapping spec.")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
def links_duplicates(realm_id: str | None, entity: str | None, as_json: bool) -> None:
    """List likely duplicates: QBO records linked to nothing that match a linked record by the
    spec's match keys (as fetched by the last sync)."""
    from qbo_pipeline.review.links import find_duplicates

    views = _reviewed(lambda sessions, specs: find_duplicates(
        sessions, specs, realm_id=realm_id, entity=entity))
    if as_json:
        click.echo(json.dumps([view.to_json() for view in views], indent=2))
        return
    if not views:
        click.echo("no likely duplicates")
    for view in views:
        matched = " and ".join(view.matched_on)
        click.echo(f"QBO {view.qbo_entity} {view.duplicate_qbo_id} ({view.duplicate_name}) "
                   f"matches {view.entity} {view.source_key}'s QBO {view.qbo_entity} "
                   f"{view.qbo_id} ({view.name}) on {matched}, realm {view.realm_id}")
    if views:
        click.echo("To repair one: void (or make inactive) the duplicate in QuickBooks, never "
                   "delete it; `links relink` if the source record belongs to the other one; "
                   "then sync.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond this machine only with an admin credential "
                   "(QBO_REVIEW_USER, QBO_REVIEW_PASSWORD).")
@click.option("--port", default=8766, show_default=True, type=int, help="Port to listen on.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A host name people reach the page by (any other Host is refused); "
                   "repeatable.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def review(host: str, port: int, allowed_hosts: tuple[str, ...], log_level: str) -> None:
    """Serve the review page: decide conflicts, retry quarantined rows, repair links.

    The same operations as `conflicts`, `quarantine` and `links`, on the state DB of the
    environment (QBO_STATE_URL...); its syncs of one record run as `sync --id` does.
    """
    import uvicorn

    from qbo_pipeline.review.guard import GuardError, check_bind, credential_from_env
    from qbo_pipeline.review.guard import allowed_hosts as hosts_for
    from qbo_pipeline.review.web import create_review_app

    try:
        credential = credential_from_env()
        check_bind(host, credential, allowed_hosts)
    except GuardError as exc:
        raise click.ClickException(str(exc)) from exc
    desk = review_desk(credential)
    app = create_review_app(desk, hosts_for(host, allowed_hosts))
    click.echo(f"Review page on http://{host}:{port}/ ("
               + ("admin sign-in required" if credential else "this machine only") + ")")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


WEBHOOK_VERIFIER_VARIABLE = "QBO_WEBHOOK_VERIFIER_TOKEN"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (QBO reaches it through your HTTPS proxy).")
@click.option("--port", default=8767, show_default=True, type=int, help="Port to listen on.")
@click.option("--path", default="/qbo/webhooks", show_default=True,
              help="The path QBO posts to (the endpoint URL's path on Intuit's portal).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def webhooks(host: str, port: int, path: str, log_level: str) -> None:
    """Receive QBO's webhooks: verify, store the events in the state DB, answer at once.

    The verifier token is read from QBO_WEBHOOK_VERIFIER_TOKEN; the Dagster sensor
    `webhook_sync_sensor` turns the stored events into sync runs.
    """
    import os

    import uvicorn

    from qbo_pipeline.defs.resources import StateDatabase
    from qbo_pipeline.webhooks.server import webhook_config

    token = os.environ.get(WEBHOOK_VERIFIER_VARIABLE, "")
    if not token:
        raise click.ClickException(
            f"{WEBHOOK_VERIFIER_VARIABLE} is not set: copy the verifier token from your app's "
            "Webhooks page on Intuit's developer portal (for the emulator, the token it signs "
            "with: --webhook-verifier or PUT /admin/webhooks)")
    sessions = StateDatabase.from_env().sessions()
    click.echo(f"Webhook receiver on http://{host}:{port}{path}")
    uvicorn.Server(webhook_config(sessions, token, host, port, path, log_level)).run()


def review_desk(credential: AdminCredential | None = None) -> ReviewDesk:
    """The review page's desk on the environment's state DB and specs, syncing one record
    as `qbo-pipeline sync --entity E --id K` does."""
    from qbo_pipeline.defs.runner import SyncResources
    from qbo_pipeline.review.conflicts import ReviewError
    from qbo_pipeline.review.web import ReviewDesk

    specs = _load_specs()
    resources = SyncResources.from_env()

    def sync_record(realm_id: str, entity: str, record_key: str) -> str:
        try:
            report = _sync_one(specs, resources, realm_id, entity, record_key)
            _fail_on_failed_records(report)
        except click.ClickException as exc:
            raise ReviewError(exc.message) from exc
        done = {name: count for name, count in report.counts.get(entity, {}).items()
                if count and name in SUMMARY_COUNTS}
        return (f"Dagster run {report.run_id}: "
                + (", ".join(f"{name} {count}" for name, count in done.items()) or "no change"))

    return ReviewDesk(resources.state_db.sessions(), specs, sync_record, credential)


@main.group(invoke_without_command=True)
@click.option("--realm", "realm_id", help="QBO company (default: the only one connected).")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
@click.pass_context
def settings(context: click.Context, realm_id: str | None, as_json: bool) -> None:
    """A company's settings: show them (the default), `set KEY VALUE`, `reset KEY`.

    Each entity can be switched off (`client.enabled false`), each spec's filters changed
    (`time_entry.approved_only false`), and the company put on manual sync (`sync_mode
    manual`); the next run reads them.
    """
    context.obj = realm_id
    if context.invoked_subcommand is None:
        context.invoke(settings_show, as_json=as_json)


@settings.command("show")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
@click.pass_obj
def settings_show(realm_id: str | None, as_json: bool) -> None:
    """Show every setting: its value for the company, and whether that is the default."""
    from qbo_pipeline.company_settings import show_settings

    realm = _realm_or_the_one(realm_id)
    views = _reviewed(lambda sessions, specs: show_settings(sessions, specs, realm))
    if as_json:
        click.echo(json.dumps([view.to_json() for view in views], indent=2))
        return
    click.echo(f"settings of company {realm}:")
    for view in views:
        shown = _shown(view.value) + ("" if view.changed else " (default)")
        choices = f" [{' | '.join(view.choices)}]" if view.choices else ""
        click.echo(f"  {view.key:<28} {shown:<22} {view.description}{choices}")


@settings.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_obj
def settings_set(realm_id: str | None, key: str, value: str) -> None:
    """Give a setting a value for the company (checked first)."""
    from qbo_pipeline.company_settings import change_setting

    realm = _realm_or_the_one(realm_id)
    view = _reviewed(lambda sessions, specs: change_setting(sessions, specs, realm, key,
                                                                 value))
    click.echo(f"{view.key} is {_shown(view.value)} for company {realm}; the next sync "
               "follows it")


@settings.command("reset")
@click.argument("key")
@click.pass_obj
def settings_reset(realm_id: str | None, key: str) -> None:
    """Put a setting back to its default for the company."""
    from qbo_pipeline.company_settings import change_setting

    realm = _realm_or_the_one(realm_id)
    view = _reviewed(lambda sessions, specs: change_setting(sessions, specs, realm, key,
                                                                 None))
    click.echo(f"{view.key} is back to its default, {_shown(view.value)}, for company {realm}")


def _shown(value: bool | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _who(decided_by: str | None) -> str:
    if not (decided_by or "").strip():
        raise click.UsageError("say who does it (--by): every change of a link is recorded")
    return str(decided_by).strip()


def _realm_or_the_one(realm_id: str | None) -> str:
    if realm_id is not None:
        return realm_id
    from qbo_pipeline.defs.resources import StateDatabase
    from qbo_pipeline.defs.runner import connected_realms

    return _the_connected_realm(connected_realms(StateDatabase.from_env()))


def _the_connected_realm(connected: list[str]) -> str:
    if len(connected) != 1:
        raise click.UsageError(f"give --realm: {len(connected)} companies are connected"
                               + (f" ({', '.join(connected)})" if connected else
                                  f"; {CONNECT_HINT}"))
    return connected[0]


def _reviewed(action: Callable[[sessionmaker[Session], SpecSet], T]) -> T:
    """Run a review desk or settings request on the state DB of the environment; its
    refusal, clearly."""
    from qbo_pipeline.company_settings import SettingsError
    from qbo_pipeline.defs.resources import StateDatabase
    from qbo_pipeline.review.conflicts import ReviewError

    specs = _load_specs()
    try:
        return action(StateDatabase.from_env().sessions(), specs)
    except (ReviewError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from exc


def _fail_on_failed_records(report: SyncReport) -> None:
    """Exit non-zero when writes failed for a passing reason (QBO unavailable...): the next
    run tries them again. Records QBO refused for good are held back with QBO's reason, like
    quarantined rows, and do not fail the command."""
    from qbo_pipeline.defs.assets import REFUSED_METADATA

    failed = {entity: numbers["failed"] - numbers.get(REFUSED_METADATA, 0)
              for entity, numbers in report.counts.items()}
    failed = {entity: count for entity, count in failed.items() if count > 0}
    if failed:
        listed = ", ".join(f"{entity} {count}" for entity, count in failed.items())
        raise click.ClickException(f"some writes to QBO failed in realm {report.realm_id} "
                                   f"({listed}): their reasons are printed above the summary "
                                   "and in the run's logs; the next sync tries them again")


def _echo_renamed(report: SyncReport) -> None:
    """The records written under another name, theirs being taken in QuickBooks (the
    company's display_name_collision setting)."""
    if report.renamed:
        click.echo(f"\nRenamed in QuickBooks ({len(report.renamed)}), their names being "
                   "taken by another customer, vendor or employee:")
        for line in report.renamed:
            click.echo(f"  {line}")


def _echo_reported(report: SyncReport) -> None:
    """The records deleted in the app that the sync leaves in QuickBooks for a person
    (`on_source_delete: report`); each is listed by the run that finds it deleted."""
    if report.reported:
        click.echo(f"\nDeleted in the app, to delete or void in QuickBooks by hand "
                   f"({len(report.reported)}):")
        for line in report.reported:
            click.echo(f"  {line}")


def _counts_tables(report: SyncReport) -> str:
    """The counts written to QBO, then those written into the source (specs that pull)."""
    # The entity column is as wide as the longest name (`tracking_class`) in either table,
    # so that every number lines up under its heading.
    width = max([12, *(len(entity) + 1 for entity in [*report.counts, *report.applied])])
    text = _counts_table(report.counts, width)
    if report.applied:
        text += "\n  from QuickBooks into the source:\n" + _counts_table(report.applied, width)
    return text


def _counts_table(counts: dict[str, dict[str, int]], width: int) -> str:
    lines = [f"  {'entity':<{width}}" + "".join(f"{name:>12}" for name in SUMMARY_COUNTS)]
    for entity, numbers in counts.items():
        lines.append(f"  {entity:<{width}}" + "".join(f"{numbers.get(name, 0):>12}"
                                                      for name in SUMMARY_COUNTS))
    return "\n".join(lines)


def _load_specs() -> SpecSet:
    """The specs the Dagster definitions are built from; a bad spec is a clear error."""
    from qbo_pipeline.defs.definitions import load_pipeline_specs

    try:
        return load_pipeline_specs()
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc


def _guarded(action: Callable[[], T]) -> T:
    """Run a step; a known failure becomes a clear message and a non-zero exit."""
    from qbo_pipeline.defs.runner import SyncRunError
    from qbo_pipeline.qbo import ConsentError, QBOError
    from qbo_pipeline.state import SecretKeyError

    try:
        return action()
    except (SyncRunError, DemoDataError, QBOError, ConsentError, SecretKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # an unreachable QBO or database
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


if __name__ == "__main__":
    main()
