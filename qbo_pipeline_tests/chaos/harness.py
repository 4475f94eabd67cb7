"""The chaos harness: the real pipeline (`qbo-pipeline sync` subprocesses against the bundled
QBO emulator, SQLite source and state DBs, a Dagster instance) under faults, kills and bad
input, then the databases checked for duplicates, lost rows and lost updates.

`run_chaos(config)` does, with one seeded `random.Random`:

1. set up (`pipeline.py`): the emulator, the demo source DB, a company connected through
   OAuth, the demo Items, a Dagster home with the repository's `dagster.yaml`;
2. chaos, cycle after cycle: faults switched on at the emulator (500, 503, 429, dropped
   connections, expired tokens, a failing token endpoint, an answer held past the client's
   timeout), a `qbo-pipeline sync` started, source and QBO edits made while it runs
   (`edits.py`), and in some cycles the sync SIGKILLed at a chosen moment (while it starts,
   reads, has a write batch in flight, or writes a pull into the source) or the emulator
   SIGKILLed and restarted, then the company reconnected (tokens live in its memory only);
3. convergence: faults off, clean syncs until one writes nothing;
4. the checks (`checks.py`), and a `ChaosReport` with the counts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine

from qbo_pipeline.sync.scope import CHANGE_WINDOW_LAG
from qbo_pipeline_tests.chaos.checks import Findings, check_all, read_world
from qbo_pipeline_tests.chaos.edits import (
    Expectations,
    QboEditor,
    SourceEditor,
    remember_source,
)
from qbo_pipeline_tests.chaos.pipeline import REALM_START, ChaosPipeline
from qbo_pipeline_tests.chaos.processes import Command

ACCOUNTING_FAULTS = ("server_error", "service_unavailable", "throttle", "dropped_connection",
                     "expired_token")
TOKEN_FAULTS = ("server_error", "service_unavailable", "dropped_connection")
PUSH_SPECS = ("client", "employee", "project", "invoice", "time_entry")
KILL_TARGETS = ("startup", "read", "write", "write", "pull")
CLIENT_TIMEOUT_SECONDS = 30.0  # QBOSettings.timeout_seconds (not set from the environment)
WRITE_KILL_DROPS = 0.35  # share of answers cut off in a cycle that kills during a write
POLL_SECONDS = 0.02
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ChaosConfig:
    """How much chaos, and where. The same config and seed make the same decisions; the
    processes' timing still varies, so the moments hit vary a little."""

    workdir: Path
    clients: int = 8
    seed: int = 1
    cycles: int = 6  # chaotic syncs (plus one per kill whose moment never came)
    kills: int = 4  # syncs SIGKILLed at a chosen moment
    emulator_restarts: int = 1  # emulator SIGKILLed during a sync and started again
    fault_share: float = 0.1  # share of accounting requests answered with a fault
    slow_past_timeout: int = 0  # cycles with one answer held past the client's timeout
    edits_per_cycle: int = 4  # source and QBO edits made while each sync runs
    edit_horizon_seconds: float = 12.0  # edits fall in this time after a sync starts
    kill_batch_max: int = 3  # a write kill comes after one of the first this many batches
    heartbeat_seconds: float = 30.0  # a progress line this often while a sync runs
    max_converge_runs: int = 6
    sync_timeout_seconds: float = 900.0
    progress: Progress = print


