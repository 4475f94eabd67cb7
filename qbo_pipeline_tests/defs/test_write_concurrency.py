"""Batches in flight together (issue 12: "use its concurrency, within 10 requests at once"):
with QBO answering each batch slowly, a spec's batches go several at a time, each record is
written once and linked once, and the emulator never sees more than QBO allows. Real HTTP to
the emulator at a QBO-like pace, real SQLite, Dagster's materialize."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from qbo_pipeline_tests.defs.conftest import PipelineUnderTest
from qbo_pipeline_tests.defs.test_names_lists import links_of
from qbo_pipeline_tests.defs.test_pull_and_two_way import rows
from qbo_pipeline_tests.defs.test_sync import synced_counts

BATCH_SECONDS = 0.3  # a slow answer, so that batches overlap whenever they can


@pytest.fixture
def slow_batches(pipeline: PipelineUnderTest) -> Iterator[PipelineUnderTest]:
    latency = f"{pipeline.realm.base_url}/admin/latency"
    assert requests.put(latency, json={"batch": BATCH_SECONDS}, timeout=5).status_code == 200
    try:
        yield pipeline
    finally:
        requests.put(latency, json={}, timeout=5)


def test_slow_batches_go_several_at_once_and_each_record_once(
        slow_batches: PipelineUnderTest) -> None:
    pipeline = slow_batches
    result = pipeline.run()
    assert result.success
    entries = [str(row["id"]) for row in rows(pipeline, "SELECT id FROM time_entries")]
    written = synced_counts(result)["time_entry"]["created"]
    assert written > 60, "enough time entries for three batches or more"

    limits = requests.get(f"{pipeline.realm.base_url}/admin/limits", timeout=5).json()
    peak = limits["usage"][pipeline.realm.realm_id]["peak_in_flight"]
    assert 2 <= peak <= 10, f"{peak} requests in flight at most"

    linked = links_of(pipeline, "time_entry")
    assert len(linked) == written and set(linked) <= set(entries)
    in_qbo = Counter(record["Id"] for record in pipeline.qbo_records()["TimeActivity"])
    assert set(in_qbo) == set(linked.values()) and set(in_qbo.values()) == {1}, "none twice"
    # Nothing is left as sent without an answer, and a second run has nothing to send.
    again = synced_counts(pipeline.run())
    assert all(counts.get("created", 0) == 0 and counts.get("updated", 0) == 0
               for counts in again.values()), again
