"""Executions as the device planes show them (MQTT replies and the ``iot-jobs-data`` HTTP API alike),
field for field and in AWS's key order.

Timestamps are integer epoch seconds (the Python SDK rejects milliseconds), ``jobDocument`` is a
JSON object, empty ``statusDetails`` are left out as in the live captures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine import Located, document_object
from ..jobs.model import Execution


def seconds(value: float) -> int:
    return int(value)


def summary(execution: Execution) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobId": execution.job_id,
        "queuedAt": seconds(execution.queued_at),
        "lastUpdatedAt": seconds(execution.last_updated_at),
    }
    if execution.started_at is not None:
        out["startedAt"] = seconds(execution.started_at)
    out["executionNumber"] = execution.execution_number
    out["versionNumber"] = execution.version_number
    return out


def execution_data(located: Located, include_document: bool = True) -> dict[str, Any]:
    execution = located.execution
    out: dict[str, Any] = {"jobId": execution.job_id, "status": execution.status.value}
    if execution.status_details:
        out["statusDetails"] = dict(execution.status_details)
    out["queuedAt"] = seconds(execution.queued_at)
    if execution.started_at is not None:
        out["startedAt"] = seconds(execution.started_at)
    out["lastUpdatedAt"] = seconds(execution.last_updated_at)
    out["versionNumber"] = execution.version_number
    out["executionNumber"] = execution.execution_number
    if include_document:
        out["jobDocument"] = document_object(located.document)
    return out


def execution_state(execution: Execution) -> dict[str, Any]:
    out: dict[str, Any] = {"status": execution.status.value}
    if execution.status_details:
        out["statusDetails"] = dict(execution.status_details)
    out["versionNumber"] = execution.version_number
    return out


def pending_jobs(in_progress: Sequence[Execution], queued: Sequence[Execution]) -> dict[str, Any]:
    return {
        "inProgressJobs": [summary(e) for e in in_progress],
        "queuedJobs": [summary(e) for e in queued],
    }