@dataclass
class ChaosReport:
    duplicates: int
    orphans: int
    lost_rows: int
    lost_updates: int
    spurious_conflicts: int
    bad_rows_not_quarantined: int
    runs_left_started: int
    runs_to_converge: int | None  # None: no clean run wrote nothing
    kills: int
    emulator_restarts: int
    faults_injected: dict[str, int]
    sync_runs: int
    edits: dict[str, int]
    integrity_ok: bool
    pending_linked: int
    seconds: float
    findings: Findings
    workdir: Path  # the databases and the processes' logs (syncs.log, emulator.log)
    notes: list[str] = field(default_factory=list)  # syncs that failed, and why

    def summary(self) -> str:
        lines = [f"duplicates: {self.duplicates}", f"lost rows: {self.lost_rows}",
                 f"lost updates: {self.lost_updates}",
                 f"runs needed to converge: {self.runs_to_converge}",
                 f"conflicts no bookkeeper caused: {self.spurious_conflicts}",
                 f"bad rows not quarantined: {self.bad_rows_not_quarantined}",
                 f"runs left STARTED: {self.runs_left_started}",
                 f"orphan QBO records: {self.orphans}",
                 f"write-log entries pending for linked records: {self.pending_linked}",
                 f"state, source and emulator databases intact: {self.integrity_ok}",
                 f"kills: {self.kills}, emulator restarts: {self.emulator_restarts}, "
                 f"sync runs: {self.sync_runs}, rows checked: {self.findings.checked_rows}",
                 f"faults injected: {dict(sorted(self.faults_injected.items()))}",
                 f"edits: {dict(sorted(self.edits.items()))}",
                 f"took {self.seconds:.0f} s; databases and logs in {self.workdir}"]
        for name, problems in self.findings.sections().items():
            if problems:
                lines.append(f"{name} ({len(problems)}):")
                lines += [f"  {problem}" for problem in problems[:25]]
        if self.notes:
            lines.append(f"syncs that failed ({len(self.notes)}):")
            lines += [f"  {note}" for note in self.notes[:25]]
        return "\n".join(lines)


def run_chaos(config: ChaosConfig) -> ChaosReport:
    harness = _Harness(config)
    try:
        return harness.run()
    finally:
        harness.pipeline.close()


# --- kills -----------------------------------------------------------------------------------


@dataclass
class KillPlan:
    """When to SIGKILL one sync: `at` seconds after it starts, or `delay` seconds after its
    trigger (a progress line, or the n-th write batch logged in the write log)."""

    target: str
    label: str
    delay: float = 0.0
    at: float = 0.0
    line: re.Pattern[str] | None = None
    batches: int = 0
    triggered: float | None = None

    def describe(self) -> str:
        if self.target == "startup":
            return f"while starting, {self.at:.1f} s in"
        return f"{self.delay:.2f} s after {self.label}"


def draw_kill(rng: random.Random, first_sync: bool, max_batch: int) -> KillPlan:
    target = rng.choice(KILL_TARGETS)
    delay = rng.uniform(0.0, 0.3)
    if target == "startup":
        return KillPlan(target, "start", at=rng.uniform(0.5, 5.5))
    if target == "read":
        step = f"{rng.choice(PUSH_SPECS)}/{rng.choice(['source', 'validated', 'qbo_snapshot'])}"
        return KillPlan(target, step, delay, line=re.compile(rf"^\s+{step}\b"))
    if target == "write":
        # Answers are often cut off mid-body in this cycle (the request done): a kill while
        # the client backs off to retry finds the batch done in QBO, its links not written.
        # A first sync sends many batches; a later one a few: aim where there are some.
        batches = rng.randint(1, max_batch if first_sync else 2)
        return KillPlan(target, f"write batch {batches} was logged", rng.uniform(0.0, 0.6),
                        batches=batches)
    # A pull writes into the source: Items right after service/diff, balances after invoices.
    step = "service/diff" if first_sync and rng.random() < 0.5 else "invoice/synced"
    return KillPlan(target, step, delay, line=re.compile(rf"^\s+{step}\b"))


# --- the harness -----------------------------------------------------------------------------


class Heartbeat:
    """Says, every `seconds`, how long a sync has run and the step it last reported."""

    def __init__(self, say: Progress, seconds: float) -> None:
        self.say = say
        self.seconds = seconds
        self.last_line = ""
        self.next = time.monotonic() + seconds

    def tick(self, sync: Command, lines: list[str]) -> None:
        steps = [line.strip() for line in lines if "/" in line]
        self.last_line = steps[-1] if steps else self.last_line
        if time.monotonic() >= self.next:
            self.next += self.seconds
            self.say(f"    ... sync running {sync.elapsed:.0f} s: {self.last_line[:90]}")


