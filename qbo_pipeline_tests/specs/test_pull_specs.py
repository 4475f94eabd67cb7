"""The pull and two-way constructs of the spec format: accepted, and each mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qbo_pipeline.specs import (
    ConflictPolicy,
    Direction,
    EntitySpec,
    PullRead,
    PullTarget,
    QboDeleteAction,
    SpecError,
    load_specs,
    parse_spec,
)
from qbo_pipeline.specs.checks import inactive_column
from qbo_pipeline.sync.settings import as_configured
from qbo_pipeline_tests.sync.sample_specs import make_spec

README = Path(__file__).resolve().parents[2] / "mapping_specs" / "README.md"

SERVICES = """
name: service
qbo_entity: Item
direction: pull
source: {table: services, primary_key: id, updated_at: updated_at, deleted: deleted_at}
fields:
  Name: {column: name, required: true}
  UnitPrice: {column: rate, type: number}
  Active: {column: active, type: boolean}
pull:
  target: upsert
  qbo_id_column: qbo_id
  read: all
  modified_within_days: 14
  filter: "Type = 'Service'"
  on_qbo_delete: mark_inactive
"""

INVOICE = """
name: invoice
qbo_entity: Invoice
source: {table: invoices, primary_key: id, updated_at: updated_at, business_date: issue_date}
fields:
  DocNumber: {column: number}
  Balance: {column: balance, type: number, direction: pull}
on_source_delete: void
pull:
  target: linked
  auto_apply:
    - description: paid in QuickBooks
      when: {field: Balance, equals: 0}
      set: {status: PAID}
"""

CLIENT = """
name: client
qbo_entity: Customer
direction: two_way
source: {table: clients, primary_key: id, updated_at: updated_at, business_date: created_at}
fields:
  DisplayName: {column: name}
  PrimaryEmailAddr.Address: {column: email, direction: push}
  Job: {constant: false}
conflict:
  default: last_modified_wins
