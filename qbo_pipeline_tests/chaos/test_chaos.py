"""The chaos harness at a small size (issue 8's proofs): the real pipeline in subprocesses,
syncs SIGKILLed while they start, read, write a batch or write a pull into the source, the
emulator killed and restarted once, faults on a share of requests (500, 503, 429, dropped
connections, expired tokens, a failing token endpoint), source and QBO edits and bad rows
made while the syncs run. Once clean syncs converge, the databases must show no duplicate,
no lost row, no lost update, every bad row quarantined, no run left STARTED and intact files.

`benchmarks/chaos.py` runs the same at 10,000 rows.
"""

from __future__ import annotations

import pytest

from qbo_pipeline_tests.chaos.harness import ChaosConfig, ChaosReport, run_chaos

SEED = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ChaosReport:
    workdir = tmp_path_factory.mktemp("chaos")
    report = run_chaos(ChaosConfig(workdir=workdir, clients=6, seed=SEED, cycles=5, kills=4,
                                   emulator_restarts=1, fault_share=0.1, edits_per_cycle=4,
                                   progress=lambda line: print(line, flush=True)))
    print(report.summary())
    return report


def _shown(report: ChaosReport, *sections: str) -> str:
    """The findings behind a failed assertion, and where the processes' logs are."""
    found = report.findings.sections()
    lines = [problem for name in sections for problem in found[name]]
    return "\n".join([*lines[:20], f"(seed {SEED}; the syncs' output is in "
                                    f"{report.workdir / 'syncs.log'})"])


def test_the_chaos_really_happened(report: ChaosReport) -> None:
    assert report.kills >= 4 and report.emulator_restarts == 1, report.summary()
    assert sum(report.faults_injected.values()) > 0, report.summary()
    assert report.edits.get("source edits", 0) and report.edits.get("QBO edits", 0)
    assert report.findings.checked_rows > 50


def test_the_clean_syncs_converge(report: ChaosReport) -> None:
    assert report.runs_to_converge is not None, "\n".join(report.notes)


def test_no_qbo_record_twice_for_one_source_record(report: ChaosReport) -> None:
    known = ("\nA second TimeActivity of one time entry is the known bug of "
             "test_recomposed_batch.py (a create re-sent in another batch after a kill)."
             if any("TimeActivity" in line for line in report.findings.duplicates) else "")
    assert report.duplicates == 0, _shown(report, "duplicates") + known
    assert report.orphans == 0, _shown(report, "orphans")


def test_no_lost_row_and_no_lost_update(report: ChaosReport) -> None:
    assert report.lost_rows == 0, _shown(report, "lost_rows")
    assert report.lost_updates == 0, _shown(report, "lost_updates")


def test_no_echo_taken_for_a_bookkeeper_change(report: ChaosReport) -> None:
    assert report.spurious_conflicts == 0, _shown(report, "spurious_conflicts")


def test_every_bad_row_is_quarantined_with_a_reason(report: ChaosReport) -> None:
    assert report.bad_rows_not_quarantined == 0, _shown(report, "bad_not_quarantined")


def test_no_run_left_started(report: ChaosReport) -> None:
    assert report.runs_left_started == 0, _shown(report, "runs_left_started")
    # Nor NOT_STARTED: a sync killed between its run's creation and its start (see
    # test_dead_runs.py) has its run failed by the next sync too.
    assert not report.findings.runs_unfinished, _shown(report, "runs_unfinished")


def test_the_databases_are_intact_and_no_write_is_left_pending(report: ChaosReport) -> None:
    assert report.integrity_ok, _shown(report, "integrity")
    assert report.pending_linked == 0, _shown(report, "pending_linked")

