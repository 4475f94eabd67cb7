"""The order writes go out in: a batch a run sent but never recorded the answer of first.

A run can die after QBO did a batch's writes and before their links were recorded. The batch
goes out again first, with the same items in the same order, so that its requestid is the
same: QBO then answers with what it did the first time instead of doing it again. A logged
batch some of whose writes the new plan no longer holds (the record changed meanwhile) cannot
be sent as it was; its writes are planned anew like any other.

A logged write the new plan does not send again, of a record that is linked, is superseded
(`superseded_writes`): the plan was made from the link and QBO's current record, so whatever
that write did or did not do is already accounted for. Without this it would stay pending
for ever, its batch listed as unanswered in every later run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from qbo_pipeline.sync.ids import attempt_request_id
from qbo_pipeline.sync.plan import Write

T = TypeVar("T")


def in_batches(writes: Sequence[Write], unanswered: Sequence[Sequence[str]],
               batch_size: int) -> list[list[Write]]:
    """Batches of at most `batch_size` writes, the unanswered batches first.

    `unanswered` holds the request ids of each batch sent without a recorded answer, in the
    order they were sent.
    """
    planned = {write.request_id: write for write in writes}
    batches: list[list[Write]] = []
    for request_ids in unanswered:
        if request_ids and all(request_id in planned for request_id in request_ids):
            batches.extend(split([planned.pop(request_id) for request_id in request_ids],
                                 batch_size))
    return batches + split(list(planned.values()), batch_size)


@dataclass(frozen=True)
class PendingWrite:
    """A write logged as sent whose answer was never recorded (its run died)."""

    request_id: str
    source_key: str


def superseded_writes(pending: Iterable[PendingWrite], linked: Collection[str],
                      planned: Collection[str]) -> list[str]:
    """The request ids of the pending writes whose answer no longer matters: their record is
    `linked` (source keys) and this run does not send them again (`planned`: the request ids
    it sends). A write sent again is answered by QBO with its first answer; one of a record
    not linked stays pending (a create whose record was never linked may have happened)."""
    return [write.request_id for write in pending
            if write.source_key in linked and write.request_id not in planned]


def as_new_attempts(writes: Sequence[Write], refused: Collection[str]) -> list[Write]:
    """The writes, each under the request id of its next attempt when QBO already answered
    its id with a refusal (see `ids.attempt_request_id`)."""
    return [write if write.request_id not in refused
            else replace(write, request_id=attempt_request_id(write.request_id, refused))
            for write in writes]


def split(items: Sequence[T], size: int) -> list[list[T]]:
    if size < 1:
        raise ValueError(f"a batch holds at least one item, got size {size}")
    return [list(items[start:start + size]) for start in range(0, len(items), size)]
