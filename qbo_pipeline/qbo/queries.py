"""The text of QBO queries: quoting values, filtering by a field, every record of a list.

QBO's query language quotes strings in single quotes and escapes with a backslash; it leaves
inactive names-list records out of every answer unless the query itself filters on ``Active``.
"""

from __future__ import annotations

import re

from qbo_pipeline.qbo.entities import qbo_entity

# Names lists only: a linked record may have been made inactive, and must still be seen.
EVERY_STATE = "Active IN (true, false)"
_ENTITY_NAME = re.compile(r"^[A-Za-z]+$")
_FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")


def escape_query_value(value: str) -> str:
    """``value`` ready to go between single quotes: ``O'Brien`` -> ``O\\'Brien``. The
    backslash goes first, or the backslashes added before quotes would be doubled too."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def find_by_query(entity: str, field: str, value: str) -> str:
    """Records whose ``field`` equals ``value``. Active ones only, as QBO answers by default:
    a reference to an inactive record is refused anyway (610)."""
    _check_name(entity, field)
    return f"SELECT * FROM {entity} WHERE {field} = '{escape_query_value(value)}' ORDERBY Id"


def select_every_state(entity: str, *conditions: str) -> str:
    """``SELECT * FROM entity WHERE ... ORDERBY Id``, inactive names-list records included;
    ORDERBY Id keeps the pages stable while records change."""
    _check_name(entity)
    where = [EVERY_STATE] if qbo_entity(entity).has_active else []
    where.extend(conditions)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT * FROM {entity}{clause} ORDERBY Id"


def _check_name(entity: str, field: str = "Id") -> None:
    # Names go into the query text unquoted: refuse anything that could change its meaning.
    if not _ENTITY_NAME.match(entity):
        raise ValueError(f"query: {entity!r} is not a QBO entity name")
    if not _FIELD_PATH.match(field):
        raise ValueError(f"query of {entity}: {field!r} is not a QBO field path "
                         f"(field names joined by dots, e.g. PrimaryEmailAddr.Address)")
