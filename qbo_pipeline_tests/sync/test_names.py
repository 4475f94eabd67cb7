"""The DisplayName collision rule (`sync.names`), on plain data. QBO's DisplayName is unique
across customers, vendors and employees (6240); seed 004 keeps "Installer, Supplier, and
Vendor data" in QuickBooks Vendors and customers in Customers, so a supplier and a client of
one name collide, and seed 003 creates records "on the fly if they don't already exist"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbo_pipeline.qbo.entities import DISPLAY_NAME_MAX_LENGTH
from qbo_pipeline.sync.names import (
    MAX_RENAMES,
    Collision,
    CollisionRule,
    GivenName,
    HoldBack,
    Rename,
    as_given,
    as_wanted,
    candidate_name,
    collision_rule,
    holder_type,
    resolve_collision,
)

RENAMING_RULES = [CollisionRule.RECORD_TYPE, CollisionRule.NUMBER]


@pytest.mark.parametrize(("rule", "attempt", "expected"), [
    (CollisionRule.RECORD_TYPE, 1, "Acme (Vendor)"),
    (CollisionRule.RECORD_TYPE, 2, "Acme (Vendor 2)"),
    (CollisionRule.NUMBER, 1, "Acme 2"),
    (CollisionRule.NUMBER, 3, "Acme 4"),
    (CollisionRule.HOLD_BACK, 1, None),
])
def test_each_rule_names_the_next_try(rule: CollisionRule, attempt: int,
                                      expected: str | None) -> None:
    assert candidate_name("Acme", "Vendor", rule, attempt) == expected


def test_a_long_name_is_cut_to_make_room_for_the_whole_suffix() -> None:
    wanted = "A" * 498 + " Z"
    name = candidate_name(wanted, "Vendor", CollisionRule.RECORD_TYPE, 1)
    assert name is not None and len(name) == DISPLAY_NAME_MAX_LENGTH
    assert name == "A" * (DISPLAY_NAME_MAX_LENGTH - len(" (Vendor)")) + " (Vendor)"
    assert candidate_name("Acme", "Vendor", CollisionRule.RECORD_TYPE, 1, max_length=9) is None


@given(wanted=st.text(min_size=1, max_size=700).filter(lambda text: text.strip()),
       record_type=st.sampled_from(["Customer", "Vendor", "Employee"]),
       rule=st.sampled_from(RENAMING_RULES),
       attempt=st.integers(min_value=1, max_value=MAX_RENAMES))
def test_a_candidate_fits_qbo_keeps_its_suffix_and_differs_from_the_name_taken(
        wanted: str, record_type: str, rule: CollisionRule, attempt: int) -> None:
    name = candidate_name(wanted, record_type, rule, attempt)
    assert name is not None
    assert len(name) <= DISPLAY_NAME_MAX_LENGTH
    suffix = f" ({record_type})" if rule is CollisionRule.RECORD_TYPE and attempt == 1 else (
        f" ({record_type} {attempt})" if rule is CollisionRule.RECORD_TYPE else f" {attempt + 1}")
    assert name.endswith(suffix)
    assert " ".join(wanted.split()).startswith(name[:-len(suffix)])
    assert name.casefold() != wanted.casefold()


def collision(attempt: int = 0, taken_by_type: str | None = "Customer",
              tried: str = "Acme") -> Collision:
    return Collision("8", "Acme", tried, attempt, "12", taken_by_type)


def test_a_name_taken_by_another_list_is_renamed_and_by_the_same_list_held_back() -> None:
    assert resolve_collision(collision(), "Vendor", CollisionRule.RECORD_TYPE) == \
        Rename("Acme (Vendor)", 1)
    # Unknown holder: renamed too (the snapshots may not hold a record made by hand).
    assert resolve_collision(collision(taken_by_type=None), "Vendor",
                             CollisionRule.NUMBER) == Rename("Acme 2", 1)
    same = resolve_collision(collision(taken_by_type="Vendor"), "Vendor",
                             CollisionRule.RECORD_TYPE)
    assert isinstance(same, HoldBack)
    assert "'Acme' is used by QuickBooks Vendor 12" in same.reason
    assert "merge the two records" in same.reason


def test_hold_back_and_the_last_attempt_hold_the_record_back_naming_what_was_tried() -> None:
    held = resolve_collision(collision(), "Vendor", CollisionRule.HOLD_BACK)
    assert held == HoldBack(
        "6240 Duplicate Name Exists: DisplayName 'Acme' is used by QuickBooks Customer 12 - "
        "rename the record in the source or the other one in QuickBooks, or set "
        "display_name_collision to 'Add the record type' to have the pipeline rename it")
    last = resolve_collision(collision(MAX_RENAMES, tried="Acme 6"), "Vendor",
                             CollisionRule.NUMBER, ("Acme", "Acme 2"))
    assert isinstance(last, HoldBack)
    assert "every DisplayName tried is taken ('Acme', 'Acme 2', 'Acme 6'" in last.reason


def test_the_given_name_is_sent_while_the_source_keeps_its_name_and_read_back_as_it() -> None:
    given_name = GivenName("Acme", "Acme (Vendor)")
    assert as_given({"DisplayName": "acme", "Active": True}, given_name) == {
        "DisplayName": "Acme (Vendor)", "Active": True}
    # Renamed in the source: its new name is sent, and tried again if taken.
    assert as_given({"DisplayName": "Acme Corp"}, given_name) == {"DisplayName": "Acme Corp"}
    assert as_wanted({"Id": "40", "DisplayName": "Acme (Vendor)"}, given_name) == {
        "Id": "40", "DisplayName": "Acme"}
    assert as_wanted({"DisplayName": "Harbor Supplies"}, given_name) == {
        "DisplayName": "Harbor Supplies"}
    assert as_wanted({"DisplayName": "Acme (Vendor)"}, None) == {"DisplayName": "Acme (Vendor)"}


def test_the_holder_is_found_by_its_id_and_its_name_and_an_unknown_value_holds_back() -> None:
    known = {"Customer": {"12": {"DisplayName": "ACME"}}, "Vendor": {"12": {"DisplayName": "X"}}}
    assert holder_type("Acme", "12", known) == "Customer"
    assert holder_type("Acme", "13", known) is None
    assert holder_type("Acme", None, known) is None
    assert collision_rule("Add a number") is CollisionRule.NUMBER
    assert collision_rule(None) is CollisionRule.HOLD_BACK
