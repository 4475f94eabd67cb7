"""The pull side of a plan: which QBO values are written into the source, as `SourceWrite`s.

Per QBO record in scope (`plan.plan_pull`, and the pull side of `plan.plan_changes`):

- no source row yet: under `target: upsert` the record becomes a new row (`upsert`, keyed by
  its QBO Id), with every pulled column; under `target: linked` it is skipped;
- a source row: the fields the diff says to PULL are read back (`reverse.py`) and set on the
  row (`update`, by source key); pull-only fields are compared in column space, so a row that
  already holds QBO's values gets no write;
- deleted in QBO (CDC `status: Deleted`): `on_qbo_delete` says `mark_inactive` (the inactive
  column becomes false) or `set_deleted` (`source.deleted` becomes the run's clock); made
  inactive (`Active: false`): the same columns are set along with the pulled values;
- auto-apply rules: when a rule's `when` holds on the QBO record and the row's columns differ
  from its `set`, they are set too, without review.

A record whose pulled values cannot be read back or break the spec's rules is quarantined
whole, with every reason: it is never half-written. Its key is its source key, or `qbo:<Id>`
when it has no source row yet.

Each write carries `settles`: the fields (QBO path -> value in payload form) that both sides
hold once it is done. The link's base after a successful write is `settle_base(base, settles)`
(`SourceWrite.base` is that, computed on the base the plan was made from), so the next diff sees
s == b == q for those fields: no echo.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qbo_pipeline.specs import EntitySpec, PullRead, PullSpec, PullTarget, QboDeleteAction
from qbo_pipeline.specs.checks import inactive_column
from qbo_pipeline.sync.diff import RecordDiff, as_utc, qbo_updated_at
from qbo_pipeline.sync.mapping import RowIssue
from qbo_pipeline.sync.reverse import (
    ResolveSourceKey,
    UnmappedRecord,
    qbo_field_value,
    qbo_id_of,
    record_key,
    unmap_record,
)
from qbo_pipeline.sync.validation import QuarantinedRow, validate_pulled
from qbo_pipeline.sync.values import get_path, is_missing, set_path, values_equal

QBO_DELETED_STATUS = "Deleted"


class SourceWriteKind(StrEnum):
    UPDATE = "update"  # set `values` on the row whose primary key is `source_key`
    UPSERT = "upsert"  # set `values` on the row whose qbo_id_column holds `qbo_id`, or insert it
    MARK_INACTIVE = "mark_inactive"  # an update by `source_key`: the inactive column -> false
    SET_DELETED = "set_deleted"  # an update by `source_key`: source.deleted -> the run's clock


@dataclass(frozen=True)
class SourceWrite:
    """One write into the source database, as plain data for the adapter to execute.

    `values` are source column -> value (already read back: Decimal, int, bool, date, str or
    None; auto-apply values as the spec gives them). An `upsert` never holds the
    `qbo_id_column`: `qbo_id` is the value to match (and to set on an inserted row).
    `settles` is what the write makes both sides agree on (QBO path -> payload value);
    `base` the link's base once it is done (None: leave the base as it is); `fields` the QBO
    paths pulled; `reasons` and `auto_applied` (rule labels) are for the preview.
    """

    kind: SourceWriteKind
    source_key: str | None
    qbo_id: str
    values: dict[str, Any]
    base: dict[str, Any] | None
    settles: dict[str, Any] = field(default_factory=dict)
    fields: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    auto_applied: tuple[str, ...] = ()
    sync_token: str | None = None


@dataclass(frozen=True)
class PullQuery:
    """What the adapter asks QBO for: records of `qbo_entity` with `MetaData.LastUpdatedTime`
    after `since` (None: all of them), also meeting `filter` (QBO query text, passed on as is),
    inactive ones included when `include_inactive` (names lists hide them otherwise)."""

    qbo_entity: str
    since: dt.datetime | None
    filter: str | None
    include_inactive: bool


def pull_section(spec: EntitySpec) -> PullSpec:
    if spec.pull is None:
        raise ValueError(f"spec {spec.name} pulls nothing from QuickBooks (no pull section)")
    return spec.pull


def pull_query(spec: EntitySpec, now: dt.datetime, cursor: dt.datetime | None) -> PullQuery:
    """The QBO records a pull run reads: `read: changed` -> those changed since the pull
    `cursor` (all of them on the first run), `read: all` -> all; `modified_within_days`
    narrows either to the last N days before `now`."""
    pull = pull_section(spec)
    since = cursor if pull.read is PullRead.CHANGED else None
    if pull.modified_within_days is not None:
        window_start = as_utc(now) - dt.timedelta(days=pull.modified_within_days)
        since = window_start if since is None else max(as_utc(since), window_start)
    return PullQuery(spec.qbo_entity, since, pull.filter, include_inactive=True)


def in_pull_window(spec: EntitySpec, qbo: Mapping[str, Any], now: dt.datetime) -> bool:
    """False for a record last changed before the spec's `modified_within_days` window."""
    days = pull_section(spec).modified_within_days
    changed = qbo_updated_at(qbo)
    if days is None or changed is None:
        return True
    return changed >= as_utc(now) - dt.timedelta(days=days)


