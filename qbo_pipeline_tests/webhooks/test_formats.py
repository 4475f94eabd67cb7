"""QBO's two webhook payloads read into events (webhooks/formats.py).

"CloudEvents notice" is Intuit's post "Upcoming change to webhooks payload structure" and its
page "Understanding the data object"; "webhooks docs" is Intuit's "Managing webhooks
notifications" (the legacy `eventNotifications` format). Seed 001: conflicts are detected "on
the next QB webhook", so each event of either format must be read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qbo_pipeline.webhooks.formats import NotifiedEvent, PayloadError, read_delivery


def test_cloudevents_of_several_realms() -> None:
    """CloudEvents notice: an array; type qbo.<entity>.<verb>.v1, intuitaccountid the realm,
    intuitentityid the record; a merge's data names the record merged away."""
    delivery = read_delivery([
        {"specversion": "1.0", "id": "a1-Customer-123", "source": "intuit.x",
         "type": "qbo.customer.merged.v1", "datacontenttype": "application/json",
         "time": "2025-12-04T15:25:05Z", "intuitentityid": "123",
         "intuitaccountid": "9341455", "data": {"deletedid": "27"}},
        {"specversion": "1.0", "id": "b2", "type": "qbo.journalentry.created.v1",
         "time": "2025-12-04T15:26:00.120Z", "intuitentityid": "8",
         "intuitaccountid": "4620816", "data": {}},
    ])
    assert delivery.events == [
        NotifiedEvent("9341455", "Customer", "123", "Merge",
                      datetime(2025, 12, 4, 15, 25, 5, tzinfo=UTC), "a1-Customer-123"),
        NotifiedEvent("4620816", "JournalEntry", "8", "Create",
                      datetime(2025, 12, 4, 15, 26, 0, 120000, tzinfo=UTC), "b2")]
    assert delivery.unreadable == []


def test_legacy_event_notifications_of_several_realms() -> None:
    """Webhooks docs: eventNotifications, each with realmId and dataChangeEvent.entities of
    name, id, operation, lastUpdated."""
    delivery = read_delivery({"eventNotifications": [
        {"realmId": "1185883450", "dataChangeEvent": {"entities": [
            {"name": "Customer", "id": "1", "operation": "Create",
             "lastUpdated": "2015-10-05T14:42:19-0700"},
            {"name": "Vendor", "id": "1", "operation": "Merge", "deletedId": "2",
             "lastUpdated": "2015-10-05T14:42:19-0700"}]}},
        {"realmId": "2", "dataChangeEvent": {"entities": [
            {"name": "Invoice", "id": "9", "operation": "Void",
             "lastUpdated": "2015-10-05T21:42:19.000Z"}]}},
    ]})
    moment = datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)
    assert delivery.events == [NotifiedEvent("1185883450", "Customer", "1", "Create", moment),
                               NotifiedEvent("1185883450", "Vendor", "1", "Merge", moment),
                               NotifiedEvent("2", "Invoice", "9", "Void", moment)]


def test_an_event_without_realm_or_id_is_reported_and_the_others_kept() -> None:
    delivery = read_delivery([
        {"specversion": "1.0", "id": "x", "type": "qbo.customer.updated.v1",
         "intuitentityid": "5"},
        {"specversion": "1.0", "id": "y", "type": "qbo.customer.updated.v1",
         "intuitentityid": "6", "intuitaccountid": "1", "time": "not a time"},
        "junk",
    ])
    assert delivery.events == [NotifiedEvent("1", "Customer", "6", "Update", None, "y")]
    assert delivery.unreadable == ["event 0 (id x): no intuitaccountid",
                                   "event 2: not a JSON object"]


def test_a_body_in_neither_format_is_refused_saying_what_was_expected() -> None:
    with pytest.raises(PayloadError, match="CloudEvents or an object with eventNotifications"):
        read_delivery({"hello": "world"})
