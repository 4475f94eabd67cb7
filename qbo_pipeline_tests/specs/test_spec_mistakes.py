"""Realistic mistakes in mapping specs, each refused at load time as `file: path: message`.

Every row is a small set of spec files with one mistake in one of them. Loading the directory
must raise the loader's own SpecError (never a KeyError, TypeError or a YAML traceback) with
exactly the expected number of problems, one of them at the exact path and saying how to fix
it, and every problem naming its file first. Source columns are not checked: a spec does not
declare its source's columns (they are only known once the database is read), so a misspelt
column or `{unknown_column}` in a template is reported per row at run time instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qbo_pipeline.specs import SpecError, load_specs
from qbo_pipeline_tests.sync.sample_specs import make_spec, spec_text

CLIENT = """
name: client
qbo_entity: Customer
source:
  table: clients
  primary_key: id
  updated_at: updated_at
  business_date: created_at
fields:
  DisplayName: {column: name, required: true}
  CompanyName: {column: company}
  PrimaryEmailAddr.Address: {column: email, email: true}
  BillAddr.City: {column: city}
match_keys: [DisplayName]
conflict:
  default: review
on_source_delete: inactivate
"""

INVOICE = """
name: invoice
qbo_entity: Invoice
source: {table: invoices, primary_key: id, updated_at: updated_at, business_date: issue_date}
fields:
  CustomerRef: {ref: {spec: client, column: client_id}, required: true}
  DocNumber: {column: number}
  Balance: {column: balance, type: number, direction: pull}
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    DetailType: {constant: SalesItemLineDetail}
    Amount: {column: amount, type: number}
    SalesItemLineDetail.ItemRef: {lookup: {qbo_entity: Item, by: Name, column: service}}
match_keys: [DocNumber]
on_source_delete: void
pull:
  target: linked
  filter: "Balance > '0'"
  auto_apply:
    - when: {field: Balance, equals: 0}
      set: {status: paid}
"""

# QBO's services, only imported: nothing it maps can be created from the app.
PULLED_SERVICE = """
name: service
qbo_entity: Item
direction: pull
source: {table: services, primary_key: id, updated_at: updated_at}
fields:
  Name: {column: name}
pull: {target: upsert, qbo_id_column: qbo_id}
"""

BASE: dict[str, str | bytes | None] = {"client": CLIENT, "invoice": INVOICE}
CREATING_LOOKUP = "{lookup: {qbo_entity: Item, by: Name, column: service}}"


def client(**replacements: str) -> dict[str, str | bytes | None]:
    return {"client": spec_text(CLIENT, **replacements)}


def invoice(**replacements: str) -> dict[str, str | bytes | None]:
    return {"invoice": spec_text(INVOICE, **replacements)}


def alone(text: str) -> dict[str, str | bytes | None]:
    """Only a client file: a mistake in its name would otherwise break the invoice's ref."""
    return {"client": text, "invoice": None}


@dataclass(frozen=True)
class Mistake:
    """Spec files (merged over BASE; None removes one), and the problem they must produce."""

    files: Mapping[str, str | bytes | None]
    path: str  # what follows "<file>: " up to the next ": "
    message: str | tuple[str, ...]  # helpful parts of the message
    file: str = "client"
    count: int = 1
    set_level: bool = False  # only visible with the other specs (references, file names)
    extra: tuple[str, ...] = field(default=())


