from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from qbo_pipeline.specs import (
    ConflictPolicy,
    DeleteAction,
    Direction,
    MappingKind,
    PullRead,
    PullTarget,
    SpecError,
    SpecSet,
    load_spec,
    load_specs,
    parse_spec,
)
from qbo_pipeline.sync.settings import as_configured

REPO_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"

CLIENT = """
name: client
qbo_entity: Customer
source: {table: clients, primary_key: id, updated_at: updated_at, business_date: created_at}
fields:
  DisplayName: {column: name, required: true}
match_keys: [DisplayName]
on_source_delete: inactivate
"""

INVOICE = """
name: invoice
qbo_entity: Invoice
source: {table: invoices, primary_key: id, updated_at: updated_at, business_date: issue_date}
fields:
  CustomerRef: {ref: {spec: client, column: client_id}}
  DocNumber: {column: number}
on_source_delete: void
"""


def write_specs(directory: Path, **specs: str) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in specs.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_specs(directory)
    return raised.value.problems


def spec_text(base: str, **replacements: str) -> str:
    text = textwrap.dedent(base)
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# -- the shipped specs ---------------------------------------------------------------------


def test_the_shipped_specs_load_in_dependency_order() -> None:
    specs = load_specs(REPO_SPECS)
    assert specs.names == ["account", "bank_account", "bill", "client", "contractor",
                           "credit_memo", "credit_memo_applied", "deposit", "employee",
                           "expense", "hard_cost", "imported_bill", "invoice", "payment",
                           "project", "service", "tax_code", "term", "time_entry",
                           "tracking_class", "vendor"]
    order = [spec.name for spec in specs.in_dependency_order()]
    assert order.index("client") < order.index("project") < order.index("invoice")
    assert order.index("employee") < order.index("time_entry")
    assert order.index("contractor") < order.index("time_entry")
    assert order.index("project") < order.index("time_entry")
    # The services the invoices and time entries name are created through service.yaml when
    # QBO lacks them (seed 003): it syncs first. Time is an Employee's or, for a 1099 user, a
    # Vendor's (seed 004).
    assert specs.upstream_of("invoice") == ["project", "service"]
    assert specs.upstream_of("time_entry") == ["contractor", "employee", "project", "service"]
    assert specs.upstream_of("client") == []
    # A payment is applied to its invoice, on the invoice's customer (seed 004).
    assert specs.upstream_of("payment") == ["invoice", "project"]
    assert order.index("invoice") < order.index("payment")
    # A write-off's credit memo is the invoice customer's; the payment applying it links the
    # invoice and the memo (seed 002 "Change/Write-Offs").
    assert specs.upstream_of("credit_memo") == ["project"]
    assert specs.upstream_of("credit_memo_applied") == ["credit_memo", "invoice", "project"]
    # An expense's payee is a vendor (seed 001); a bill's lines are for projects (seed 004),
    # and the bills imported from QBO are attached to theirs.
    assert specs.upstream_of("expense") == ["vendor"]
    assert specs.upstream_of("bill") == ["project", "vendor"]
    assert specs.upstream_of("imported_bill") == ["project", "vendor"]
    # Seed 002: deposit slips and hard costs name the bank accounts, synced first.
    assert specs.upstream_of("deposit") == ["bank_account"]
    assert specs.upstream_of("hard_cost") == ["bank_account", "project", "vendor"]


def test_the_shipped_user_specs_say_what_seeds_003_and_004_say() -> None:
    """Seed 004: users of type "Employee" are pushed as Employees, of type "1099 Vendor" as
    Vendors; seed 003: users are matched by first name, last name and email."""
    specs = load_specs(REPO_SPECS)
    employee, contractor = specs["employee"], specs["contractor"]
    assert employee.source.table == contractor.source.table == "employees"
    assert employee.source.filter == "employment_type = 'Employee'"
    assert contractor.source.filter == "employment_type = '1099 Vendor'"
    assert (employee.qbo_entity, contractor.qbo_entity) == ("Employee", "Vendor")
    assert contractor.fields["Vendor1099"].constant is True
    for spec in (employee, contractor):
        assert spec.direction is Direction.PUSH
        assert spec.match_key_groups[0] == ("GivenName", "FamilyName", "PrimaryEmailAddr.Address")


