"""What must hold once the chaos is over and the syncs have converged, checked from the real
databases: the emulator's dump of the company, the source DB, the state DB and Dagster's runs.

The checks read the tables with plain SQL and compare values by hand, on purpose: an oracle
that reused the pipeline's mapping code would share its bugs. Each problem found is a line
naming the record and what is wrong, under the invariant it breaks (DESIGN.md section 7).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy import Engine, select, text

from qbo_pipeline.source import demo_schema as schema
from qbo_pipeline_tests.chaos.edits import (
    CENT,
    Expectations,
    match_key,
    project_display_name,
    time_signature,
)

Record = dict[str, Any]
PUSHED_ENTITIES = ("Customer", "Employee", "Invoice", "TimeActivity")
UNFINISHED = [DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED,
              DagsterRunStatus.QUEUED, DagsterRunStatus.CANCELING]


@dataclass
class Findings:
    """Every problem found, by invariant; empty lists mean the invariant held."""

    duplicates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # QBO records no source record owns
    lost_rows: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    spurious_conflicts: list[str] = field(default_factory=list)  # no echo: only real ones
    bad_not_quarantined: list[str] = field(default_factory=list)
    runs_left_started: list[str] = field(default_factory=list)
    runs_unfinished: list[str] = field(default_factory=list)  # other non-final statuses
    integrity: list[str] = field(default_factory=list)
    pending_linked: list[str] = field(default_factory=list)
    pending_other: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # refused by QBO for good, with why
    checked_rows: int = 0

    def sections(self) -> dict[str, list[str]]:
        return {name: value for name, value in vars(self).items() if isinstance(value, list)}


@dataclass
class World:
    """Everything the checks read, once."""

    qbo: dict[str, dict[str, Record]]  # entity -> Id -> record
    rows: dict[str, dict[str, Record]]  # spec -> source key -> row
    lines: dict[str, list[Record]]  # invoice key -> its lines
    links: dict[str, dict[str, str]]  # spec -> source key -> QBO Id
    conflicts: dict[tuple[str, str], set[str] | None]  # open: field paths, None = whole record
    quarantine: dict[tuple[str, str], list[Any]]  # held rows: reasons
    pending: list[tuple[str, str, str, str]]  # spec, key, request id, operation
    realm_start: date


# A reason that names a passing failure: a row held back for it is lost (the next run would
# have written it), not refused.
TRANSIENT = re.compile(r"injected|unavailable|throttl|timed? ?out|connection|internal error|"
                       r"\b(429|500|502|503|504)\b", re.IGNORECASE)
SPEC_OF_TABLE = {"client": schema.clients, "project": schema.projects,
                 "employee": schema.employees, "invoice": schema.invoices,
                 "time_entry": schema.time_entries}
# The rows of a table that are the spec's, as its `source.filter` says (employee.yaml: users of
# employment type Employee; the 1099 contractors of the same table are contractor.yaml's).
SPEC_ROWS = {"employee": schema.employees.c.employment_type == schema.EMPLOYEE_TYPE}


def read_world(dump: Mapping[str, list[Record]], source: Engine, state: Engine,
               realm_id: str, realm_start: date) -> World:
    qbo = {entity: {str(r["Id"]): r for r in dump.get(entity, [])} for entity in PUSHED_ENTITIES}
    rows: dict[str, dict[str, Record]] = {}
    lines: dict[str, list[Record]] = defaultdict(list)
    with source.connect() as connection:
        for spec, table in SPEC_OF_TABLE.items():
            query = select(table) if spec not in SPEC_ROWS else select(table).where(
                SPEC_ROWS[spec])
            rows[spec] = {str(r["id"]): dict(r) for r in connection.execute(query).mappings()}
        for line in connection.execute(select(schema.invoice_lines)).mappings():
            lines[str(line["invoice_id"])].append(dict(line))
    links, conflicts, quarantine, pending = _read_state(state, realm_id)
    return World(qbo, rows, lines, links, conflicts, quarantine, pending, realm_start)


StateTables = tuple[dict[str, dict[str, str]], dict[tuple[str, str], set[str] | None],
                    dict[tuple[str, str], list[Any]], list[tuple[str, str, str, str]]]


def _read_state(state: Engine, realm_id: str) -> StateTables:
    realm = {"realm": realm_id}
    links: dict[str, dict[str, str]] = defaultdict(dict)
    conflicts: dict[tuple[str, str], set[str] | None] = {}
    quarantine: dict[tuple[str, str], list[Any]] = {}
    with state.connect() as connection:
        for spec, key, qbo_id in connection.execute(text(
                "SELECT spec_name, source_key, qbo_id FROM qbo_links WHERE realm_id = :realm"),
                realm):
            links[spec][key] = qbo_id
        for spec, key, fields in connection.execute(text(
                "SELECT spec_name, source_key, fields FROM qbo_conflicts "
                "WHERE realm_id = :realm AND status = 'open'"), realm):
            paths = {f["path"] for f in json.loads(fields or "[]")}
            conflicts[(spec, key)] = paths or None
        for spec, key, reasons in connection.execute(text(
                "SELECT spec_name, source_key, reasons FROM qbo_quarantine "
                "WHERE realm_id = :realm AND released_at IS NULL"), realm):
            quarantine[(spec, key)] = json.loads(reasons or "[]")
        pending = [(row[0], row[1], row[2], row[3]) for row in connection.execute(text(
            "SELECT spec_name, source_key, request_id, operation FROM qbo_write_log "
            "WHERE realm_id = :realm AND status = 'pending'"), realm)]
    return links, conflicts, quarantine, pending


# --- values ----------------------------------------------------------------------------------


def get_path(record: Mapping[str, Any] | None, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def same(expected: Any, actual: Any) -> bool:
    """Equal as QBO keeps them: "" is no value, 10.50 is 10.5, a date is its ISO text."""
    left, right = _plain(expected), _plain(actual)
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _number(left) == _number(right)
    return left == right


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    return str(value).strip()


def _number(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        return None


def _hours(row: Record) -> tuple[int, int]:
    minutes = int((Decimal(row["hours"]) * 60).to_integral_value())
    return minutes // 60, minutes % 60


def expected_fields(spec: str, row: Record, world: World) -> dict[str, Any]:
    """The QBO field values a source row must have, for the fields simple to check."""
    linked = world.links
    if spec == "client":
        return {"DisplayName": row["name"], "CompanyName": row["name"],
                "PrimaryEmailAddr.Address": row["email"],
                "PrimaryPhone.FreeFormNumber": row["phone"],
                "GivenName": row["contact_first_name"], "FamilyName": row["contact_last_name"]}
    if spec == "project":
        return {"DisplayName": project_display_name(row),
                "PrimaryEmailAddr.Address": row["email"],
                "PrimaryPhone.FreeFormNumber": row["phone"],
                "GivenName": row["contact_first_name"], "FamilyName": row["contact_last_name"],
                "ParentRef.value": linked["client"].get(str(row["client_id"]))}
    if spec == "employee":
        return {"GivenName": row["first_name"], "FamilyName": row["last_name"],
                "DisplayName": f"{row['first_name']} {row['last_name']}",
                "PrimaryEmailAddr.Address": row["email"],
                "PrimaryPhone.FreeFormNumber": row["phone"]}
    if spec == "invoice":
        lines = world.lines.get(str(row["id"]), [])
        total = sum((Decimal(line["amount"]) for line in lines), Decimal(row["tax_amount"]))
        return {"DocNumber": row["number"], "TxnDate": row["issue_date"], "TotalAmt": total,
                "CustomerRef.value": linked["project"].get(str(row["project_id"]))}
    hours, minutes = _hours(row)
    return {"TxnDate": row["work_date"], "Hours": hours, "Minutes": minutes,
            "Description": row["description"], "HourlyRate": row["hourly_rate"],
            "EmployeeRef.value": linked["employee"].get(str(row["employee_id"])),
            "CustomerRef.value": linked["project"].get(str(row["project_id"]))}


ENTITY_OF = {"client": "Customer", "project": "Customer", "employee": "Employee",
             "invoice": "Invoice", "time_entry": "TimeActivity"}


def in_scope(spec: str, row: Record, world: World) -> bool:
    """A row the pipeline must push: transactions from the realm's start date, approved time."""
    if spec == "invoice":
        return bool(row["issue_date"] >= world.realm_start)
    if spec == "time_entry":
        return bool(row["approved"]) and row["work_date"] >= world.realm_start
    return True


