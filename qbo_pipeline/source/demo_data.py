"""Fill the demo source database with realistic, seeded practice-management data.

The same seed, client count and `today` always give the same rows, so tests and demos can
name records by id. Size is driven by the number of clients: each client brings 0-3 projects,
each project 8-22 time entries and 0-3 invoices of 1-5 lines, and the names lists grow with
them: users (employees, who log the time, and subcontractors of employment type "1099 Vendor",
who log none, with one user of no synced type) and vendors; the app's classes and payment terms
are a fixed few. About half the clients with open projects have a vendor's bill of 1-3 lines,
each for one of their projects (drawn from a stream of their own, so that adding bills moved no
other row). Seed 002's banking: the firm's five bank accounts (operating and trust), a
deposit slip of 1-3 lines for every two clients, and 0-2 hard costs per open project.
About `ROWS_PER_CLIENT` rows per client in all, so a million rows is
`clients_for_rows(1_000_000)` clients. Rows are inserted in chunks, so memory stays flat.
What the pipeline brings back from QBO is left for it: `services`, `accounts`, `tax_codes` and
`imported_bills` stay empty (QBO's Items, chart of accounts, tax codes and recent bills fill
them) and every invoice's `balance` is NULL.

Business dates (work dates, invoice issue dates, payments, expenses, bills) fall on the
`WINDOW_DAYS` days before `today`, so a sync start date inside that range cuts some off.
Every created/updated/deleted timestamp is before midnight UTC that starts `today`: a sync
run at any time on `today` sees every row.

A few rows are wrong on purpose, always on the first clients (see `_CLIENT_WITH_*` below) and
listed with the reason in `DemoSummary.invalid`. They have no dependent rows (a client
without an email has no projects), so exactly those rows fail and no valid row waits on them.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import product
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.reader import create_source_engine, describe_url

Row = dict[str, Any]
Batch = dict[Table, list[Row]]

WINDOW_DAYS = 120
MIN_CLIENTS = 4
CHUNK_ROWS = 5000
# Measured average over large runs; only used to turn a row target into a client count.
ROWS_PER_CLIENT = 47

CENT = Decimal("0.01")

# Word lists, kept compact on purpose.
# fmt: off
FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Daniel", "Elena", "Felix", "Grace", "Hugo", "Isla", "Jonah", "Kara",
    "Liam", "Maya", "Noah", "Olive", "Pablo", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera",
    "Wes", "Ximena", "Yusuf", "Zoe", "Aaron", "Bianca", "Caleb", "Dana", "Emil", "Farah", "Gavin",
    "Hana", "Ivan", "Jade", "Kofi", "Lena", "Marco", "Nina", "Oscar", "Priya", "Rafael", "Sofia",
    "Tomas", "Uma", "Victor", "Wendy", "Yara", "Zane", "Alice", "Bruno", "Clara", "Dev", "Esther",
    "Finn", "Gloria", "Hector", "Ingrid", "Jamal",
)
LAST_NAMES = (
    "Abbott", "Baker", "Castillo", "Dawson", "Ellis", "Fischer", "Garcia", "Harper", "Ibarra",
    "Jensen", "Kowalski", "Lindqvist", "Morales", "Nakamura", "Okafor", "Patel", "Quintero",
    "Reyes", "Schmidt", "Tanaka", "Underwood", "Vasquez", "Whitaker", "Xu", "Young", "Zimmer",
    "Alvarez", "Brennan", "Chen", "Dubois", "Eriksen", "Ferreira", "Gallagher", "Holm", "Ivanova",
    "Jovanovic", "Kim", "Laurent", "Mendes", "Novak", "O'Brien", "Petrov", "Rossi", "Sato",
    "Thompson", "Usman", "Valdez", "Wagner", "Yilmaz", "Zhang", "Adeyemi", "Bauer", "Cohen", "Diaz",
    "Evans", "Fontaine", "Gupta", "Hughes", "Iyer", "Keller", "Lopez", "Moreau", "Nguyen", "Olsen",
    "Park", "Russo", "Silva", "Turner", "Vogel", "Walsh",
)
PROFESSIONS = (
    "Architects", "Dental", "Landscaping", "Engineering", "Law Group", "Builders", "Design",
    "Accounting", "Veterinary", "Surveying", "Interiors", "Roofing", "Consulting", "Physio",
)
ADJECTIVES = (
    "Blue", "Granite", "Silver", "Northern", "Cedar", "Harbor", "Summit", "Red Oak", "Golden",
    "Coastal", "Prairie", "Iron", "Maple", "Evergreen", "Sunrise", "Lakeside", "Copper", "Stone",
)
NOUNS = (
    "Ridge", "Valley", "Bridge", "Point", "Creek", "Field", "Harbor", "Peak", "Grove", "Mill",
    "Crossing", "Hollow", "Bay", "Meadow", "Works", "Gate", "Landing", "Row",
)
FIRM_SUFFIXES = (
    "LLC", "Inc.", "Group", "Partners", "& Co.", "Studio", "Associates",
)
VENDOR_KINDS = (
    "Office Supply", "Hardware", "Print Shop", "Software", "Couriers", "Rentals", "Fuel", "Lumber",
    "Catering", "Telecom", "Insurance", "Cleaning",
)
STREETS = (
    "Main St", "Oak Ave", "Pine St", "Maple Dr", "Cedar Ln", "Elm St", "Lake Rd", "Hill St",
    "Park Ave", "River Rd", "Church St", "Mill Rd", "Spring St", "Market St", "Bay Blvd",
)
CITIES = (
    ("Portland", "OR", "972"), ("Austin", "TX", "787"), ("Denver", "CO", "802"),
    ("Madison", "WI", "537"), ("Raleigh", "NC", "276"), ("Boise", "ID", "837"),
    ("Tucson", "AZ", "857"), ("Albany", "NY", "122"), ("Savannah", "GA", "314"),
    ("Burlington", "VT", "054"), ("Santa Fe", "NM", "875"), ("Spokane", "WA", "992"),
)
AREA_CODES = (
    "503", "512", "303", "608", "919", "208", "520", "518", "912", "802",
)
PROJECT_KINDS = (
    "Kitchen remodel", "Office fit-out", "Annual audit", "Site survey", "Garden redesign",
    "Roof replacement", "Tax planning", "Clinic expansion", "Brand refresh", "Estate plan",
    "Warehouse lighting", "Bathroom renovation", "Lease review", "Facade repair",
)
# (service name, hourly or unit price in dollars, None when priced per purchase)
SERVICES: tuple[tuple[str, int | None], ...] = (
    ("Consulting", 150), ("Design", 125), ("Drafting", 95), ("Site visit", 180),
    ("Project management", 135), ("Materials", None),
)
TIME_TASKS = (
    "Client meeting", "Drawings", "Site inspection", "Research", "Review and revisions",
    "Phone call", "Permit paperwork", "Estimating", "Coordination with contractors",
)
# fmt: on
# The app's classes and payment terms (name, due days, discount %, discount days): "Net 30"
# is also in every new QBO company, so it is matched there by name, not created twice.
CLASSES = ("Residential", "Commercial")
TERMS: tuple[tuple[str, int, Decimal | None, int | None], ...] = (
    ("Net 30", 30, None, None), ("Net 45", 45, None, None),
    ("2% 10 Net 30", 30, Decimal("2.00"), 10),
)
# Each an expense account of a new QBO company, by its name there (an expense's AccountRef).
EXPENSE_CATEGORIES = ("Office Supplies", "Travel", "Meals and Entertainment",
                      "Supplies and Materials", "Cost of Labor", "Uncategorized Expense")
# A category no QBO company has: the expense or bill line naming it is held back.
UNKNOWN_CATEGORY = "Yacht Charter"
# The accounts expenses are paid from in every new QBO company: a card from the credit card
# account, the rest (check, cash, transfer) from the bank.
CARD_METHOD = "Credit Card"
CARD_ACCOUNT = "Credit Card"
BANK_ACCOUNT = "Checking"
PAYMENT_METHODS = ("Check", "Credit Card", "ACH", "Cash")
TAX_RATES = (Decimal("0"), Decimal("0.0625"), Decimal("0.0725"), Decimal("0.0825"))
HOURLY_RATES = (85, 95, 110, 125, 140, 160, 185)
# The firm's bank accounts (name, kind, chart number, bank, last four digits of the bank's
# number). "Checking" is also in every new QBO company, so it is linked there by name.
BANK_ACCOUNTS = (
    ("Checking", "operating", "1010", "First Harbor Bank", "4821"),
    ("Operating - Payroll", "operating", "1015", "First Harbor Bank", "7730"),
    ("IOLTA Trust", "trust", "1020", "Granite State Bank", "0917"),
)
# Wrong on purpose: a kind that is neither operating nor trust, and the name of an expense
# account that every new QBO company has (QBO's account names are unique across types).
_BANK_ACCOUNT_OF_NO_KIND = ("Savings Reserve", "savings", "1030", "Granite State Bank", "5512")
_BANK_ACCOUNT_NAMED_LIKE_AN_EXPENSE = ("Travel", "operating", "1040", "First Harbor Bank", "2208")
# Where deposited money comes from, by the kind of account it goes into: fees are income, money
# held in trust is owed to the client (a liability account the demo company has).
DEPOSIT_SOURCES = {"operating": "Services", "trust": "Client Trust Liability"}
_ACCOUNT_QBO_LACKS = "Retainer Income"
HARD_COSTS = (
    "Court filing fee", "Deposition transcript", "Expert witness retainer", "Process server",
    "Medical records copies", "Courier", "Recording fee", "Title search",
)

# The deliberately invalid rows, by the client they belong to.
_CLIENT_WITHOUT_EMAIL = 2
_CLIENT_WITH_COLON = 3
_CLIENT_WITH_BAD_PROJECT_EMAIL = 4
_CLIENT_WITH_BAD_TRANSACTIONS = 1


@dataclass(frozen=True)
class InvalidRow:
    """A row generated wrong on purpose, and why the pipeline must reject it."""

    table: str
    id: int
    why: str


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo_data` wrote."""

    url: str
    seed: int
    today: date
    counts: Mapping[str, int]
    soft_deleted: Mapping[str, int]
    invalid: tuple[InvalidRow, ...]

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        lines = [f"demo source database {self.url} (seed {self.seed}, today {self.today}):"]
        lines += [f"  {table}: {count:,}" for table, count in self.counts.items()]
        lines.append(f"  total: {self.total_rows:,} rows")
        deleted = ", ".join(f"{t} {n}" for t, n in self.soft_deleted.items() if n)
        lines.append(f"  soft-deleted: {deleted or 'none'}")
        lines.append("  deliberately invalid rows:")
        lines += [f"    {row.table} #{row.id}: {row.why}" for row in self.invalid]
        return "\n".join(lines)


