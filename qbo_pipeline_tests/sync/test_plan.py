from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline.sync.diff import FieldOutcome
from qbo_pipeline.sync.ids import payload_hash, request_id
from qbo_pipeline.sync.plan import RecordState, WriteKind, plan_changes
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, INVOICE, TIME, make_spec

SPEC = make_spec(CUSTOMER)
ACME: dict[str, Any] = {
    "DisplayName": "Acme", "Active": True, "GivenName": "Ann",
    "BillAddr": {"Line1": "1 Main St", "City": "Springfield"},
    "PrimaryEmailAddr": {"Address": "ap@acme.test"},
}


def in_qbo(payload: dict[str, Any], qbo_id: str = "58", token: str = "3",
           **changes: Any) -> dict[str, Any]:
    return {**payload, "Id": qbo_id, "SyncToken": token, **changes}


def test_a_mixed_batch_is_sorted_into_the_plan() -> None:
    bolt = {**ACME, "DisplayName": "Bolt"}
    records = [
        RecordState("1", ACME),                                               # new
        RecordState("2", {**bolt, "GivenName": "Bo"}, bolt, in_qbo(bolt, "60")),  # changed
        RecordState("3", bolt | {"DisplayName": "Cog"}, bolt | {"DisplayName": "Cog"},
                    in_qbo(bolt | {"DisplayName": "Cog"}, "61")),             # in sync
        RecordState("4", None, ACME, in_qbo(ACME, "62", Active=True)),        # deleted
    ]
    plan = plan_changes(SPEC, "realm-1", records)
    assert plan.counts() == {"creates": 1, "updates": 1, "voids": 0, "inactivations": 1,
                             "deletes": 0, "links": 0, "conflicts": 0, "unchanged": 1,
                             "blocked": 0}
    assert [w.kind for w in plan.writes()] == [WriteKind.CREATE, WriteKind.UPDATE,
                                               WriteKind.INACTIVATE]
    assert plan.creates[0].payload == ACME and plan.creates[0].qbo_id is None
    assert plan.updates[0].payload == {"Id": "60", "SyncToken": "3", "sparse": True,
                                       "GivenName": "Bo"}
    assert plan.inactivations[0].payload == {"Id": "62", "SyncToken": "3", "sparse": True,
                                             "Active": False}
    assert plan.unchanged == ["3"]
    assert [d.source_key for d in plan.diffs] == ["1", "2", "3", "4"]


def test_a_nested_update_keeps_the_rest_of_the_qbo_object() -> None:
    moved = {**ACME, "BillAddr": {"Line1": "9 Elm St", "City": "Springfield"}}
    qbo = in_qbo(ACME, BillAddr={"Id": "91", "Line1": "1 Main St", "City": "Springfield",
                                 "Country": "USA"})
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", moved, ACME, qbo)])
    assert plan.updates[0].payload == {
        "Id": "58", "SyncToken": "3", "sparse": True,
        "BillAddr": {"Id": "91", "Line1": "9 Elm St", "City": "Springfield", "Country": "USA"},
    }


def test_a_conflict_is_listed_and_the_other_changes_still_go() -> None:
    source = {**ACME, "GivenName": "Annie", "PrimaryEmailAddr": {"Address": "new@acme.test"}}
    qbo = in_qbo(ACME, PrimaryEmailAddr={"Address": "qbo@acme.test"})
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", source, ACME, qbo)])
    [conflict] = plan.conflicts
    assert conflict.qbo_id == "58"
    assert [(f.path, f.source, f.qbo, f.base, f.outcome) for f in conflict.fields] == [
        ("PrimaryEmailAddr.Address", "new@acme.test", "qbo@acme.test", "ap@acme.test",
         FieldOutcome.CONFLICT)]
    assert plan.updates[0].payload == {"Id": "58", "SyncToken": "3", "sparse": True,
                                       "GivenName": "Annie"}


