"""Device request parsing (``iot_jobs_local.jobs.requests``): each limit exactly at and one past its bound.

Limits (AWS IoT Jobs API reference): statusDetails at most 10 pairs, keys 1-128 of ``[a-zA-Z0-9:_-]``,
values 1-1024 characters without control characters; stepTimeoutInMinutes 1-10080 (update also -1);
jobId 1-64 of ``[a-zA-Z0-9_-]``; thingName 1-128 of ``[a-zA-Z0-9:_-]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from iot_jobs_local.jobs.errors import InvalidRequest
from iot_jobs_local.jobs.model import ExecutionStatus
from iot_jobs_local.jobs.requests import (
    JOB_ID_RE,
    MAX_DETAIL_VALUE,
    MAX_STATUS_DETAILS,
    MAX_STEP_TIMEOUT,
    THING_NAME_RE,
    DescribeRequest,
    StartNextRequest,
    UpdateRequest,
    parse_describe,
    parse_start_next,
    parse_status_details,
    parse_update,
)

Parser = Callable[[dict[str, Any]], Any]


def _update(**fields: Any) -> dict[str, Any]:
    return {"status": "IN_PROGRESS", **fields}


def test_documented_limits() -> None:
    assert (MAX_STATUS_DETAILS, MAX_DETAIL_VALUE, MAX_STEP_TIMEOUT) == (10, 1024, 10080)


# --- status -------------------------------------------------------------------------------------


def test_update_minimal() -> None:
    assert parse_update({"status": "SUCCEEDED"}) == UpdateRequest(status=ExecutionStatus.SUCCEEDED)


def test_update_every_field() -> None:
    payload = {
        "status": "IN_PROGRESS",
        "statusDetails": {"step": "2"},
        "expectedVersion": 2,
        "executionNumber": 1,
        "includeJobExecutionState": True,
        "includeJobDocument": True,
        "stepTimeoutInMinutes": 10,
        "clientToken": "c75bfd7d-233d-47a2-8004-2ca20e5e84bf",
    }
    assert parse_update(payload) == UpdateRequest(
        status=ExecutionStatus.IN_PROGRESS,
        status_details={"step": "2"},
        expected_version=2,
        execution_number=1,
        include_job_execution_state=True,
        include_job_document=True,
        step_timeout_minutes=10,
    )


@pytest.mark.parametrize("status", [s.value for s in ExecutionStatus])
def test_update_parses_every_status_name(status: str) -> None:
    # Which of them a device may set is the state machine's decision (test_transitions).
    assert parse_update({"status": status}).status is ExecutionStatus(status)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="missing"),
        pytest.param({"status": None}, id="null"),
        pytest.param({"status": ""}, id="empty"),
        pytest.param({"status": "succeeded"}, id="lower-case"),
        pytest.param({"status": "SUCCESS"}, id="model-typo-SUCCESS"),
        pytest.param({"status": "DONE"}, id="unknown"),
        pytest.param({"status": 1}, id="number"),
        pytest.param({"status": ["SUCCEEDED"]}, id="list"),
        pytest.param({"status": {"v": "SUCCEEDED"}}, id="object"),
        pytest.param({"statusDetails": {"a": "b"}}, id="details-without-status"),
    ],
)
def test_update_bad_status(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="status"):
        parse_update(payload)


def test_unknown_fields_are_ignored() -> None:
    assert parse_update(_update(unknown=1, thingName="t")).status is ExecutionStatus.IN_PROGRESS
    assert parse_start_next({"whatever": [1]}) == StartNextRequest()
    assert parse_describe({"whatever": [1]}) == DescribeRequest()


# --- statusDetails (shared by update and start-next) ----------------------------------------------

STATUS_DETAIL_PARSERS: list[Any] = [
    pytest.param(lambda d: parse_update(_update(statusDetails=d)).status_details, id="update"),
    pytest.param(lambda d: parse_start_next({"statusDetails": d}).status_details, id="start-next"),
    pytest.param(parse_status_details, id="direct"),
]

GOOD_DETAILS = [
    pytest.param(None, None, id="omitted"),
    pytest.param({}, {}, id="empty-map"),
    pytest.param({f"k{i}": "v" for i in range(10)}, {f"k{i}": "v" for i in range(10)}, id="10-pairs"),
    pytest.param({"k" * 128: "v"}, {"k" * 128: "v"}, id="key-128"),
    pytest.param({"k": "v"}, {"k": "v"}, id="key-1"),
    pytest.param({"a:B_9-z": "v"}, {"a:B_9-z": "v"}, id="key-all-allowed-chars"),
    pytest.param({"k": "v" * 1024}, {"k": "v" * 1024}, id="value-1024"),
    pytest.param({"k": "é" * 1024}, {"k": "é" * 1024}, id="value-1024-non-ascii-chars"),
    pytest.param({"k": "x"}, {"k": "x"}, id="value-1"),
    pytest.param({"k": "a b\u00e9/{}\"'"}, {"k": "a b\u00e9/{}\"'"}, id="value-spaces-and-punctuation"),
]

BAD_DETAILS = [
    pytest.param({f"k{i}": "v" for i in range(11)}, id="11-pairs"),
    pytest.param({"k" * 129: "v"}, id="key-129"),
    pytest.param({"": "v"}, id="key-empty"),
    pytest.param({"a b": "v"}, id="key-space"),
    pytest.param({"a.b": "v"}, id="key-dot"),
    pytest.param({"a/b": "v"}, id="key-slash"),
    pytest.param({"clé": "v"}, id="key-non-ascii"),
    pytest.param({"k\n": "v"}, id="key-trailing-newline"),
    pytest.param({"k": "v" * 1025}, id="value-1025"),
    pytest.param({"k": ""}, id="value-empty"),
    pytest.param({"k": "a\nb"}, id="value-newline"),
    pytest.param({"k": "a\x00"}, id="value-nul"),
    pytest.param({"k": "a\tb"}, id="value-tab"),
    pytest.param({"k": "a\u200bb"}, id="value-format-char"),
    pytest.param({"k": 1}, id="value-number"),
    pytest.param({"k": True}, id="value-bool"),
    pytest.param({"k": None}, id="value-null"),
    pytest.param({"k": {"nested": "v"}}, id="value-object"),
    pytest.param(["k", "v"], id="list"),
    pytest.param("k=v", id="string"),
    pytest.param(5, id="number"),
]


@pytest.mark.parametrize("parse", STATUS_DETAIL_PARSERS)
@pytest.mark.parametrize(("details", "expected"), GOOD_DETAILS)
def test_status_details_accepted(parse: Callable[[Any], Any], details: Any, expected: Any) -> None:
    assert parse(details) == expected


@pytest.mark.parametrize("parse", STATUS_DETAIL_PARSERS)
@pytest.mark.parametrize("details", BAD_DETAILS)
def test_status_details_rejected(parse: Callable[[Any], Any], details: Any) -> None:
    with pytest.raises(InvalidRequest, match="statusDetails"):
        parse(details)


def test_status_details_are_copied() -> None:
    supplied = {"k": "v"}
    parsed = parse_status_details(supplied)
    supplied["k"] = "changed"
    assert parsed == {"k": "v"}


# --- stepTimeoutInMinutes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "update_ok", "start_next_ok"),
    [
        pytest.param(None, True, True, id="omitted"),
        pytest.param(1, True, True, id="1"),
        pytest.param(10080, True, True, id="10080"),
        pytest.param(0, False, False, id="0"),
        pytest.param(10081, False, False, id="10081"),
        pytest.param(-1, True, False, id="minus-1"),
        pytest.param(-2, False, False, id="minus-2"),
    ],
)
def test_step_timeout_bounds(value: int | None, update_ok: bool, start_next_ok: bool) -> None:
    for parse, ok in ((parse_update, update_ok), (parse_start_next, start_next_ok)):
        payload = _update(stepTimeoutInMinutes=value)
        if ok:
            assert parse(payload).step_timeout_minutes == value
        else:
            with pytest.raises(InvalidRequest, match="stepTimeoutInMinutes"):
                parse(payload)


@pytest.mark.parametrize("parse", [parse_update, parse_start_next], ids=["update", "start-next"])
@pytest.mark.parametrize("value", [True, False, 1.5, 10.0, "10", [10], {"m": 10}], ids=repr)
def test_step_timeout_wrong_type(parse: Parser, value: Any) -> None:
    with pytest.raises(InvalidRequest, match="stepTimeoutInMinutes"):
        parse(_update(stepTimeoutInMinutes=value))


# --- integers and booleans ------------------------------------------------------------------------

INT_FIELDS = [
    pytest.param(parse_update, "expectedVersion", "expected_version", id="update-expectedVersion"),
    pytest.param(parse_update, "executionNumber", "execution_number", id="update-executionNumber"),
    pytest.param(parse_describe, "executionNumber", "execution_number", id="describe-executionNumber"),
]


@pytest.mark.parametrize(("parse", "wire", "attr"), INT_FIELDS)
@pytest.mark.parametrize("value", [None, 0, 1, 2**53])
def test_integer_fields_accepted(parse: Parser, wire: str, attr: str, value: int | None) -> None:
    assert getattr(parse(_update(**{wire: value})), attr) == value


@pytest.mark.parametrize(("parse", "wire", "attr"), INT_FIELDS)
@pytest.mark.parametrize("value", [True, False, 1.0, "1", [1]], ids=repr)
def test_integer_fields_wrong_type(parse: Parser, wire: str, attr: str, value: Any) -> None:
    with pytest.raises(InvalidRequest, match=wire):
        parse(_update(**{wire: value}))


BOOL_FIELDS = [
    pytest.param(parse_update, "includeJobExecutionState", "include_job_execution_state", False, id="update-state"),
    pytest.param(parse_update, "includeJobDocument", "include_job_document", False, id="update-document"),
    pytest.param(parse_describe, "includeJobDocument", "include_job_document", True, id="describe-document"),
]


@pytest.mark.parametrize(("parse", "wire", "attr", "default"), BOOL_FIELDS)
def test_boolean_fields(parse: Parser, wire: str, attr: str, default: bool) -> None:
    assert getattr(parse(_update()), attr) is default
    assert getattr(parse(_update(**{wire: None})), attr) is default
    assert getattr(parse(_update(**{wire: True})), attr) is True
    assert getattr(parse(_update(**{wire: False})), attr) is False


@pytest.mark.parametrize(("parse", "wire", "attr", "default"), BOOL_FIELDS)
@pytest.mark.parametrize("value", [1, 0, "true", "false", [True]], ids=repr)
def test_boolean_fields_wrong_type(parse: Parser, wire: str, attr: str, default: bool, value: Any) -> None:
    with pytest.raises(InvalidRequest, match=wire):
        parse(_update(**{wire: value}))


# --- start-next and describe defaults --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({}, StartNextRequest(), id="empty"),
        pytest.param({"clientToken": "abc"}, StartNextRequest(), id="token-only"),
        pytest.param(
            {"statusDetails": {"a": "b"}, "stepTimeoutInMinutes": 5},
            StartNextRequest(status_details={"a": "b"}, step_timeout_minutes=5),
            id="both",
        ),
    ],
)
def test_parse_start_next(payload: dict[str, Any], expected: StartNextRequest) -> None:
    assert parse_start_next(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({}, DescribeRequest(execution_number=None, include_job_document=True), id="defaults"),
        pytest.param({"clientToken": "abc"}, DescribeRequest(), id="token-only"),
        pytest.param({"executionNumber": 3}, DescribeRequest(execution_number=3), id="execution-number"),
        pytest.param({"includeJobDocument": False}, DescribeRequest(include_job_document=False), id="no-document"),
    ],
)
def test_parse_describe(payload: dict[str, Any], expected: DescribeRequest) -> None:
    assert parse_describe(payload) == expected


# --- identifier patterns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("J", True, id="1"),
        pytest.param("j" * 64, True, id="64"),
        pytest.param("j" * 65, False, id="65"),
        pytest.param("", False, id="empty"),
        pytest.param("Job_1-a", True, id="allowed-chars"),
        pytest.param("job:1", False, id="colon"),
        pytest.param("$next", False, id="dollar-next"),
        pytest.param("job 1", False, id="space"),
        pytest.param("job/1", False, id="slash"),
        pytest.param("job1\n", False, id="trailing-newline"),
    ],
)
def test_job_id_pattern(value: str, ok: bool) -> None:
    assert bool(JOB_ID_RE.match(value)) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("t", True, id="1"),
        pytest.param("t" * 128, True, id="128"),
        pytest.param("t" * 129, False, id="129"),
        pytest.param("", False, id="empty"),
        pytest.param("my:Thing_1-a", True, id="allowed-chars"),
        pytest.param("my thing", False, id="space"),
        pytest.param("my/thing", False, id="slash"),
        pytest.param("my+thing", False, id="plus"),
        pytest.param("thing\n", False, id="trailing-newline"),
    ],
)
def test_thing_name_pattern(value: str, ok: bool) -> None:
    assert bool(THING_NAME_RE.match(value)) is ok