def is_deleted_in_qbo(qbo: Mapping[str, Any] | None) -> bool:
    """True for a record CDC reports as deleted (`"status": "Deleted"`)."""
    return qbo is not None and qbo.get("status") == QBO_DELETED_STATUS


def is_inactive_in_qbo(qbo: Mapping[str, Any] | None) -> bool:
    return qbo is not None and values_equal(qbo.get("Active"), False)


def settle_base(base: Mapping[str, Any] | None, settles: Mapping[str, Any]) -> dict[str, Any]:
    """The base after a write: `base` with each settled field set to the value both sides
    now hold; a None value removes the field (neither side holds one)."""
    settled = copy.deepcopy(dict(base or {}))
    for path, value in settles.items():
        if value is None:
            _remove_path(settled, path)
        else:
            set_path(settled, path, copy.deepcopy(value))
    return settled


def _remove_path(record: dict[str, Any], path: str) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        record.pop(head, None)
        return
    child = record.get(head)
    if isinstance(child, dict):
        _remove_path(child, rest)
        if not child:
            del record[head]


@dataclass(frozen=True)
class _Candidate:
    """A source write waiting for the pulled values' validation."""

    write: SourceWrite
    issues: tuple[RowIssue, ...]
    validated: frozenset[str]  # the pulled paths whose rules must hold
    qbo: Mapping[str, Any]