def test_a_record_gone_from_qbo_is_a_conflict_with_a_reason() -> None:
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", ACME, ACME, None)])
    assert plan.writes() == []
    assert "gone (deleted or merged in QuickBooks)" in plan.conflicts[0].reason


def test_an_invoice_delete_is_a_void_and_a_line_change_resends_all_lines() -> None:
    spec = make_spec(INVOICE)
    invoice = {"CustomerRef": {"value": "58"}, "DocNumber": "1001",
               "Line": [{"Amount": 40, "Description": "Design"}]}
    changed = {**invoice, "Line": [{"Amount": 40, "Description": "Design"},
                                   {"Amount": 5, "Description": "Tax (5%)"}]}
    qbo = in_qbo(invoice, "7", "2")
    plan = plan_changes(spec, "realm-1", [RecordState("5", None, invoice, qbo),
                                          RecordState("6", changed, invoice, qbo | {"Id": "8"})])
    assert plan.voids[0].payload == {"Id": "7", "SyncToken": "2"}
    assert plan.updates[0].payload == {"Id": "8", "SyncToken": "2", "sparse": True,
                                       "Line": changed["Line"]}


def test_a_time_activity_delete_is_a_delete() -> None:
    spec = make_spec(TIME)  # on_source_delete: delete
    hours = {"Hours": 2, "Description": "Site visit"}
    plan = plan_changes(spec, "realm-1", [RecordState("1", None, hours, in_qbo(hours))])
    assert plan.deletes[0].kind is WriteKind.DELETE
    assert plan.deletes[0].payload == {"Id": "58", "SyncToken": "3"}


def test_a_report_delete_writes_nothing_and_names_the_record_once() -> None:
    """Seeds 001 and 004 ("Contractors Cloud contains no deletion functionality in
    QuickBooks ... it should be manually deleted or made inactive in QuickBooks"): under
    `on_source_delete: report` a record deleted in the source is left in QBO and reported for a
    person, with the QBO record to delete or void; once the link knows the delete was handled,
    it is not reported again."""
    spec = make_spec(TIME, **{"on_source_delete: delete": "on_source_delete: report"})
    hours = {"Hours": 2, "Description": "Site visit"}
    plan = plan_changes(spec, "realm-1", [RecordState("1", None, hours, in_qbo(hours))])
    assert plan.writes() == []
    [report] = plan.reports
    assert (report.source_key, report.qbo_id, report.sync_token, report.base) == (
        "1", "58", "3", hours)
    assert report.message == (f"{spec.record_label} 1 was deleted in the app: delete or void "
                              "TimeActivity 58 in QuickBooks by hand")
    assert plan.unchanged == ["1"]
    again = plan_changes(spec, "realm-1", [RecordState("1", None, hours, in_qbo(hours),
                                                       delete_applied=True)])
    assert (again.reports, again.writes(), again.unchanged) == ([], [], ["1"])


def test_match_before_create_links_instead_of_duplicating() -> None:
    existing = in_qbo({**ACME, "DisplayName": "ACME ", "GivenName": None}, "90", "0")
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", ACME)], match_candidates=[existing])
    assert plan.creates == []
    [link] = plan.links
    assert (link.source_key, link.qbo_id, link.sync_token, link.matched_on) == (
        "1", "90", "0", ("DisplayName",))
    # Linked, then diffed with no base: what QBO lacks is filled in, what it holds
    # differently (the name's case) goes to review.
    assert plan.updates[0].payload == {"Id": "90", "SyncToken": "0", "sparse": True,
                                       "GivenName": "Ann"}
    assert [(f.path, f.source, f.qbo) for f in plan.conflicts[0].fields] == [
        ("DisplayName", "Acme", "ACME ")]


def test_a_record_pushed_just_before_a_crash_is_linked_and_unchanged() -> None:
    echo = in_qbo(ACME, "90", "0")
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", ACME)], match_candidates=[echo])
    assert plan.writes() == []
    assert plan.unchanged == ["1"] and plan.links[0].qbo_id == "90"


