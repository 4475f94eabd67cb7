"""The runs that found a conflict and when each side changed, stored and refreshed, on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from qbo_pipeline.state import (
    ConflictField,
    ConflictSighting,
    ConflictStatus,
    NewConflict,
    StateError,
    get_sighting,
    open_conflict,
    record_sightings,
    resolve_conflict,
)

REALM, SPEC = "9130350000000001", "clients"
T0 = datetime(2026, 12, 2, 13, 21, tzinfo=UTC)
PHONE = ConflictField("PrimaryPhone.FreeFormNumber", "555-0199", "555-0100", "555-0000")


def test_the_first_sighting_sets_both_runs_and_a_later_one_moves_the_last(
        sessions: sessionmaker[Session]) -> None:
    source_at = datetime(2026, 12, 2, 13, 20, 0, 123000, tzinfo=UTC)
    qbo_at = datetime(2026, 12, 2, 5, 19, tzinfo=timezone(timedelta(hours=-8)))  # 13:19 UTC
    with sessions.begin() as session:
        conflict = open_conflict(session, REALM, SPEC, NewConflict("5", "58", [PHONE]))
        assert get_sighting(session, conflict.id) is None
        assert record_sightings(session, REALM, SPEC, [
            ConflictSighting("5", "run-1", source_at, qbo_at)], seen_at=T0) == 1
        conflict_id = conflict.id
    with sessions.begin() as session:
        first = get_sighting(session, conflict_id)
        assert first is not None
        assert (first.first_run_id, first.first_seen_at, first.last_run_id,
                first.last_seen_at) == ("run-1", T0, "run-1", T0)
        assert (first.source_changed_at, first.qbo_changed_at) == (
            source_at, datetime(2026, 12, 2, 13, 19, tzinfo=UTC))
        assert first.realm_id == REALM and first.first_seen_at.tzinfo is not None
    later, source_again = T0 + timedelta(hours=1), source_at + timedelta(minutes=30)
    with sessions.begin() as session:
        # A later run still sees the open conflict (the source changed again, QBO unknown).
        again = open_conflict(session, REALM, SPEC, NewConflict("5", "58", [PHONE]))
        assert again.id == conflict_id
        assert get_sighting(session, conflict_id) is not None  # loaded before the upsert
        record_sightings(session, REALM, SPEC, [ConflictSighting("5", "run-2", source_again,
                                                                  None)], seen_at=later)
        refreshed = get_sighting(session, conflict_id)
        assert refreshed is not None
        assert (refreshed.first_run_id, refreshed.first_seen_at, refreshed.last_run_id,
                refreshed.last_seen_at) == ("run-1", T0, "run-2", later)
        assert (refreshed.source_changed_at, refreshed.qbo_changed_at) == (source_again, None)


def test_a_new_conflict_on_the_record_is_a_new_sighting(
        sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = open_conflict(session, REALM, SPEC, NewConflict("5", "58", [PHONE]))
        record_sightings(session, REALM, SPEC, [ConflictSighting("5", "run-1", None, None)],
                         seen_at=T0)
        resolve_conflict(session, REALM, first.id, ConflictStatus.DISMISSED, "ana")
        second = open_conflict(session, REALM, SPEC, NewConflict("5", "58", [PHONE]))
        record_sightings(session, REALM, SPEC, [ConflictSighting("5", "run-2", None, None)],
                         seen_at=T0 + timedelta(days=1))
        first_seen, second_seen = get_sighting(session, first.id), get_sighting(session,
                                                                               second.id)
        assert first_seen is not None and second_seen is not None
        assert (first_seen.first_run_id, first_seen.last_run_id) == ("run-1", "run-1")
        assert (second_seen.first_run_id, second_seen.last_run_id) == ("run-2", "run-2")


def test_a_sighting_needs_an_open_conflict_of_its_realm(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        open_conflict(session, REALM, SPEC, NewConflict("5", "58", [PHONE]))
        assert record_sightings(session, REALM, SPEC, []) == 0
        with pytest.raises(StateError, match=r"\['6'\] have no open conflict"):
            record_sightings(session, REALM, SPEC, [ConflictSighting("6", "run-1", None, None)])
        with pytest.raises(StateError, match=r"\['5'\] have no open conflict"):
            record_sightings(session, "9130350000000002", SPEC,
                             [ConflictSighting("5", "run-1", None, None)])