def test_the_shipped_vendor_spec_says_what_seed_004_says() -> None:
    """Seed 004: "Installer, Supplier, and Vendor data are a 2-way sync into a QuickBooks
    Vendor depending on where it was updated last"."""
    vendor = load_specs(REPO_SPECS)["vendor"]
    assert (vendor.qbo_entity, vendor.direction) == ("Vendor", Direction.TWO_WAY)
    assert vendor.conflict.default is ConflictPolicy.LAST_MODIFIED_WINS
    assert vendor.conflict.fields == {}
    assert vendor.pull is not None and vendor.pull.target is PullTarget.LINKED
    assert vendor.match_key_groups == [("DisplayName",)]


def test_the_shipped_class_and_term_specs_say_what_seed_004_says() -> None:
    """Seed 004: classes and terms are a "Full 2-way sync", and QBO's "can be bulk imported";
    the app's own are found in QBO by name before one is created."""
    specs = load_specs(REPO_SPECS)
    for name, entity, table in (("tracking_class", "Class", "classes"),
                                ("term", "Term", "terms")):
        spec = specs[name]
        assert (spec.qbo_entity, spec.source.table, spec.direction) == (
            entity, table, Direction.TWO_WAY)
        assert spec.pull is not None and spec.pull.target is PullTarget.UPSERT
        assert spec.pull.qbo_id_column == "qbo_id"
        assert spec.match_key_groups == [("Name",)]
        assert spec.on_source_delete is DeleteAction.INACTIVATE


def test_the_shipped_account_and_tax_code_specs_say_what_seeds_003_and_004_say() -> None:
    """Seed 004: financial accounts and sales tax codes are a "1-way import from QuickBooks
    Online", kept current ("any changes in QuickBooks Online will update the record")."""
    specs = load_specs(REPO_SPECS)
    for name, entity, table in (("account", "Account", "accounts"),
                                ("tax_code", "TaxCode", "tax_codes")):
        spec = specs[name]
        assert (spec.qbo_entity, spec.source.table, spec.direction) == (
            entity, table, Direction.PULL)
        assert not spec.pushes
        assert spec.pull is not None and spec.pull.target is PullTarget.UPSERT
    account_pull, tax_code_pull = specs["account"].pull, specs["tax_code"].pull
    assert account_pull is not None and tax_code_pull is not None
    # CDC serves accounts' changes; tax codes, which it does not serve, are read whole.
    assert (account_pull.read, tax_code_pull.read) == (PullRead.CHANGED, PullRead.ALL)


def test_the_shipped_specs_say_what_seed_000_says() -> None:
    specs = load_specs(REPO_SPECS)
    client, project = specs["client"], specs["project"]
    assert client.fields["PrimaryEmailAddr.Address"].required
    # Seed 000's names by default ("ClientName -> DisplayName & CompanyName", "Project Number
    # - Name"); seed 004's formats are the company's choice (company_settings.yaml).
    assert as_configured(specs, "client").fields["DisplayName"].template == "{name}"
    assert client.fields["CompanyName"].column == "name"
    assert as_configured(specs, "project").fields["DisplayName"].template == "{number} - {name}"
    assert as_configured(specs, "client", {"customer_name_format": "Lastname, Firstname"}
                         ).fields["DisplayName"].template == \
        "{contact_last_name}, {contact_first_name}"
    assert as_configured(specs, "project", {"job_name_format": "Project Number - Project "
                                                               "Address"}
                         ).fields["DisplayName"].template == "{number} - {job_address_line1}"
    assert project.fields["Job"].constant is True
    assert project.fields["ParentRef"].ref is not None
    for contact in ("PrimaryEmailAddr.Address", "PrimaryPhone.FreeFormNumber", "GivenName",
                    "FamilyName"):
        assert project.conflict.policy_for(contact) is ConflictPolicy.QBO_WINS
    assert project.conflict.policy_for("DisplayName") is ConflictPolicy.REVIEW
    time_entry = specs["time_entry"]
    assert time_entry.settings["approved_only"].when.column == "approved"
    invoice = specs["invoice"]
    assert invoice.on_source_delete is DeleteAction.VOID
    assert invoice.match_keys == ["DocNumber"]
    assert invoice.lines is not None and invoice.lines.tax_line is not None


# -- a good spec ---------------------------------------------------------------------------