@dataclass
class _Cycle:
    """One chaotic sync: its faults, its kill, its edits, the emulator's restart."""

    kills: bool
    restart_at: float | None
    edit_times: list[float]
    slow_past_timeout: bool
    kill: KillPlan | None = None
    faults: dict[str, float] = field(default_factory=dict)
    token_fault: str | None = None


class _Harness:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.say = config.progress
        self.pipeline = ChaosPipeline(config.workdir, datetime.now(UTC).date())
        self.expect = Expectations()
        self.kills = self.restarts = self.sync_runs = self.cycles_run = 0
        self.notes: list[str] = []
        self.last_edit = 0.0
        self.synced_once = False
        self.started = time.monotonic()

    def run(self) -> ChaosReport:
        self.say(f"chaos: {self.config.clients} clients, seed {self.config.seed}, in "
                 f"{self.pipeline.workdir}")
        demo = self.pipeline.set_up(self.config.clients, self.config.seed)
        remember_source(self.pipeline.source, self.expect, demo)
        self.say(f"demo source: {demo.total_rows:,} rows ({len(demo.invalid)} invalid on "
                 f"purpose); company {self.pipeline.realm_id} connected")
        editors = (SourceEditor(self.pipeline.source, self.rng, self.expect, demo.today),
                   QboEditor(self.pipeline.emulator, self.pipeline.realm_id,
                             self.pipeline.live_links, self.rng, self.expect))
        for cycle in self.plan_cycles():
            self.run_cycle(cycle, *editors)
        runs = self.converge()
        return self.report(self.check(), runs)

    # --- chaos -----------------------------------------------------------------------------

    def plan_cycles(self) -> list[_Cycle]:
        """Which cycles kill, restart the emulator, hold an answer past the timeout. An
        emulator restart falls in a kill cycle when there is one (the sync is killed while its
        QBO is down, as when one machine loses both), so that other cycles run to their end."""
        config, rng = self.config, self.rng
        count = config.cycles
        kills = rng.sample(range(count), min(config.kills, count))
        among = kills or list(range(count))
        restarts = set(rng.sample(among, min(config.emulator_restarts, len(among))))
        slow = set(rng.sample(range(count), min(config.slow_past_timeout, count)))
        return [self.new_cycle(n in kills, n in restarts, n in slow) for n in range(count)]

    def new_cycle(self, kills: bool, restarts: bool, slow: bool) -> _Cycle:
        horizon = self.config.edit_horizon_seconds
        return _Cycle(kills, self.rng.uniform(1.0, 8.0) if restarts else None,
                      sorted(self.rng.uniform(0, horizon)
                             for _ in range(self.config.edits_per_cycle)), slow)

    def run_cycle(self, cycle: _Cycle, source_edits: SourceEditor,
                  qbo_edits: QboEditor) -> None:
        self.cycles_run += 1
        if cycle.kills:
            cycle.kill = draw_kill(self.rng, not self.synced_once, self.config.kill_batch_max) \
                if cycle.restart_at is None \
                else KillPlan("emulator", "its QBO went down", self.rng.uniform(0.3, 2.0))
        self.switch_faults(cycle)
        after = self.pipeline.write_log_size()
        sync = self.pipeline.sync()
        self.sync_runs += 1
        made = self.drive(sync, cycle, after, source_edits, qbo_edits)
        code = sync.wait(self.config.sync_timeout_seconds)
        self.synced_once = self.synced_once or code == 0
        self.pipeline.emulator.count_faults()
        for _ in cycle.edit_times[made:]:  # the edits due after the sync ended: made now
            self.edit(source_edits, qbo_edits)
        if cycle.restart_at is not None:
            self.pipeline.connect()
        self.say(self.describe(cycle, sync, code))
        if code not in (0, -9):
            self.notes.append(f"cycle {self.cycles_run}: {failure(sync.output, code)}")
        if cycle.kills and not sync.killed and self.cycles_run < self.config.cycles * 2:
            # Its moment never came (the sync ended first): kill in one more cycle.
            self.run_cycle(self.new_cycle(True, False, False), source_edits, qbo_edits)

    def switch_faults(self, cycle: _Cycle) -> None:
        """Random shares of the accounting faults, adding up to the configured share; a
        scheduled failure of the token endpoint (with a token expiry, so that a refresh
        meets it) in half the cycles; in some cycles one answer held past the client's
        timeout (the request is done when it is answered, after the client gave up)."""
        rng, share, emulator = self.rng, self.config.fault_share, self.pipeline.emulator
        weights = [rng.random() for _ in ACCOUNTING_FAULTS]
        shares = {kind: share * weight / sum(weights)
                  for kind, weight in zip(ACCOUNTING_FAULTS, weights, strict=True)}
        shares["throttle"] /= 4  # each 429 costs the client seconds of backoff
        if cycle.kill is not None and cycle.kill.target == "write":
            shares["dropped_connection"] = WRITE_KILL_DROPS
        emulator.set_faults(shares, CLIENT_TIMEOUT_SECONDS + 1, rng.randrange(1 << 30))
        if cycle.slow_past_timeout:
            emulator.schedule_fault("slow", 1)
        if rng.random() < 0.5:
            cycle.token_fault = rng.choice(TOKEN_FAULTS)
            emulator.schedule_fault(cycle.token_fault, rng.randint(1, 2), target="token")
            emulator.schedule_fault("expired_token", 1)
        cycle.faults = shares

    def drive(self, sync: Command, cycle: _Cycle, after: int, source_edits: SourceEditor,
              qbo_edits: QboEditor) -> int:
        """Edit, kill, restart while the sync runs; returns how many edits it made."""
        made, restarted = 0, False
        beat = Heartbeat(self.say, self.config.heartbeat_seconds)
        while sync.running():
            lines = sync.new_lines()
            beat.tick(sync, lines)
            while made < len(cycle.edit_times) and sync.elapsed >= cycle.edit_times[made]:
                self.edit(source_edits, qbo_edits)
                made += 1
            if cycle.kill is not None and cycle.kill.target != "emulator" \
                    and self.kill_due(cycle.kill, sync, lines, after):
                self.kill(sync)
            elif cycle.restart_at is not None and not restarted \
                    and sync.elapsed >= cycle.restart_at:
                self.restart_emulator(sync, cycle.kill)
                restarted = True
            time.sleep(POLL_SECONDS)
        if cycle.restart_at is not None and not restarted:
            self.restart_emulator(sync, None)  # the sync ended first: between two syncs
        return made

    def kill(self, sync: Command) -> None:
        sync.kill()
        self.kills += 1

    def restart_emulator(self, sync: Command, kill: KillPlan | None) -> None:
        """SIGKILL the emulator; with a kill plan, SIGKILL the sync too while QBO is down."""
        emulator = self.pipeline.emulator
        emulator.kill()
        if kill is not None:
            time.sleep(kill.delay)
            self.kill(sync)
        time.sleep(self.rng.uniform(0.2, 1.5))
        emulator.start()
        self.restarts += 1

    def kill_due(self, plan: KillPlan, sync: Command, lines: list[str], after: int) -> bool:
        now = sync.elapsed
        if plan.target == "startup":
            return now >= plan.at
        if plan.triggered is None:
            hit = any(plan.line.search(line) for line in lines) if plan.line is not None \
                else self.pipeline.batches_logged(after) >= plan.batches
            if hit:
                plan.triggered = now
        return plan.triggered is not None and now >= plan.triggered + plan.delay

    def edit(self, source_edits: SourceEditor, qbo_edits: QboEditor) -> None:
        """A source or a QBO edit (the other when the first finds nothing to edit)."""
        edits: list[Callable[[], str | None]] = [source_edits.random_edit,
                                                 qbo_edits.random_edit]
        self.rng.shuffle(edits)
        done = edits[0]() or edits[1]()
        if done is not None:
            self.last_edit = time.monotonic()
            self.say(f"    edit: {done}")

    def describe(self, cycle: _Cycle, sync: Command, code: int) -> str:
        shown = {kind: round(share, 3) for kind, share in cycle.faults.items() if share}
        what = f"killed {cycle.kill.describe()}" if sync.killed and cycle.kill else \
            f"exit {code}"
        extra = [f"token endpoint {cycle.token_fault}"] if cycle.token_fault else []
        extra += ["emulator restarted"] if cycle.restart_at is not None else []
        extra += [f"an answer held {CLIENT_TIMEOUT_SECONDS + 1:.0f} s"] \
            if cycle.slow_past_timeout else []
        return (f"  cycle {self.cycles_run}: sync {what} ({sync.elapsed:.1f} s); faults "
                f"{shown}" + (f"; {', '.join(extra)}" if extra else ""))

    # --- convergence -------------------------------------------------------------------------

    def converge(self) -> int | None:
        """Faults off; clean syncs until one writes nothing. Returns how many it took."""
        emulator = self.pipeline.emulator
        emulator.count_faults()
        emulator.clear_faults()
        # Rows stamped within the change window's lag belong to the next window: wait it out.
        wait = self.last_edit + CHANGE_WINDOW_LAG.total_seconds() + 1 - time.monotonic()
        time.sleep(max(wait, 0))
        self.say("faults off: clean syncs until one writes nothing")
        for run in range(1, self.config.max_converge_runs + 1):
            after = self.pipeline.run_results_size()
            code, output = self.watch(self.pipeline.sync())
            self.sync_runs += 1
            writes = self.pipeline.writes_since(after)
            self.say(f"  clean sync {run}: exit {code}, {writes} records written")
            if code != 0:
                self.notes.append(f"clean sync {run}: {failure(output, code)}")
            elif writes == 0:
                return run
        return None

    def watch(self, sync: Command) -> tuple[int, list[str]]:
        """Wait for a sync, with a progress line now and then."""
        beat = Heartbeat(self.say, self.config.heartbeat_seconds)
        deadline = time.monotonic() + self.config.sync_timeout_seconds
        while sync.running() and time.monotonic() < deadline:
            beat.tick(sync, sync.new_lines())
            time.sleep(0.2)
        return sync.wait(max(deadline - time.monotonic(), 1)), sync.output

    # --- checks ------------------------------------------------------------------------------

    def check(self) -> Findings:
        pipeline = self.pipeline
        self.say("checking the emulator's dump, the source and state DBs, Dagster's runs")
        dump = pipeline.emulator.dump(pipeline.realm_id)
        state = create_engine(pipeline.env["QBO_STATE_URL"])
        try:
            world = read_world(dump, pipeline.source, state, pipeline.realm_id, REALM_START)
        finally:
            state.dispose()
        return check_all(world, self.expect, pipeline.dagster_home, pipeline.sqlite_files)

    def report(self, findings: Findings, runs: int | None) -> ChaosReport:
        return ChaosReport(
            duplicates=len(findings.duplicates), orphans=len(findings.orphans),
            lost_rows=len(findings.lost_rows), lost_updates=len(findings.lost_updates),
            spurious_conflicts=len(findings.spurious_conflicts),
            bad_rows_not_quarantined=len(findings.bad_not_quarantined),
            runs_left_started=len(findings.runs_left_started), runs_to_converge=runs,
            kills=self.kills, emulator_restarts=self.restarts,
            faults_injected=dict(self.pipeline.emulator.injected), sync_runs=self.sync_runs,
            edits=dict(self.expect.counts), integrity_ok=not findings.integrity,
            pending_linked=len(findings.pending_linked),
            seconds=time.monotonic() - self.started, findings=findings,
            workdir=self.pipeline.workdir, notes=self.notes)


def failure(output: list[str], code: int) -> str:
    """A failed command's own error line (the CLI prints `Error: ...`), shortened."""
    errors = [line for line in output if line.startswith("Error:")]
    shown = errors[-1] if errors else " | ".join(output[-2:])
    return f"exit {code}: {shown[:400]}"
