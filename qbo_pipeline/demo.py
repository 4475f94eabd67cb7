"""The demo on local defaults: the bundled emulator, a SQLite demo source, a Dagster run.

`qbo-pipeline demo` calls `run_demo`; benchmarks and tests use its parts (`demo_resources`,
`seed_demo_items`, `dagster_instance`) to set up the same company.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from dagster import DagsterInstance

from qbo_pipeline.company_settings import change_setting
from qbo_pipeline.connections import connect_company
from qbo_pipeline.defs.resources import (
    DISCOVERY_PATH,
    EMULATOR_CLIENT_ID,
    EMULATOR_REDIRECT_URI,
    QBOConnection,
    SourceDatabase,
    StateDatabase,
)
from qbo_pipeline.defs.runner import (
    SyncReport,
    SyncResources,
    SyncRunError,
    quarantined_rows,
    run_sync,
)
from qbo_pipeline.emulator.server import EmulatorServer
from qbo_pipeline.emulator.service import EmulatorConfig
from qbo_pipeline.source.demo_data import DEPOSIT_SOURCES, SERVICES, generate_demo_data
from qbo_pipeline.specs import SpecSet
from qbo_pipeline.state import QuarantineRecord

# The company setting that sends the app's write-offs as credit memos (off by default).
CREDIT_MEMO_EXPORT = "credit_memo_export"
# The demo invoices name these Items ("Sales Tax" carries the tax line), looked up by name.
DEMO_TAX_ITEM = "Sales Tax"
# Classes the demo company tracks in QBO already: "Commercial" is one of the app's too (linked
# by name), "Maintenance" only QBO's (imported into the app's classes).
DEMO_QBO_CLASSES = ("Commercial", "Maintenance")
# Every new emulator company has this income account in its starter chart of accounts.
EMULATOR_STARTER_INCOME_ACCOUNT = "1"
Progress = Callable[[str], None]
# The repository's instance settings (run queue: one sync per company; run monitoring), given
# to the demo's Dagster instance too, so its runs follow the same rules as any other.
INSTANCE_SETTINGS = Path(__file__).resolve().parents[1] / "dagster.yaml"


@dataclass(frozen=True)
class DemoOutcome:
    """A finished demo: the run's counts, the rows held back, and where everything is."""

    report: SyncReport
    resources: SyncResources
    quarantined: list[QuarantineRecord]
    workdir: Path
    dagster_home: Path

    def ui_instructions(self) -> str:
        return ui_instructions(self.workdir, self.resources, self.dagster_home,
                               self.report.realm_id)


def run_demo(specs: SpecSet, workdir: Path, clients: int, progress: Progress) -> DemoOutcome:
    """Start the emulator, create the demo source, connect a company and sync it."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("emulator.sqlite", "state.sqlite"):
        (workdir / stale).unlink(missing_ok=True)
    progress("1/4 starting the QBO emulator")
    with EmulatorServer(EmulatorConfig(state_file=workdir / "emulator.sqlite")) as server:
        resources = demo_resources(workdir, server.base_url)
        progress("2/4 creating the demo source database")
        generate_demo_data(resources.source_db.url, clients=clients, reset=True)
        progress("3/4 connecting a demo QBO company through OAuth")
        realm_id = connect_company(resources)
        seed_demo_items(server.base_url, realm_id)
        # The demo shows every entity it has, so its company enables the credit memo export
        # that a real company turns on itself (seed 004), for the app's write-offs.
        change_setting(resources.state_db.sessions(), specs, realm_id, CREDIT_MEMO_EXPORT,
                       "true")
        progress(f"4/4 syncing company {realm_id} through Dagster")
        home = instance_home(workdir)
        with dagster_instance(home) as instance:
            report = run_sync(specs, resources, instance, realm_id, progress=progress)
        held = quarantined_rows(resources.state_db, realm_id)
    return DemoOutcome(report, resources, held, workdir, home)


def demo_resources(workdir: Path, emulator_url: str) -> SyncResources:
    """SQLite source and state files in `workdir`, QBO on the emulator's development app."""
    qbo = QBOConnection(base_url=emulator_url, environment=emulator_url + DISCOVERY_PATH,
                        client_id=EMULATOR_CLIENT_ID, redirect_uri=EMULATOR_REDIRECT_URI,
                        backoff_seconds=0.05, throttle_backoff_seconds=0.5)
    return SyncResources(SourceDatabase(url=f"sqlite:///{workdir / 'source.sqlite'}"),
                         StateDatabase(url=f"sqlite:///{workdir / 'state.sqlite'}"), qbo)


def seed_demo_items(emulator_url: str, realm_id: str) -> None:
    """Create the Items the demo invoices look up by name, the company's classes and its trust
    liability account, through the emulator's admin API (in a real company they exist
    already). The Items first, so that their Ids do not depend on the classes."""
    names = [DEMO_TAX_ITEM, *(service for service, _ in SERVICES)]
    items = [{"Name": name, "Type": "Service",
              "IncomeAccountRef": {"value": EMULATOR_STARTER_INCOME_ACCOUNT}} for name in names]
    classes = [{"Name": name} for name in DEMO_QBO_CLASSES]
    # The liability account a law firm holds its clients' trust money against: the demo's trust
    # deposit slips name it as where their money comes from.
    accounts = [{"Name": DEPOSIT_SOURCES["trust"], "AccountType": "Other Current Liability",
                 "AccountSubType": "TrustAccountsLiabilities"}]
    response = requests.post(f"{emulator_url}/admin/realms/{realm_id}/seed",
                             json={"Item": items, "Class": classes, "Account": accounts},
                             timeout=30)
    if response.status_code != 200:
        raise SyncRunError(f"the emulator refused the demo Items and classes "
                           f"({response.status_code}): {response.text[:300]}")


def instance_home(workdir: Path) -> Path:
    return Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") \
        else workdir / "dagster_home"


@contextmanager
def dagster_instance(home: Path | None,
                     progress: Progress | None = None) -> Iterator[DagsterInstance]:
    """The instance at DAGSTER_HOME; else one in `home` (so the UI can show the runs), else a
    throwaway one."""
    if os.environ.get("DAGSTER_HOME"):
        instance = DagsterInstance.get()
    elif home is not None:
        home.mkdir(parents=True, exist_ok=True)
        settings = home / "dagster.yaml"
        if not settings.exists() and INSTANCE_SETTINGS.is_file():
            shutil.copy(INSTANCE_SETTINGS, settings)
        instance = DagsterInstance.local_temp(tempdir=str(home))
    else:
        if progress is not None:
            progress("DAGSTER_HOME is not set: this run is not recorded for the UI")
        instance = DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()


def ui_instructions(workdir: Path, resources: SyncResources, home: Path, realm_id: str) -> str:
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
