"""The edits the chaos harness makes while syncs run, and what it remembers of them.

Source edits are what the business app does: change a phone, an email or a name (with
`updated_at` bumped, as the app stamps every change), add rows, soft-delete rows, and add rows
that are wrong on purpose. QBO edits are a bookkeeper's, through the emulator's admin edit (a
sparse update that bumps the SyncToken and LastUpdatedTime, as saving in QBO's screens does).

Edits favour a few "hot" records, so that source and QBO edits pile up on the same records and
meet the syncs' writes (stale SyncTokens, conflicts, batches re-planned after a kill).
`Expectations` keeps what the checks need: the rows that must be quarantined, the last QBO edit
of each field, and every match key (name, number) a record ever had, so that a QBO record left
behind under an old name is still traced to its source record.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select, update

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline.source.demo_data import SERVICES, DemoSummary
from qbo_pipeline_tests.chaos.processes import ChaosError, Emulator

HOT_RECORDS = 3
HOT_SHARE = 0.6
CENT = Decimal("0.01")
# The demo's tables that mapping specs read, by spec (vendors and expenses have no spec).
SPEC_TABLES = {"clients": "client", "projects": "project", "employees": "employee",
               "time_entries": "time_entry", "invoices": "invoice"}


def now_stamp() -> datetime:
    """The app's clock for `updated_at`: naive UTC, like every demo stamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def match_key(value: str) -> str:
    """QBO names are unique whatever their case and spacing."""
    return " ".join(value.casefold().split())


@dataclass(frozen=True)
class QboEdit:
    """A field a bookkeeper changed in QBO: it must stay there, be pulled into the source or
    be an open conflict."""

    spec: str
    source_key: str
    entity: str
    qbo_id: str
    path: str
    value: str


@dataclass
class Expectations:
    """What the harness did, for the checks."""

    bad_rows: dict[tuple[str, str], str] = field(default_factory=dict)  # -> why it is bad
    # (spec, source key, field path) -> the last QBO edit of that field of that record
    qbo_edits: dict[tuple[str, str, str], QboEdit] = field(default_factory=dict)
    # (spec, key) -> every match key the record ever had (DisplayName, DocNumber, time sig.)
    keys_ever: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def remember(self, spec: str, key: object, *match_keys: str) -> None:
        self.keys_ever.setdefault((spec, str(key)), set()).update(map(match_key, match_keys))

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def last_qbo_edit(self, spec: str, source_key: str, path: str) -> QboEdit | None:
        return self.qbo_edits.get((spec, source_key, path))


def time_signature(row: dict[str, Any]) -> str:
    """What tells time entries apart in QBO (a TimeActivity has no match key)."""
    return (f"{row['employee_id']}|{row['project_id']}|{row['work_date']}|"
            f"{Decimal(row['hours']).quantize(CENT)}|{row['description']}")


def project_display_name(row: dict[str, Any]) -> str:
    return f"{row['number']} - {row['name']}"


def remember_source(engine: Engine, expectations: Expectations, demo: DemoSummary) -> None:
    """The demo's deliberately invalid rows, and every record's match keys as generated."""
    for row in demo.invalid:
        if row.table in SPEC_TABLES:
            expectations.bad_rows[(SPEC_TABLES[row.table], str(row.id))] = row.why
    with engine.connect() as connection:
        for client in connection.execute(select(schema.clients)).mappings():
            expectations.remember("client", client["id"], client["name"])
        for project in connection.execute(select(schema.projects)).mappings():
            expectations.remember("project", project["id"],
                                  project_display_name(dict(project)))
        for employee in connection.execute(select(schema.employees).where(
                schema.employees.c.employment_type == schema.EMPLOYEE_TYPE)).mappings():
            expectations.remember("employee", employee["id"],
                                  f"{employee['first_name']} {employee['last_name']}")
        for invoice in connection.execute(select(schema.invoices)).mappings():
            expectations.remember("invoice", invoice["id"], invoice["number"])
        for entry in connection.execute(select(schema.time_entries)).mappings():
            expectations.remember("time_entry", entry["id"], time_signature(dict(entry)))