# --- the checks ------------------------------------------------------------------------------


def check_rows(world: World, expect: Expectations, findings: Findings) -> None:
    """Every valid row in scope is in QBO once, with the source's values (or, field by field,
    a QBO edit kept or an open conflict); every deleted one is voided or inactive."""
    for spec, rows in world.rows.items():
        for key, row in rows.items():
            if (spec, key) in expect.bad_rows or not in_scope(spec, row, world):
                continue
            findings.checked_rows += 1
            _check_row(spec, key, row, world, expect, findings)


def _check_row(spec: str, key: str, row: Record, world: World, expect: Expectations,
               findings: Findings) -> None:
    qbo_id = world.links[spec].get(key)
    record = world.qbo[ENTITY_OF[spec]].get(qbo_id or "")
    label = f"{spec} {key}"
    if row.get("deleted_at") is not None:
        if record is not None:
            _check_deleted(spec, label, record, findings)
        return
    if record is None:
        held = "; ".join(map(str, world.quarantine.get((spec, key), [])))
        if held and not TRANSIENT.search(held):
            findings.held_back.append(f"{label}: {held}")  # refused by QBO for good: fine
            return
        findings.lost_rows.append(
            f"{label}: valid and in scope, but " + (f"QBO {qbo_id} is gone" if qbo_id else
                                                     "not linked to any QBO record")
            + (f" (held back: {held})" if held else ""))
        return
    in_conflict = world.conflicts.get((spec, key), set())
    for path, wanted in expected_fields(spec, row, world).items():
        actual = get_path(record, path)
        if same(wanted, actual) or in_conflict is None or path in in_conflict:
            continue
        edit = expect.last_qbo_edit(spec, key, path)
        if edit is not None and same(edit.value, actual):
            continue  # a bookkeeper's edit the policy keeps (qbo_wins, or not re-synced)
        findings.lost_updates.append(f"{label}: QBO {qbo_id} {path} is {actual!r}, the source "
                                     f"holds {wanted!r} (no open conflict)")
    if spec in ("client", "project", "employee") and not same(row["active"], record["Active"]):
        findings.lost_updates.append(f"{label}: QBO {qbo_id} Active is {record['Active']!r}, "
                                     f"the source's active is {row['active']!r}")


