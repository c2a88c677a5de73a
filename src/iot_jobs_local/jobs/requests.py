"""Typed device requests, parsed and validated from a JSON payload (MQTT) or body (HTTP).

Limits come from the AWS IoT Jobs API reference: statusDetails holds at most 10 pairs, keys are
1-128 characters of ``[a-zA-Z0-9:_-]``, values 1-1024 characters with no control characters;
step timeouts are 1-10080 minutes, and UpdateJobExecution also accepts -1 to cancel the step timer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .model import ExecutionStatus

JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
THING_NAME_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}\Z")
_DETAIL_KEY_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}\Z")
MAX_STATUS_DETAILS = 10
MAX_DETAIL_VALUE = 1024
MAX_STEP_TIMEOUT = 10080
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class StartNextRequest:
    status_details: dict[str, str] | None = None
    step_timeout_minutes: int | None = None


@dataclass(frozen=True)
class DescribeRequest:
    execution_number: int | None = None
    include_job_document: bool = True


@dataclass(frozen=True)
class UpdateRequest:
    status: ExecutionStatus
    status_details: dict[str, str] | None = None
    expected_version: int | None = None
    execution_number: int | None = None
    include_job_execution_state: bool = False
    include_job_document: bool = False
    step_timeout_minutes: int | None = None


def _optional_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    if not LONG_MIN <= value <= LONG_MAX:  # a Java long on AWS; SQLite's INTEGER here
        raise InvalidRequest(f"{name} must be between {LONG_MIN} and {LONG_MAX}")
    return value


def _optional_bool(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a boolean")
    return value


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def parse_status_details(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("statusDetails must be an object of string values")
    if len(value) > MAX_STATUS_DETAILS:
        raise InvalidRequest(f"statusDetails may hold at most {MAX_STATUS_DETAILS} entries, got {len(value)}")
    for key, item in value.items():
        if not _DETAIL_KEY_RE.match(key):
            raise InvalidRequest(f"statusDetails key {key!r} must match [a-zA-Z0-9:_-]{{1,128}}")
        if not isinstance(item, str):
            raise InvalidRequest(f"statusDetails value for {key!r} must be a string")
        if not 1 <= len(item) <= MAX_DETAIL_VALUE or _has_control_chars(item):
            raise InvalidRequest(
                f"statusDetails value for {key!r} must be 1-{MAX_DETAIL_VALUE} characters with no control characters"
            )
    return dict(value)


def _step_timeout(payload: dict[str, Any], allow_cancel: bool) -> int | None:
    value = _optional_int(payload, "stepTimeoutInMinutes")
    if value is None:
        return None
    if allow_cancel and value == -1:
        return value
    if not 1 <= value <= MAX_STEP_TIMEOUT:
        allowed = "-1 or " if allow_cancel else ""
        raise InvalidRequest(f"stepTimeoutInMinutes must be {allowed}between 1 and {MAX_STEP_TIMEOUT}")
    return value


def parse_start_next(payload: dict[str, Any]) -> StartNextRequest:
    return StartNextRequest(
        status_details=parse_status_details(payload.get("statusDetails")),
        step_timeout_minutes=_step_timeout(payload, allow_cancel=False),
    )


def parse_describe(payload: dict[str, Any]) -> DescribeRequest:
    return DescribeRequest(
        execution_number=_optional_int(payload, "executionNumber"),
        include_job_document=_optional_bool(payload, "includeJobDocument", True),
    )


def parse_update(payload: dict[str, Any]) -> UpdateRequest:
    raw_status = payload.get("status")
    if raw_status is None:
        raise InvalidRequest("status is required")
    try:
        status = ExecutionStatus(raw_status)
    except ValueError:
        raise InvalidRequest(f"status {raw_status!r} is not a job execution status") from None
    return UpdateRequest(
        status=status,
        status_details=parse_status_details(payload.get("statusDetails")),
        expected_version=_optional_int(payload, "expectedVersion"),
        execution_number=_optional_int(payload, "executionNumber"),
        include_job_execution_state=_optional_bool(payload, "includeJobExecutionState", False),
        include_job_document=_optional_bool(payload, "includeJobDocument", False),
        step_timeout_minutes=_step_timeout(payload, allow_cancel=True),
    )
