"""One company synced by the real pipeline, every part in its own process or file: the QBO
emulator (a subprocess, companies kept in its state file), the demo source DB and the state
DB (SQLite files), a Dagster home with the repository's `dagster.yaml`, and `qbo-pipeline`
commands run as subprocesses. The chaos harness and its tests drive it.

The state DB is peeked at read-only with sqlite3, never through the pipeline's own code: the
harness watches the pipeline, it does not share its bugs.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine

from qbo_pipeline.demo import seed_demo_items
from qbo_pipeline.emulator.server import free_port
from qbo_pipeline.source.demo_data import DemoSummary, generate_demo_data
from qbo_pipeline.state import upsert_realm
from qbo_pipeline.state.db import create_state_engine, state_sessions
from qbo_pipeline_tests.chaos.processes import (
    ChaosError,
    Command,
    Emulator,
    pipeline_environment,
    run_command,
)

ROOT = Path(__file__).resolve().parents[2]
# Every demo row is dated after this: the company's own start date lets all of them through.
REALM_START = date(2000, 1, 1)
CONNECT_ATTEMPTS = 5


def partitions_start(today: date) -> date:
    """QBO_SYNC_START_DATE, the first month partition: the month before this one.

    The company's own start date (2000-01-01) puts every demo row in scope; partitions from
    2000 would cost minutes of Dagster's bookkeeping in every first sync (events per asset
    and month: 7.5 minutes for 6 clients on a 2-core machine)."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


class ChaosPipeline:
    """The processes and databases of one synced company (see the module doc)."""

    def __init__(self, workdir: Path, today: date) -> None:
        self.workdir = workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.emulator = Emulator(self.workdir, free_port())
        self.env = pipeline_environment(
            self.workdir, self.emulator.base_url, Fernet.generate_key().decode(),
            partitions_start(today).isoformat(), ROOT / "mapping_specs")
        self.realm_id = ""
        self.source: Engine = create_engine(self.env["QBO_SOURCE_URL"])

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.sqlite"

    @property
    def sqlite_files(self) -> list[Path]:
        return [self.state_file, self.workdir / "source.sqlite", self.emulator.state_file]

    def set_up(self, clients: int, seed: int) -> DemoSummary:
        """Emulator, demo source, a connected company with its demo Items, a Dagster home."""
        self.dagster_home.mkdir(exist_ok=True)
        shutil.copy(ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.emulator.start()
        demo = generate_demo_data(self.source, clients=clients, seed=seed)
        self.realm_id = self.connect()
        engine = create_state_engine(self.env["QBO_STATE_URL"])
        try:
            with state_sessions(engine).begin() as session:
                upsert_realm(session, self.realm_id, sync_start_date=REALM_START)
        finally:
            engine.dispose()
        seed_demo_items(self.emulator.base_url, self.realm_id)
        return demo

    def close(self) -> None:
        self.emulator.stop()
        self.source.dispose()

    # --- commands ----------------------------------------------------------------------------

    def connect(self) -> str:
        """`qbo-pipeline connect` (with `--realm` again after an emulator restart); the token
        endpoint may be failing on purpose, so it is tried a few times."""
        args = ["connect"] + (["--realm", self.realm_id] if self.realm_id else [])
        output: list[str] = []
        for _ in range(CONNECT_ATTEMPTS):
            code, output = run_command(args, self.env, self.workdir,
                                       self.workdir / "commands.log", timeout=120)
            found = re.search(r"connected QBO company (\d+)", "\n".join(output))
            if code == 0 and found:
                return found.group(1)
            time.sleep(0.5)
        raise ChaosError(f"`qbo-pipeline connect` failed {CONNECT_ATTEMPTS} times: "
                         + " | ".join(output[-3:]))

    def sync(self, *args: str) -> Command:
        """`qbo-pipeline sync` started (its output in syncs.log)."""
        return Command(["sync", *args], self.env, self.workdir, self.workdir / "syncs.log")

    def run_sync(self, *args: str, timeout: float = 600) -> tuple[int, list[str]]:
        command = self.sync(*args)
        return command.wait(timeout), command.output

    # --- the state DB, read-only ---------------------------------------------------------------

    def _state(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.state_file}?mode=ro", uri=True, timeout=5)

    def _scalar(self, query: str, *params: object) -> int:
        connection = self._state()
        try:
            return int(connection.execute(query, params).fetchone()[0])
        finally:
            connection.close()

    def write_log_size(self) -> int:
        return self._scalar("SELECT coalesce(max(id), 0) FROM qbo_write_log")

    def batches_logged(self, after: int) -> int:
        """Batches whose intents were logged after entry `after` (a batch's writes share one
        timestamp); 0 while the sync holds the database locked."""
        try:
            return self._scalar("SELECT count(DISTINCT created_at) FROM qbo_write_log "
                                "WHERE id > ?", after)
        except sqlite3.OperationalError:
            return 0

    def pending_writes(self) -> list[tuple[str, str, str]]:
        """(spec, source key, operation) of each write logged pending."""
        connection = self._state()
        try:
            return [(spec, key, operation) for spec, key, operation in connection.execute(
                "SELECT spec_name, source_key, operation FROM qbo_write_log "
                "WHERE status = 'pending' ORDER BY id")]
        finally:
            connection.close()

    def live_links(self, spec: str) -> list[tuple[str, str]]:
        """(source key, QBO Id) of the spec's links whose delete has not run."""
        try:
            connection = self._state()
            try:
                return [(key, qbo_id) for key, qbo_id in connection.execute(
                    "SELECT source_key, qbo_id FROM qbo_links WHERE spec_name = ? "
                    "AND delete_applied = 0", (spec,))]
            finally:
                connection.close()
        except sqlite3.OperationalError:
            return []

    def run_results_size(self) -> int:
        return self._scalar("SELECT coalesce(max(id), 0) FROM qbo_run_results")

    def writes_since(self, after: int) -> int:
        """Records created or updated (in QBO or in the source) by the runs recorded after
        result `after`."""
        connection = self._state()
        try:
            counts = [json.loads(row[0]) for row in connection.execute(
                "SELECT counts FROM qbo_run_results WHERE id > ?", (after,))]
        finally:
            connection.close()
        return sum(int(c.get("created", 0)) + int(c.get("updated", 0)) for c in counts)