MISTAKES: dict[str, Mistake] = {
    # -- QBO field names, checked against the catalog wherever a spec names one ------------
    "misspelt QBO field": Mistake(
        client(**{"CompanyName:": "CompanyNmae:"}), "fields.CompanyNmae",
        "'CompanyNmae' is not a field of a QuickBooks Customer - did you mean 'CompanyName'?"),
    "misspelt part of an email": Mistake(
        client(**{"PrimaryEmailAddr.Address:": "PrimaryEmailAddr.Adress:"}),
        "fields.PrimaryEmailAddr.Adress",
        "'Adress' is not a field of PrimaryEmailAddr (a QuickBooks EmailAddress) - did you "
        "mean 'Address'?"),
    "misspelt address object": Mistake(
        client(**{"BillAddr.City:": "BilAddr.City:"}), "fields.BilAddr.City",
        "did you mean 'BillAddr'?"),
    "unknown part of an address": Mistake(
        client(**{"BillAddr.City:": "BillAddr.Town:"}), "fields.BillAddr.Town",
        "'Town' is not a field of BillAddr (a QuickBooks PhysicalAddress) (its fields: City,"),
    "field name in the wrong case": Mistake(
        client(**{"CompanyName:": "companyName:"}), "fields.companyName",
        "did you mean 'CompanyName'?"),
    "a part of a plain value": Mistake(
        client(**{"CompanyName:": "CompanyName.Legal:"}), "fields.CompanyName.Legal",
        "CompanyName is a plain value in QuickBooks and has no part 'Legal'"),
    "misspelt line field": Mistake(
        invoice(**{"    Amount:": "    Amout:"}), "lines.fields.Amout",
        "'Amout' is not a field of a QuickBooks Invoice line - did you mean 'Amount'?",
        file="invoice"),
    "misspelt part of a line detail": Mistake(
        invoice(**{"SalesItemLineDetail.ItemRef:": "SalesItemLineDetail.ItmRef:"}),
        "lines.fields.SalesItemLineDetail.ItmRef", "did you mean 'ItemRef'?", file="invoice"),
    "line detail of another kind of transaction": Mistake(
        invoice(**{"    Amount: {column: amount, type: number}":
                   "    Amount: {column: amount, type: number}\n"
                   "    AccountBasedExpenseLineDetail.AccountRef.value: {column: account}"}),
        "lines.fields.AccountBasedExpenseLineDetail.AccountRef.value",
        "'AccountBasedExpenseLineDetail' is not a field of a QuickBooks Invoice line",
        file="invoice"),
    "misspelt line DetailType": Mistake(
        invoice(**{"{constant: SalesItemLineDetail}": "{constant: SalesItemLineDetal}"}),
        "lines.fields.DetailType",
        "'SalesItemLineDetal' is not a DetailType of Invoice lines - did you mean "
        "'SalesItemLineDetail'?", file="invoice"),
    "misspelt pulled field": Mistake(
        invoice(**{"  Balance: {column": "  Balnce: {column"}), "fields.Balnce",
        "did you mean 'Balance'?", file="invoice"),
    "misspelt match key": Mistake(
        client(**{"match_keys: [DisplayName]": "match_keys: [DisplayNme]"}), "match_keys[0]",
        "'DisplayNme' is not a field of a QuickBooks Customer - did you mean 'DisplayName'?"),
    "match key that is not mapped": Mistake(
        client(**{"match_keys: [DisplayName]": "match_keys: [[GivenName, DisplayName]]"}),
        "match_keys[0]", "'GivenName' is not a mapped field"),
    "misspelt conflict override": Mistake(
        client(**{"  default: review": "  fields: {PrimaryEmailAddr.Adress: qbo_wins}"}),
        "conflict.fields.PrimaryEmailAddr.Adress", "did you mean 'Address'?"),
    "conflict override of an unmapped field": Mistake(
        client(**{"  default: review": "  fields: {Notes: qbo_wins}"}),
        "conflict.fields.Notes", "'Notes' is not a mapped field"),
    "misspelt auto-apply field": Mistake(
        invoice(**{"field: Balance": "field: Balanse"}), "pull.auto_apply[0].when.field",
        "did you mean 'Balance'?", file="invoice"),
    "misspelt lookup by": Mistake(
        invoice(**{"by: Name": "by: Nmae"}),
        "lines.fields.SalesItemLineDetail.ItemRef.lookup.by",
        "'Nmae' is not a field of a QuickBooks Item - did you mean 'Name'?", file="invoice"),
    "reserved field SyncToken": Mistake(
        client(**{"  CompanyName:": "  SyncToken:"}), "fields.SyncToken",
        "'SyncToken' is written by the sync and cannot be mapped"),
    "reserved field Id": Mistake(
        client(**{"  CompanyName:": "  Id:"}), "fields.Id",
        "'Id' is written by the sync and cannot be mapped"),
    "field QBO computes, pushed": Mistake(
        invoice(**{"  DocNumber: {column: number}":
                   "  DocNumber: {column: number}\n  TotalAmt: {column: total, type: number}"}),
        "fields.TotalAmt", "QuickBooks computes TotalAmt itself and ignores a value sent for "
        "it - give it direction: pull", file="invoice"),
    # -- the kind of value a field takes -----------------------------------------------------
    "column into a reference": Mistake(
        invoice(**{"CustomerRef: {ref: {spec: client, column: client_id}, required: true}":
                   "CustomerRef: {column: qbo_customer_id}"}),
        "fields.CustomerRef", "CustomerRef is a QuickBooks reference ({value, name}): map it "
        "with ref", file="invoice"),
    "column into a whole address": Mistake(
        client(**{"BillAddr.City:": "BillAddr:"}), "fields.BillAddr",
        "BillAddr is a QuickBooks PhysicalAddress, not a plain value: map its parts"),
    "ref into a plain field": Mistake(
        client(**{"CompanyName: {column: company}":
                  "CompanyName: {lookup: {qbo_entity: Customer, by: DisplayName, "
                  "column: company}}"}),
        "fields.CompanyName", "lookup gives a QuickBooks reference"),
    "lookup of the wrong entity": Mistake(
        invoice(**{"qbo_entity: Item, by: Name": "qbo_entity: Account, by: Name"}),
        "lines.fields.SalesItemLineDetail.ItemRef.lookup.qbo_entity",
        "ItemRef refers to a QuickBooks Item: look up Item records, not Account records",
        file="invoice"),
    "ref to a spec of the wrong entity": Mistake(
        invoice(**{"{lookup: {qbo_entity: Item, by: Name, column: service}}":
                   "{ref: {spec: client, column: client_id}}"}),
        "lines.fields.SalesItemLineDetail.ItemRef",
        "ItemRef refers to a QuickBooks Item, but spec 'client' syncs Customer records",
        file="invoice", set_level=True),
    "a typed bare Id": Mistake(
        invoice(**{"{ref: {spec: client, column: client_id}, required: true}":
                   "{ref: {spec: client, column: client_id, id_only: true, type: Customer}}"}),
        "fields.CustomerRef.ref", "a bare Id (id_only) carries no type", file="invoice"),
    # -- entities, specs and their references -------------------------------------------------
    "unknown QBO entity": Mistake(
        client(**{"qbo_entity: Customer": "qbo_entity: Custmer"}), "qbo_entity",
        "unknown QBO entity 'Custmer' - did you mean 'Customer'?"),
    "reference data is not syncable": Mistake(
        client(**{"qbo_entity: Customer": "qbo_entity: CompanyInfo"}), "qbo_entity",
        "unknown QBO entity 'CompanyInfo'"),
    "reference to an unknown spec": Mistake(
        invoice(**{"spec: client": "spec: clinet"}), "fields.CustomerRef",
        "unknown spec 'clinet' - did you mean 'client'? (known: client, invoice)",
        file="invoice", set_level=True),
    "circular references": Mistake(
        {**client(**{"  CompanyName: {column: company}":
                     "  ParentRef: {ref: {spec: project, column: project_id}}"}),
         "project": spec_text(CLIENT, **{"name: client": "name: project",
                                         "  CompanyName: {column: company}":
                                         "  ParentRef: {ref: {spec: client, column: client_id}}"
                                         })},
        "fields.ParentRef", "reference cycle client -> project -> client", set_level=True),
    "spec name that does not match the file": Mistake(
        alone(spec_text(CLIENT, **{"name: client": "name: customer"})), "name",
        "'customer' must match the file name 'client'", set_level=True),
    "spec name not in snake_case": Mistake(
        alone(spec_text(CLIENT, **{"name: client": "name: Client"})), "name",
        "'Client' must be snake_case"),
    "delete action the entity cannot take": Mistake(
        client(**{"on_source_delete: inactivate": "on_source_delete: delete"}),
        "on_source_delete", "is not possible for a names-list entity (Customer): use "
        "inactivate or ignore"),
    "lines on an entity without lines": Mistake(
        client(**{"match_keys: [DisplayName]": "lines: {table: l, parent_key: p, order_by: n, "
                  "fields: {Amount: {column: amount}}}\nmatch_keys: [DisplayName]"}),
        "lines", "Customer records have no lines"),
    "transaction without a business date": Mistake(
        invoice(**{", business_date: issue_date": ""}), "source.business_date",
        "is required: Invoice records pushed to QuickBooks are dated by it", file="invoice"),
    "pulled field without a pull section": Mistake(
        client(**{"CompanyName: {column: company}":
                  "CompanyName: {column: company, direction: pull}"}),
        "pull", "is required: CompanyName flow from QuickBooks"),
    # -- keys and values of the wrong kind ----------------------------------------------------
    "unknown top-level key": Mistake(
        client(**{"fields:": "feilds:"}), "feilds", "unknown key 'feilds' - did you mean "
        "'fields'?", count=2, extra=("fields: is required",)),
    "unknown key in a field": Mistake(
        client(**{"required: true": "requried: true"}), "fields.DisplayName.requried",
        "unknown key 'requried' - did you mean 'required'?"),
    "unknown direction": Mistake(
        client(**{"qbo_entity: Customer": "qbo_entity: Customer\ndirection: puhs"}),
        "direction", "Input should be 'push', 'pull' or 'two_way' (got 'puhs'; did you mean "
        "'push'?)"),
    "unknown conflict policy": Mistake(
        client(**{"default: review": "default: qbo_win"}), "conflict.default",
        "Input should be 'review', 'source_wins', 'qbo_wins' or 'last_modified_wins' (got "
        "'qbo_win'; did you mean 'qbo_wins'?)"),
    "unknown delete action": Mistake(
        client(**{"on_source_delete: inactivate": "on_source_delete: deactivate"}),
        "on_source_delete", "Input should be 'inactivate', 'void', 'delete', 'report' or "
        "'ignore' (got 'deactivate'; did you mean 'inactivate'?)"),
    "unknown pull target": Mistake(
        invoice(**{"target: linked": "target: link"}), "pull.target",
        "Input should be 'upsert' or 'linked' (got 'link'; did you mean 'linked'?)",
        file="invoice"),
    "unknown value type": Mistake(
        client(**{"{column: email, email: true}": "{column: email, type: text}"}),
        "fields.PrimaryEmailAddr.Address.type",
        "Input should be 'string', 'boolean', 'integer', 'number' or 'date' (got 'text')"),
    "string where a list is expected": Mistake(
        client(**{"match_keys: [DisplayName]": "match_keys: DisplayName"}), "match_keys",
        "should be a list ([a, b], or `- item` lines), not 'DisplayName' - write [DisplayName]"),
    "string where allowed values are expected": Mistake(
        client(**{"{column: company}": "{column: company, allowed_values: Acme}"}),
        "fields.CompanyName.allowed_values", "write [Acme] for a list of one"),
    "number where a string is expected": Mistake(
        client(**{"{column: company}": "{column: 12}"}), "fields.CompanyName.column",
        "should be text, not 12 - put it in quotes ('12') if it is meant as text"),
    "a field with no mapping": Mistake(
        client(**{"  CompanyName: {column: company}": "  CompanyName:"}),
        "fields.CompanyName", "should be a mapping of keys (`key: value` lines), not nothing"),
    "two value sources": Mistake(
        client(**{"{column: company}": "{column: company, constant: Acme}"}),
        "fields.CompanyName", "give exactly one of column, template, constant, ref, lookup "
        "(found: column, constant)"),
    "a required key left out": Mistake(
        client(**{"  primary_key: id\n": ""}), "source.primary_key", "is required"),
    "key that YAML reads as a flag": Mistake(
        client(**{"on_source_delete: inactivate": "on_source_delete: inactivate\nsettings:\n"
                  "  on: {description: d, when: {column: approved, equals: true}}"}),
        "settings", "the key true is not text (YAML reads yes/no/on/off/true/false as a flag)"),
    "unquoted date": Mistake(
        invoice(**{"  DocNumber: {column: number}":
                   "  DocNumber: {column: number}\n  DueDate: {constant: 2024-01-31}"}),
        "fields.DueDate.constant", "a date or time (2024-01-31) is not a plain value: quote "
        "dates and times", file="invoice"),
    # -- numbers ---------------------------------------------------------------------------------
    "negative length": Mistake(
        client(**{"{column: company}": "{column: company, max_length: -1}"}),
        "fields.CompanyName.max_length", "Input should be greater than or equal to 0 (got -1)"),
    "zero days": Mistake(
        invoice(**{"target: linked": "target: linked\n  modified_within_days: 0"}),
        "pull.modified_within_days", "Input should be greater than 0 (got 0)", file="invoice"),
    "inverted lengths": Mistake(
        client(**{"{column: company}": "{column: company, min_length: 5, max_length: 2}"}),
        "fields.CompanyName", "min_length 5 is above max_length 2"),
    "infinite bound": Mistake(
        invoice(**{"{column: amount, type: number}": "{column: amount, type: number, max: .inf}"}),
        "lines.fields.Amount.max", "should be a finite number, not inf", file="invoice"),
    # -- templates and patterns -------------------------------------------------------------------
    "template with an unclosed brace": Mistake(
        client(**{"{column: name, required: true}": "{template: '{number - {name}'}"}),
        "fields.DisplayName", "template '{number - {name}' is malformed"),
    "template with a position": Mistake(
        client(**{"{column: name, required: true}": "{template: '{0} - {name}'}"}),
        "fields.DisplayName", "uses {0}: put a plain column name in braces"),
    "template with an unknown conversion": Mistake(
        client(**{"{column: name, required: true}": "{template: '{name!u}'}"}),
        "fields.DisplayName", "{name!u}: after '!' only r, s or a can follow"),
    "template with a format that fits nothing": Mistake(
        client(**{"{column: name, required: true}": "{template: '{name:q}'}"}),
        "fields.DisplayName", "':q' formats no text, number or date"),
    "unquoted template": Mistake(
        client(**{"{column: name, required: true}": "{template: {number} - {name}}"}),
        "not valid YAML", ("line 10, column 36: ", "quote a value that holds braces, e.g. "
                           "template: \"{number} - {name}\"")),
    "pattern that does not compile": Mistake(
        client(**{"{column: company}": "{column: company, pattern: '[A-Z'}"}),
        "fields.CompanyName", "pattern is not a valid regular expression"),
    "pattern repeated beyond what re allows": Mistake(
        client(**{"{column: company}": "{column: company, pattern: 'a{99999999999}'}"}),
        "fields.CompanyName", "pattern is not a valid regular expression"),
    # -- filters ----------------------------------------------------------------------------------
    "SQL filter that starts with WHERE": Mistake(
        client(**{"  business_date: created_at":
                  "  business_date: created_at\n  filter: WHERE active = 1"}),
        "source.filter", "starts with WHERE - give only the condition"),
    "SQL filter with an unclosed quote": Mistake(
        client(**{"  business_date: created_at":
                  "  business_date: created_at\n  filter: \"name <> 'test\""}),
        "source.filter", "the ' at character 9 is never closed"),
    "SQL query ending in a semicolon": Mistake(
        client(**{"table: clients": "query: SELECT * FROM clients;"}), "source.query",
        "holds ';' at character 22"),
    "QBO filter with OR": Mistake(
        invoice(**{"filter: \"Balance > '0'\"": "filter: \"Balance > '0' OR DocNumber = '1'\""}),
        "pull.filter", "QBO has no OR: use IN (...)", file="invoice"),
    "QBO filter on a misspelt field": Mistake(
        invoice(**{"filter: \"Balance > '0'\"": "filter: \"Balanse > '0'\""}),
        "pull.filter", "did you mean 'Balance'?", file="invoice"),
    "QBO filter with double quotes": Mistake(
        invoice(**{"filter: \"Balance > '0'\"": "filter: 'DocNumber = \"1001\"'"}),
        "pull.filter", "QBO strings take straight single quotes", file="invoice"),
    "setting condition without a value": Mistake(
        client(**{"on_source_delete: inactivate": "on_source_delete: inactivate\nsettings:\n"
                  "  active_only: {description: d, when: {column: active}}"}),
        "settings.active_only.when", "a condition needs exactly one of 'equals' or 'one_of'"),
    # -- the file itself ---------------------------------------------------------------------
    "duplicate key": Mistake(
        client(**{"  CompanyName: {column: company}": "  DisplayName: {column: company}"}),
        "fields.DisplayName", "'DisplayName' is given twice (line 10, then line 11); YAML "
        "would silently keep only the last one"),
    "duplicate top-level key": Mistake(
        client(**{"on_source_delete: inactivate":
                  "on_source_delete: inactivate\nmatch_keys: [CompanyName]"}),
        "match_keys", "'match_keys' is given twice (line 14, then line 18)"),
    "not UTF-8": Mistake(
        {"client": spec_text(CLIENT).replace("company}", "soci\u00e9t\u00e9}")
         .encode("latin-1")}, "not UTF-8 text", "line 11, column 29: byte 0xe9 cannot be read "
        "as UTF-8 - save the file as UTF-8"),
    "UTF-16": Mistake(
        {"client": spec_text(CLIENT).encode("utf-16")}, "not UTF-8 text",
        "it looks like UTF-16"),
    "empty file": Mistake(alone(""), "(top level)", "the spec is empty"),
    "only comments": Mistake(alone("# client spec, to do\n"), "(top level)", "the spec is empty"),
    "a list instead of a mapping": Mistake(
        alone("- name: client\n- qbo_entity: Customer\n"), "(top level)",
        "a spec must be a mapping of keys such as name, qbo_entity, source, fields, and this "
        "is a list"),
    "tab indentation": Mistake(
        client(**{"  DisplayName:": "\tDisplayName:"}), "not valid YAML",
        ("line 10, column 1: ", "indent with spaces: YAML does not allow tabs")),
    "wrong indentation": Mistake(
        client(**{"  primary_key: id": "   primary_key: id"}), "not valid YAML",
        ("line 6, column 15: ", "or check the indentation")),
    "two documents in one file": Mistake(
        client(**{"on_source_delete: inactivate": "on_source_delete: inactivate\n---\n"}),
        "not valid YAML", "a spec file holds one spec: remove the '---' line"),
    "impossible date": Mistake(
        invoice(**{"  DocNumber: {column: number}":
                   "  DocNumber: {column: number}\n  DueDate: {constant: 2024-02-30}"}),
        "not valid YAML", "line 8, column 23: cannot read '2024-02-30': day is out of range "
        "for month - quote it", file="invoice"),
    # -- lookups that create what QBO lacks (seed 003: "created on the fly") ---------------
    "a lookup of a fixed value that creates": Mistake(
        invoice(**{CREATING_LOOKUP: "{lookup: {qbo_entity: Item, value: Sales Tax, "
                                    "create: {spec: service}}}"}),
        "lines.fields.SalesItemLineDetail.ItemRef.lookup",
        "a lookup of a fixed value does not create its record", file="invoice"),
    "a lookup created through an unknown spec": Mistake(
        invoice(**{CREATING_LOOKUP: "{lookup: {qbo_entity: Item, column: service, "
                                    "create: {spec: servise}}}"}),
        "lines.fields.SalesItemLineDetail.ItemRef", "unknown spec 'servise'", file="invoice",
        set_level=True),
    "a lookup created through a spec of another entity": Mistake(
        invoice(**{CREATING_LOOKUP: "{lookup: {qbo_entity: Item, column: service, "
                                    "create: {spec: client}}}"}),
        "lines.fields.SalesItemLineDetail.ItemRef",
        "ItemRef refers to a QuickBooks Item, but spec 'client' syncs Customer records",
        file="invoice", set_level=True, count=2),
    "a lookup created through a pull-only spec": Mistake(
        {**invoice(**{CREATING_LOOKUP: "{lookup: {qbo_entity: Item, column: service, "
                                       "create: {spec: service}}}"}),
         "service": PULLED_SERVICE},
        "lines.fields.SalesItemLineDetail.ItemRef",
        ("lookup.create: spec 'service' only pulls, so it cannot create a QuickBooks record",
         "give it direction: two_way"), file="invoice", set_level=True, count=2),
    "a lookup default from a setting that is not a text setting": Mistake(
        invoice(**{CREATING_LOOKUP: "{lookup: {qbo_entity: Item, column: service, "
                                    "default: {setting: sync_mode}}}"}),
        "lines.fields.SalesItemLineDetail.ItemRef.lookup.default",
        "'sync_mode' is not a text setting of company_settings.yaml", file="invoice",
        set_level=True),
    "control character": Mistake(
        client(**{"{column: company}": "{column: comp\x07any}"}), "not valid YAML",
        "the character U+0007 is not allowed in YAML - remove it"),
}