def _check_deleted(spec: str, label: str, record: Record, findings: Findings) -> None:
    if spec == "invoice" and record.get("PrivateNote") != "Voided":
        findings.lost_updates.append(f"{label}: deleted in the source, QBO {record['Id']} "
                                     "is not voided")
    if spec in ("client", "project", "employee") and record.get("Active") is not False:
        findings.lost_updates.append(f"{label}: deleted in the source, QBO {record['Id']} "
                                     "is still active")


def check_qbo_edits(world: World, expect: Expectations, findings: Findings) -> None:
    """Every bookkeeper's edit is still in QBO, pulled into the source, or an open conflict."""
    for edit in expect.qbo_edits.values():
        record = world.qbo[edit.entity].get(edit.qbo_id)
        row = world.rows[edit.spec].get(edit.source_key)
        in_qbo = record is not None and same(edit.value, get_path(record, edit.path))
        pulled = row is not None and same(
            edit.value, expected_fields(edit.spec, row, world).get(edit.path))
        fields = world.conflicts.get((edit.spec, edit.source_key), set())
        if in_qbo or pulled or fields is None or edit.path in fields:
            continue
        now = None if record is None else get_path(record, edit.path)
        findings.lost_updates.append(
            f"{edit.spec} {edit.source_key}: the QBO edit {edit.path} = {edit.value!r} of "
            f"{edit.entity} {edit.qbo_id} is lost (QBO now {now!r}, not in the source, no "
            "open conflict)")


def check_conflicts(world: World, expect: Expectations, findings: Findings) -> None:
    """No echo: an open conflict is on a field a bookkeeper edited in QBO. QBO changes only
    through the pipeline's own writes otherwise, and those must never read as QBO's change."""
    for (spec, key), paths in world.conflicts.items():
        for path in sorted(paths) if paths is not None else ["(the whole record)"]:
            if expect.last_qbo_edit(spec, key, path) is None:
                findings.spurious_conflicts.append(
                    f"{spec} {key}: open conflict on {path}, which no bookkeeper edited in QBO")


def check_duplicates(world: World, expect: Expectations, findings: Findings) -> None:
    _duplicate_links(world, findings)
    _duplicate_keys(world, findings)
    _unlinked_records(world, expect, findings)


def _duplicate_links(world: World, findings: Findings) -> None:
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for spec, links in world.links.items():
        for key, qbo_id in links.items():
            owners[(ENTITY_OF.get(spec, spec), qbo_id)].append(f"{spec} {key}")
    for (entity, qbo_id), linked in owners.items():
        if len(linked) > 1:
            findings.duplicates.append(f"QBO {entity} {qbo_id} is linked to {', '.join(linked)}")


MATCH_FIELD = {"Customer": "DisplayName", "Employee": "DisplayName", "Invoice": "DocNumber"}


def _duplicate_keys(world: World, findings: Findings) -> None:
    for entity, path in MATCH_FIELD.items():
        by_key: dict[str, list[str]] = defaultdict(list)
        for qbo_id, record in world.qbo[entity].items():
            value = get_path(record, path)
            if isinstance(value, str):
                by_key[match_key(value)].append(qbo_id)
        for value, ids in by_key.items():
            if len(ids) > 1:
                findings.duplicates.append(f"QBO {entity} {path} {value!r} is on "
                                           f"{len(ids)} records: Ids {', '.join(ids)}")


