"""The run's scope: which source rows one run of one spec reads, and the sync start-date rule.

A run reads in one of three ways:

- `changed`: the rows stamped after the spec's cursor, up to the end of the change window (a
  little before the run's clock, so that rows of transactions still committing are read by the
  next run instead of missed). The 15-minute schedule reads so, and so does every run for a
  names list (customers, employees): the transactions of any day refer to them, so they must
  be in QuickBooks whatever day they were created. Only this kind of read moves the cursor.
- `dates`: a backfill of a range of business dates: the transactions dated from its first to
  its last day, whatever the cursor.
- `record`: one source record by its key (the per-record "Sync" button), whatever its date
  or the cursor; the window's other changes are still due, so the cursor stays where it is.

Besides what the window reads, a run re-reads the rows held back earlier that are due again
(`due_again`): their reason may be gone although the row itself did not change.

A spec with `only_when_used` (seed 004's customers) narrows what it reads to the rows in use
(`in_use`): those linked to QBO already, the one asked for by key, and those a record of this
run refers to, directly or through others (`used_keys`: an invoice's project's client).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import pandas as pd

from qbo_pipeline.specs import QBO_ENTITIES, EntityKind, EntitySpec
from qbo_pipeline.sync.mapping import is_deleted
from qbo_pipeline.sync.values import (
    is_missing,
    source_key_of,
    to_date,
    to_moment,
    values_equal,
)

# The (spec name, source key) of each record a row refers to (see `references_of`).
References = tuple[tuple[str, str], ...]
# (spec name, source keys) -> the references of each of those rows, read by key.
ReadReferences = Callable[[str, Sequence[str]], Iterable[References]]

# Rows stamped in the last moments may belong to transactions still committing: read up to a
# little before now, and the next run starts exactly there.
CHANGE_WINDOW_LAG = timedelta(seconds=5)


class ReadMode(StrEnum):
    CHANGED = "changed"
    DATES = "dates"
    RECORD = "record"


@dataclass(frozen=True)
class BusinessDates:
    """A range of business dates, from `first` to `last`, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the date range {self} ends before it starts")

    @property
    def end(self) -> date:
        """The day after the last: the exclusive end of a date window."""
        return self.last + timedelta(days=1)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.end - self.first).days)]

    def __str__(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True)
class ReadScope:
    """What one run of one spec reads from the source (see the module doc)."""

    mode: ReadMode
    until: datetime  # the change window's end (also the clock of a dates or record read)
    since: datetime | None = None  # changed: rows stamped after this; None reads from the start
    dates: BusinessDates | None = None  # dates: the business dates read
    record_key: str | None = None  # record: the one source key read
    importing: bool = False  # the import on connect: every row read, nothing written to QBO

    @property
    def advances_cursor(self) -> bool:
        """Only a change-window read covers "every change up to `until`"; the import on
        connect writes nothing to QBO, so the first sync must still read every row."""
        return self.mode is ReadMode.CHANGED and not self.importing


def is_transaction(spec: EntitySpec) -> bool:
    return QBO_ENTITIES[spec.qbo_entity].kind is EntityKind.TRANSACTION


def change_window_end(now: datetime, lag: timedelta = CHANGE_WINDOW_LAG) -> datetime:
    return now - lag


def read_scope(spec: EntitySpec, *, incremental: bool, dates: BusinessDates, until: datetime,
               cursor: datetime | None, record_key: str | None = None,
               importing: bool = False) -> ReadScope:
    """How one run of `spec` reads: one record, its change window, a range of dates, or (the
    import on connect) every row.

    `cursor` is where the spec's last change window ended (None before the first sync).
    """
    if importing:
        return ReadScope(ReadMode.CHANGED, until, importing=True)
    if record_key is not None:
        return ReadScope(ReadMode.RECORD, until, record_key=record_key)
    if incremental or not is_transaction(spec):
        return ReadScope(ReadMode.CHANGED, until, since=cursor)
    return ReadScope(ReadMode.DATES, until, dates=dates)


def imported_on_connect(spec: EntitySpec) -> bool:
    """Whether the import on connect covers the spec: the names lists (seeds 000 and 003:
    customers, employees, services, accounts... are read and matched), not transactions."""
    return not is_transaction(spec)


def brings_in_qbo_changes(spec: EntitySpec, read: ReadScope | None) -> bool:
    """Whether a run of `spec` also plans the records changed in QBO (and those new there):
    a spec that pulls does, except in a per-record sync, which syncs that one record only."""
    return spec.pulls and (read is None or read.mode is not ReadMode.RECORD)


def sync_start(realm_start: date | None, default_start: date) -> date:
    """The company's own start date if it has one, else the configured default."""
    return realm_start or default_start


def on_or_after_start(spec: EntitySpec, business_dates: pd.Series, start: date) -> pd.Series:
    """Which rows the start-date rule lets through (a boolean mask over `business_dates`).

    Transactions dated before the sync start date are never pushed (seed 002's "Select Sync
    Start Date", seed 004's "Synchronize Contracts after this Date"); names-list records are
    all synced, since the transactions in range refer to them. A transaction with no date or
    an unreadable one (`2026-02-30`, a number) is let through, so that validation quarantines
    it with its reason instead of it vanishing without a word.
    """
    if not is_transaction(spec) or business_dates.empty:
        return pd.Series(True, index=business_dates.index)
    days = [business_day(value) for value in business_dates]
    return pd.Series([day is None or day >= start for day in days], index=business_dates.index,
                     dtype=bool)