def test_a_spec_parses_into_typed_models(tmp_path: Path) -> None:
    spec = load_spec(write_specs(tmp_path, client=CLIENT) / "client.yaml")
    assert spec.direction is Direction.PUSH
    assert spec.fields["DisplayName"].kind is MappingKind.COLUMN
    assert spec.fields["DisplayName"].reversible
    assert spec.record_label == "client"
    assert spec.match_key_groups == [("DisplayName",)]


def test_pull_and_two_way_directions_are_accepted() -> None:
    for direction in ("pull", "two_way"):
        text = spec_text(CLIENT, **{"qbo_entity: Customer":
                                    f"qbo_entity: Customer\ndirection: {direction}\n"
                                    "pull: {target: linked}"})
        assert parse_spec(yaml.safe_load(text)).direction == Direction(direction)


# -- errors of one spec: every one names the file and the path -------------------------------


def test_a_reference_to_an_unknown_spec_names_file_and_field(tmp_path: Path) -> None:
    directory = write_specs(tmp_path, invoice=INVOICE)
    assert problems_of(directory) == [
        f"{directory}/invoice.yaml: fields.CustomerRef: unknown spec 'client' (known: invoice)"
    ]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    bad_client = spec_text(CLIENT, **{"column: name, required: true":
                                      "colum: name, requried: true",
                                      "on_source_delete: inactivate": "on_source_delete: void"})
    bad_invoice = spec_text(INVOICE, **{"spec: client": "spec: customer"})
    problems = problems_of(write_specs(tmp_path, client=bad_client, invoice=bad_invoice))
    text = "\n".join(problems)
    assert "client.yaml: fields.DisplayName.colum: unknown key" in text
    assert "client.yaml: fields.DisplayName.requried: unknown key" in text
    assert "invoice.yaml: fields.CustomerRef: unknown spec 'customer'" in text


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    text = spec_text(CLIENT, **{"on_source_delete: inactivate\n": ""})
    problems = problems_of(write_specs(tmp_path, client=text))
    assert problems == [f"{tmp_path}/client.yaml: on_source_delete: is required"]


@pytest.mark.parametrize(("field", "expected"), [
    ("{column: name, constant: x}",
     "give exactly one of column, template, constant, ref, lookup (found: column, constant)"),
    ("{required: true}",
     "give exactly one of column, template, constant, ref, lookup (found: none)"),
    ("{column: 'first name'}", "'first name' is not a plain column name"),
    ("{template: '{number - {name}'}",
     "template '{number - {name}' is malformed: unexpected '{' in field name"),
    ("{template: '{0} - {name}'}", "put a plain column name in braces"),
    ("{column: name, pattern: '[a-'}", "pattern is not a valid regular expression"),
    ("{column: name, allowed_characters: 'z-a'}",
     "allowed_characters is not a valid regular expression"),
    ("{column: name, min_length: 5, max_length: 2}", "min_length 5 is above max_length 2"),
    ("{column: amount, min: 10, max: 1}", "min 10.0 is above max 1.0"),
    ("{column: name, max_length: -1}", "greater than or equal to 0"),
    ("{lookup: {qbo_entity: Item}}", "a lookup needs exactly one of 'column' or 'value'"),
])
def test_field_mapping_problems(tmp_path: Path, field: str, expected: str) -> None:
    text = spec_text(CLIENT, **{"{column: name, required: true}": field})
    problems = problems_of(write_specs(tmp_path, client=text))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/client.yaml: fields.DisplayName")
    assert expected in problems[0]


@pytest.mark.parametrize(("entity", "field", "action", "expected"), [
    ("Customer", "DisplayName", "delete",
     "'delete' is not possible for a names-list entity (Customer): use inactivate or ignore"),
    ("Customer", "DisplayName", "void", "use inactivate or ignore"),
    ("Invoice", "DocNumber", "delete",
     "'delete' is not possible for a transaction entity (Invoice): use void, report or ignore"),
    ("Invoice", "DocNumber", "inactivate", "use void, report or ignore"),
    ("TimeActivity", "Description", "void",
     "'void' is not possible for a transaction entity (TimeActivity): "
     "use delete, report or ignore"),
])
def test_delete_actions_follow_the_qbo_entity_kind(entity: str, field: str, action: str,
                                                   expected: str) -> None:
    text = spec_text(CLIENT, **{"qbo_entity: Customer": f"qbo_entity: {entity}",
                                "DisplayName": field,
                                "on_source_delete: inactivate": f"on_source_delete: {action}"})
    with pytest.raises(SpecError) as raised:
        parse_spec(yaml.safe_load(text), "client.yaml")
    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith("client.yaml: on_source_delete: ")
    assert expected in raised.value.problems[0]


