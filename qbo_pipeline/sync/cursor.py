"""The cursor rule: a change window's cursor advances only past what was durably recorded.

A row of the window is durably recorded when the state DB holds its outcome: written to QBO
and linked, found unchanged, opened as a conflict, quarantined with its reasons, or refused by
QBO for good (recorded with QBO's reason, retried when it or what it waits for changes). Any of
those lets the cursor pass it: the row will not be lost, and re-reading it every run would
only repeat the same answer. A row whose write failed for a passing reason (QBO unavailable,
throttled past the retries, the connection cut) is not recorded: the cursor stops just before
it, so the next run reads it again.

Rows are read in (updated_at, key) order and the window is `since < updated_at <= until`, so
the cursor can stop at the latest moment before the first unrecorded row: every row stamped at
or before that moment is recorded, and every row after it is read again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from qbo_pipeline.sync.scope import ReadScope


@dataclass(frozen=True)
class RowProgress:
    """One row of a change window: when the source stamped it, and whether its outcome is in
    the state DB."""

    updated_at: datetime
    recorded: bool


def next_cursor(since: datetime | None, until: datetime,
                rows: Iterable[RowProgress]) -> datetime | None:
    """Where the next change window starts; None leaves the cursor where it was.

    Every row recorded: the window's end. Otherwise the latest stamp of the rows before the
    earliest unrecorded one (rows sharing that stamp are read again), if it moves forward.
    """
    progress = list(rows)
    unrecorded = [row.updated_at for row in progress if not row.recorded]
    if not unrecorded:
        return until
    first_unrecorded = min(unrecorded)
    before = [row.updated_at for row in progress if row.updated_at < first_unrecorded]
    if not before:
        return None
    latest = max(before)
    return latest if since is None or latest > since else None


def window_rows(read: ReadScope | None, stamps: Mapping[str, datetime]) -> set[str]:
    """The rows of a read that its change window holds (stamped after its start).

    A run that dies before recording one of them leaves the cursor before it, so the next run
    reads it again: a held one may be released as soon as it passes. The others (held rows
    read again by key, stamped before the window or not at all; the rows of a backfill or of
    a one-record sync) are read again only while they are held: release them once their
    outcome is recorded (`Tally.settled`), or a kill in between loses them.
    """
    if read is None or not read.advances_cursor:
        return set()
    return {key for key, stamp in stamps.items() if read.since is None or stamp > read.since}