@dataclass
class PullPlanner:
    """Builds the source writes of one plan; `finish` validates them in one batch."""

    spec: EntitySpec
    now: dt.datetime
    resolve_source_key: ResolveSourceKey
    ref_entities: Mapping[str, str] | None = None
    candidates: list[_Candidate] = field(default_factory=list)

    @property
    def pull(self) -> PullSpec:
        return pull_section(self.spec)

    def unmap(self, qbo: Mapping[str, Any], source_key: str | None) -> UnmappedRecord:
        return unmap_record(self.spec, qbo, self.resolve_source_key, source_key=source_key,
                            ref_entities=self.ref_entities)

    def pull_only_same(self, unmapped: UnmappedRecord, row: Mapping[str, Any]) -> set[str]:
        """The pull-only fields whose columns already hold QBO's value (column space)."""
        return {path for path in self.spec.pull_only_fields
                if path in unmapped.by_field and _row_holds(row, unmapped.by_field[path])}

    def in_window(self, qbo: Mapping[str, Any]) -> bool:
        return in_pull_window(self.spec, qbo, self.now)

    def new_in_qbo(self, qbo: Mapping[str, Any]) -> bool:
        """Plan the import of a QBO record with no source row; False when it is skipped
        (target linked, deleted, inactive with an on_qbo_delete, or out of the window)."""
        pull = self.pull
        gone = is_deleted_in_qbo(qbo) or (is_inactive_in_qbo(qbo)
                                          and pull.on_qbo_delete is not QboDeleteAction.IGNORE)
        if pull.target is not PullTarget.UPSERT or gone or not self.in_window(qbo):
            return False
        unmapped = self.unmap(qbo, None)
        settles = {path: qbo_field_value(m, path, qbo)
                   for path, m in self.spec.pulled_fields.items() if path in unmapped.by_field}
        auto, labels = self._auto_apply(qbo, None)
        qbo_id = unmapped.qbo_id
        write = SourceWrite(
            SourceWriteKind.UPSERT, None, qbo_id, {**unmapped.values, **auto},
            settle_base(None, settles), settles, tuple(self.spec.pulled_fields),
            (f"new in QuickBooks: {self.spec.qbo_entity} {qbo_id}", *_auto_reasons(labels, auto)),
            labels, _token(qbo))
        self.candidates.append(_Candidate(write, unmapped.issues,
                                          frozenset(self.spec.pulled_fields), qbo))
        return True

    def linked(self, source_key: str, qbo: Mapping[str, Any], row: Mapping[str, Any],
               base: Mapping[str, Any] | None, diff: RecordDiff,
               unmapped: UnmappedRecord) -> None:
        """Plan the source write of a record with a source row, from its diff's PULL fields
        (the caller checks `in_window` first)."""
        pulled = [f.path for f in diff.pulls]
        values: dict[str, Any] = {}
        reasons: list[str] = []
        for path in pulled:
            columns = unmapped.by_field.get(path, {})
            values.update(columns)
            reasons.append(_change_reason(path, row, columns))
        inactive = self._inactive_columns(qbo, row)
        linking = self._qbo_id_column(qbo, row)
        auto, labels = self._auto_apply(qbo, row)
        if not (values or inactive or linking or auto):
            return
        # Only the inactive mark due: say so; anything else makes it an update of the row.
        only_marked = inactive and not (values or linking or auto)
        kind = self._delete_kind() if only_marked else SourceWriteKind.UPDATE
        settles = {path: qbo_field_value(self.spec.fields[path], path, qbo) for path in pulled}
        reasons += [*_marked_reasons(self.spec, qbo, inactive),
                    *_linking_reasons(linking), *_auto_reasons(labels, auto)]
        write = SourceWrite(kind, source_key, qbo_id_of(qbo),
                            {**values, **inactive, **linking, **auto},
                            settle_base(base, settles), settles, tuple(pulled), tuple(reasons),
                            labels, _token(qbo))
        issues = tuple(i for i in unmapped.issues if i.field_path in pulled)
        self.candidates.append(_Candidate(write, issues, frozenset(pulled), qbo))

    def deleted(self, source_key: str, qbo: Mapping[str, Any],
                row: Mapping[str, Any]) -> SourceWrite | None:
        """The write `on_qbo_delete` asks for a record deleted in QBO; None when there is
        nothing to do (ignore, or the row is already marked)."""
        columns = self._delete_columns(row)
        if not columns:
            return None
        write = SourceWrite(self._delete_kind(), source_key, qbo_id_of(qbo), columns, None,
                            reasons=(f"deleted in QuickBooks: {self.spec.qbo_entity} "
                                     f"{qbo_id_of(qbo)}",))
        self.candidates.append(_Candidate(write, (), frozenset(), qbo))
        return write

    def finish(self) -> tuple[list[SourceWrite], list[QuarantinedRow]]:
        """The writes whose pulled values read back and meet the rules; the others, whole,
        as quarantined records with every reason."""
        to_validate = {_key(c.write): c.qbo for c in self.candidates if c.validated}
        checked = validate_pulled(self.spec, to_validate) if to_validate else None
        broken = {row.source_key: row.issues for row in checked.quarantined} if checked else {}
        writes, quarantined = [], []
        for candidate in self.candidates:
            key = _key(candidate.write)
            issues = (*candidate.issues, *(i for i in broken.get(key, ())
                                           if i.field_path in candidate.validated))
            if issues:
                quarantined.append(QuarantinedRow(key, tuple(issues)))
            else:
                writes.append(candidate.write)
        return writes, quarantined

    def _delete_kind(self) -> SourceWriteKind:
        if self.pull.on_qbo_delete is QboDeleteAction.SET_DELETED:
            return SourceWriteKind.SET_DELETED
        return SourceWriteKind.MARK_INACTIVE

    def _delete_columns(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The columns on_qbo_delete sets, left out when the row already holds them."""
        action = self.pull.on_qbo_delete
        if action is QboDeleteAction.MARK_INACTIVE:
            column = inactive_column(self.spec)
            assert column is not None  # checked at load time
            return {} if values_equal(row.get(column), False) else {column: False}
        if action is QboDeleteAction.SET_DELETED:
            column = self.spec.source.deleted
            assert column is not None  # checked at load time
            return {} if not is_missing(row.get(column)) else {column: self.now}
        return {}

    def _inactive_columns(self, qbo: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
        return self._delete_columns(row) if is_inactive_in_qbo(qbo) else {}

    def _qbo_id_column(self, qbo: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
        """Under target upsert, a linked row also gets the QBO Id into its qbo_id_column, so
        that it is found by it (a row created in the source and pushed lacks it)."""
        column = self.pull.qbo_id_column
        if self.pull.target is not PullTarget.UPSERT or column is None:
            return {}
        qbo_id = qbo_id_of(qbo)
        return {} if values_equal(row.get(column), qbo_id) else {column: qbo_id}

    def _auto_apply(self, qbo: Mapping[str, Any],
                    row: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The columns auto-apply rules set (those the row does not hold yet), and the labels
        of the rules that set them."""
        columns: dict[str, Any] = {}
        labels: list[str] = []
        for index, rule in enumerate(self.pull.auto_apply):
            value = get_path(qbo, rule.when.field)
            if not any(values_equal(value, accepted) for accepted in rule.when.accepted):
                continue
            due = {column: wanted for column, wanted in rule.set_columns.items()
                   if row is None or not values_equal(row.get(column), wanted)}
            if due:
                columns.update(due)
                labels.append(self.pull.rule_label(index))
        return columns, tuple(labels)


def _row_holds(row: Mapping[str, Any], columns: Mapping[str, Any]) -> bool:
    return all(values_equal(row.get(column), value) for column, value in columns.items())


def _key(write: SourceWrite) -> str:
    return record_key(write.source_key, write.qbo_id)


def _token(qbo: Mapping[str, Any]) -> str | None:
    token = qbo.get("SyncToken")
    return None if token is None else str(token)


def _shown(values: Mapping[str, Any], named: bool = False) -> str:
    """Column values for a reason: a lone value as is (unless `named`), else `col=value`s."""
    if len(values) == 1 and not named:
        return repr(next(iter(values.values())))
    return ", ".join(f"{column}={value!r}" for column, value in values.items())


def _change_reason(path: str, row: Mapping[str, Any], columns: Mapping[str, Any]) -> str:
    before = {column: row.get(column) for column in columns}
    return f"{path} changed in QuickBooks: {_shown(before)} -> {_shown(columns)}"


def _marked_reasons(spec: EntitySpec, qbo: Mapping[str, Any],
                    columns: Mapping[str, Any]) -> list[str]:
    if not columns:
        return []
    return [f"made inactive in QuickBooks ({spec.qbo_entity} {qbo_id_of(qbo)}): "
            f"{_shown(columns, named=True)}"]


def _linking_reasons(columns: Mapping[str, Any]) -> list[str]:
    return [f"QuickBooks Id into {column}: {value!r}" for column, value in columns.items()]


def _auto_reasons(labels: Sequence[str], columns: Mapping[str, Any]) -> list[str]:
    if not labels:
        return []
    return [f"auto-applied ({', '.join(labels)}): {_shown(columns, named=True)}"]

