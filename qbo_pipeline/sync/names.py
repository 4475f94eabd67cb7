"""DisplayName collisions: QBO's DisplayName is unique across customers, vendors and employees
(fault 6240), so a vendor named like a customer ("Acme" both) cannot be created as it is.

The company's setting `display_name_collision` says what then happens:

- "Add the record type" (the default): the record is named "Acme (Vendor)", then "Acme
  (Vendor 2)", "Acme (Vendor 3)"... while those are taken too;
- "Add a number": "Acme 2", "Acme 3"...;
- "Hold back": the record is held back with QBO's reason, for a person to rename one of them.

A name is taken by a record of the same QBO list (a vendor named like another vendor) is no
case for a suffix: two such records are most likely one (a 1099 user who is also a row of the
vendors list), so the record is held back whatever the setting, for a person to merge or
rename them. At most `MAX_RENAMES` names are tried after the source's own; then the record is
held back, the reason naming the names tried and the record that holds the first.

The name given is recorded per record (`GivenName`): every later run sends it again while the
source keeps the name it was given for (`as_given`), so that the record is not renamed back
(a loop) and nothing is written; a pull of a two-way spec reads it back as the source's name
(`as_wanted`), so that "(Vendor)" never reaches the source. A record renamed in the source is
sent under its new name, and a collision of that one is resolved again: the rule is retried
rather than the old suffix kept, since the record the old name collided with says nothing
about the new one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qbo_pipeline.qbo.entities import DISPLAY_NAME_MAX_LENGTH

DISPLAY_NAME = "DisplayName"
COLLISION_SETTING = "display_name_collision"
MAX_RENAMES = 5  # names tried after the source's own, before the record is held back


class CollisionRule(StrEnum):
    """The choices of the `display_name_collision` setting (`company_settings.yaml`)."""

    RECORD_TYPE = "Add the record type"
    NUMBER = "Add a number"
    HOLD_BACK = "Hold back"


def collision_rule(value: Any) -> CollisionRule:
    """The rule a company's setting value names; an unknown one holds back (nothing is renamed
    on a value this release does not know)."""
    try:
        return CollisionRule(value)
    except ValueError:
        return CollisionRule.HOLD_BACK


def candidate_name(wanted: str, record_type: str, rule: CollisionRule, attempt: int,
                   max_length: int = DISPLAY_NAME_MAX_LENGTH) -> str | None:
    """The name of the `attempt`-th try (1, 2...) after `wanted` was refused as taken, at most
    `max_length` long: the suffix is kept whole and `wanted` cut to make room for it. None
    when the rule renames nothing, or the suffix alone does not fit."""
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: the first renamed try is attempt 1")
    suffix = _suffix(record_type, rule, attempt)
    if suffix is None or len(suffix) >= max_length:
        return None
    base = " ".join(wanted.split())[:max_length - len(suffix)].rstrip()
    return f"{base}{suffix}" if base else None


def _suffix(record_type: str, rule: CollisionRule, attempt: int) -> str | None:
    if rule is CollisionRule.RECORD_TYPE:
        return f" ({record_type})" if attempt == 1 else f" ({record_type} {attempt})"
    if rule is CollisionRule.NUMBER:
        return f" {attempt + 1}"  # "Acme" is the first Acme, so the second is "Acme 2"
    return None


@dataclass(frozen=True)
class GivenName:
    """The DisplayName the pipeline gave a record in QBO (`given`) instead of the source's
    (`wanted`), which another QBO record holds."""

    wanted: str
    given: str


def same_name(first: Any, second: Any) -> bool:
    """QBO compares names whatever their case (and the pipeline whatever their spacing)."""
    if not isinstance(first, str) or not isinstance(second, str):
        return False
    return " ".join(first.casefold().split()) == " ".join(second.casefold().split())


def as_given(payload: Mapping[str, Any], given: GivenName | None) -> dict[str, Any]:
    """The payload to compare with QBO: the given name instead of the source's, while the
    source still wants the name it was given for."""
    named = copy.deepcopy(dict(payload))
    if given is not None and same_name(named.get(DISPLAY_NAME), given.wanted):
        named[DISPLAY_NAME] = given.given
    return named


def as_wanted(record: Mapping[str, Any], given: GivenName | None) -> Mapping[str, Any]:
    """A QBO record as the source reads it back: the given name is the source's name."""
    if given is None or not same_name(record.get(DISPLAY_NAME), given.given):
        return record
    return {**record, DISPLAY_NAME: given.wanted}