class DemoDataError(Exception):
    """The demo database cannot be generated as asked."""


def clients_for_rows(rows: int) -> int:
    """How many clients give about `rows` rows in total."""
    return max(MIN_CLIENTS, round(rows / ROWS_PER_CLIENT))


def generate_demo_data(
    url: str | Engine,
    *,
    clients: int,
    seed: int = 7,
    today: date | None = None,
    reset: bool = False,
    chunk_size: int = CHUNK_ROWS,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Create the demo tables at `url` and fill them; `reset` drops existing tables first.

    `today` defaults to the current UTC date, because every timestamp is stored as UTC.
    """
    if clients < MIN_CLIENTS:
        raise DemoDataError(
            f"clients={clients}: the demo needs at least {MIN_CLIENTS} clients to hold its "
            "deliberately invalid rows; ask for more clients"
        )
    engine = url if isinstance(url, Engine) else create_source_engine(url)
    report = progress or (lambda _message: None)
    rows = _DemoRows(random.Random(seed), today or datetime.now(UTC).date(), clients, seed)
    try:
        _prepare_tables(engine, reset=reset, report=report)
        with engine.connect() as connection:
            writer = _ChunkWriter(connection, chunk_size)
            for clients_done, batch in rows.batches():
                if writer.add(batch):
                    report(f"{writer.written:,} rows written, {clients_done:,}/{clients:,} clients")
            writer.flush()
        report(f"done: {writer.written:,} rows written")
    finally:
        if not isinstance(url, Engine):
            engine.dispose()
    return DemoSummary(
        url=describe_url(engine),
        seed=seed,
        today=rows.today,
        counts={table.name: writer.counts[table.name] for table in schema.TABLES_IN_LOAD_ORDER},
        soft_deleted={t.name: rows.soft_deleted[t.name] for t in schema.TABLES_IN_LOAD_ORDER},
        invalid=tuple(sorted(rows.invalid, key=_load_order)),
    )


def _prepare_tables(engine: Engine, *, reset: bool, report: Callable[[str], None]) -> None:
    if reset:
        report("dropping the demo tables")
        schema.metadata.drop_all(engine)
    schema.metadata.create_all(engine)
    with engine.connect() as connection:
        for table in schema.TABLES_IN_LOAD_ORDER:
            if connection.execute(select(table.c.id).limit(1)).first() is not None:
                raise DemoDataError(
                    f"table {table.name} in {describe_url(engine)} already holds rows; "
                    "generate with reset=True (demo-data --reset) to replace the demo data"
                )
    report(f"created the demo tables in {describe_url(engine)}")


class _ChunkWriter:
    """Buffers rows and inserts them with executemany, parents first, one commit per chunk."""

    def __init__(self, connection: Connection, chunk_size: int) -> None:
        self._connection = connection
        self._chunk_size = chunk_size
        self._buffers: Batch = {table: [] for table in schema.TABLES_IN_LOAD_ORDER}
        self._pending = 0
        self.counts: Counter[str] = Counter()
        self.written = 0

    def add(self, batch: Batch) -> bool:
        """Buffer a batch; returns True when that filled a chunk and it was written."""
        for table, rows in batch.items():
            self._buffers[table].extend(rows)
            self._pending += len(rows)
        if self._pending < self._chunk_size:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        # Parents before children, so that enforced foreign keys (PostgreSQL) hold.
        for table in schema.TABLES_IN_LOAD_ORDER:
            rows = self._buffers[table]
            if rows:
                self._connection.execute(insert(table), rows)
                self.counts[table.name] += len(rows)
                self.written += len(rows)
                self._buffers[table] = []
        self._connection.commit()
        self._pending = 0


class _UniqueNames:
    """QBO requires DisplayNames unique (ignoring case) across customers, vendors, employees."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, make_name: Callable[[], str]) -> str:
        name = make_name()
        for _ in range(4):
            if name.casefold() not in self._taken:
                break
            name = make_name()
        base, number = name, 2
        while name.casefold() in self._taken:
            name, number = f"{base} {number}", number + 1
        self._taken.add(name.casefold())
        return name


class _DemoRows:
    """Produces the rows client by client, from one seeded random generator."""

    def __init__(self, rng: random.Random, today: date, clients: int, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.today = today
        self.client_count = clients
        self.invalid: list[InvalidRow] = []
        self.soft_deleted: Counter[str] = Counter()
        self._names = _UniqueNames()
        self._ids: Counter[str] = Counter()
        self._people = list(product(FIRST_NAMES, LAST_NAMES))
        rng.shuffle(self._people)
        self._employee_rates: list[tuple[int, Decimal]] = []
        self._vendor_ids: list[int] = []
        self._first_client_name = ""
        # Bills and the expenses added with them draw from their own stream, so that every
        # row drawn before bills existed is drawn exactly as before.
        self._payables = random.Random(f"payables-{seed}")
        # Projects open for new transactions (valid, active, not deleted): hard costs go there.
        self._open_projects: list[int] = []

    def batches(self) -> Iterator[tuple[int, Batch]]:
        """Yields (clients done, rows); the names lists come first, parents before children."""
        yield 0, self._names_lists()
        for client_no in range(1, self.client_count + 1):
            yield client_no, self._client_batch(client_no)
        yield self.client_count, self._duplicate_name_vendor()
        # Last, so that the rows above are drawn exactly as before these users existed.
        yield self.client_count, self._users_who_log_no_time()
        yield self.client_count, _BankingRows(self).batch()

    # --- building blocks -----------------------------------------------------------------

    def _next_id(self, table: Table) -> int:
        self._ids[table.name] += 1
        return self._ids[table.name]

    def _day_in_window(self) -> date:
        return self.today - timedelta(days=self.rng.randint(1, WINDOW_DAYS))

    def _moment(self, day: date) -> datetime:
        """A whole second of the working day; at most 21:59:59, so always before `today`."""
        return datetime.combine(day, time.min) + timedelta(
            seconds=self.rng.randrange(7 * 3600, 22 * 3600)
        )

    def _stamps(self, first_day: date, *, deleted_share: float, table: Table) -> Row:
        """created_at, updated_at (often later) and sometimes deleted_at, from `first_day` on."""
        created = self._moment(first_day)
        updated = created
        if self.rng.random() < 0.5:
            last_day = self.today - timedelta(days=1)
            days_after = self.rng.randint(0, (last_day - first_day).days)
            updated = max(created, self._moment(first_day + timedelta(days=days_after)))
        deleted = updated if self.rng.random() < deleted_share else None
        if deleted is not None:
            self.soft_deleted[table.name] += 1
        return {"created_at": created, "updated_at": updated, "deleted_at": deleted}

    def _phone(self) -> str:
        # 555-0100..0199 is reserved for fictional use.
        return f"({self.rng.choice(AREA_CODES)}) 555-01{self.rng.randint(0, 99):02d}"

    def _person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def _address(self) -> tuple[str, str, str, str]:
        city, state, zip_prefix = self.rng.choice(CITIES)
        line1 = f"{self.rng.randint(10, 9999)} {self.rng.choice(STREETS)}"
        return line1, city, state, f"{zip_prefix}{self.rng.randint(0, 99):02d}"

    def _invalid(self, table: Table, row_id: int, why: str) -> None:
        self.invalid.append(InvalidRow(table.name, row_id, why))

    # --- names lists ---------------------------------------------------------------------

    def _names_lists(self) -> Batch:
        employee_count = max(3, -(-self.client_count // 5))
        vendor_count = max(3, -(-self.client_count // 4))
        employees = [self._employee(index) for index in range(employee_count)]
        vendors = [self._vendor(self._names.claim(self._vendor_name)) for _ in range(vendor_count)]
        self._vendor_ids = [vendor["id"] for vendor in vendors]
        return {schema.employees: employees, schema.vendors: vendors,
                schema.classes: self._classes(), schema.terms: self._terms()}

    def _employee(self, index: int) -> Row:
        # In the demo only employees log time (time_entry.yaml takes a 1099 user's too).
        rate = Decimal(self.rng.choice(HOURLY_RATES))
        row = self._user(index, schema.EMPLOYEE_TYPE, "practice.example.com",
                         inactive_share=0.05)
        self._employee_rates.append((row["id"], rate))
        return row

    def _user(self, index: int, employment_type: str | None, email_domain: str, *,
              inactive_share: float) -> Row:
        """A user of the app; `index` picks the person, the same list for every type. The
        random draws come in one order (phone, active, stamps), which the seed's rows keep."""
        first, last = self._people[index % len(self._people)]
        # Past the list's combinations, a generational suffix keeps names distinct.
        if index >= len(self._people):
            last = f"{last} {index // len(self._people) + 1}"
        display = self._names.claim(lambda: f"{first} {last}")
        last = display.removeprefix(f"{first} ")
        email_name = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        return {
            "id": self._next_id(schema.employees),
            "first_name": first,
            "last_name": last,
            "email": f"{email_name}@{email_domain}",
            "phone": self._phone(),
            "employment_type": employment_type,
            "active": self.rng.random() > inactive_share,
            **self._stamps(self._old_day(), deleted_share=0.0, table=schema.employees),
        }

    def _users_who_log_no_time(self) -> Batch:
        """Subcontractors paid as 1099 vendors, and one office user of no synced type."""
        first_index = self._ids[schema.employees.name]
        contractor_count = max(2, -(-self.client_count // 10))
        users = [self._user(first_index + number, schema.CONTRACTOR_TYPE,
                            "subcontractor.example.com", inactive_share=0.0)
                 for number in range(contractor_count)]
        users.append(self._user(first_index + contractor_count, None, "practice.example.com",
                                inactive_share=0.0))
        return {schema.employees: users}

    def _classes(self) -> list[Row]:
        """The app's own classes; no ids (see demo_schema) and no random draws."""
        return [{"name": name, "active": True, **self._list_stamps()} for name in CLASSES]

    def _terms(self) -> list[Row]:
        return [{"name": name, "due_days": due_days, "day_of_month_due": None,
                 "discount_percent": discount, "discount_days": discount_days,
                 "active": True, **self._list_stamps()}
                for name, due_days, discount, discount_days in TERMS]

    def _list_stamps(self) -> Row:
        # Set up once, before any names-list record: fixed, so that no random draw moves.
        moment = datetime.combine(self.today - timedelta(days=721), time(9))
        return {"created_at": moment, "updated_at": moment, "deleted_at": None}

    def _vendor_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return f"{rng.choice(ADJECTIVES)} {rng.choice(VENDOR_KINDS)}"
        return f"{rng.choice(LAST_NAMES)} {rng.choice(VENDOR_KINDS)}"

    def _vendor(self, name: str) -> Row:
        vendor_id = self._next_id(schema.vendors)
        return {
            "id": vendor_id,
            "name": name,
            "email": f"orders@{_slug(name)}.example.com",
            "phone": self._phone(),
            "active": True,
            **self._stamps(self._old_day(), deleted_share=0.0, table=schema.vendors),
        }

    def _duplicate_name_vendor(self) -> Batch:
        # Generated last, so that no expense points at it.
        row = self._vendor(self._first_client_name)
        self._invalid(
            schema.vendors,
            row["id"],
            f"name {row['name']!r} is also client #1's name; QBO DisplayNames are unique "
            "across customers, vendors and employees, so the sync names the vendor "
            f"{row['name'] + ' (Vendor)'!r} (company setting display_name_collision)",
        )
        return {schema.vendors: [row]}

    def _old_day(self) -> date:
        """Names-list records exist before the business-date window opens."""
        return self.today - timedelta(days=self.rng.randint(WINDOW_DAYS + 10, 720))

    # --- clients and projects ------------------------------------------------------------

    def _client_name(self) -> str:
        rng = self.rng
        pattern = rng.randint(0, 2)
        if pattern == 0:
            return f"{rng.choice(LAST_NAMES)} {rng.choice(PROFESSIONS)}"
        if pattern == 1:
            return f"{rng.choice(LAST_NAMES)} & {rng.choice(LAST_NAMES)} {rng.choice(PROFESSIONS)}"
        return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(FIRM_SUFFIXES)}"

    def _colon_client_name(self) -> str:
        return f"{self.rng.choice(LAST_NAMES)}: {self.rng.choice(PROFESSIONS)}"

    def _client_batch(self, client_no: int) -> Batch:
        client = self._client(client_no)
        batch: Batch = defaultdict(list, {schema.clients: [client]})
        has_projects = client["active"] and client["deleted_at"] is None
        if not has_projects or client_no in (_CLIENT_WITHOUT_EMAIL, _CLIENT_WITH_COLON):
            return batch  # inactive, deleted and invalid clients have no dependent rows
        project_count = self.rng.randint(1, 3)
        if client_no == _CLIENT_WITH_BAD_PROJECT_EMAIL:
            project_count = max(2, project_count)
        for project_no in range(project_count):
            bad_email = client_no == _CLIENT_WITH_BAD_PROJECT_EMAIL and project_no == 0
            project = self._project(client, bad_email=bad_email, protected=client_no <= MIN_CLIENTS)
            batch[schema.projects].append(project)
            # QBO refuses new transactions on an inactive customer (fault 610), so a closed
            # project's work is not in the demo's window: it was all billed before it closed.
            if not bad_email and project["deleted_at"] is None and project["active"]:
                self._open_projects.append(project["id"])
                with_bad_rows = client_no == _CLIENT_WITH_BAD_TRANSACTIONS and project_no == 0
                self._project_work(project, batch, with_bad_rows=with_bad_rows)
        for expense_no in range(self.rng.randint(1, 5)):
            bad = client_no == _CLIENT_WITH_BAD_TRANSACTIONS and expense_no == 0
            batch[schema.expenses].append(self._expense(bad_amount=bad))
        with_bad_rows = client_no == _CLIENT_WITH_BAD_TRANSACTIONS
        if with_bad_rows:
            batch[schema.expenses].extend(self._bad_expenses())
        self._bills(batch, with_bad_rows=with_bad_rows)
        return batch

    def _client(self, client_no: int) -> Row:
        client_id = self._next_id(schema.clients)
        with_colon = client_no == _CLIENT_WITH_COLON
        name = self._names.claim(self._colon_client_name if with_colon else self._client_name)
        if client_no == 1:
            self._first_client_name = name
        first, last = self._person()
        line1, city, state, postal_code = self._address()
        status = self.rng.random()
        # The first clients carry the deliberately invalid rows: always active, never deleted.
        carries_invalid_rows = client_no <= MIN_CLIENTS
        stamps = self._stamps(
            self._old_day(),
            deleted_share=0.0 if carries_invalid_rows else 0.01,
            table=schema.clients,
        )
        row = {
            "id": client_id,
            "name": name,
            "email": f"billing@{_slug(name)}.example.com",
            "phone": self._phone(),
            "contact_first_name": first,
            "contact_last_name": last,
            "address_line1": line1,
            "address_line2": f"Suite {self.rng.randint(1, 9)}00" if status < 0.3 else None,
            "city": city,
            "state": state,
            "postal_code": postal_code,
            "active": carries_invalid_rows or status > 0.04,
            **stamps,
        }
        if client_no == _CLIENT_WITHOUT_EMAIL:
            row["email"] = None
            self._invalid(schema.clients, client_id, "no email address (QBO customers need one)")
        if client_no == _CLIENT_WITH_COLON:
            self._invalid(
                schema.clients, client_id, f"name {name!r} contains ':', forbidden in DisplayName"
            )
        return row

    def _project(self, client: Row, *, bad_email: bool, protected: bool) -> Row:
        """A project of `client`; `protected` ones (holding invalid rows) are never deleted."""
        project_id = self._next_id(schema.projects)
        number = f"P-{project_id:05d}"
        name = self.rng.choice(PROJECT_KINDS)
        self._names.claim(lambda: f"{number} - {name}")
        first, last = self._person()
        has_job_site = self.rng.random() < 0.6
        line1, city, state, postal_code = self._address()
        client_day = client["created_at"].date()
        first_day = client_day + timedelta(
            days=self.rng.randint(0, (self.today - client_day).days - WINDOW_DAYS - 1)
        )
        email = f"{first}.{last}@{_slug(client['name'])}.example.com".lower().replace("'", "")
        if bad_email:
            email = email.replace("@", ".at.")
            self._invalid(schema.projects, project_id, f"email {email!r} is not an email address")
        return {
            "id": project_id,
            "client_id": client["id"],
            "number": number,
            "name": name,
            "email": email,
            "phone": self._phone(),
            "contact_first_name": first,
            "contact_last_name": last,
            "job_address_line1": line1 if has_job_site else None,
            "job_city": city if has_job_site else None,
            "job_state": state if has_job_site else None,
            "job_postal_code": postal_code if has_job_site else None,
            "active": bad_email or self.rng.random() > 0.1,
            **self._stamps(
                first_day, deleted_share=0.0 if protected else 0.01, table=schema.projects
            ),
        }

    # --- transactions --------------------------------------------------------------------

    def _project_work(self, project: Row, batch: Batch, *, with_bad_rows: bool) -> None:
        team = self.rng.sample(self._employee_rates, k=min(3, len(self._employee_rates)))
        for entry_no in range(self.rng.randint(8, 22)):
            entry = self._time_entry(
                project, self.rng.choice(team), bad=with_bad_rows and not entry_no
            )
            batch[schema.time_entries].append(entry)
        invoice_count = max(1, self.rng.randint(0, 3)) if with_bad_rows else self.rng.randint(0, 3)
        for invoice_no in range(invoice_count):
            bad_line = with_bad_rows and invoice_no == 0
            invoice, lines = self._invoice(project, bad_line=bad_line)
            batch[schema.invoices].append(invoice)
            batch[schema.invoice_lines].extend(lines)
            if not bad_line:
                payments = self._payments(invoice, lines)
                batch[schema.payments].extend(payments)
                batch[schema.write_offs].extend(self._write_offs(invoice, lines, payments))

    def _time_entry(self, project: Row, member: tuple[int, Decimal], *, bad: bool) -> Row:
        entry_id = self._next_id(schema.time_entries)
        employee_id, rate = member
        work_date = self.today - timedelta(days=3) if bad else self._day_in_window()
        hours = Decimal(self.rng.randint(2, 32)) / 4
        stamps = self._stamps(
            work_date, deleted_share=0.0 if bad else 0.01, table=schema.time_entries
        )
        if bad:
            hours = Decimal(25)
            self._invalid(schema.time_entries, entry_id, "25 hours in one day (at most 24)")
        return {
            "id": entry_id,
            "employee_id": employee_id,
            "project_id": project["id"],
            "work_date": work_date,
            "hours": hours.quantize(CENT),
            "description": self.rng.choice(TIME_TASKS),
            "billable": bad or self.rng.random() < 0.85,
            "approved": bad or self.rng.random() < 0.8,
            "hourly_rate": rate.quantize(CENT),
            "service_name": _service_worked_on(entry_id),
            **stamps,
        }

    def _invoice(self, project: Row, *, bad_line: bool) -> tuple[Row, list[Row]]:
        invoice_id = self._next_id(schema.invoices)
        issue_date = self.today - timedelta(days=5) if bad_line else self._day_in_window()
        lines = [
            self._invoice_line(invoice_id, line_no)
            for line_no in range(1, self.rng.randint(1, 5) + 1)
        ]
        if bad_line:
            _make_quantity_negative(lines[0])
            self._invalid(
                schema.invoice_lines,
                lines[0]["id"],
                f"quantity {lines[0]['quantity']} is negative (invoice #{invoice_id})",
            )
            self._invalid(
                schema.invoices, invoice_id, f"line #{lines[0]['id']} has a negative quantity"
            )
        tax_rate = self.rng.choice(TAX_RATES)
        subtotal = sum((line["amount"] for line in lines), Decimal(0))
        stamps = self._stamps(
            issue_date, deleted_share=0.0 if bad_line else 0.005, table=schema.invoices
        )
        status_roll = self.rng.random()
        status = "draft" if status_roll < 0.08 else "void" if status_roll < 0.1 else "sent"
        invoice = {
            "id": invoice_id,
            "project_id": project["id"],
            "number": f"INV-{invoice_id:06d}",
            "issue_date": issue_date,
            "due_date": issue_date + timedelta(days=30),
            "notes": "Thank you for your business." if self.rng.random() < 0.4 else None,
            "tax_rate": tax_rate,
            "tax_amount": (subtotal * tax_rate).quantize(CENT, ROUND_HALF_UP),
            "status": "sent" if bad_line else status,
            "balance": None,  # QBO's open balance, written back by the pipeline
            **stamps,
        }
        return invoice, lines

    def _invoice_line(self, invoice_id: int, line_no: int) -> Row:
        service, hourly = self.rng.choice(SERVICES)
        if hourly is None:
            quantity = Decimal(self.rng.randint(1, 20))
            unit_price = Decimal(self.rng.randint(500, 30000)) * CENT
        else:
            quantity = Decimal(self.rng.randint(1, 160)) / 4
            unit_price = Decimal(hourly)
        return {
            "id": self._next_id(schema.invoice_lines),
            "invoice_id": invoice_id,
            "line_no": line_no,
            "description": f"{service} ({self.rng.choice(TIME_TASKS).lower()})",
            "quantity": quantity.quantize(CENT),
            "unit_price": unit_price.quantize(CENT),
            "amount": (quantity * unit_price).quantize(CENT, ROUND_HALF_UP),
            "service_name": service,
        }

    def _payments(self, invoice: Row, lines: list[Row]) -> list[Row]:
        """Most sent invoices are paid, a few in part; paying one also updates the invoice."""
        yesterday = self.today - timedelta(days=1)
        days_open = (yesterday - invoice["issue_date"]).days
        if invoice["status"] != "sent" or invoice["deleted_at"] or days_open < 1:
            return []
        if self.rng.random() > 0.6:
            return []
        total = sum((line["amount"] for line in lines), invoice["tax_amount"])
        paid_in_full = self.rng.random() < 0.85
        paid_on = invoice["issue_date"] + timedelta(days=self.rng.randint(1, min(45, days_open)))
        paid_at = self._moment(paid_on)
        payment_id = self._next_id(schema.payments)
        if paid_in_full:
            invoice["status"] = "paid"
        invoice["updated_at"] = max(invoice["updated_at"], paid_at)
        amount = total if paid_in_full else (total / 2).quantize(CENT, ROUND_HALF_UP)
        return [
            {
                "id": payment_id,
                "invoice_id": invoice["id"],
                "amount": amount,
                "payment_date": paid_on,
                "method": self.rng.choice(PAYMENT_METHODS),
                # Derived from the id, not drawn: the generator's other rows stay as they were.
                "reference": f"PMT-{payment_id:06d}",
                "deposit_account": None,
                "created_at": paid_at,
                "updated_at": paid_at,
                "deleted_at": None,
            }
        ]

    def _write_offs(self, invoice: Row, lines: list[Row], payments: list[Row]) -> list[Row]:
        """Seed 002's write-offs: a tenth of each odd-numbered invoice still owed is written off,
        ten days after it was issued (yesterday at the latest). The first one written off
        more than the invoice still owes, on purpose. Nothing here is drawn at random, so
        the generator's other rows stay as they were before write-offs existed."""
        yesterday = self.today - timedelta(days=1)
        if (invoice["status"] != "sent" or invoice["deleted_at"] or not invoice["id"] % 2
                or invoice["issue_date"] >= yesterday):
            return []
        total = sum((line["amount"] for line in lines), invoice["tax_amount"])
        owed = total - sum((payment["amount"] for payment in payments), Decimal(0))
        write_off_id = self._next_id(schema.write_offs)
        amount = (total / 10).quantize(CENT, ROUND_HALF_UP)
        reason = "Courtesy discount"
        if write_off_id == 1:
            amount, reason = owed + Decimal(25), "Disputed hours"
            self._invalid(schema.write_offs, write_off_id,
                          f"writes off {amount}, more than the {owed} invoice #{invoice['id']} "
                          "still owes")
        written_on = min(yesterday, invoice["issue_date"] + timedelta(days=10))
        stamp = datetime.combine(written_on, time(16, 0))
        return [{"id": write_off_id, "invoice_id": invoice["id"], "amount": amount,
                 "write_off_date": written_on, "reason": reason, "created_at": stamp,
                 "updated_at": stamp, "deleted_at": None}]

    def _expense(self, *, bad_amount: bool) -> Row:
        expense_id = self._next_id(schema.expenses)
        spent_on = self.today - timedelta(days=4) if bad_amount else self._day_in_window()
        category = self.rng.choice(EXPENSE_CATEGORIES)
        amount = Decimal(self.rng.randint(500, 250000)) * CENT
        stamps = self._stamps(
            spent_on, deleted_share=0.0 if bad_amount else 0.01, table=schema.expenses
        )
        if bad_amount:
            amount = -amount
            self._invalid(schema.expenses, expense_id, f"amount {amount} is negative")
        vendor_id = self.rng.choice(self._vendor_ids)  # drawn in this order, as always
        method = self.rng.choice(PAYMENT_METHODS)
        return {
            "id": expense_id,
            "vendor_id": vendor_id,
            "spent_on": spent_on,
            "amount": amount,
            "category": category,
            "payment_method": method,
            "description": f"{category} ({self.rng.choice(STREETS)} office)",
            # Derived from the id, not drawn: the generator's other rows stay as they were.
            # Most are paid, and most of those approved; a bad row is both, so that it syncs
            # under either expense_export_status and is held back with its reason.
            "paid": bad_amount or expense_id % 5 != 0,
            "approved": bad_amount or expense_id % 3 != 0,
            "paid_from": CARD_ACCOUNT if method == CARD_METHOD else BANK_ACCOUNT,
            **stamps,
        }

    def _bad_expenses(self) -> list[Row]:
        """A paid and approved expense of a category QBO has no account for, and a card
        expense recorded as paid from the bank (QBO refuses a card purchase from a bank
        account): both held back with their fix."""
        unknown = self._payables_expense(UNKNOWN_CATEGORY, BANK_ACCOUNT, "Check")
        self._invalid(schema.expenses, unknown["id"],
                      f"category {UNKNOWN_CATEGORY!r} is no QBO account")
        card = self._payables_expense("Travel", BANK_ACCOUNT, CARD_METHOD)
        self._invalid(schema.expenses, card["id"], "a credit card expense paid from the bank "
                      f"account {BANK_ACCOUNT!r}: QBO refuses it")
        return [unknown, card]

    def _payables_expense(self, category: str, paid_from: str, method: str) -> Row:
        expense_id = self._next_id(schema.expenses)
        spent_on = self.today - timedelta(days=3)
        moment = datetime.combine(spent_on, time(10)) + timedelta(seconds=expense_id)
        return {
            "id": expense_id, "vendor_id": self._vendor_ids[0], "spent_on": spent_on,
            "amount": Decimal(self._payables.randint(500, 50000)) * CENT,
            "category": category, "payment_method": method, "description": category,
            "paid": True, "approved": True, "paid_from": paid_from,
            "created_at": moment, "updated_at": moment, "deleted_at": None,
        }

    def _bills(self, batch: Batch, *, with_bad_rows: bool) -> None:
        """About half the clients with open projects get a vendor's bill, its lines for their
        projects; the bad client's first bill has a line of an unknown category."""
        projects = [p for p in batch[schema.projects] if p["active"] and p["deleted_at"] is None
                    and not any(row.table == "projects" and row.id == p["id"]
                                for row in self.invalid)]
        if not projects or not (with_bad_rows or self._payables.random() < 0.5):
            return
        rng = self._payables
        bill_id = self._next_id(schema.bills)
        bill_date = self.today - timedelta(days=rng.randint(2, WINDOW_DAYS))
        moment = datetime.combine(bill_date, time(9)) + timedelta(seconds=rng.randrange(36000))
        vendor_id = rng.choice(self._vendor_ids)
        batch[schema.bills].append({
            "id": bill_id, "vendor_id": vendor_id, "number": f"INV-{bill_id:05d}",
            "bill_date": bill_date, "due_date": None, "memo": None,
            "created_at": moment, "updated_at": moment, "deleted_at": None,
        })
        for line_no in range(1, rng.randint(1, 3) + 1):
            category = rng.choice(EXPENSE_CATEGORIES)
            if with_bad_rows and line_no == 1:
                category = UNKNOWN_CATEGORY
                self._invalid(schema.bills, bill_id,
                              f"line 1's category {UNKNOWN_CATEGORY!r} is no QBO account")
            batch[schema.bill_lines].append({
                "id": self._next_id(schema.bill_lines), "bill_id": bill_id,
                "line_no": line_no, "project_id": rng.choice(projects)["id"],
                "category": category, "description": f"{category} for the job",
                "amount": Decimal(rng.randint(2000, 400000)) * CENT,
            })


def _load_order(row: InvalidRow) -> tuple[int, int]:
    names = [table.name for table in schema.TABLES_IN_LOAD_ORDER]
    return names.index(row.table), row.id


def _make_quantity_negative(line: Row) -> None:
    line["quantity"] = -line["quantity"]
    line["amount"] = (line["quantity"] * line["unit_price"]).quantize(CENT, ROUND_HALF_UP)


def _slug(name: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    return "-".join(words)


def _service_worked_on(entry_id: int) -> str:
    """An hourly service, chosen by the entry's id: not by the generator's random numbers,
    which would then draw every later row otherwise than before."""
    hourly = [name for name, rate in SERVICES if rate is not None]
    return hourly[entry_id % len(hourly)]


class _BankingRows:
    """Bank accounts, deposit slips and hard costs (seed 002), drawn from a generator of their
    own so that the rows of the other tables stay exactly as they were drawn without them."""

    def __init__(self, rows: _DemoRows) -> None:
        self.rows = rows
        self.rng = random.Random(f"banking/{rows.seed}")
        self.batch_rows: Batch = defaultdict(list)
        self.ids: dict[str, int] = {}

    def batch(self) -> Batch:
        good = [self._bank_account(spec) for spec in BANK_ACCOUNTS]
        no_kind = self._bank_account(_BANK_ACCOUNT_OF_NO_KIND)
        self.rows._invalid(schema.bank_accounts, no_kind["id"],
                           "kind 'savings' is neither operating nor trust")
        taken = self._bank_account(_BANK_ACCOUNT_NAMED_LIKE_AN_EXPENSE)
        self.rows._invalid(schema.bank_accounts, taken["id"],
                           "name 'Travel' is taken in QBO by an expense account")
        for number in range(max(4, self.rows.client_count // 2)):
            self._deposit_slip(good[number % len(good)], self.rng.randint(1, 3))
        self._bad_deposit_slips(good[0], no_kind)
        self._hard_costs([row for row in good if row["kind"] == "operating"], good[-1])
        return self.batch_rows

    def _next_id(self, table: Table) -> int:
        self.ids[table.name] = self.ids.get(table.name, 0) + 1
        return self.ids[table.name]

    def _stamps(self, day: date) -> Row:
        moment = datetime.combine(day, time.min) + timedelta(
            seconds=self.rng.randrange(7 * 3600, 22 * 3600))
        return {"created_at": moment, "updated_at": moment, "deleted_at": None}

    def _bank_account(self, spec: tuple[str, str, str, str, str]) -> Row:
        name, kind, number, bank, last4 = spec
        row = {"id": self._next_id(schema.bank_accounts), "name": name, "kind": kind,
               "account_number": number, "bank_name": bank, "account_last4": last4,
               "active": True, **self._stamps(self.rows.today - timedelta(days=WINDOW_DAYS + 30))}
        self.batch_rows[schema.bank_accounts].append(row)
        return row

    def _deposit_slip(self, account: Row, line_count: int, *, from_account: str | None = None,
                      day: date | None = None) -> Row:
        deposit_date = day or self.rows.today - timedelta(days=self.rng.randint(1, WINDOW_DAYS))
        slip = {"id": self._next_id(schema.deposit_slips), "bank_account_id": account["id"],
                "deposit_date": deposit_date, "memo": f"Deposit slip {deposit_date:%m/%d}",
                **self._stamps(deposit_date)}
        self.batch_rows[schema.deposit_slips].append(slip)
        for line_no in range(1, line_count + 1):
            self.batch_rows[schema.deposit_slip_lines].append({
                "id": self._next_id(schema.deposit_slip_lines), "deposit_slip_id": slip["id"],
                "line_no": line_no,
                "amount": (Decimal(self.rng.randint(10000, 500000)) * CENT).quantize(CENT),
                "from_account": from_account or DEPOSIT_SOURCES.get(account["kind"], "Services"),
                "description": "Retainer" if account["kind"] == "trust" else "Fees received",
                "check_number": str(self.rng.randint(1000, 9999))})
        return slip

    def _bad_deposit_slips(self, checking: Row, no_kind: Row) -> None:
        recent = self.rows.today - timedelta(days=6)
        held = self._deposit_slip(no_kind, 1, day=recent)
        self.rows._invalid(schema.deposit_slips, held["id"],
                           f"deposits into bank account #{no_kind['id']}, which is held back")
        empty = self._deposit_slip(checking, 0, day=recent)
        self.rows._invalid(schema.deposit_slips, empty["id"], "has no lines (QBO needs one)")
        unknown = self._deposit_slip(checking, 1, from_account=_ACCOUNT_QBO_LACKS, day=recent)
        self.rows._invalid(schema.deposit_slips, unknown["id"],
                           f"a line comes from {_ACCOUNT_QBO_LACKS!r}, an account QBO lacks")

    def _hard_costs(self, operating: list[Row], trust: Row) -> None:
        projects = self.rows._open_projects
        for project_id in projects:
            for _ in range(self.rng.randint(0, 2)):
                self._hard_cost(project_id, self.rng.choice(operating))
        bad_amount = self._hard_cost(projects[0], operating[0], sign=-1)
        self.rows._invalid(schema.hard_costs, bad_amount["id"],
                           f"amount {bad_amount['amount']} is negative")
        from_trust = self._hard_cost(projects[0], trust)
        self.rows._invalid(schema.hard_costs, from_trust["id"],
                           "paid from the trust account (hard costs are paid from operating)")

    def _hard_cost(self, project_id: int, account: Row, *, sign: int = 1) -> Row:
        day = self.rows.today - timedelta(days=self.rng.randint(1, WINDOW_DAYS))
        cost_id = self._next_id(schema.hard_costs)
        row = {"id": cost_id, "project_id": project_id,
               "vendor_id": self.rng.choice(self.rows._vendor_ids),
               "bank_account_id": account["id"], "incurred_on": day,
               "amount": sign * (Decimal(self.rng.randint(1500, 90000)) * CENT).quantize(CENT),
               "description": self.rng.choice(HARD_COSTS), "expense_account": None,
               # Derived from the id, not drawn: check numbers of the firm's own checks.
               "check_number": str(5000 + cost_id), **self._stamps(day)}
        self.batch_rows[schema.hard_costs].append(row)
        return row
