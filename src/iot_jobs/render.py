"""SDK and boto3 objects to the wire-format JSON lines the sample prints.

The device SDK hands back objects with snake_case attributes and naive local datetimes; we print
what travelled on the wire: camelCase keys in the service's order, integer epoch seconds, absent
fields left out. boto3 responses keep their ``ResponseMetadata`` (minus the raw HTTP headers).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

#: Attribute -> wire key, in the order AWS IoT sends them (live captures).
_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetPendingJobExecutionsResponse": (
        ("client_token", "clientToken"),
        ("timestamp", "timestamp"),
        ("in_progress_jobs", "inProgressJobs"),
        ("queued_jobs", "queuedJobs"),
    ),
    "StartNextJobExecutionResponse": (
        ("client_token", "clientToken"),
        ("timestamp", "timestamp"),
        ("execution", "execution"),
    ),
    "DescribeJobExecutionResponse": (
        ("client_token", "clientToken"),
        ("timestamp", "timestamp"),
        ("execution", "execution"),
    ),
    "UpdateJobExecutionResponse": (
        ("client_token", "clientToken"),
        ("timestamp", "timestamp"),
        ("execution_state", "executionState"),
        ("job_document", "jobDocument"),
    ),
    "JobExecutionsChangedEvent": (("timestamp", "timestamp"), ("jobs", "jobs")),
    "NextJobExecutionChangedEvent": (("timestamp", "timestamp"), ("execution", "execution")),
    "JobExecutionData": (
        ("job_id", "jobId"),
        ("thing_name", "thingName"),
        ("status", "status"),
        ("status_details", "statusDetails"),
        ("queued_at", "queuedAt"),
        ("started_at", "startedAt"),
        ("last_updated_at", "lastUpdatedAt"),
        ("version_number", "versionNumber"),
        ("execution_number", "executionNumber"),
        ("job_document", "jobDocument"),
    ),
    "JobExecutionSummary": (
        ("job_id", "jobId"),
        ("queued_at", "queuedAt"),
        ("last_updated_at", "lastUpdatedAt"),
        ("started_at", "startedAt"),
        ("execution_number", "executionNumber"),
        ("version_number", "versionNumber"),
    ),
    "JobExecutionState": (
        ("status", "status"),
        ("status_details", "statusDetails"),
        ("version_number", "versionNumber"),
    ),
    "V2ErrorResponse": (
        ("code", "code"),
        ("message", "message"),
        ("client_token", "clientToken"),
        ("timestamp", "timestamp"),
        ("execution_state", "executionState"),
    ),
}

#: Arrays AWS always sends, even empty.
_ALWAYS = {("GetPendingJobExecutionsResponse", "in_progress_jobs"), ("GetPendingJobExecutionsResponse", "queued_jobs")}


def to_wire(value: Any) -> Any:
    """Convert an SDK model object (recursively) to wire-format JSON values."""
    kind = type(value).__name__
    if kind in _FIELDS:
        out: dict[str, Any] = {}
        for attr, key in _FIELDS[kind]:
            item = getattr(value, attr, None)
            if item is None:
                if (kind, attr) in _ALWAYS:
                    out[key] = []
                continue
            out[key] = to_wire(item)
        return out
    if isinstance(value, datetime.datetime):
        # The SDK builds naive local datetimes with fromtimestamp(); timestamp() undoes exactly that.
        return int(value.timestamp())
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON, like the seed's transcripts."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def response_line(operation: str, payload: Any) -> str:
    return f"{operation} Response: {dumps(payload)}"


def event_line(event_name: str, event: Any) -> str:
    return f"Received {event_name} event: {dumps(to_wire(event))}"


def boto3_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's response with ``ResponseMetadata`` first (as the seed shows ``$metadata``), headers dropped."""
    metadata = {k: v for k, v in response.get("ResponseMetadata", {}).items() if k != "HTTPHeaders"}
    out: dict[str, Any] = {"ResponseMetadata": metadata}
    for key, value in response.items():
        if key != "ResponseMetadata":
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """boto3 datetimes become epoch seconds, like the wire."""
    if isinstance(value, datetime.datetime):
        seconds = value.timestamp()
        return int(seconds) if seconds == int(seconds) else round(seconds, 3)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
