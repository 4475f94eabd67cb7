"""The error catalog: every fault shape QBO answers with becomes the exception the sync acts on."""

from __future__ import annotations

import json

import pytest

from qbo_pipeline.emulator import exceptions as faults
from qbo_pipeline.qbo.errors import (
    AuthError,
    DuplicateDocNumberError,
    DuplicateNameError,
    ObjectNotFoundError,
    QBOError,
    QBOServiceError,
    RequestContext,
    StaleObjectError,
    ThrottledError,
    ValidationError,
    error_from_fault_body,
    error_from_response,
    parse_faults,
)

UPDATE_CUSTOMER = RequestContext("update", "Customer", "58")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (faults.StaleObject("Customer", "58", "0", "1"), StaleObjectError),
        (faults.DuplicateName("12"), DuplicateNameError),
        (faults.DuplicateDocNumber("1001", "Invoice", "130"), DuplicateDocNumberError),
        (faults.ObjectNotFound("Customer", "58"), ObjectNotFoundError),
        (faults.RequiredParameterMissing("Line"), ValidationError),
        (faults.QueryParserError("bad query"), ValidationError),
        (faults.InternalServerError("boom"), QBOServiceError),
        (faults.AuthorizationFailed("wrong realm"), AuthError),
    ],
)
def test_json_fault_maps_to_its_exception(fault: faults.QBOFault,
                                          expected: type[QBOError]) -> None:
    error = error_from_response(UPDATE_CUSTOMER, fault.http_status,
                                json.dumps(fault.to_json_body()), "tid-1")
    assert type(error) is expected
    assert error.code == fault.code
    assert "update Customer Id=58" in str(error)
    assert fault.detail in str(error)
    assert "[intuit_tid tid-1]" in str(error)


def test_stale_object_message_says_what_to_do() -> None:
    fault = faults.StaleObject("Customer", "58", "0", "1")
    error = error_from_response(UPDATE_CUSTOMER, 400, json.dumps(fault.to_json_body()))
    assert isinstance(error, ValidationError)
    assert "the push re-reads the record, re-diffs it and retries" in str(error)
    assert error.faults[0].element == "SyncToken"


def test_lowercase_401_fault_shape_is_an_auth_error() -> None:
    body = faults.AuthenticationFailed("Token expired: eyJsecret-looking").to_json_body()
    error = error_from_response(RequestContext("read", "Invoice", "7"), 401, json.dumps(body))
    assert isinstance(error, AuthError)
    assert error.code == "3200"
    assert "disconnect and reconnect the company" in str(error)


def test_xml_throttle_fault_is_parsed_even_for_json_clients() -> None:
    text = faults.ThrottleExceeded().to_xml_body()
    (fault,) = parse_faults(text)
    assert fault.code == "3001"
    assert "ThrottleExceeded" in fault.message
    assert fault.detail == "The request limit was reached.  Try again later"
    assert isinstance(error_from_response(RequestContext("query"), 429, text), ThrottledError)


def test_batch_item_fault_has_no_status_but_keeps_its_class() -> None:
    fault = faults.DuplicateName("12").fault_body()
    error = error_from_fault_body(RequestContext("batch create (bId c-1)", "Customer"), fault)
    assert isinstance(error, DuplicateNameError)
    assert "bId c-1" in str(error)
    assert error.http_status is None


@pytest.mark.parametrize(("status", "expected"), [
    (429, ThrottledError), (503, QBOServiceError), (401, AuthError), (400, ValidationError),
    (404, ObjectNotFoundError),
])
def test_unreadable_body_falls_back_to_the_status(status: int,
                                                  expected: type[QBOError]) -> None:
    error = error_from_response(RequestContext("query"), status, "<html>Bad gateway</html>")
    assert type(error) is expected
    assert "unexpected response body" in str(error)


def test_every_error_of_a_fault_is_reported() -> None:
    body = {"Fault": {"type": "ValidationFault", "Error": [
        {"Message": "Invalid String", "Detail": "DisplayName too long", "code": "2050",
         "element": "DisplayName"},
        {"Message": "Required param missing", "Detail": "Line is missing", "code": "2020"},
    ]}}
    error = error_from_response(RequestContext("create", "Invoice"), 400, json.dumps(body))
    assert isinstance(error, ValidationError)
    assert [fault.code for fault in error.faults] == ["2050", "2020"]
    assert "(field DisplayName)" in str(error)
    assert "Line is missing" in str(error)


def test_a_duplicate_name_says_which_record_holds_it_and_whether_it_is_a_display_name() -> None:
    """Intuit's 6240 detail ends with the Id of the record holding the name ("The name supplied
    already exists. : Id=59"); the element tells a DisplayName from an item's Name."""
    display = error_from_fault_body(UPDATE_CUSTOMER, faults.DuplicateName("59").fault_body())
    item = error_from_fault_body(UPDATE_CUSTOMER,
                                 faults.DuplicateName("7", "Name").fault_body())
    assert isinstance(display, DuplicateNameError) and isinstance(item, DuplicateNameError)
    assert (display.taken_by, display.on_display_name) == ("59", True)
    assert (item.taken_by, item.on_display_name) == ("7", False)