def test_compound_match_keys_need_every_field() -> None:
    spec = make_spec(CUSTOMER, **{"match_keys: [DisplayName]":
                                  "match_keys: [[GivenName, PrimaryEmailAddr.Address]]"})
    same_name_other_email = in_qbo({**ACME, "PrimaryEmailAddr": {"Address": "x@y.z"}}, "90")
    same_both = in_qbo({**ACME, "DisplayName": "A. Corp"}, "91")
    plan = plan_changes(spec, "realm-1", [RecordState("1", ACME)],
                        match_candidates=[same_name_other_email, same_both])
    assert plan.links[0].qbo_id == "91"
    assert plan.links[0].matched_on == ("GivenName", "PrimaryEmailAddr.Address")


def test_a_candidate_already_linked_is_not_matched_again() -> None:
    records = [RecordState("1", ACME, ACME, in_qbo(ACME, "90")), RecordState("2", ACME)]
    plan = plan_changes(SPEC, "realm-1", records, match_candidates=[in_qbo(ACME, "90")])
    assert plan.links == [] and plan.creates == []
    # Creating the second record would duplicate the name of the first one's QBO record.
    assert [b.reason for b in plan.blocked] == [
        "client 2: DisplayName 'Acme' is already used by QuickBooks Customer 90, which is "
        "linked to another client - make them different"]


def test_ambiguous_matches_and_duplicate_creates_are_blocked() -> None:
    twins = [in_qbo(ACME, "90"), in_qbo(ACME, "91")]
    plan = plan_changes(SPEC, "realm-1", [RecordState("1", ACME)], match_candidates=twins)
    assert plan.blocked[0].reason == (
        "client 1: 2 QuickBooks Customer records match DisplayName 'Acme' (Ids 90, 91) - "
        "merge or rename the duplicates in QuickBooks")
    bolt = {**ACME, "DisplayName": "Bolt"}
    plan = plan_changes(SPEC, "realm-1", [RecordState("2", bolt), RecordState("3", bolt)])
    assert [c.source_key for c in plan.creates] == ["2"]
    assert plan.blocked[0].reason == (
        "client 3: DisplayName 'Bolt' is also used by client 2 - QuickBooks would get a "
        "duplicate; make them different")


def test_request_ids_are_stable_short_and_change_with_the_change() -> None:
    first = plan_changes(SPEC, "realm-1", [RecordState("1", ACME)]).creates[0].request_id
    again = plan_changes(SPEC, "realm-1", [RecordState("1", ACME)]).creates[0].request_id
    other_realm = plan_changes(SPEC, "realm-2", [RecordState("1", ACME)]).creates[0].request_id
    changed = plan_changes(SPEC, "realm-1", [RecordState("1", {**ACME, "GivenName": "Al"})])
    assert first == again
    assert len(first) <= 36
    assert len({first, other_realm, changed.creates[0].request_id}) == 3


def test_a_new_sync_token_makes_a_new_request_id() -> None:
    moved = {**ACME, "GivenName": "Annie"}
    ids = {plan_changes(SPEC, "r", [RecordState("1", moved, ACME, in_qbo(ACME, token=t))])
           .updates[0].request_id for t in ("3", "4")}
    assert len(ids) == 2


def test_payload_hash_ignores_key_order() -> None:
    assert payload_hash({"a": 1, "b": {"c": 2}}) == payload_hash({"b": {"c": 2}, "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
    rid = request_id("realm", "client", "17", payload_hash({"a": 1}))
    assert rid == request_id("realm", "client", "17", payload_hash({"a": 1}))
    assert len(rid) == 36


def test_a_pull_spec_has_nothing_to_push() -> None:
    spec = make_spec(CUSTOMER, **{"qbo_entity: Customer": "qbo_entity: Customer\n"
                                                          "direction: pull\n"
                                                          "pull: {target: linked}"})
    with pytest.raises(ValueError, match="spec client pulls from QuickBooks"):
        plan_changes(spec, "realm-1", [])
