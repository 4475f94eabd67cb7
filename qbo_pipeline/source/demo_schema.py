"""The demo source database: the tables of a small practice-management app.

Mapping specs are written against these exact table and column names, so renaming one is a
breaking change for `mapping_specs/`.

Conventions:
- integer ids; money is Numeric(12, 2); business dates (work date, issue date...) are Date;
- `created_at`, `updated_at` and `deleted_at` are naive DateTime values that hold UTC;
- a non-null `deleted_at` is a soft delete: the row stays so that the delete can be synced;
- every table with `updated_at` has an index on (updated_at, id), the order in which change
  windows are read page by page, and business dates and foreign keys are indexed.

The generator writes the app's own records with their ids. The lists that QBO records are
imported into (`services`, `classes`, `terms`, `accounts`, `tax_codes`, each row keyed by its
`qbo_id` too) are the exception: rows come from the pipeline as well as from the app, so the
database assigns their ids (an id given by hand would leave PostgreSQL's sequence behind) and,
for a plain insert, their `active` flag and their timestamps (the current UTC time, see
`utc_now`).

`employees` holds the app's users: `employment_type` says how each one is synced (seed 004:
"Employee" as a QBO Employee, "1099 Vendor" as a QBO Vendor, any other type not at all).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

metadata = MetaData()

MONEY = Numeric(12, 2)


class utc_now(FunctionElement[datetime]):
    """The database's current time in UTC as a naive timestamp: the stamps' server default."""

    type = DateTime()
    inherit_cache = True


@compiles(utc_now)
def _compile_utc_now(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's CURRENT_TIMESTAMP is UTC ("YYYY-MM-DD HH:MM:SS").
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "postgresql")
def _compile_utc_now_postgresql(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    # CURRENT_TIMESTAMP into a column without time zone would keep the session's local time.
    return "timezone('UTC', CURRENT_TIMESTAMP)"


def _created_updated(*, server_default: bool = False) -> list[Column[object]]:
    """`server_default`: a plain insert gets both stamped with the database's UTC time."""
    default = utc_now() if server_default else None
    return [
        Column("created_at", DateTime(), nullable=False, server_default=default),
        Column("updated_at", DateTime(), nullable=False, server_default=default),
    ]


def _timestamps(*, server_default: bool = False) -> list[Column[object]]:
    return [
        *_created_updated(server_default=server_default),
        Column("deleted_at", DateTime(), nullable=True),
    ]


def _change_index(table_name: str) -> Index:
    # Keyset paging of change windows orders by (updated_at, id): one index serves both.
    return Index(f"ix_{table_name}_updated_at", "updated_at", "id")


clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("email", String(100)),
    Column("phone", String(30)),
    Column("contact_first_name", String(50)),
    Column("contact_last_name", String(50)),
    Column("address_line1", String(100)),
    Column("address_line2", String(100)),
    Column("city", String(50)),
    Column("state", String(30)),
    Column("postal_code", String(20)),
    Column("active", Boolean, nullable=False),
    *_timestamps(),
    _change_index("clients"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False, index=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("email", String(100)),
    Column("phone", String(30)),
    Column("contact_first_name", String(50)),
    Column("contact_last_name", String(50)),
    Column("job_address_line1", String(100)),
    Column("job_city", String(50)),
    Column("job_state", String(30)),
    Column("job_postal_code", String(20)),
    Column("active", Boolean, nullable=False),
    *_timestamps(),
    _change_index("projects"),
)

# The app's users. Only the types below are synced (seed 004: "In order for a User to sync,
# they need a User Type of either Employee or 1099 Vendor"); NULL is a user of neither.
EMPLOYEE_TYPE = "Employee"
CONTRACTOR_TYPE = "1099 Vendor"

employees = Table(
    "employees",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(50), nullable=False),
    Column("last_name", String(50), nullable=False),
    Column("email", String(100)),
    Column("phone", String(30)),
    Column("employment_type", String(20), nullable=True),
    Column("active", Boolean, nullable=False),
    *_timestamps(),
    _change_index("employees"),
)

