"""Change notices (QBO's webhook events): which are the same change, and which syncs they ask for.

A webhook event says only that a record changed (realm, entity, Id, operation, when); the sync
that follows reads QBO's current state of every change since the spec's cursor, so the order
events arrive in does not matter, and neither do duplicates: one change is one notice, keyed by
(realm, entity, Id, lastUpdated), whatever the format or the delivery that carried it.

Every stored notice gets one outcome, with a reason a person can read:

- `run`: a sync of its realm was requested, of the specs that sync its entity (and the specs
  those refer to, so their references resolve); a burst of notices is one run per realm;
- `covered`: every spec of its entity already read QBO after the change was made, so there is
  nothing new to pull (a late or replayed notice);
- `not_synced`: no spec syncs that QBO entity;
- `not_connected`: its realm is not a connected company;
- `manual`: the company syncs manually (setting `sync_mode`), so nothing starts by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from qbo_pipeline.specs import SpecSet


@dataclass(frozen=True)
class ChangeNotice:
    """One change to one QBO record, as a webhook event reports it."""

    realm_id: str
    entity: str  # QBO's entity name, e.g. "Customer"
    entity_id: str
    operation: str  # QBO's webhook operation: Create, Update, Delete, Merge, Void, Emailed
    last_updated: datetime | None  # when QBO made the change (timezone-aware)
    event_id: str | None = None  # the CloudEvent's id; the legacy format has none

    @property
    def key(self) -> tuple[str, str, str, datetime | None]:
        """What makes two notices the same change."""
        return (self.realm_id, self.entity, self.entity_id, self.last_updated)


def distinct_notices(notices: Iterable[ChangeNotice]) -> list[ChangeNotice]:
    """Each change once (the first notice of it), in the order they came."""
    seen: dict[tuple[str, str, str, datetime | None], ChangeNotice] = {}
    for notice in notices:
        seen.setdefault(notice.key, notice)
    return list(seen.values())


class NoticeOutcome(StrEnum):
    RUN = "run"
    COVERED = "covered"
    NOT_SYNCED = "not_synced"
    NOT_CONNECTED = "not_connected"
    MANUAL = "manual"


@dataclass(frozen=True)
class PendingNotice:
    """A stored notice that has no outcome yet, by its row id."""

    row_id: int
    notice: ChangeNotice


@dataclass(frozen=True)
class RealmRun:
    """One sync run a batch of notices asks for: a realm, its specs, the notices it answers."""

    realm_id: str
    spec_names: tuple[str, ...]
    row_ids: tuple[int, ...]

    @property
    def run_key(self) -> str:
        """Unique to this batch of notices, so a tick evaluated twice requests one run."""
        return f"webhooks:{self.realm_id}:{min(self.row_ids)}-{max(self.row_ids)}"


@dataclass(frozen=True)
class Settled:
    """A notice's outcome other than a run, with the reason."""

    row_id: int
    outcome: NoticeOutcome
    reason: str


@dataclass(frozen=True)
class NoticePlan:
    runs: list[RealmRun] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)


@dataclass(frozen=True)
class RealmsNow:
    """What the plan needs to know of the companies: which are connected, which sync by hand,
    and where each spec's QBO read stopped (realm, spec) -> moment (None: never read)."""

    connected: frozenset[str]
    manual: frozenset[str] = frozenset()
    qbo_cursors: Mapping[tuple[str, str], datetime | None] = field(default_factory=dict)


def specs_by_entity(specs: SpecSet) -> dict[str, tuple[str, ...]]:
    """The specs that sync each QBO entity (a Vendor can be a contractor's and a vendor's)."""
    found: dict[str, list[str]] = {}
    for spec in specs.in_dependency_order():
        found.setdefault(spec.qbo_entity, []).append(spec.name)
    return {entity: tuple(names) for entity, names in found.items()}