@pytest.mark.parametrize(("replacements", "expected"), [
    ({"name: client": "name: Client"},
     "name: 'Client' must be snake_case (it is used in asset keys)"),
    ({"name: client": "name: customer"}, "name: 'customer' must match the file name 'client'"),
    ({"qbo_entity: Customer": "qbo_entity: Custmer"}, "qbo_entity: unknown QBO entity 'Custmer'"),
    ({"table: clients, ": ""}, "source: give exactly one of 'table' or 'query'"),
    ({"table: clients": "table: clients, query: SELECT 1"},
     "source: give exactly one of 'table' or 'query'"),
    ({"primary_key: id": "primary_key: 'client id'"},
     "source: primary_key: 'client id' is not a plain column name"),
    ({"match_keys: [DisplayName]": "match_keys: [CompanyName]"},
     "match_keys[0]: 'CompanyName' is not a mapped field"),
    ({"match_keys: [DisplayName]": "match_keys: [DocNumber]"},
     "match_keys[0]: 'DocNumber' is not a field of a QuickBooks Customer"),
    ({"match_keys: [DisplayName]": "match_keys: [[]]"},
     "match_keys[0]: an empty list matches nothing"),
    ({"match_keys: [DisplayName]": "conflict: {fields: {Notes: qbo_wins}}"},
     "conflict.fields.Notes: 'Notes' is not a mapped field"),
    ({"match_keys: [DisplayName]": "conflict: {fields: {Email: qbo_wins}}"},
     "conflict.fields.Email: 'Email' is not a field of a QuickBooks Customer"),
    ({"match_keys: [DisplayName]": "conflict: {default: keep}"},
     "conflict.default: Input should be 'review', 'source_wins', 'qbo_wins' or "
     "'last_modified_wins'"),
    ({"match_keys: [DisplayName]": "direction: sideways"},
     "direction: Input should be 'push', 'pull' or 'two_way'"),
    ({"DisplayName: {": "Id: {"}, "fields.Id: 'Id' is written by the sync and cannot be mapped"),
    ({"DisplayName: {": "Bill Addr: {"},
     "fields.Bill Addr: a field path is QBO field names joined by dots"),
    ({"match_keys: [DisplayName]": "lines: {table: l, parent_key: p, order_by: n, fields: {}}"},
     "lines: Customer records have no lines"),
    ({"match_keys: [DisplayName]":
      "settings: {Approved: {description: d, when: {column: approved, equals: true}}}"},
     "settings.Approved: 'Approved' must be snake_case"),
    ({"match_keys: [DisplayName]":
      "settings: {approved_only: {description: d, when: {column: approved}}}"},
     "settings.approved_only.when: a condition needs exactly one of 'equals' or 'one_of'"),
])
def test_spec_problems_name_their_path(tmp_path: Path, replacements: dict[str, str],
                                       expected: str) -> None:
    problems = problems_of(write_specs(tmp_path, client=spec_text(CLIENT, **replacements)))
    assert any(p.startswith(f"{tmp_path}/client.yaml: {expected}") for p in problems), problems


def test_a_field_and_its_parts_cannot_both_be_mapped(tmp_path: Path) -> None:
    text = spec_text(CLIENT, **{"match_keys: [DisplayName]": "",
                                "  DisplayName: {column: name, required: true}":
                                "  BillAddr: {constant: {}}\n  BillAddr.City: {column: city}"})
    problems = problems_of(write_specs(tmp_path, client=text))
    assert problems == [f"{tmp_path}/client.yaml: fields.BillAddr.City: 'BillAddr' is mapped "
                        "as a whole and cannot have parts"]