class SourceEditor:
    """Random edits of the demo source database, as the business app would make them."""

    def __init__(self, engine: Engine, rng: random.Random, expectations: Expectations,
                 today: date) -> None:
        self.engine = engine
        self.rng = rng
        self.expect = expectations
        self.today = today
        self.serial = 0
        self.kinds: list[tuple[Callable[[], str | None], int]] = [
            (self.change_client, 6), (self.change_project, 4), (self.change_employee, 2),
            (self.change_time_entry, 4), (self.change_invoice_line, 3),
            (self.add_client, 2), (self.add_project, 2), (self.add_time_entry, 3),
            (self.add_invoice, 2), (self.add_bad_row, 1),
            (self.delete_time_entry, 1), (self.delete_invoice, 1), (self.delete_client, 1),
        ]

    def random_edit(self) -> str | None:
        """One edit of a random kind; what it did, or None when nothing fitted."""
        edit = self.rng.choices([kind for kind, _ in self.kinds],
                                weights=[weight for _, weight in self.kinds])[0]
        done = edit()
        if done is not None:
            self.expect.count("source edits")
        return done

    # --- picking rows ------------------------------------------------------------------------

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _pick(self, ids: Sequence[int]) -> int | None:
        """Mostly one of the first few (hot) records, sometimes any."""
        if not ids:
            return None
        ordered = sorted(ids)
        if self.rng.random() < HOT_SHARE:
            return self.rng.choice(ordered[:HOT_RECORDS])
        return self.rng.choice(ordered)

    def _good(self, spec: str, ids: Sequence[int]) -> list[int]:
        return [row_id for row_id in ids if (spec, str(row_id)) not in self.expect.bad_rows]

    def _live_ids(self, table: Table, spec: str) -> list[int]:
        query = select(table.c.id).where(table.c.deleted_at.is_(None))
        if table is schema.employees:
            # Only the users employee.yaml syncs (its source.filter): not the 1099 contractors.
            query = query.where(table.c.employment_type == schema.EMPLOYEE_TYPE)
        with self.engine.connect() as connection:
            return self._good(spec, list(connection.scalars(query)))

    def _usable_projects(self) -> list[dict[str, Any]]:
        """Projects new work can go on: valid, active, live, under a valid active live client
        (QBO refuses a transaction on an inactive customer)."""
        p, c = schema.projects, schema.clients
        query = select(p.c.id, p.c.client_id).join(c, c.c.id == p.c.client_id).where(
            p.c.deleted_at.is_(None), p.c.active.is_(True), c.c.deleted_at.is_(None),
            c.c.active.is_(True))
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        return [row for row in rows if ("project", str(row["id"])) not in self.expect.bad_rows
                and ("client", str(row["client_id"])) not in self.expect.bad_rows]

    def _usable_clients(self) -> list[int]:
        c = schema.clients
        with self.engine.connect() as connection:
            ids = list(connection.scalars(select(c.c.id).where(
                c.c.deleted_at.is_(None), c.c.active.is_(True))))
        return self._good("client", ids)

    def _new_id(self, table: Table) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.max(table.c.id))) or 0) + 1

    def _update(self, table: Table, row_id: int, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id == row_id).values(
                **values, updated_at=now_stamp()))

    def _insert(self, table: Table, row: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(table), [row])

    def _row(self, table: Table, row_id: int) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return dict(connection.execute(select(table).where(
                table.c.id == row_id)).mappings().one())

    def _phone(self) -> str:
        return f"(555) 7{self._next():02d}-{self.rng.randint(0, 9999):04d}"

    def _email(self, who: str) -> str:
        return f"{who}.{self._next()}@source-edit.example.com"

    def _stamps(self) -> dict[str, Any]:
        stamp = now_stamp()
        return {"created_at": stamp, "updated_at": stamp, "deleted_at": None}

    # --- changes -----------------------------------------------------------------------------

    def change_client(self) -> str | None:
        client_id = self._pick(self._live_ids(schema.clients, "client"))
        if client_id is None:
            return None
        what = self.rng.choice(["phone", "email", "name", "contact"])
        values: dict[str, Any] = {
            "phone": {"phone": self._phone()}, "email": {"email": self._email("billing")},
            "name": {"name": f"Chaos Client {self._next()}"},
            "contact": {"contact_first_name": f"Ann{self._next()}"},
        }[what]
        self._update(schema.clients, client_id, **values)
        if "name" in values:
            self.expect.remember("client", client_id, values["name"])
        return f"client {client_id}: {what} {next(iter(values.values()))!r}"

    def change_project(self) -> str | None:
        project_id = self._pick(self._live_ids(schema.projects, "project"))
        if project_id is None:
            return None
        what = self.rng.choice(["phone", "email", "name"])
        values: dict[str, Any] = {
            "phone": {"phone": self._phone()}, "email": {"email": self._email("site")},
            "name": {"name": f"Chaos Project {self._next()}"},
        }[what]
        self._update(schema.projects, project_id, **values)
        if "name" in values:
            self.expect.remember("project", project_id,
                                 project_display_name(self._row(schema.projects, project_id)))
        return f"project {project_id}: {what} {next(iter(values.values()))!r}"

    def change_employee(self) -> str | None:
        employee_id = self._pick(self._live_ids(schema.employees, "employee"))
        if employee_id is None:
            return None
        what = self.rng.choice(["phone", "email"])
        value = self._phone() if what == "phone" else self._email("staff")
        self._update(schema.employees, employee_id, **{what: value})
        return f"employee {employee_id}: {what} {value!r}"

    def change_time_entry(self) -> str | None:
        entry_id = self._pick(self._live_ids(schema.time_entries, "time_entry"))
        if entry_id is None:
            return None
        if self.rng.random() < 0.5:
            values: dict[str, Any] = {"description": f"Chaos task {self._next()}"}
        else:
            values = {"hours": Decimal(self.rng.randint(1, 40)) / 4}
        self._update(schema.time_entries, entry_id, **values)
        self.expect.remember("time_entry", entry_id,
                             time_signature(self._row(schema.time_entries, entry_id)))
        return f"time entry {entry_id}: {values}"

    def change_invoice_line(self) -> str | None:
        """A line's quantity (and so its amount): the invoice's stamp moves, as the app's
        invoice screen saves the whole invoice."""
        invoice_id = self._pick(self._live_ids(schema.invoices, "invoice"))
        if invoice_id is None:
            return None
        lines = schema.invoice_lines
        with self.engine.begin() as connection:
            line = connection.execute(select(lines).where(
                lines.c.invoice_id == invoice_id).order_by(lines.c.line_no)).mappings().first()
            if line is None:
                return None
            quantity = Decimal(self.rng.randint(1, 40))
            amount = (quantity * Decimal(line["unit_price"])).quantize(CENT)
            connection.execute(update(lines).where(lines.c.id == line["id"]).values(
                quantity=quantity, amount=amount))
            connection.execute(update(schema.invoices).where(
                schema.invoices.c.id == invoice_id).values(updated_at=now_stamp()))
        return f"invoice {invoice_id}: line {line['line_no']} quantity {quantity}"

    # --- new rows ----------------------------------------------------------------------------

    def add_client(self) -> str:
        client_id = self._new_id(schema.clients)
        name = f"Chaos Client {self._next()}"
        self._insert(schema.clients, {
            "id": client_id, "name": name, "email": self._email("billing"),
            "phone": self._phone(), "contact_first_name": "Chaos", "contact_last_name": "Test",
            "active": True, **self._stamps()})
        self.expect.remember("client", client_id, name)
        return f"client {client_id} added"

    def add_project(self) -> str | None:
        client_id = self._pick(self._usable_clients())
        if client_id is None:
            return None
        project_id = self._new_id(schema.projects)
        row = {"id": project_id, "client_id": client_id, "number": f"C-{project_id:05d}",
               "name": f"Chaos Project {self._next()}", "email": self._email("site"),
               "phone": self._phone(), "contact_first_name": "Site",
               "contact_last_name": "Lead", "active": True, **self._stamps()}
        self._insert(schema.projects, row)
        self.expect.remember("project", project_id, project_display_name(row))
        return f"project {project_id} added under client {client_id}"

    def _employee_ids(self) -> list[int]:
        """The users time can be logged for: active employees (time_entry.yaml refers to the
        employee spec, which syncs users of employment type Employee only)."""
        e = schema.employees
        with self.engine.connect() as connection:
            return list(connection.scalars(select(e.c.id).where(
                e.c.deleted_at.is_(None), e.c.active.is_(True),
                e.c.employment_type == schema.EMPLOYEE_TYPE)))

    def add_time_entry(self) -> str | None:
        entry_id = self._insert_time_entry(Decimal(self.rng.randint(1, 32)) / 4)
        return None if entry_id is None else f"time entry {entry_id} added"

    def _insert_time_entry(self, hours: Decimal) -> int | None:
        projects, employees = self._usable_projects(), self._employee_ids()
        if not projects or not employees:
            return None
        entry_id = self._new_id(schema.time_entries)
        row = {"id": entry_id, "employee_id": self.rng.choice(employees),
               "project_id": self.rng.choice(projects)["id"],
               "work_date": self.today - timedelta(days=self.rng.randint(1, 20)),
               "hours": hours, "description": f"Chaos task {self._next()}", "billable": True,
               "approved": True, "hourly_rate": Decimal(100), **self._stamps()}
        self._insert(schema.time_entries, row)
        self.expect.remember("time_entry", entry_id, time_signature(row))
        return entry_id

    def add_invoice(self) -> str | None:
        projects = self._usable_projects()
        if not projects:
            return None
        invoice_id = self._new_id(schema.invoices)
        first_line = self._new_id(schema.invoice_lines)
        lines = [self._invoice_line(invoice_id, first_line + n, n + 1)
                 for n in range(self.rng.randint(1, 3))]
        issued = self.today - timedelta(days=self.rng.randint(1, 20))
        number = f"INV-C{invoice_id:05d}"
        self._insert(schema.invoices, {
            "id": invoice_id, "project_id": self.rng.choice(projects)["id"], "number": number,
            "issue_date": issued, "due_date": issued + timedelta(days=30), "notes": None,
            "tax_rate": Decimal(0), "tax_amount": Decimal(0), "status": "sent",
            "balance": None, **self._stamps()})
        with self.engine.begin() as connection:
            connection.execute(insert(schema.invoice_lines), lines)
        self.expect.remember("invoice", invoice_id, number)
        return f"invoice {invoice_id} added with {len(lines)} lines"

    def _invoice_line(self, invoice_id: int, line_id: int, line_no: int) -> dict[str, Any]:
        service, hourly = self.rng.choice([s for s in SERVICES if s[1] is not None])
        quantity = Decimal(self.rng.randint(1, 20))
        price = Decimal(hourly or 100)
        return {"id": line_id, "invoice_id": invoice_id, "line_no": line_no,
                "description": f"{service} (chaos)", "quantity": quantity,
                "unit_price": price, "amount": (quantity * price).quantize(CENT),
                "service_name": service}

    def add_bad_row(self) -> str | None:
        """A row the pipeline must quarantine with a reason, never push."""
        if self.rng.random() < 0.5:
            client_id = self._new_id(schema.clients)
            self._insert(schema.clients, {
                "id": client_id, "name": f"Chaos Client {self._next()}", "email": None,
                "phone": self._phone(), "active": True, **self._stamps()})
            self.expect.bad_rows[("client", str(client_id))] = "added without an email"
            return f"client {client_id} added without an email (bad on purpose)"
        entry_id = self._insert_time_entry(Decimal(25))
        if entry_id is None:
            return None
        self.expect.bad_rows[("time_entry", str(entry_id))] = "added with 25 hours"
        return f"time entry {entry_id} added with 25 hours (bad on purpose)"

    # --- soft deletes ------------------------------------------------------------------------

    def _soft_delete(self, table: Table, row_id: int) -> None:
        stamp = now_stamp()
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id == row_id).values(
                deleted_at=stamp, updated_at=stamp))

    def delete_time_entry(self) -> str | None:
        entry_id = self._pick(self._live_ids(schema.time_entries, "time_entry"))
        if entry_id is None:
            return None
        self._soft_delete(schema.time_entries, entry_id)
        return f"time entry {entry_id} deleted"

    def delete_invoice(self) -> str | None:
        invoice_id = self._pick(self._live_ids(schema.invoices, "invoice"))
        if invoice_id is None:
            return None
        self._soft_delete(schema.invoices, invoice_id)
        return f"invoice {invoice_id} deleted"

    def delete_client(self) -> str | None:
        """Only a client with no live project: QBO refuses work on an inactive customer, and
        the app would not leave a live project under a deleted client."""
        p = schema.projects
        with self.engine.connect() as connection:
            parents = set(connection.scalars(select(p.c.client_id).where(
                p.c.deleted_at.is_(None))))
        free = [c for c in self._live_ids(schema.clients, "client") if c not in parents]
        client_id = self.rng.choice(free) if free else None
        if client_id is None:
            return None
        self._soft_delete(schema.clients, client_id)
        return f"client {client_id} deleted"