def with_references(specs: SpecSet, names: Iterable[str]) -> set[str]:
    """The named specs and every spec they refer to, directly or not: a run of a spec needs
    the records it refers to synced first, so that its references resolve through links."""
    by_name = {spec.name: spec for spec in specs}
    wanted = set(names)
    pending = list(wanted)
    while pending:
        for upstream in by_name[pending.pop()].references().values():
            if upstream not in wanted:
                wanted.add(upstream)
                pending.append(upstream)
    return wanted


def plan_notice_runs(pending: Sequence[PendingNotice], entity_specs: Mapping[str, Sequence[str]],
                     realms: RealmsNow) -> NoticePlan:
    """The outcome of each pending notice: at most one run per realm for all of its notices."""
    settled: list[Settled] = []
    by_realm: dict[str, tuple[set[str], list[int]]] = {}
    for item in pending:
        notice = item.notice
        outcome = _settled_outcome(notice, entity_specs, realms)
        if outcome is not None:
            settled.append(Settled(item.row_id, *outcome))
            continue
        names, row_ids = by_realm.setdefault(notice.realm_id, (set(), []))
        names.update(entity_specs[notice.entity])
        row_ids.append(item.row_id)
    runs = [RealmRun(realm_id, tuple(sorted(names)), tuple(row_ids))
            for realm_id, (names, row_ids) in sorted(by_realm.items())]
    return NoticePlan(runs, settled)


def _settled_outcome(notice: ChangeNotice, entity_specs: Mapping[str, Sequence[str]],
                     realms: RealmsNow) -> tuple[NoticeOutcome, str] | None:
    """Why a notice needs no run, or None when it does."""
    what = f"{notice.entity} {notice.entity_id} of company {notice.realm_id}"
    if notice.realm_id not in realms.connected:
        return NoticeOutcome.NOT_CONNECTED, (
            f"{what}: the company is not connected; connect it (`qbo-pipeline connect --realm "
            f"{notice.realm_id}`) and its first sync reads this change")
    names = entity_specs.get(notice.entity, ())
    if not names:
        return NoticeOutcome.NOT_SYNCED, (
            f"{what}: no mapping spec syncs QBO {notice.entity}; add one to sync it")
    if notice.realm_id in realms.manual:
        return NoticeOutcome.MANUAL, (
            f"{what}: the company syncs manually (setting sync_mode); its next sync reads "
            "this change")
    if _read_after_change(notice, names, realms.qbo_cursors):
        return NoticeOutcome.COVERED, (
            f"{what}: changed at {notice.last_updated}, and every spec of it ({', '.join(names)}) "
            "read QBO after that")
    return None


def _read_after_change(notice: ChangeNotice, names: Sequence[str],
                       cursors: Mapping[tuple[str, str], datetime | None]) -> bool:
    """Whether each spec's last QBO read began after the change: it read the change then."""
    if notice.last_updated is None:
        return False
    moments = [cursors.get((notice.realm_id, name)) for name in names]
    return all(moment is not None and moment > notice.last_updated for moment in moments)


# --- the daily reconciliation ----------------------------------------------------------------

# What a daily reconciliation re-reads of QBO: the last day, and an hour more, so that two
# days' reads overlap and a change made while one ran is read by the next.
RECONCILIATION_LOOKBACK = timedelta(hours=25)


def reconciliation_start(tick: datetime) -> datetime:
    """Where the reconciliation run of a tick starts reading QBO's changes."""
    return tick - RECONCILIATION_LOOKBACK


def qbo_read_since(cursor: datetime | None, reread_since: datetime | None) -> datetime | None:
    """Where a spec's QBO read starts: its cursor, or, in a reconciliation run, the earlier of
    the cursor and the reconciliation's start (QBO's webhooks can miss a change, and a change
    can reach QBO's change feed after a read has passed it: Intuit asks apps to re-read). A
    spec never read (no cursor) reads everything."""
    if cursor is None or reread_since is None:
        return cursor
    return min(cursor, reread_since)