@dataclass(frozen=True)
class Collision:
    """QBO refused a write because its DisplayName is taken.

    `wanted`: the source's name; `tried`: the name refused; `attempt`: 0 for the source's own
    name, then 1, 2...; `taken_by`: the QBO Id of the record holding `tried` (QBO names it),
    `taken_by_type`: its list (Customer, Vendor, Employee), when the pipeline knows it."""

    source_key: str
    wanted: str
    tried: str
    attempt: int
    taken_by: str | None = None
    taken_by_type: str | None = None


def holder_type(name: str, taken_by: str | None,
                known: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str | None:
    """The list (Customer, Vendor, Employee) of the QBO record `taken_by` holding `name`, among
    the `known` records (entity -> Id -> record); None when none of them is it. Ids are only
    unique within a list, so the name tells the lists' records of one Id apart."""
    if taken_by is None:
        return None
    for entity, records in known.items():
        record = records.get(taken_by)
        if record is not None and same_name(record.get(DISPLAY_NAME), name):
            return entity
    return None


@dataclass(frozen=True)
class Rename:
    """Try the write again under `name`."""

    name: str
    attempt: int


@dataclass(frozen=True)
class HoldBack:
    """Give up: the record is held back with `reason` (the record's label is prefixed)."""

    reason: str


def resolve_collision(collision: Collision, record_type: str, rule: CollisionRule,
                      tried_before: tuple[str, ...] = ()) -> Rename | HoldBack:
    """What to do after QBO refused `collision.tried` as taken: the next name to try, or hold
    the record back with the names tried (`tried_before`, then this one) and the fix."""
    tried = (*tried_before, collision.tried)
    first = collision.attempt == 0
    if first and collision.taken_by_type == record_type:
        return HoldBack(_same_list_reason(collision, record_type))
    if rule is not CollisionRule.HOLD_BACK and collision.attempt < MAX_RENAMES:
        name = candidate_name(collision.wanted, record_type, rule, collision.attempt + 1)
        if name is not None:
            return Rename(name, collision.attempt + 1)
    return HoldBack(_held_reason(collision, rule, tried))


def _holder(collision: Collision) -> str:
    kind = collision.taken_by_type or "record"
    return f"QuickBooks {kind} {collision.taken_by}" if collision.taken_by else \
        "another QuickBooks customer, vendor or employee"


def _same_list_reason(collision: Collision, record_type: str) -> str:
    return (f"6240 Duplicate Name Exists: DisplayName {collision.tried!r} is used by "
            f"{_holder(collision)}, of the same list and linked to no record of this entity "
            f"- if it is the same {record_type.lower()}, merge the two records in the source "
            "or link this one to it (qbo-pipeline links relink); else rename one of them")


def _held_reason(collision: Collision, rule: CollisionRule, tried: tuple[str, ...]) -> str:
    if rule is CollisionRule.HOLD_BACK:
        return (f"6240 Duplicate Name Exists: DisplayName {collision.tried!r} is used by "
                f"{_holder(collision)} - rename the record in the source or the other one in "
                f"QuickBooks, or set {COLLISION_SETTING} to "
                f"{CollisionRule.RECORD_TYPE.value!r} to have the pipeline rename it")
    names = ", ".join(repr(name) for name in tried)
    return (f"6240 Duplicate Name Exists: every DisplayName tried is taken ({names}; the last "
            f"by {_holder(collision)}) - rename the record in the source, or the QuickBooks "
            "records holding those names")
