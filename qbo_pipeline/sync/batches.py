"""The order writes go out in: a batch a run sent but never recorded the answer of first.

A run can die after QBO did a batch's writes and before their links were recorded. The batch
goes out again first, with the same items in the same order, so that its requestid is the
same: QBO then answers with what it did the first time instead of doing it again. A logged
batch some of whose writes the new plan no longer holds (the record changed meanwhile) cannot
be sent as it was; its writes are planned anew like any other.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
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