def parts(mistake: Mistake) -> tuple[str, ...]:
    return (mistake.message,) if isinstance(mistake.message, str) else mistake.message


def write(directory: Path, files: Mapping[str, str | bytes | None]) -> None:
    for stem, content in {**BASE, **files}.items():
        if content is None:
            continue
        path = directory / f"{stem}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(spec_text(content), encoding="utf-8")


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_refused_with_its_file_and_path(tmp_path: Path, mistake: Mistake) -> None:
    write(tmp_path, mistake.files)
    with pytest.raises(SpecError) as raised:
        load_specs(tmp_path)
    problems = raised.value.problems
    files = tuple(f"{tmp_path}/{path.name}: " for path in tmp_path.iterdir())
    assert all(problem.startswith(files) for problem in problems), problems
    where = f"{tmp_path}/{mistake.file}.yaml: {mistake.path}: "
    found = [problem for problem in problems if problem.startswith(where)]
    assert found, problems
    assert all(part in found[0].removeprefix(where) for part in parts(mistake)), found[0]
    assert len(problems) == mistake.count, problems
    for other in mistake.extra:
        assert f"{tmp_path}/{mistake.file}.yaml: {other}" in problems


TEXT_MISTAKES = {name: mistake for name, mistake in MISTAKES.items()
                 if not mistake.set_level and isinstance(mistake.files.get(mistake.file), str)}


@pytest.mark.parametrize("mistake", TEXT_MISTAKES.values(), ids=TEXT_MISTAKES.keys())
def test_each_mistake_is_refused_from_text_too(mistake: Mistake) -> None:
    """The helper that parses test specs from text reads YAML as the loader reads files."""
    text = mistake.files[mistake.file]
    assert isinstance(text, str)
    with pytest.raises(SpecError) as raised:
        make_spec(text, f"{mistake.file}.yaml")
    where = f"{mistake.file}.yaml: {mistake.path}: "
    assert any(problem.startswith(where) and all(part in problem for part in parts(mistake))
               for problem in raised.value.problems), raised.value.problems


def test_the_table_covers_enough_mistakes() -> None:
    assert len(MISTAKES) >= 30


def test_the_error_text_begins_with_the_count_and_lists_each_problem(tmp_path: Path) -> None:
    write(tmp_path, MISTAKES["unknown top-level key"].files)
    with pytest.raises(SpecError) as raised:
        load_specs(tmp_path)
    lines = str(raised.value).splitlines()
    assert lines[0] == "2 problems in the mapping specs:"
    assert all(line.startswith(f"  {tmp_path}/client.yaml: ") for line in lines[1:])
