"""Small specs for the sync core tests, written the way users write them: as YAML."""

from __future__ import annotations

import textwrap

from qbo_pipeline.specs import EntitySpec, parse_spec_text

CUSTOMER = """
name: client
qbo_entity: Customer
source:
  table: clients
  primary_key: id
  updated_at: updated_at
  business_date: created_at
  deleted: deleted_at
fields:
  DisplayName: {column: name, required: true, max_length: 20, pattern: "[^:]*"}
  Active: {column: active, type: boolean}
  BillAddr.Line1: {column: address_line1}
  BillAddr.City: {column: city}
  PrimaryEmailAddr.Address:
    column: email
    required: true
    email: true
    hint: add an email to the client
  GivenName: {column: first_name}
match_keys: [DisplayName]
conflict:
  default: review
  fields:
    GivenName: qbo_wins
    BillAddr.City: source_wins
on_source_delete: inactivate
"""

PROJECT = """
name: project
qbo_entity: Customer
source: {table: projects, primary_key: id, updated_at: updated_at, business_date: created_at}
fields:
  DisplayName: {template: "{number} - {name}", required: true}
  Job: {constant: true}
  ParentRef: {ref: {spec: client, column: client_id}, required: true}
on_source_delete: inactivate
"""

INVOICE = """
name: invoice
qbo_entity: Invoice
source:
  table: invoices
  primary_key: id
  updated_at: updated_at
  business_date: issue_date
  deleted: deleted_at
fields:
  CustomerRef: {ref: {spec: project, column: project_id}, required: true}
  DocNumber: {column: number, required: true, max_length: 21}
  TxnDate: {column: issue_date, type: date}
lines:
  table: invoice_lines
  parent_key: invoice_id
  order_by: line_no
  fields:
    DetailType: {constant: SalesItemLineDetail}
    Description: {column: description, max_length: 10}
    Amount: {column: amount, type: number, required: true, min: 0}
    SalesItemLineDetail.Qty: {column: quantity, type: number}
    SalesItemLineDetail.ItemRef:
      lookup: {qbo_entity: Item, by: Name, column: service_name}
      required: true
  tax_line:
    amount_column: tax_amount
    fields:
      DetailType: {constant: SalesItemLineDetail}
      Description: {template: "Tax ({tax_rate:%})", max_length: 12}
      SalesItemLineDetail.ItemRef: {lookup: {qbo_entity: Item, value: Sales Tax}}
match_keys: [DocNumber]
on_source_delete: void
"""

TIME = """
name: time_entry
qbo_entity: TimeActivity
source: {table: time_entries, primary_key: id, updated_at: updated_at, business_date: work_date}
fields:
  Hours: {column: hours, type: integer, min: 0, max: 24}
  BillableStatus: {column: status, allowed_values: [Billable, NotBillable]}
  Description: {column: description, min_length: 3, allowed_characters: "A-Za-z ", required: true}
on_source_delete: delete
settings:
  approved_only:
    description: Only approved time
    default: true
    when: {column: approved, equals: true}
  billable_only:
    description: Only billable time
    when: {column: status, one_of: [Billable, HasBeenBilled]}
"""

# QBO Items pulled into a `services` table: rows upserted by the QBO Id they hold.
SERVICE = """
name: service
qbo_entity: Item
direction: pull
source: {table: services, primary_key: id, updated_at: updated_at, deleted: deleted_at}
fields:
  Name: {column: name, required: true, max_length: 20}
  Description: {column: description}
  UnitPrice: {column: rate, type: number}
  Taxable: {column: taxable, type: boolean}
  Active: {column: active, type: boolean}
  IncomeAccountRef: {lookup: {qbo_entity: Account, column: income_account}}
pull:
  target: upsert
  qbo_id_column: qbo_id
  filter: "Type = 'Service'"
  on_qbo_delete: mark_inactive
"""

# Clients kept in sync both ways once linked; the email is pushed only, the balance pulled only.
TWO_WAY_CLIENT = """
name: client
qbo_entity: Customer
direction: two_way
source:
  table: clients
  primary_key: id
  updated_at: updated_at
  business_date: created_at
  deleted: deleted_at
fields:
  DisplayName: {column: name, required: true, max_length: 20}
  PrimaryEmailAddr.Address: {column: email, email: true, direction: push}
  PrimaryPhone.FreeFormNumber: {column: phone, max_length: 30}
  Notes: {column: notes}
  Active: {column: active, type: boolean}
  Balance: {column: balance, type: number, direction: pull}
match_keys: [DisplayName]
conflict:
  default: review
on_source_delete: inactivate
pull:
  target: linked
"""

# Invoices pushed, their balance pulled back; fully paid in QBO -> PAID (seed 001).
PAID_INVOICE = """
name: invoice
qbo_entity: Invoice
source:
  table: invoices
  primary_key: id
  updated_at: updated_at
  business_date: issue_date
fields:
  DocNumber: {column: number, required: true}
  TxnDate: {column: issue_date, type: date}
  Balance: {column: balance, type: number, direction: pull}
match_keys: [DocNumber]
on_source_delete: void
pull:
  target: linked
  auto_apply:
    - description: paid in QuickBooks
      when: {field: Balance, equals: 0}
      set: {status: PAID}
"""


def make_spec(text: str, origin: str = "<spec>", **replacements: str) -> EntitySpec:
    """Parse a spec from YAML text after swapping pieces of it, as the loader reads a file;
    `origin` names it in errors."""
    return parse_spec_text(spec_text(text, **replacements), origin)


def spec_text(text: str, **replacements: str) -> str:
    """YAML text dedented, with each `old` piece (which must be there) swapped for `new`."""
    text = textwrap.dedent(text)
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text
