"""Keyset paging under writes (issue 12: "paging returns every row exactly once across inserts
and updates during the read"), as Hypothesis properties over SQLite and PostgreSQL.

The application keeps writing while a sync reads: it inserts rows and stamps rows it updates
with the time of the write, which is after the window's end (a window ends in the past). A
read of a window must then return each key at most once and every row that was in the window
and not rewritten, whatever the page size and however many rows share a timestamp; the next
window returns exactly the rows written meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, update

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.reader import read_changed

T0 = datetime(2026, 3, 1, 9, 0)
UNTIL = T0 + timedelta(hours=1)  # the window read first: every row stamped before the read
CLIENTS = schema.metadata.tables["clients"]


@dataclass(frozen=True)
class Write:
    """What the application writes after the read has returned `after_page` pages."""

    after_page: int
    key: int  # an existing key is an update, a new one an insert


def initial_stamps() -> st.SearchStrategy[dict[int, datetime]]:
    # Few distinct stamps, so that runs of equal timestamps cross page boundaries.
    return st.dictionaries(st.integers(1, 60), st.integers(0, 5).map(
        lambda minutes: T0 + timedelta(minutes=minutes)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stamps=initial_stamps(), page_size=st.integers(1, 7),
       writes=st.lists(st.builds(Write, st.integers(0, 12), st.integers(1, 80)), max_size=15))
def test_each_row_once_per_window_while_the_app_inserts_and_updates(
        engine: Engine, stamps: dict[int, datetime], page_size: int,
        writes: list[Write]) -> None:
    schema.metadata.drop_all(engine, tables=[CLIENTS])
    schema.metadata.create_all(engine, tables=[CLIENTS])
    with engine.begin() as connection:
        connection.execute(insert(CLIENTS), [_client(key, stamp) for key, stamp in stamps.items()])

    written: set[int] = set()
    first_window: list[int] = []
    for number, page in enumerate(_pages(engine, since=None, until=UNTIL, size=page_size)):
        first_window += [row["id"] for row in page]
        for write in (w for w in writes if w.after_page == number):
            _write(engine, write.key, stamp=UNTIL + timedelta(minutes=1 + len(written)))
            written.add(write.key)

    assert len(first_window) == len(set(first_window)), "a key was read twice in one window"
    untouched = set(stamps) - written
    assert untouched <= set(first_window), "a row in the window, never rewritten, was missed"
    assert set(first_window) <= set(stamps), "a row written after the window's end was read"

    later = [row["id"] for page in _pages(engine, since=UNTIL, until=UNTIL + timedelta(days=1),
                                          size=page_size) for row in page]
    assert sorted(later) == sorted(written), "the next window is exactly what was written"
    assert set(first_window) | set(later) == set(stamps) | written  # nothing lost


def _pages(engine: Engine, *, since: datetime | None, until: datetime,
           size: int) -> Iterator[list[dict[str, Any]]]:
    # A generator: each page is read when asked for, so that writes land between pages.
    return read_changed(engine, "clients", primary_key="id", updated_at="updated_at",
                        since=since, until=until, page_size=size)


def _write(engine: Engine, key: int, *, stamp: datetime) -> None:
    with engine.begin() as connection:
        changed = connection.execute(update(CLIENTS).where(CLIENTS.c.id == key).values(
            name=f"Client {key} (edited)", updated_at=stamp)).rowcount
        if not changed:
            connection.execute(insert(CLIENTS), [_client(key, stamp)])


def _client(key: int, stamp: datetime) -> dict[str, object]:
    return {"id": key, "name": f"Client {key}", "active": True, "created_at": T0,
            "updated_at": stamp}