# --- QBO edits -------------------------------------------------------------------------------

# (spec, QBO entity, field path, how a value is made): client fields are `review` (a change on
# both sides is a conflict), project contact fields `qbo_wins`, employee phones `review`.
QBO_EDITABLE: tuple[tuple[str, str, str], ...] = (
    ("client", "Customer", "PrimaryPhone.FreeFormNumber"),
    ("client", "Customer", "PrimaryEmailAddr.Address"),
    ("project", "Customer", "PrimaryPhone.FreeFormNumber"),
    ("project", "Customer", "GivenName"),
    ("employee", "Employee", "PrimaryPhone.FreeFormNumber"),
)


class QboEditor:
    """A bookkeeper editing linked records in QBO while syncs run."""

    def __init__(self, emulator: Emulator, realm_id: str, links: Callable[[str], list[
            tuple[str, str]]], rng: random.Random, expectations: Expectations) -> None:
        self.emulator = emulator
        self.realm_id = realm_id
        self.links = links  # spec -> [(source key, QBO Id)] of live links
        self.rng = rng
        self.expect = expectations
        self.serial = 0

    def random_edit(self) -> str | None:
        spec, entity, path = self.rng.choice(QBO_EDITABLE)
        linked = sorted(self.links(spec), key=lambda link: int(link[0]))
        if not linked:
            return None
        hot = linked[:HOT_RECORDS] if self.rng.random() < HOT_SHARE else linked
        source_key, qbo_id = self.rng.choice(hot)
        value = self._value(path)
        top, _, leaf = path.partition(".")
        try:
            self.emulator.edit(self.realm_id, entity, qbo_id,
                               {top: {leaf: value}} if leaf else {top: value})
        except (ChaosError, OSError):
            return None  # the emulator is down or refused: no edit was made
        self.expect.qbo_edits[(spec, source_key, path)] = QboEdit(spec, source_key, entity,
                                                                  qbo_id, path, value)
        self.expect.count("QBO edits")
        return f"QBO {entity} {qbo_id} ({spec} {source_key}): {path} {value!r}"

    def _value(self, path: str) -> str:
        self.serial += 1
        if path.startswith("PrimaryPhone"):
            return f"(555) 8{self.serial:02d}-{self.rng.randint(0, 9999):04d}"
        if path.startswith("PrimaryEmailAddr"):
            return f"bookkeeper.{self.serial}@qbo-edit.example.com"
        return f"Qbo{self.serial}"
