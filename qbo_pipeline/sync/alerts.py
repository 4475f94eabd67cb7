"""Which events deserve a person's attention, and what the alert about each one says.

Pure decisions, read by the Dagster checks and sensors (`defs/health.py`, `defs/alerts.py`),
which only gather the facts and deliver the message:

- a company's refresh token expiring within 14 days (a warning) or expired (an error): the
  rule is `connection_health`, the fix seed 001's "disconnect and reconnect";
- a failed sync run, named by its job, run id and company, with the fix its error points to;
- a quarantine that keeps growing run after run, or has grown past a threshold: bad rows
  arriving faster than anyone repairs them;
- a conflict left open longer than a number of days: the record stops syncing meanwhile.

Every message names the company (realm), the run or check, and the fix; `redact` takes out
anything shaped like a credential before a message leaves the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from qbo_pipeline.sync.connection_health import (
    NOT_CONNECTED,
    RECONNECT,
    ConnectionHealth,
    HealthLevel,
)

# Growing: the open quarantine rose at each of this many runs in a row (one new bad row is an
# ordinary warning; a count that keeps rising means something upstream keeps breaking rows).
GROWING_RUNS = 2
# Open rows a person is expected to have repaired long before there are this many.
QUARANTINE_THRESHOLD = 100
# A conflict holds its record back from syncing until decided: a week is long enough.
LONG_OPEN_DAYS = 7
# The same alert (company, subject, severity) is sent again only after this long: a conflict
# open for a week would otherwise alert at every 15-minute run. Under a day, so that the daily
# token check's warning is sent each day although its runs start a few seconds apart.
REPEAT_AFTER = timedelta(hours=20)

AUTH_MARKERS = ("3200", "3100", "401", "unauthorized", "authoriz", "invalid_grant",
                "refresh token", "token refresh", "no active quickbooks connection")
RERUN = ("read the run's error in the Dagster UI (Runs > {run_id}), repair its cause, then "
         "re-execute the run")
REPAIR_QUARANTINE = ("repair the held rows in the source (qbo-pipeline quarantine list "
                     "--realm {realm} --entity {spec}); they are tried again when they change")
DECIDE_CONFLICTS = "decide them: qbo-pipeline conflicts list --realm {realm} --entity {spec}"

# Credentials as they could appear in an error text: a bearer header, an OAuth form or JSON
# field, or a long opaque string (Intuit's tokens are hundreds of characters; a JWT's parts,
# between its dots, are each that long, while a dotted module path's parts are short).
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)((?:access|refresh|id)_token|client_secret|verifier_token|password)"
               r"([\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"),
    re.compile(r"[A-Za-z0-9_\-=+]{40,}"),
)


class Severity(StrEnum):
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Alert:
    """One message for a person: what happened to which company, and the fix."""

    severity: Severity
    realm_id: str | None
    subject: str  # the run or the check the alert is about
    message: str
    fix: str

    def text(self) -> str:
        """The whole alert in one line, as a chat message or an e-mail subject reads it."""
        company = f"company {self.realm_id}" if self.realm_id else "no company"
        return redact(f"[{self.severity.upper()}] {self.subject} ({company}): {self.message}. "
                      f"Fix: {self.fix}")

    def to_json(self) -> dict[str, str | None]:
        # Slack's incoming webhooks read `text`; other receivers get the fields as well.
        return {"text": self.text(), "severity": str(self.severity), "realm_id": self.realm_id,
                "subject": self.subject, "message": redact(self.message),
                "fix": redact(self.fix)}


AlertPayload = Mapping[str, Any]


def alert_identity(payload: AlertPayload) -> tuple[Any, Any, Any]:
    return payload.get("realm_id"), payload.get("subject"), payload.get("severity")


def is_repeat(payload: AlertPayload, earlier: Iterable[tuple[datetime, AlertPayload]],
              now: datetime, *, repeat_after: timedelta = REPEAT_AFTER) -> bool:
    """Whether the same alert was raised (by an earlier run's check) within `repeat_after`."""
    wanted = alert_identity(payload)
    return any(alert_identity(other) == wanted and _aware(now) - _aware(when) < repeat_after
               for when, other in earlier)


def redact(text: str) -> str:
    """`text` with every credential-shaped part replaced by `[redacted]`."""
    text = _SECRET_PATTERNS[0].sub(r"\1[redacted]", text)
    text = _SECRET_PATTERNS[1].sub(r"\1\2[redacted]", text)
    return _SECRET_PATTERNS[2].sub("[redacted]", text)


# --- connections -----------------------------------------------------------------------------


def connection_alert(health: ConnectionHealth, realm_id: str,
                     check_name: str) -> Alert | None:
    """A warning while the refresh token expires soon, an error once it has; else none (a
    disconnected company was disconnected on purpose: nothing to warn about)."""
    if health.level is HealthLevel.EXPIRING:
        return Alert(Severity.WARN, realm_id, check_name, health.message,
                     RECONNECT.fix_for(realm_id))
    if health.level is HealthLevel.EXPIRED:
        return Alert(Severity.ERROR, realm_id, check_name, health.message,
                     RECONNECT.fix_for(realm_id))
    if health.level is HealthLevel.NOT_CONNECTED:
        return Alert(Severity.ERROR, realm_id, check_name, health.message,
                     NOT_CONNECTED.fix_for(realm_id))
    return None


def worst(alerts: Sequence[Alert]) -> Severity | None:
    """The severity a check of several companies reports: that of its worst alert."""
    if any(alert.severity is Severity.ERROR for alert in alerts):
        return Severity.ERROR
    return Severity.WARN if alerts else None


# --- failed runs -----------------------------------------------------------------------------


def run_failure_alert(job_name: str, run_id: str, realm_id: str | None,
                      error: str | None) -> Alert:
    """A failed run: an authorization failure is fixed by reconnecting, anything else by
    reading the run's error and re-executing it (its writes are idempotent)."""
    reason = redact((error or "the run failed").strip().splitlines()[0][:500])
    if realm_id and is_authorization_failure(error or ""):
        fix = RECONNECT.fix_for(realm_id)
    else:
        fix = RERUN.format(run_id=run_id)
    return Alert(Severity.ERROR, realm_id, f"run {run_id} of {job_name}", reason, fix)


def is_authorization_failure(error: str) -> bool:
    lowered = error.lower()
    return any(marker in lowered for marker in AUTH_MARKERS)


# --- quarantine and conflicts ----------------------------------------------------------------


def quarantine_alert(realm_id: str, spec_name: str, open_after_runs: Sequence[int],
                     open_now: int, *, growing_runs: int = GROWING_RUNS,
                     threshold: int = QUARANTINE_THRESHOLD) -> Alert | None:
    """An error when the open quarantine grew at each of the last `growing_runs` runs
    (`open_after_runs`: the open count after each earlier run, oldest first, then `open_now`),
    or holds `threshold` rows or more; else none."""
    counts = [*open_after_runs, open_now]
    recent = counts[-(growing_runs + 1):]
    rising = len(recent) == growing_runs + 1 and all(
        before < after for before, after in zip(recent, recent[1:], strict=False))
    subject = f"{spec_name} quarantine"
    fix = REPAIR_QUARANTINE.format(realm=realm_id, spec=spec_name)
    if open_now >= threshold:
        return Alert(Severity.ERROR, realm_id, subject, f"{open_now} {spec_name} rows are held "
                     f"back in quarantine (the alert threshold is {threshold})", fix)
    if rising:
        trend = " -> ".join(str(n) for n in recent)
        return Alert(Severity.ERROR, realm_id, subject, f"the {spec_name} quarantine grew at "
                     f"each of the last {growing_runs} runs ({trend} rows held back)", fix)
    return None


def conflict_alert(realm_id: str, spec_name: str, open_conflicts: int,
                   oldest_opened: datetime | None, now: datetime, *,
                   long_open_days: int = LONG_OPEN_DAYS) -> Alert | None:
    """An error when the oldest open conflict has waited more than `long_open_days`."""
    if not open_conflicts or oldest_opened is None:
        return None
    age = _aware(now) - _aware(oldest_opened)
    if age <= timedelta(days=long_open_days):
        return None
    return Alert(Severity.ERROR, realm_id, f"{spec_name} conflicts",
                 f"{open_conflicts} {spec_name} conflict(s) open, the oldest for "
                 f"{age / timedelta(days=1):.1f} days (longer than {long_open_days}); their "
                 "records do not sync until decided",
                 DECIDE_CONFLICTS.format(realm=realm_id, spec=spec_name))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
