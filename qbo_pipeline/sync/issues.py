"""Why a record cannot be synced: one `RowIssue` per problem, worded for a bookkeeper.

Every reason names the record, what is wrong (the field or the source column) and the fix:
`client 17: PrimaryEmailAddr.Address is required - add an email to the client`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbo_pipeline.specs import EntitySpec


@dataclass(frozen=True)
class RowIssue:
    """Why one source record cannot be synced, in words a bookkeeper can act on."""

    source_key: str
    field_path: str
    reason: str


def row_issue(spec: EntitySpec, source_key: str, path: str, problem: str, fix: str) -> RowIssue:
    """`client 17: PrimaryEmailAddr.Address is required - add an email to the client`."""
    reason = f"{spec.record_label} {source_key}: {path} {problem} - {fix}"
    return RowIssue(source_key, path, reason)


def column_issue(spec: EntitySpec, source_key: str, column: str, problem: str,
                 fix: str | None = None) -> RowIssue:
    """`time entry 5: hours: 'abc' is not a number - correct hours on the time entry`."""
    fix = fix or f"correct {column} on the {spec.record_label}"
    return RowIssue(source_key, column,
                    f"{spec.record_label} {source_key}: {column}: {problem} - {fix}")
