"""Links, snapshots, conflicts, quarantine, cursors, write log, run results and realms, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import (
    ConflictRecord,
    ConflictStatus,
    LinkRecord,
    LinkUpdate,
    QuarantineEntry,
    StateError,
    WriteIntent,
    WriteLogRecord,
    WriteOutcome,
    WriteStatus,
    changed_quarantined_keys,
    complete_write,
    disconnect_realm,
    get_cursor,
    get_links,
    get_realm,
    get_snapshots,
    link_for_qbo_id,
    list_conflicts,
    list_quarantine,
    list_realms,
    list_run_results,
    open_conflict,
    pending_writes,
    quarantine_rows,
    record_run_result,
    record_write_intent,
    release_quarantine,
    resolve_conflict,
    save_snapshots,
    set_cursor,
    supersede_writes,
    upsert_links,
    upsert_realm,
)
from qbo_pipeline.sync.diff import FieldDiff, FieldOutcome
from qbo_pipeline.sync.plan import Conflict

REALM, OTHER_REALM, SPEC = "9130350000000001", "9130350000000002", "clients"
T0 = datetime(2024, 3, 1, 23, 58, tzinfo=UTC)


def link(key: str, qbo_id: str, token: str = "0", amount: str = "10.50") -> LinkUpdate:
    payload = {"DisplayName": f"Client {key}", "Balance": Decimal(amount)}
    return LinkUpdate(key, "Customer", qbo_id, token, payload, f"hash-{key}-{token}")


def count(session: Session, model: type[LinkRecord] | type[ConflictRecord]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- links -----------------------------------------------------------------------------------


def test_upsert_links_is_idempotent_and_updates_in_place(
        sessions: sessionmaker[Session]) -> None:
    batch = [link(str(n), str(100 + n)) for n in range(1200)]  # more than one chunk
    with sessions.begin() as session:
        assert upsert_links(session, REALM, SPEC, batch) == 1200
    with sessions.begin() as session:
        upsert_links(session, REALM, SPEC, batch)
        upsert_links(session, REALM, SPEC, [link("7", "107", token="3", amount="99")])
    with sessions.begin() as session:
        assert count(session, LinkRecord) == 1200
        links = get_links(session, REALM, SPEC, ["7", "8", "missing"])
    assert set(links) == {"7", "8"}
    assert (links["7"].sync_token, links["7"].base_hash) == ("3", "hash-7-3")
    # Decimals are kept exactly, as text, for the three-way diff to compare.
    assert links["7"].base_payload == {"DisplayName": "Client 7", "Balance": "99"}
    assert links["8"].last_synced_at.tzinfo is not None


def test_a_qbo_record_links_to_one_source_record(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        upsert_links(session, REALM, SPEC, [link("a", "1")])
    already = "Customer 1 is already linked to clients record 'a'"
    with sessions.begin() as session, pytest.raises(StateError, match=already):
        upsert_links(session, REALM, SPEC, [link("b", "1")])
    with sessions.begin() as session, pytest.raises(StateError, match="cannot also be linked"):
        upsert_links(session, REALM, "projects", [link("x", "5"), link("y", "5")])
    with sessions.begin() as session:
        found = link_for_qbo_id(session, REALM, "Customer", "1")
        assert found is not None and found.source_key == "a"
        assert link_for_qbo_id(session, REALM, "Customer", "2") is None


def test_the_database_enforces_unique_links(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(LinkRecord(realm_id=REALM, spec_name=SPEC, source_key="a",
                               qbo_entity="Customer", qbo_id="1"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(LinkRecord(realm_id=REALM, spec_name=SPEC, source_key="a",
                               qbo_entity="Customer", qbo_id="2"))


def test_realms_are_isolated(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        upsert_links(session, REALM, SPEC, [link("a", "1")])
        # The same source key and QBO Id in another company is another record.
        upsert_links(session, OTHER_REALM, SPEC, [link("a", "1", token="9")])
        open_conflict(session, REALM, SPEC, Conflict("a", "1", ()))
        quarantine_rows(session, REALM, SPEC, [QuarantineEntry("q", ["email is missing"])])
        set_cursor(session, REALM, SPEC, change_window_end=T0)
    with sessions.begin() as session:
        assert get_links(session, REALM, SPEC)["a"].sync_token == "0"
        assert get_links(session, OTHER_REALM, SPEC)["a"].sync_token == "9"
        assert list_conflicts(session, OTHER_REALM) == []
        assert list_quarantine(session, OTHER_REALM) == []
        assert get_cursor(session, OTHER_REALM, SPEC) is None
        conflict_id = list_conflicts(session, REALM)[0].id
        with pytest.raises(StateError, match=f"no conflict {conflict_id}"):
            resolve_conflict(session, OTHER_REALM, conflict_id, ConflictStatus.DISMISSED, "eve")


# --- snapshots -------------------------------------------------------------------------------


def qbo_customer(qbo_id: str, token: str, updated: str, name: str) -> dict[str, object]:
    return {"Id": qbo_id, "SyncToken": token, "DisplayName": name,
            "MetaData": {"LastUpdatedTime": updated}}


def test_snapshots_keep_the_newest_version(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        save_snapshots(session, REALM, "Customer", [
            qbo_customer("1", "2", "2024-03-01T10:00:00-08:00", "Newer"),
            qbo_customer("2", "0", "2024-03-01T09:00:00-08:00", "Two"),
        ])
    with sessions.begin() as session:
        save_snapshots(session, REALM, "Customer", [
            qbo_customer("1", "1", "2024-03-01T09:00:00-08:00", "Older"),
            qbo_customer("2", "1", "2024-03-01T11:00:00-08:00", "Two again"),
            {"Id": "3", "status": "Deleted", "MetaData": {"LastUpdatedTime":
                                                          "2024-03-02T00:00:00Z"}},
        ])
    with sessions.begin() as session:
        snapshots = get_snapshots(session, REALM, "Customer")
        assert get_snapshots(session, OTHER_REALM, "Customer") == {}
        assert set(get_snapshots(session, REALM, "Customer", ["2", "9"])) == {"2"}
    assert snapshots["1"].payload["DisplayName"] == "Newer"
    assert snapshots["1"].last_updated_time == datetime(2024, 3, 1, 18, tzinfo=UTC)
    assert (snapshots["2"].sync_token, snapshots["2"].payload["DisplayName"]) == ("1",
                                                                                 "Two again")
    assert snapshots["3"].deleted and not snapshots["2"].deleted


def test_a_snapshot_without_an_id_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(StateError, match="Customer record without"):
        save_snapshots(session, REALM, "Customer", [{"DisplayName": "x"}])


# --- conflicts -------------------------------------------------------------------------------


def test_conflict_lifecycle(sessions: sessionmaker[Session]) -> None:
    field = FieldDiff("PrimaryEmailAddr.Address", "new@src.example", "old@base.example",
                      "new@qbo.example", FieldOutcome.CONFLICT)
    with sessions.begin() as session:
        first = open_conflict(session, REALM, SPEC, Conflict("k1", "17", (field,), "both moved"))
        # A re-run finds the same conflict: it is refreshed, not duplicated.
        again = open_conflict(session, REALM, SPEC, Conflict("k1", "17", (field, field)))
        assert again.id == first.id
    with sessions.begin() as session:
        [open_one] = list_conflicts(session, REALM, SPEC)
        assert open_one.fields[0] == {"path": "PrimaryEmailAddr.Address",
                                      "source": "new@src.example", "qbo": "new@qbo.example",
                                      "base": "old@base.example"}
        assert len(open_one.fields) == 2 and open_one.status is ConflictStatus.OPEN
        resolved = resolve_conflict(session, REALM, open_one.id, ConflictStatus.KEPT_SOURCE,
                                    "bookkeeper@example.com")
        assert resolved.resolved_at is not None
    with sessions.begin() as session:
        assert list_conflicts(session, REALM) == []
        [closed] = list_conflicts(session, REALM, status=ConflictStatus.KEPT_SOURCE)
        assert closed.resolved_by == "bookkeeper@example.com"
        with pytest.raises(StateError, match="already resolved \\(kept_source"):
            resolve_conflict(session, REALM, closed.id, ConflictStatus.DISMISSED, "x")
        with pytest.raises(StateError, match="a resolution must be one of"):
            resolve_conflict(session, REALM, closed.id, ConflictStatus.OPEN, "x")
        # Once resolved, a new conflict on the record opens a new review.
        reopened = open_conflict(session, REALM, SPEC, Conflict("k1", "17", (field,)))
        assert reopened.id != closed.id
        assert len(list_conflicts(session, REALM, status=None)) == 2


# --- quarantine ------------------------------------------------------------------------------


def test_quarantine_holds_refreshes_and_releases(sessions: sessionmaker[Session]) -> None:
    later = T0 + timedelta(hours=1)
    with sessions.begin() as session:
        quarantine_rows(session, REALM, SPEC, [
            QuarantineEntry("1", ["PrimaryEmailAddr: email is missing"], {"name": "Acme"}, T0),
            QuarantineEntry("2", ["DisplayName: too long"], {"name": "x" * 600}, T0),
        ], seen_at=T0)
    with sessions.begin() as session:
        quarantine_rows(session, REALM, SPEC, [QuarantineEntry(
            "1", ["PrimaryEmailAddr: not an email"], {"name": "Acme", "email": "acme"}, later)],
            seen_at=later)
    with sessions.begin() as session:
        held = {row.source_key: row for row in list_quarantine(session, REALM, SPEC)}
        assert held["1"].reasons == ["PrimaryEmailAddr: not an email"]
        assert (held["1"].first_seen, held["1"].last_seen) == (T0, later)
        assert release_quarantine(session, REALM, SPEC, ["2", "unknown"]) == 1
    with sessions.begin() as session:
        assert [row.source_key for row in list_quarantine(session, REALM)] == ["1"]
        released = list_quarantine(session, REALM, include_released=True)
        assert [row.source_key for row in released] == ["1", "2"]
        # Failing again after a release starts a new episode.
        quarantine_rows(session, REALM, SPEC, [QuarantineEntry("2", ["still too long"])],
                        seen_at=later)
        [again] = [row for row in list_quarantine(session, REALM) if row.source_key == "2"]
        assert again.released_at is None and again.first_seen == later


def test_only_changed_quarantined_rows_are_rechecked(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        quarantine_rows(session, REALM, SPEC, [QuarantineEntry("1", ["bad"], None, T0),
                                               QuarantineEntry("2", ["bad"], None, T0)])
    with sessions.begin() as session:
        changed = changed_quarantined_keys(session, REALM, SPEC, {
            "1": T0, "2": T0 + timedelta(seconds=1), "3": T0})
    assert changed == ["2"]


# --- cursors ---------------------------------------------------------------------------------


def test_cursors_move_independently(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert get_cursor(session, REALM, SPEC) is None
        set_cursor(session, REALM, SPEC, change_window_end=T0)
        set_cursor(session, REALM, SPEC, snapshot_cursor=T0 - timedelta(minutes=5))
        cursor = get_cursor(session, REALM, SPEC)
        assert cursor is not None and cursor.change_window_end == T0
    midnight_tick = datetime(2024, 3, 2, 0, 5, tzinfo=UTC)
    with sessions.begin() as session:
        set_cursor(session, REALM, SPEC, change_window_end=midnight_tick)
    with sessions.begin() as session:
        cursor = get_cursor(session, REALM, SPEC)
        assert cursor is not None
        assert cursor.change_window_end == midnight_tick
        assert cursor.snapshot_cursor == T0 - timedelta(minutes=5)


# --- write log -------------------------------------------------------------------------------


def test_a_run_killed_between_write_and_link_is_recoverable(
        sessions: sessionmaker[Session]) -> None:
    intents = [WriteIntent(str(n), f"req-{n}", "create") for n in range(3)]
    with sessions.begin() as session:
        record_write_intent(session, REALM, SPEC, intents)
    # The batch reached QBO, then the run died before writing its links and answers.
    with sessions.begin() as session:
        pending = pending_writes(session, REALM, SPEC)
        assert [(w.source_key, w.request_id) for w in pending] == [
            ("0", "req-0"), ("1", "req-1"), ("2", "req-2")]
        assert pending_writes(session, OTHER_REALM) == []
    # The next run re-sends under the same request ids, then records answers and links together.
    with sessions.begin() as session:
        record_write_intent(session, REALM, SPEC, intents)
        complete_write(session, REALM, [WriteOutcome("req-0", True, "58"),
                                        WriteOutcome("req-1", True, "59"),
                                        WriteOutcome("req-2", False, error="6240 duplicate")])
        upsert_links(session, REALM, SPEC, [link("0", "58"), link("1", "59")])
    with sessions.begin() as session:
        assert pending_writes(session, REALM) == []
        # A failed write is retried; a succeeded one is never reopened.
        record_write_intent(session, REALM, SPEC, intents)
        assert [w.request_id for w in pending_writes(session, REALM)] == ["req-2"]
        [retried] = pending_writes(session, REALM)
        assert retried.error is None
        done = session.scalars(select(WriteLogRecord).where(
            WriteLogRecord.request_id == "req-0")).one()
        assert (done.status, done.qbo_id) == (WriteStatus.SUCCEEDED, "58")


def test_a_superseded_write_is_closed_and_reopened_only_when_sent_again(
        sessions: sessionmaker[Session]) -> None:
    intents = [WriteIntent(str(n), f"req-{n}", "update", f"5{n}") for n in range(2)]
    with sessions.begin() as session:
        record_write_intent(session, REALM, SPEC, intents)
    with sessions.begin() as session:
        assert supersede_writes(session, REALM, ["req-0", "req-0", "req-unknown"]) == 1
        assert supersede_writes(session, OTHER_REALM, ["req-1"]) == 0
    with sessions.begin() as session:
        assert [w.request_id for w in pending_writes(session, REALM)] == ["req-1"]
        closed = session.scalars(select(WriteLogRecord).where(
            WriteLogRecord.request_id == "req-0")).one()
        assert closed.status is WriteStatus.SUPERSEDED and closed.completed_at is not None
        # Sent again under the same id (the same change planned again): pending once more.
        record_write_intent(session, REALM, SPEC, intents[:1])
        assert [w.request_id for w in pending_writes(session, REALM)] == ["req-0", "req-1"]


# --- run results and realms ------------------------------------------------------------------


def test_run_results_latest_first(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        record_run_result(session, REALM, SPEC, "run-1", {"created": 3}, started_at=T0)
        record_run_result(session, REALM, SPEC, "run-2", {"created": 0, "unchanged": 3},
                          started_at=T0, partition_key="2024-03-01")
        record_run_result(session, OTHER_REALM, SPEC, "run-3", {}, started_at=T0)
    with sessions.begin() as session:
        results = list_run_results(session, REALM, SPEC)
    assert [(r.run_id, r.counts) for r in results] == [
        ("run-2", {"created": 0, "unchanged": 3}), ("run-1", {"created": 3})]


def test_realm_registration_and_disconnect(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        upsert_realm(session, REALM, sync_start_date=date(2024, 1, 1),
                     settings={"approved_time_only": True})
        upsert_realm(session, OTHER_REALM)
        upsert_realm(session, REALM, settings={"approved_time_only": False})
    with sessions.begin() as session:
        realm = get_realm(session, REALM)
        assert realm is not None and realm.sync_start_date == date(2024, 1, 1)
        assert realm.settings == {"approved_time_only": False}
        disconnect_realm(session, OTHER_REALM)
        assert [r.realm_id for r in list_realms(session)] == [REALM]
        assert len(list_realms(session, include_disconnected=True)) == 2
        upsert_realm(session, OTHER_REALM)
        assert len(list_realms(session)) == 2
        with pytest.raises(StateError, match="no realm 42"):
            disconnect_realm(session, "42")