def test_lines_and_tax_line_are_checked(tmp_path: Path) -> None:
    text = spec_text(INVOICE, **{"on_source_delete: void": """on_source_delete: void
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    Line Amount: {column: amount}
    SalesItemLineDetail.ItemRef: {lookup: {qbo_entity: Itm, column: service_name}}
  tax_line:
    amount_column: tax_amount
    fields:
      Amount: {column: tax_amount}
"""})
    problems = problems_of(write_specs(tmp_path, client=CLIENT, invoice=text))
    prefix = f"{tmp_path}/invoice.yaml: "
    assert f"{prefix}lines.fields.Line Amount: a field path is QBO field names joined by dots, " \
           "e.g. BillAddr.Line1, with a list's item named by its position, e.g. " \
           "Line[0].Amount" in problems
    assert any(p.startswith(f"{prefix}lines.fields.SalesItemLineDetail.ItemRef.lookup."
                            "qbo_entity: unknown QBO entity 'Itm'") for p in problems)
    assert f"{prefix}lines.tax_line.fields.Amount: the tax line's Amount comes from " \
           "amount_column" in problems


# -- files and the set ----------------------------------------------------------------------


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    problems = problems_of(write_specs(tmp_path, client="name: client\nfields: [a, b\n"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/client.yaml: not valid YAML: line 3")


def test_a_spec_must_be_a_mapping(tmp_path: Path) -> None:
    problems = problems_of(write_specs(tmp_path, client="- just\n- a list\n"))
    assert problems == [f"{tmp_path}/client.yaml: (top level): a spec must be a mapping of "
                        "keys such as name, qbo_entity, source, fields, and this is a list - "
                        "write `key: value` lines, not `- item` lines"]


def test_an_empty_or_missing_directory_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [f"{tmp_path}: no mapping specs (*.yaml) found"]
    assert problems_of(tmp_path / "nope") == [f"{tmp_path}/nope: no such directory of "
                                              "mapping specs"]


def test_spec_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "client.yaml").write_text(textwrap.dedent(CLIENT), encoding="utf-8")
    (tmp_path / "client.yml").write_text(textwrap.dedent(CLIENT), encoding="utf-8")
    assert problems_of(tmp_path) == [f"{tmp_path}/client.yml: name: 'client' is already the "
                                     f"name of {tmp_path}/client.yaml"]


def test_a_reference_to_a_broken_spec_is_not_reported_twice(tmp_path: Path) -> None:
    broken_client = spec_text(CLIENT, **{"qbo_entity: Customer": "qbo_entity: Nope"})
    problems = problems_of(write_specs(tmp_path, client=broken_client, invoice=INVOICE))
    assert len(problems) == 1
    assert "client.yaml: qbo_entity: unknown QBO entity 'Nope'" in problems[0]


def test_reference_cycles_are_rejected(tmp_path: Path) -> None:
    client = spec_text(CLIENT, **{"  DisplayName: {column: name, required: true}":
                                  "  DisplayName: {column: name}\n"
                                  "  ParentRef: {ref: {spec: project, column: project_id}}"})
    project = spec_text(client, **{"name: client": "name: project",
                                   "spec: project": "spec: client"})
    problems = problems_of(write_specs(tmp_path, client=client, project=project))
    assert problems == [f"{tmp_path}/client.yaml: fields.ParentRef: reference cycle client -> "
                        "project -> client; a spec cannot depend on itself through its "
                        "references"]


def test_a_spec_referring_to_itself_is_a_cycle() -> None:
    text = spec_text(CLIENT).replace(
        "  DisplayName: {column: name, required: true}",
        "  DisplayName: {column: name}\n  ParentRef: {ref: {spec: client, column: parent_id}}")
    with pytest.raises(SpecError, match="reference cycle client -> client"):
        SpecSet.of(parse_spec(yaml.safe_load(text)))


def test_spec_error_text_lists_every_problem() -> None:
    error = SpecError(["a.yaml: name: x", "b.yaml: fields.X: y"])
    assert str(error) == ("2 problems in the mapping specs:\n  a.yaml: name: x\n"
                          "  b.yaml: fields.X: y")


def test_the_readme_example_spec_is_valid() -> None:
    readme = (REPO_SPECS / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A complete spec", 1)[1]
    example = section.split("```yaml", 1)[1].split("```", 1)[0]
    spec = parse_spec(yaml.safe_load(example), "README.md")
    assert spec.source.filter == "name <> 'test'"
    assert spec.conflict.policy_for("PrimaryEmailAddr.Address") is ConflictPolicy.QBO_WINS
