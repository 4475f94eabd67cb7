"""Changes since a moment in QBO: when the ChangeDataCapture endpoint answers, else which query.

CDC answers, for the entities it serves, every record changed since a moment of the last 30
days, deleted ones included (``"status": "Deleted"``, which no query reports). Its answer holds
at most 1000 objects and silently drops the rest. Beyond its reach, for the entities it does
not serve, or when its answer is full, a query on ``MetaData.LastUpdatedTime`` does instead.
``QBOClient.changed_since`` applies these rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qbo_pipeline.qbo.entities import qbo_entity
from qbo_pipeline.qbo.queries import select_every_state

CDC_MAX_OBJECTS = 1000  # QBO's cap on the objects of one CDC answer
CDC_LOOKBACK = timedelta(days=30)  # how far back QBO's CDC accepts changedSince
CDC_REACH = CDC_LOOKBACK - timedelta(days=1)  # what we ask of it: a day's margin
# Our clock and QBO's differ: re-fetch a little before the moment asked; newer never loses.
CHANGE_OVERLAP = timedelta(minutes=5)


def as_aware(moment: datetime | None) -> datetime | None:
    """A moment with a time zone; a naive one (as SQLite hands back) is taken as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def reads_by_cdc(entity: str, since: datetime, now: datetime) -> bool:
    """Whether CDC can answer for ``entity``'s changes since ``since`` (both time-zone aware)."""
    return now - since < CDC_REACH and qbo_entity(entity).in_cdc


def changes_query(entity: str, since: datetime | None, condition: str | None = None) -> str:
    """The query for ``entity``'s records changed since ``since`` (less the overlap), or for
    all of them when ``since`` is None, meeting ``condition`` (QBO query text) when given;
    inactive names-list records included."""
    # QBO queries know no parentheses (nor OR): a condition joins the others with AND.
    conditions = [] if condition is None else [condition]
    if since is not None:
        moment = (since - CHANGE_OVERLAP).isoformat(timespec="seconds")
        conditions.append(f"MetaData.LastUpdatedTime > '{moment}'")
    return select_every_state(entity, *conditions)