time_entries = Table(
    "time_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("employee_id", Integer, ForeignKey("employees.id"), nullable=False, index=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("work_date", Date, nullable=False, index=True),
    Column("hours", Numeric(5, 2), nullable=False),
    Column("description", String(200)),
    Column("billable", Boolean, nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("hourly_rate", MONEY, nullable=False),
    # The service worked on, by name (as an invoice line names one): QBO's ItemRef.
    Column("service_name", String(100), nullable=True),
    *_timestamps(),
    _change_index("time_entries"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    # QBO's DocNumber holds at most 21 characters.
    Column("number", String(21), nullable=False, unique=True),
    Column("issue_date", Date, nullable=False, index=True),
    Column("due_date", Date, nullable=False),
    Column("notes", Text),
    Column("tax_rate", Numeric(6, 4), nullable=False),
    Column("tax_amount", MONEY, nullable=False),
    # Free text, no allowed list: the generator writes draft/sent/paid/void and the pipeline
    # may write QBO's view back (PAID).
    Column("status", String(20), nullable=False),
    # What QBO says is still owed, written back by the pipeline; NULL until then.
    Column("balance", MONEY, nullable=True),
    *_timestamps(),
    _change_index("invoices"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("description", String(200)),
    Column("quantity", Numeric(12, 2), nullable=False),
    Column("unit_price", MONEY, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("service_name", String(100), nullable=False),
    UniqueConstraint("invoice_id", "line_no", name="uq_invoice_lines_invoice_line_no"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("payment_date", Date, nullable=False, index=True),
    Column("method", String(30), nullable=False),
    # The payer's check number or transfer id: QBO's PaymentRefNum (at most 21 characters).
    Column("reference", String(21)),
    # The account the payment went into, when the app records one; empty: the company's
    # setting payment_deposit_account, and without that QBO's Undeposited Funds.
    Column("deposit_account", String(100)),
    *_timestamps(),
    _change_index("payments"),
)

# Seed 002's "Change/Write-Offs": part of an invoice the firm will not collect (a courtesy
# discount, a disputed hour). It lowers what the client owes without touching the invoice: in
# QBO a credit memo for the client, applied to the invoice (credit_memo.yaml,
# credit_memo_applied.yaml).
write_offs = Table(
    "write_offs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("write_off_date", Date, nullable=False, index=True),
    Column("reason", String(200)),
    *_timestamps(),
    _change_index("write_offs"),
)

vendors = Table(
    "vendors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("email", String(100)),
    Column("phone", String(30)),
    Column("active", Boolean, nullable=False),
    *_timestamps(),
    _change_index("vendors"),
)

expenses = Table(
    "expenses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("vendor_id", Integer, ForeignKey("vendors.id"), nullable=False, index=True),
    Column("spent_on", Date, nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("category", String(50), nullable=False),
    Column("payment_method", String(30), nullable=False),
    Column("description", String(200)),
    # Seed 004's "Expense Export Status": an expense goes to QBO once paid, or once paid and
    # approved, as the company's setting expense_export_status says.
    Column("paid", Boolean, nullable=False, server_default=false()),
    Column("approved", Boolean, nullable=False, server_default=false()),
    # The QBO account the expense was paid from (a bank account for a check, cash or a
    # transfer, a credit card account for a card): the Purchase's AccountRef.
    Column("paid_from", String(100)),
    *_timestamps(),
    _change_index("expenses"),
)

# Bills from vendors, each line for a project (job): pushed to QBO Bills (seed 004: "bill data
# is a 1-way push into a QuickBooks bill").
bills = Table(
    "bills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("vendor_id", Integer, ForeignKey("vendors.id"), nullable=False, index=True),
    # The vendor's bill number (QBO's DocNumber, unique per vendor, at most 21 characters).
    Column("number", String(21), nullable=False),
    Column("bill_date", Date, nullable=False, index=True),
    Column("due_date", Date),
    Column("memo", String(200)),
    *_timestamps(),
    _change_index("bills"),
)

bill_lines = Table(
    "bill_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("bill_id", Integer, ForeignKey("bills.id"), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    # The expense account the line posts to, by its QBO name.
    Column("category", String(100), nullable=False),
    Column("description", String(200)),
    Column("amount", MONEY, nullable=False),
    UniqueConstraint("bill_id", "line_no", name="uq_bill_lines_bill_line_no"),
)

# QBO bills imported into the app (seed 004: "QuickBooks Bills that have been modified within
# the last 2 weeks can be imported into a Contractors Cloud Contract"), attached to the project
# of their first line's customer; rows come from the pipeline, keyed by qbo_id.
imported_bills = Table(
    "imported_bills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("vendor_id", Integer, ForeignKey("vendors.id"), nullable=True, index=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=True, index=True),
    Column("number", String(21)),
    Column("bill_date", Date),
    Column("due_date", Date),
    Column("amount", MONEY),
    Column("balance", MONEY),
    *_timestamps(server_default=True),
    _change_index("imported_bills"),
)

# The firm's operating and trust bank accounts (seed 002: "Operating Bank Accounts", "Trust
# Bank Accounts"), pushed to QBO as Bank accounts. `kind` is operating or trust;
# `account_number` is the account's number in the chart of accounts (QBO's AcctNum), and of
# the bank's own number only the last four digits are kept.
bank_accounts = Table(
    "bank_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("account_number", String(20)),
    Column("bank_name", String(100)),
    Column("account_last4", String(4)),
    Column("active", Boolean, nullable=False),
    *_timestamps(),
    _change_index("bank_accounts"),
)

# Deposit slips into those accounts (seed 002: "Deposit Slips"), one line per amount deposited:
# `from_account` names the QBO account the money comes from (fee income, the trust liability).
deposit_slips = Table(
    "deposit_slips",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("bank_account_id", Integer, ForeignKey("bank_accounts.id"), nullable=False,
           index=True),
    Column("deposit_date", Date, nullable=False, index=True),
    Column("memo", String(200)),
    *_timestamps(),
    _change_index("deposit_slips"),
)

deposit_slip_lines = Table(
    "deposit_slip_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("deposit_slip_id", Integer, ForeignKey("deposit_slips.id"), nullable=False,
           index=True),
    Column("line_no", Integer, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("from_account", String(100), nullable=False),
    Column("description", String(200)),
    Column("check_number", String(20)),
    UniqueConstraint("deposit_slip_id", "line_no", name="uq_deposit_slip_lines_slip_line_no"),
)

# Costs the firm pays for a matter (project) and bills on to its client (seed 002: "Hard
# Costs"): filing fees, transcripts, experts; paid to a vendor from a bank account.
hard_costs = Table(
    "hard_costs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("vendor_id", Integer, ForeignKey("vendors.id"), nullable=False, index=True),
    Column("bank_account_id", Integer, ForeignKey("bank_accounts.id"), nullable=False,
           index=True),
    Column("incurred_on", Date, nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("description", String(200)),
    # The QBO expense account the cost is booked to; empty: Uncategorized Expense.
    Column("expense_account", String(100)),
    Column("check_number", String(21)),
    *_timestamps(),
    _change_index("hard_costs"),
)

# The app's billable services, imported from QBO Items by the pipeline (upserted by qbo_id);
# the demo generator leaves it empty.
services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("name", String(100), nullable=False),
    Column("description", Text),
    Column("rate", MONEY, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("income_account", String(100), nullable=True),
    *_timestamps(server_default=True),
    _change_index("services"),
)

# Classes and terms: the app's own lists, kept both ways with QBO's (seed 004: "Full 2-way
# sync", "bulk imported ... from QuickBooks Online"); a row made in the app has no qbo_id
# until the pipeline has created it in QBO.
classes = Table(
    "classes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("name", String(100), nullable=False),
    Column("active", Boolean, nullable=False, server_default=true()),
    *_timestamps(server_default=True),
    _change_index("classes"),
)

terms = Table(
    "terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("name", String(100), nullable=False),
    # Due so many days after the invoice date, or (QBO's date-driven terms) on a day of the
    # month: a term has one or the other.
    Column("due_days", Integer, nullable=True),
    Column("day_of_month_due", Integer, nullable=True),
    Column("discount_percent", Numeric(5, 2), nullable=True),
    Column("discount_days", Integer, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    *_timestamps(server_default=True),
    _change_index("terms"),
)

# QBO's chart of accounts and sales tax codes, imported and kept current by the pipeline
# (seeds 003 and 004: "1-way import from QuickBooks Online"); the generator leaves them empty.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("name", String(100), nullable=False),
    Column("account_type", String(50), nullable=True),
    Column("account_sub_type", String(100), nullable=True),
    Column("classification", String(20), nullable=True),
    Column("account_number", String(20), nullable=True),
    Column("description", String(100), nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    *_timestamps(server_default=True),
    _change_index("accounts"),
)

tax_codes = Table(
    "tax_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("qbo_id", String(64), nullable=True, unique=True),
    Column("name", String(100), nullable=False),
    Column("description", String(100), nullable=True),
    Column("taxable", Boolean, nullable=True),
    Column("tax_group", Boolean, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    *_timestamps(server_default=True),
    _change_index("tax_codes"),
)

# Parents before children: the order rows are inserted in and the reverse of the drop order.
TABLES_IN_LOAD_ORDER: tuple[Table, ...] = (
    clients,
    vendors,
    employees,
    services,
    classes,
    terms,
    accounts,
    tax_codes,
    projects,
    time_entries,
    invoices,
    invoice_lines,
    payments,
    write_offs,
    expenses,
    bills,
    bill_lines,
    imported_bills,
    bank_accounts,
    deposit_slips,
    deposit_slip_lines,
    hard_costs,
)