def exempt_from_start(spec: EntitySpec, frame: pd.DataFrame) -> pd.Series:
    """Which rows sync whatever their date (a boolean mask over `frame`): those meeting the
    spec's `start_date_exempt` condition, for a company that has its setting on (seed 002:
    "Select/Deselect to Sync All Unpaid Invoices"). The spec is the company's
    (`settings.for_company`); an exemption whose setting is not decided exempts nothing."""
    exemption = spec.start_date_exempt
    if exemption is None or exemption.setting is not None or frame.empty:
        return pd.Series(False, index=frame.index, dtype=bool)
    column = exemption.when.column
    if column not in frame.columns:
        raise ValueError(f"spec {spec.name}: start_date_exempt reads the column {column}, "
                         "which the source rows do not have")
    accepted = exemption.when.accepted
    return frame[column].map(
        lambda value: any(values_equal(value, a) for a in accepted)).astype(bool)


def business_day(value: object) -> date | None:
    """The UTC calendar day of a business date (a date, a time stamp or ISO text), or None
    when it holds none. A naive time stamp holds UTC."""
    if isinstance(value, datetime | str) and (moment := to_moment(value)) is not None:
        return moment.date()
    return to_date(value)


def business_days(keys: Sequence[str], business_dates: pd.Series) -> dict[str, date]:
    """Each row's business date (rows with none, or an unreadable one, left out): what a
    run reports its progress by."""
    dated = pd.to_datetime(business_dates, errors="coerce", utc=True, format="mixed")
    return {key: moment.date() for key, moment in zip(keys, dated, strict=True)
            if not pd.isna(moment)}


@dataclass(frozen=True)
class HeldRow:
    """A row held back earlier: quarantined, refused by QBO, or waiting for another record."""

    source_key: str
    held_at: datetime
    waits_for: tuple[tuple[str, str], ...] = ()  # (spec name, source key) it refers to
    # Held without a usable updated_at: no change window will ever hold it, so it is read by
    # key every run until it syncs, and a fix that sets any stamp, however old, is seen.
    unstamped: bool = False


def due_again(held: Iterable[HeldRow], synced_at: Mapping[tuple[str, str], datetime],
              read_keys: Sequence[str] = ()) -> list[str]:
    """The held rows to read again although they did not change: a record each waits for
    was synced (linked or written) after the row was held, or the row has no usable stamp.
    Rows the window reads anyway are left out. A held row whose own source changes is read by
    the change window as usual."""
    already = set(read_keys)
    due = []
    for row in held:
        if row.source_key in already:
            continue
        waited_for_synced = any(
            (synced := synced_at.get(target)) is not None and synced > row.held_at
            for target in row.waits_for)
        if row.unstamped or waited_for_synced:
            due.append(row.source_key)
    return sorted(due)


def references_of(spec: EntitySpec, row: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The (spec name, source key) of every record a source row refers to by its own columns
    (a project's client): the records a held row waits for."""
    found = []
    for mapping in spec.fields.values():
        if mapping.ref is None:
            continue
        value = row.get(mapping.ref.column)
        if not is_missing(value):
            found.append((mapping.ref.spec, source_key_of(value)))
    return tuple(sorted(set(found)))


def referrers_of(target: str, specs: Sequence[EntitySpec]) -> list[str]:
    """The specs that refer to `target`, directly or through other specs, each before the
    specs it refers to (an invoice before its project). `specs` are in dependency order."""
    leads: set[str] = {target}
    for spec in specs:
        if set(spec.references().values()) & leads:
            leads.add(spec.name)
    return [spec.name for spec in reversed(specs) if spec.name in leads - {target}]


def references_in_use(spec: EntitySpec, rows: Iterable[Mapping[str, object]]) -> list[References]:
    """What the rows a run syncs refer to, for `used_keys`: a row deleted in the source goes
    to QBO as a void or an inactivation at most, and uses no record."""
    return [references_of(spec, row) for row in rows if not is_deleted(spec, row)]


def used_keys(target: str, specs: Sequence[EntitySpec],
              in_play: Mapping[str, Iterable[References]],
              read_references: ReadReferences) -> set[str]:
    """The keys of `target` that the records of this run use: referred to by a record in play
    (`in_play`: spec name -> the references of each of its records this run syncs or holds),
    or by a record those refer to, and so on (an invoice refers to a project, which refers to
    its client). Records referred to along the way are read by key (`read_references`), since
    their own spec may not read them this run. `specs` are in dependency order."""
    leads = referrers_of(target, specs)
    wanted: dict[str, set[str]] = {name: set() for name in (*leads, target)}
    for name in leads:  # every spec that refers to `name` came before it
        found = list(in_play.get(name, ()))
        if wanted[name]:
            found.extend(read_references(name, sorted(wanted[name])))
        for references in found:
            for spec_name, key in references:
                if spec_name in wanted:
                    wanted[spec_name].add(key)
    return wanted[target]


def in_use(keys: Sequence[str], *, linked: Set[str], used: Set[str],
           read: ReadScope) -> list[bool]:
    """Which rows of an `only_when_used` spec this run syncs (seed 004: "A customer account
    only exports to QuickBooks when it is manually synced ..., or when a Contract/Job,
    Invoice, or Payment are synced"): the one asked for by key, those linked already (two-way
    from then on), and those records of this run use. The others wait, unread by QBO."""
    if read.mode is ReadMode.RECORD:
        return [True] * len(keys)
    return [key in linked or key in used for key in keys]
