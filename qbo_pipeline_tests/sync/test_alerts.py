"""The alert rules (sync/alerts.py): what deserves a person, and what the message says."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.sync.alerts import (
    GROWING_RUNS,
    LONG_OPEN_DAYS,
    QUARANTINE_THRESHOLD,
    REPEAT_AFTER,
    Severity,
    conflict_alert,
    connection_alert,
    is_repeat,
    quarantine_alert,
    redact,
    run_failure_alert,
    worst,
)
from qbo_pipeline.sync.connection_health import connection_health

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_a_token_warns_inside_14_days_and_errors_once_expired() -> None:
    assert connection_alert(connection_health("9", NOW + timedelta(days=15), NOW), "9",
                            "c") is None
    soon = connection_alert(connection_health("9", NOW + timedelta(days=14), NOW), "9", "c")
    assert soon is not None and soon.severity is Severity.WARN
    assert soon.fix == "disconnect and reconnect the company (qbo-pipeline connect --realm 9)"
    gone = connection_alert(connection_health("9", NOW, NOW), "9", "c")
    assert gone is not None and gone.severity is Severity.ERROR
    assert "[ERROR] c (company 9): the refresh token of company 9 expired" in gone.text()
    assert "disconnect and reconnect" in gone.text()
    off = connection_health("9", NOW - timedelta(days=1), NOW, connected=False)
    assert connection_alert(off, "9", "c") is None  # disconnected on purpose
    assert worst([soon, gone]) is Severity.ERROR and worst([soon]) is Severity.WARN
    assert worst([]) is None


def test_a_failed_run_names_its_company_and_the_fix_its_error_points_to() -> None:
    refused = run_failure_alert("sync_job", "r-1", "9", "client/source: QBO refused the "
                                "refresh token (invalid_grant): Token refresh failed")
    assert refused.severity is Severity.ERROR and refused.realm_id == "9"
    assert refused.subject == "run r-1 of sync_job"
    assert "disconnect and reconnect" in refused.fix
    broken = run_failure_alert("sync_job", "r-2", "9", "client/source: no such table: clients")
    assert "Runs > r-2" in broken.fix and "re-execute" in broken.fix
    assert run_failure_alert("sync_job", "r-3", None, None).message == "the run failed"


def test_a_quarantine_alerts_when_it_keeps_growing_or_passes_the_threshold() -> None:
    assert quarantine_alert("9", "client", [], 1) is None  # a first bad row: a warning only
    assert quarantine_alert("9", "client", [1], 2) is None  # grown once
    growing = quarantine_alert("9", "client", [1, 2], 3)
    assert growing is not None and growing.severity is Severity.ERROR
    assert "grew at each of the last 2 runs (1 -> 2 -> 3 rows held back)" in growing.message
    assert "qbo-pipeline quarantine list --realm 9 --entity client" in growing.fix
    assert quarantine_alert("9", "client", [3, 2], 3) is None  # it shrank in between
    big = quarantine_alert("9", "client", [QUARANTINE_THRESHOLD], QUARANTINE_THRESHOLD)
    assert big is not None and "threshold is 100" in big.message


@given(st.lists(st.integers(0, 200), max_size=5), st.integers(0, 200))
def test_the_quarantine_rule_is_rising_runs_or_the_threshold(before: list[int],
                                                            now: int) -> None:
    counts = [*before, now]
    rising = len(counts) > GROWING_RUNS and all(
        counts[-step - 1] < counts[-step] for step in range(1, GROWING_RUNS + 1))
    alert = quarantine_alert("9", "client", before, now)
    assert (alert is not None) == (rising or now >= QUARANTINE_THRESHOLD)


def test_a_conflict_alerts_once_open_longer_than_the_limit() -> None:
    fresh = NOW - timedelta(days=LONG_OPEN_DAYS)
    assert conflict_alert("9", "client", 2, fresh, NOW) is None
    assert conflict_alert("9", "client", 0, None, NOW) is None
    old = conflict_alert("9", "client", 2, fresh - timedelta(hours=12), NOW)
    assert old is not None and old.severity is Severity.ERROR
    assert "2 client conflict(s) open, the oldest for 7.5 days (longer than 7)" in old.message
    assert old.fix == "decide them: qbo-pipeline conflicts list --realm 9 --entity client"
    naive = (fresh - timedelta(days=1)).replace(tzinfo=None)  # SQLite's aggregates
    assert conflict_alert("9", "client", 1, naive, NOW) is not None


def test_no_credential_leaves_in_an_alert() -> None:
    token = secrets.token_urlsafe(40)
    text = (f"401 for Authorization: Bearer {token}; body refresh_token={token[:12]}&x=1, "
            f"{{\"client_secret\": \"s3cr3t\"}} and {token}")
    cleaned = redact(text)
    assert token not in cleaned and token[:12] not in cleaned and "s3cr3t" not in cleaned
    assert "Bearer [redacted]" in cleaned and "refresh_token=[redacted]" in cleaned
    alert = run_failure_alert("sync_job", "r-1", "9", text)
    assert all(token[:12] not in str(value) for value in alert.to_json().values())


@given(st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=40,
               max_size=120))
def test_any_long_opaque_string_is_redacted(opaque: str) -> None:
    assert opaque not in redact(f"failed with {opaque} here")


def test_the_same_alert_is_sent_again_only_after_a_while() -> None:
    alert = conflict_alert("9", "client", 1, NOW - timedelta(days=8), NOW)
    assert alert is not None
    payload = alert.to_json()
    other_company = {**payload, "realm_id": "10"}
    worse = {**payload, "severity": "warn"}
    assert not is_repeat(payload, [], NOW)
    assert is_repeat(payload, [(NOW - timedelta(minutes=15), payload)], NOW)
    assert not is_repeat(payload, [(NOW - REPEAT_AFTER, payload)], NOW)
    assert not is_repeat(payload, [(NOW - timedelta(minutes=15), other_company),
                                   (NOW - timedelta(minutes=15), worse)], NOW)
    # Daily checks start a few seconds apart: yesterday's warning does not silence today's.
    assert not is_repeat(payload, [(NOW - timedelta(days=1) + timedelta(seconds=5), payload)],
                         NOW)
