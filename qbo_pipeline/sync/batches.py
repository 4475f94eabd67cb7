"""The order writes go out in: a batch a run sent but never recorded the answer of first.

A run can die after QBO did a batch's writes and before their links were recorded. The batch
goes out again first, with the same items in the same order, so that its requestid is the
same: QBO then answers with what it did the first time instead of doing it again. A logged
batch some of whose writes the new plan no longer holds (the record changed meanwhile) cannot
be sent as it was; its writes are planned anew like any other.

Such a batch that holds a create of a record still not linked is the dangerous one: QBO may
have done that create, and only the batch's own requestid gets its answer; the create sent in
another batch would make a second record. So it goes out again as it was logged
(`batches_to_recover`): its items' bIds, operations and entity in their order give the same
requestid, and QBO answers with what it did the first time, whatever the bodies now carry. Each
item carries the record's write of the new plan when there is one, so that a batch that never
reached QBO does the current changes; the records it links are then re-diffed against what QBO
answered (`recovered_base`), which updates a record that changed meanwhile.

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
from qbo_pipeline.sync.plan import Write, WriteKind

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
    kind: WriteKind = WriteKind.UPDATE
    qbo_id: str | None = None


def batches_to_recover(unanswered: Sequence[Sequence[PendingWrite]], writes: Sequence[Write],
                       linked: Collection[str]) -> list[list[Write]]:
    """The unanswered batches to send again as they were logged, before any new batch: those
    the plan cannot send as they were (`in_batches` sends the others) that hold a create of a
    record not `linked` (source keys). Each item is its logged request id and operation, with
    the body of the record's planned write of that kind, else an empty one (QBO answers a
    repeated requestid with its first answer; it never reads the body)."""
    planned = {write.request_id for write in writes}
    current = {(write.source_key, write.kind): write for write in writes}
    recovered = []
    for batch in unanswered:
        if all(pending.request_id in planned for pending in batch):
            continue
        if any(p.kind is WriteKind.CREATE and p.source_key not in linked for p in batch):
            recovered.append([_as_logged(pending, current.get((pending.source_key,
                                                                pending.kind)))
                              for pending in batch])
    return recovered


def _as_logged(pending: PendingWrite, planned: Write | None) -> Write:
    if planned is not None:
        return replace(planned, request_id=pending.request_id)
    return Write(pending.kind, pending.source_key, pending.qbo_id, {}, pending.request_id)


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
