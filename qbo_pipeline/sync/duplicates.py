"""Likely duplicates: QBO records no source record is linked to that match a linked record by
the spec's match keys, the way a second sync (or a person) makes a duplicate invoice. Listed
for a person to repair (seed 001: void the duplicate, unlink, relink, sync), never acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qbo_pipeline.specs import EntitySpec
from qbo_pipeline.sync.plan import match_key


@dataclass(frozen=True)
class LikelyDuplicate:
    """An unlinked QBO record that matches linked record `qbo_id` (of source record
    `source_key`) on the match keys `matched_on`."""

    source_key: str
    qbo_id: str
    duplicate_qbo_id: str
    matched_on: tuple[str, ...]


def set_aside(record: Mapping[str, Any]) -> bool:
    """A record already taken out of use: made inactive (names lists) or voided
    (transactions keep their Id, with zero amounts and the note "Voided")."""
    return (record.get("Active") is False
            or str(record.get("PrivateNote") or "").startswith("Voided"))


def likely_duplicates(spec: EntitySpec, linked: Mapping[str, Mapping[str, Any]],
                      unlinked: Iterable[Mapping[str, Any]]) -> list[LikelyDuplicate]:
    """Each unlinked, live QBO record that matches a linked one (`linked`: source key -> its
    QBO record) by a group of the spec's match keys; by the first group that matches."""
    groups = spec.match_key_groups
    by_key = [{key: (source_key, record) for source_key, record in linked.items()
               if not set_aside(record) and (key := match_key(record, group)) is not None}
              for group in groups]
    found = []
    for candidate in unlinked:
        if set_aside(candidate):
            continue
        for group, index in zip(groups, by_key, strict=True):
            key = match_key(candidate, group)
            if key is not None and key in index:
                source_key, record = index[key]
                found.append(LikelyDuplicate(source_key, str(record["Id"]),
                                             str(candidate["Id"]), group))
                break
    return sorted(found, key=lambda d: (d.source_key, d.duplicate_qbo_id))
