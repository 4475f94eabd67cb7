"""Source paging cost per row as the table grows (issue 12's "source paging on SQLite" row).

    python benchmarks/paging_bench.py [--sizes 100000 300000 1000000] [--page-size 1000]
                                      [--url postgresql+psycopg://127.0.0.1:5432/test]

For each size, a table of that many rows stamped over a year is created (SQLite file by
default, or the database at --url), indexed on (updated_at, id) as the demo's tables are, and
read whole through `read_changed` page by page. It prints microseconds per row for the whole
read and for its last tenth (where a keyset condition the index cannot serve sorts what is
left of the table on every page), and the query plan of one page. The goal is a constant
figure: the last pages cost what the first did, whatever the table's size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from qbo_pipeline.source.reader import create_source_engine, read_changed

START = datetime(2026, 1, 1, tzinfo=UTC)
TABLE = "paged_rows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--url", help="a SQLAlchemy URL (default: a temporary SQLite file)")
    arguments = parser.parse_args()
    print(f"{'rows':>10} {'us/row, all':>12} {'us/row, last 10%':>17}  goal: constant")
    with tempfile.TemporaryDirectory() as scratch:
        for size in arguments.sizes:
            url = arguments.url or f"sqlite:///{Path(scratch) / f'paging_{size}.sqlite'}"
            engine = create_source_engine(url)
            fill(engine, size)
            whole, last_tenth = read_all(engine, size, arguments.page_size)
            print(f"{size:>10,} {whole:>12.1f} {last_tenth:>17.1f}")
            if size == arguments.sizes[-1]:
                print("the plan of a page after the first (no sort of the rest: an index range):")
                for line in page_plan(engine, arguments.page_size):
                    print(f"  {line}")
            engine.dispose()


def fill(engine: sa.Engine, size: int) -> None:
    metadata = sa.MetaData()
    table = sa.Table(TABLE, metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.String(50)),
                     sa.Column("updated_at", sa.DateTime, nullable=False),
                     sa.Index(f"ix_{TABLE}_updated", "updated_at", "id"))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    step = timedelta(days=365) / size
    with engine.begin() as connection:
        for first in range(0, size, 50_000):
            # Several rows share a stamp, as rows written in one transaction do.
            connection.execute(table.insert(), [
                {"id": key, "name": f"row {key}",
                 "updated_at": (START + step * (key - key % 3)).replace(tzinfo=None)}
                for key in range(first, min(first + 50_000, size))])


def read_all(engine: sa.Engine, size: int, page_size: int) -> tuple[float, float]:
    """Microseconds per row over the whole read, and over its last tenth."""
    seen = 0
    started = time.perf_counter()
    tenth_started = None
    for page in read_changed(engine, TABLE, primary_key="id", updated_at="updated_at",
                             since=None, until=START + timedelta(days=400),
                             page_size=page_size):
        seen += len(page)
        if tenth_started is None and seen >= size * 0.9:
            tenth_started, tenth_seen = time.perf_counter(), seen
    ended = time.perf_counter()
    if seen != size:
        raise SystemExit(f"read {seen:,} rows of {size:,}: paging lost or repeated rows")
    assert tenth_started is not None
    return ((ended - started) / size * 1e6,
            (ended - tenth_started) / max(size - tenth_seen, 1) * 1e6)


def page_plan(engine: sa.Engine, page_size: int) -> list[str]:
    """The database's plan of the statement `read_changed` sends for its second page."""
    pages: list[tuple[str, object]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: object,
                *_rest: object) -> None:
        if "LIMIT" in statement:
            pages.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    read = read_changed(engine, TABLE, primary_key="id", updated_at="updated_at", since=None,
                        until=START + timedelta(days=400), page_size=page_size)
    next(read), next(read)
    read.close()
    sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = pages[-1]
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(explain + statement, parameters)  # type: ignore[arg-type]
        return [str(row[-1]) for row in plan]


if __name__ == "__main__":
    main()