on_source_delete: inactivate
pull: {target: linked}
"""


def spec_of(text: str, **replacements: str) -> EntitySpec:
    return make_spec(text, "spec.yaml", **replacements)


def problems(text: str, **replacements: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        spec_of(text, **replacements)
    return raised.value.problems


# -- accepted --------------------------------------------------------------------------------


def test_a_pull_spec_needs_no_business_date_nor_on_source_delete() -> None:
    spec = spec_of(SERVICES)
    assert spec.direction is Direction.PULL and spec.source.business_date is None
    assert spec.source.columns == ["id", "updated_at", "deleted_at"]
    assert spec.pull is not None
    assert (spec.pull.target, spec.pull.qbo_id_column, spec.pull.read) == (
        PullTarget.UPSERT, "qbo_id", PullRead.ALL)
    assert (spec.pull.modified_within_days, spec.pull.filter) == (14, "Type = 'Service'")
    assert spec.pull.on_qbo_delete is QboDeleteAction.MARK_INACTIVE
    assert inactive_column(spec) == "active"  # the column mapped from Active
    assert not spec.pushes and spec.pulls
    assert list(spec.pull_only_fields) == ["Name", "UnitPrice", "Active"]


def test_a_push_spec_can_pull_one_field_and_auto_apply() -> None:
    spec = spec_of(INVOICE)
    assert list(spec.pushed_fields) == ["DocNumber"]
    assert list(spec.pulled_fields) == ["Balance"]
    assert spec.pull is not None
    [rule] = spec.pull.auto_apply
    assert (rule.when.field, rule.when.accepted, rule.set_columns) == ("Balance", [0],
                                                                       {"status": "PAID"})
    assert spec.pull.rule_label(0) == "paid in QuickBooks"
    assert spec.pull.read is PullRead.CHANGED  # the default


def test_a_two_way_spec_flows_per_field() -> None:
    spec = spec_of(CLIENT)
    assert spec.conflict.policy_for("DisplayName") is ConflictPolicy.LAST_MODIFIED_WINS
    flows = {path: spec.flow_of(mapping) for path, mapping in spec.fields.items()}
    # A constant has nowhere to write QBO's value: in a two-way spec it is simply pushed.
    assert flows == {"DisplayName": Direction.TWO_WAY,
                     "PrimaryEmailAddr.Address": Direction.PUSH, "Job": Direction.PUSH}


def test_reversible_mappings() -> None:
    spec = spec_of(CLIENT, **{"  Job: {constant: false}": """\
  ParentRef: {ref: {spec: client, column: parent_id}, direction: push}
  Notes: {template: "{number} - {name}"}
  SalesTermRef: {lookup: {qbo_entity: Term, column: terms}}"""})
    assert all(spec.fields[path].reversible
               for path in ("DisplayName", "ParentRef", "Notes", "SalesTermRef"))


def test_the_readme_examples_are_valid() -> None:
    text = README.read_text(encoding="utf-8")
    examples = [block.split("```", 1)[0] for block in text.split("```yaml")[1:]]
    full = [yaml.safe_load(e) for e in examples if e.lstrip().startswith("name:")]
    parsed = [parse_spec(spec, "README.md") for spec in full]
    pulled = [spec for spec in parsed if spec.pull is not None]
    assert {spec.name for spec in pulled} == {"service", "client", "invoice"}
    assert any(spec.direction is Direction.PULL and spec.pull.target is PullTarget.UPSERT
               for spec in pulled if spec.pull is not None)
    assert any(spec.pull.auto_apply for spec in pulled if spec.pull is not None)
    assert any(spec.direction is Direction.TWO_WAY and spec.conflict.fields for spec in pulled)


def test_the_shipped_specs_pull_only_where_the_seeds_say() -> None:
    """Invoices push and pull back their balance (seed 001's "fully paid becomes PAID");
    vendors, classes, terms and services go both ways, every field that reads a column (seed
    004: "a 2-way sync ... depending on where it was updated last", "Invoice Items: Full 2-way
    sync"); accounts and tax codes only come from QBO (seed 004: "1-way import"); clients
    and projects both ways only for a company whose customers_sync is "when used" (seed 004:
    "Once the customer is connected, it is a 2-way sync"); the rest only push."""
    specs = load_specs(README.parent)
    pulling = {spec.name for spec in specs if spec.pulls}
    assert pulling == {"account", "client", "imported_bill", "invoice", "project", "service",
                       "tax_code", "term", "tracking_class", "vendor"}
    for name in ("client", "project"):
        assert not as_configured(specs, name).pulls, name  # seed 000's, the default
        assert as_configured(specs, name, {"customers_sync": "when used"}).pulls, name
    for name in ("term", "tracking_class", "vendor"):
        assert list(specs[name].pulled_fields) == list(specs[name].pushed_fields) == list(
            specs[name].fields)
    # A service's Type is a constant: pushed, never read back (the pull reads services only).
    assert list(specs["service"].pulled_fields) == [
        path for path in specs["service"].pushed_fields if path != "Type"]
    # Seed 004: "QuickBooks Bills that have been modified within the last 2 weeks can be
    # imported": imported_bill.yaml only reads them, the app's own bills only push.
    for name in ("account", "tax_code", "imported_bill"):
        assert not specs[name].pushes, name
    assert specs["imported_bill"].pull is not None
    assert specs["imported_bill"].pull.modified_within_days == 14
    assert list(specs["invoice"].pull_only_fields) == ["Balance"]
    for spec in specs:
        if spec.name not in pulling:
            assert spec.pull is None and spec.pushes
            assert list(spec.pushed_fields) == list(spec.fields)


# -- mistakes, each named by its path --------------------------------------------------------


@pytest.mark.parametrize(("text", "replacements", "expected"), [
    (INVOICE, {"pull:\n  target: linked\n  auto_apply:\n    - description: paid in QuickBooks\n"
               "      when: {field: Balance, equals: 0}\n      set: {status: PAID}\n": ""},
     "spec.yaml: pull: is required: Balance flow from QuickBooks"),
    (SERVICES, {"  qbo_id_column: qbo_id\n": ""},
     "spec.yaml: pull.qbo_id_column: is required for target: upsert"),
    (SERVICES, {"on_qbo_delete: mark_inactive": "on_qbo_delete: set_deleted",
                ", deleted: deleted_at": ""},
     "spec.yaml: pull.on_qbo_delete: set_deleted needs source.deleted"),
    (SERVICES, {"  Active: {column: active, type: boolean}\n": ""},
     "spec.yaml: pull.on_qbo_delete: mark_inactive needs pull.inactive_column, or an Active"),
    (CLIENT, {"Job: {constant: false}": "Job: {constant: false, direction: pull}"},
     "spec.yaml: fields.Job.direction: a constant never comes from QuickBooks"),
    (SERVICES, {"  Active: {column: active, type: boolean}\n":
                "  Active: {column: active, type: boolean}\n  Type: {constant: Service}\n"},
     "spec.yaml: fields.Type: a constant is only ever sent to QuickBooks, and this spec pulls"),
    (CLIENT, {"DisplayName: {column: name}": "DisplayName: {template: '{first}{last}'}"},
     "spec.yaml: fields.DisplayName: template '{first}{last}' cannot be read back: {last} "
     "follows another column"),
    (CLIENT, {"DisplayName: {column: name}": "DisplayName: {template: 'Tax ({rate:%})'}"},
     "spec.yaml: fields.DisplayName: template 'Tax ({rate:%})' cannot be read back: {rate:%} "
     "is formatted"),
    (CLIENT, {"DisplayName: {column: name}":
              "DisplayName: {lookup: {qbo_entity: Term, by: DueDays, column: days}}"},
     "spec.yaml: fields.DisplayName: a lookup by DueDays cannot be read back"),
    (INVOICE, {"set: {status: PAID}": "set: {'invoice status': PAID}"},
     "spec.yaml: pull.auto_apply[0].set.invoice status: 'invoice status' is not a plain "
     "column name"),
    (INVOICE, {"set: {status: PAID}": "set: {}"}, "spec.yaml: pull.auto_apply[0].set: sets no"),
    (INVOICE, {"field: Balance": "field: 'Balance Due'"},
     "spec.yaml: pull.auto_apply[0].when.field: 'Balance Due' is not a QBO field path"),
    (INVOICE, {"equals: 0": "equals: 0, one_of: [0]"},
     "spec.yaml: pull.auto_apply[0].when: a condition needs exactly one of 'equals' or 'one_of'"),
    (CLIENT, {"direction: two_way": "direction: push"},
     "spec.yaml: pull: no field flows from QuickBooks"),
    (INVOICE, {", business_date: issue_date": ""},
     "spec.yaml: source.business_date: is required: Invoice records pushed to QuickBooks"),
    (SERVICES, {"direction: pull": "direction: two_way"}, "spec.yaml: on_source_delete: is "
     "required"),
    (SERVICES, {"target: upsert": "target: mirror"},
     "spec.yaml: pull.target: Input should be 'upsert' or 'linked'"),
    (SERVICES, {"modified_within_days: 14": "modified_within_days: 0"},
     "spec.yaml: pull.modified_within_days: Input should be greater than 0"),
    (SERVICES, {"qbo_id_column: qbo_id": "qbo_id_column: rate"},
     "spec.yaml: pull.qbo_id_column: 'rate' is also where fields.UnitPrice is pulled to"),
    (SERVICES, {"qbo_id_column: qbo_id": "qbo_id_column: qbo id"},
     "spec.yaml: pull: qbo_id_column: 'qbo id' is not a plain column name"),
])
def test_pull_mistakes_name_their_path(text: str, replacements: dict[str, str],
                                       expected: str) -> None:
    found = problems(text, **replacements)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_line_field_cannot_pull() -> None:
    lines = """on_source_delete: void
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    Amount: {column: amount, direction: two_way}
"""
    found = problems(INVOICE, **{"on_source_delete: void\n": lines})
    assert "spec.yaml: lines.fields.Amount.direction: line fields are only ever pushed" in found