def _unlinked_records(world: World, expect: Expectations, findings: Findings) -> None:
    """A QBO record no link holds: traced by every match key a source record ever had, it is
    a second record of that source record (a duplicate), else an orphan."""
    linked = {(ENTITY_OF[spec], qbo_id) for spec, links in world.links.items()
              if spec in ENTITY_OF for qbo_id in links.values()}
    owners = _owners_by_key(expect)
    source_keys = {spec: {qbo_id: key for key, qbo_id in links.items()}
                   for spec, links in world.links.items()}
    for entity in PUSHED_ENTITIES:
        for qbo_id, record in world.qbo[entity].items():
            if (entity, qbo_id) in linked:
                continue
            owner = owners.get((entity, _key_of(entity, record, source_keys)))
            _report_unlinked(entity, qbo_id, record, owner, world, findings)


def _owners_by_key(expect: Expectations) -> dict[tuple[str, str], tuple[str, str]]:
    owners = {}
    for (spec, key), keys in expect.keys_ever.items():
        for value in keys:
            owners[(ENTITY_OF[spec], value)] = (spec, key)
    return owners


def _key_of(entity: str, record: Record, source_key: Mapping[str, Mapping[str, str]]) -> str:
    """The record's match key; for a TimeActivity, its signature in source keys."""
    if entity in MATCH_FIELD:
        return match_key(str(get_path(record, MATCH_FIELD[entity]) or ""))
    minutes = int(record.get("Hours") or 0) * 60 + int(record.get("Minutes") or 0)
    employees, projects = source_key.get("employee", {}), source_key.get("project", {})
    return match_key(time_signature({
        "employee_id": employees.get(str(get_path(record, "EmployeeRef.value"))),
        "project_id": projects.get(str(get_path(record, "CustomerRef.value"))),
        "work_date": record.get("TxnDate"), "hours": Decimal(minutes) / 60,
        "description": record.get("Description")}))


def _report_unlinked(entity: str, qbo_id: str, record: Record, owner: tuple[str, str] | None,
                     world: World, findings: Findings) -> None:
    shown = get_path(record, MATCH_FIELD.get(entity, "TxnDate"))
    if owner is None:
        findings.orphans.append(f"QBO {entity} {qbo_id} ({shown!r}) is linked to no source "
                                "record and matches none")
        return
    spec, key = owner
    other = world.links[spec].get(key)
    if other is not None:
        findings.duplicates.append(f"{spec} {key} has two QBO {entity} records: {other} "
                                   f"(linked) and {qbo_id} ({shown!r}, unlinked)")
    else:
        findings.orphans.append(f"QBO {entity} {qbo_id} ({shown!r}) belongs to {spec} {key}, "
                                "which links no QBO record")


def check_quarantine(world: World, expect: Expectations, findings: Findings) -> None:
    """Every bad row is held back with a reason, and never reached QBO."""
    for (spec, key), why in expect.bad_rows.items():
        reasons = world.quarantine.get((spec, key))
        if not reasons:
            findings.bad_not_quarantined.append(f"{spec} {key} ({why}) is not quarantined")
        if key in world.links[spec]:
            findings.bad_not_quarantined.append(f"{spec} {key} ({why}) is linked to QBO "
                                                f"{world.links[spec][key]}")


def check_write_log(world: World, findings: Findings) -> None:
    """No write left pending for a record that is linked: its outcome is known."""
    for spec, key, request_id, operation in world.pending:
        line = f"{spec} {key}: {operation} {request_id} still pending"
        if key in world.links.get(spec, {}):
            findings.pending_linked.append(f"{line}, although linked to QBO "
                                           f"{world.links[spec][key]}")
        else:
            findings.pending_other.append(line)


def check_sqlite_files(paths: Iterable[Path], findings: Findings) -> None:
    for path in paths:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            answer = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        finally:
            connection.close()
        if answer != ["ok"]:
            findings.integrity.append(f"{path.name}: {'; '.join(answer[:5])}")


def check_runs(dagster_home: Path, findings: Findings) -> None:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
            findings.runs_left_started.append(f"run {run.run_id} is STARTED ({run.tags})")
        for run in instance.get_runs(RunsFilter(statuses=UNFINISHED)):
            findings.runs_unfinished.append(f"run {run.run_id} is {run.status.value}")


def check_all(world: World, expect: Expectations, dagster_home: Path,
              sqlite_files: Iterable[Path]) -> Findings:
    findings = Findings()
    check_duplicates(world, expect, findings)
    check_rows(world, expect, findings)
    check_qbo_edits(world, expect, findings)
    check_conflicts(world, expect, findings)
    check_quarantine(world, expect, findings)
    check_write_log(world, findings)
    check_sqlite_files(sqlite_files, findings)
    check_runs(dagster_home, findings)
    return findings
