"""Domain records to the MQTT payloads AWS IoT Jobs sends, field for field and in its key order.

Timestamps are integer epoch seconds (the Python SDK rejects milliseconds), ``jobDocument`` is a
JSON object, ``thingName`` and empty ``statusDetails`` are left out as in the live captures.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from .engine import Located, PendingChange, document_object
from .http_api.control_wire import process_details
from .jobs.lifecycle_events import ExecutionEvent, JobEvent
from .jobs.model import Execution, ExecutionStatus


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


def jobs_changed(change: PendingChange, cap: int) -> dict[str, Any]:
    """JobExecutionsChanged: only non-empty status keys; exactly ``{"jobs":{}}`` when idle."""
    listed = change.pending[:cap]
    jobs: dict[str, list[dict[str, Any]]] = {}
    for status in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED):
        entries = [summary(e) for e in listed if e.status is status]
        if entries:
            jobs[status.value] = entries
    return {"timestamp": seconds(change.timestamp), "jobs": jobs}


def next_changed(change: PendingChange) -> dict[str, Any]:
    """NextJobExecutionChanged: exactly ``{"timestamp":…}`` when nothing is pending."""
    out: dict[str, Any] = {"timestamp": seconds(change.timestamp)}
    if change.pending:
        out["execution"] = execution_data(Located(change.pending[0], change.head_document or "{}"))
    return out


# registry events ($aws/events/...) --------------------------------------------------------------
def _millis(value: float) -> int:
    """UNCONFIRMED: AWS's examples of job events show 13-digit createdAt/lastUpdatedAt/completedAt."""
    return int(value * 1000)


def job_event(event: JobEvent) -> dict[str, Any]:
    """``$aws/events/job/<jobId>/<operation>``, in the field order of AWS's documented example."""
    job = event.job
    out: dict[str, Any] = {
        "eventType": "JOB",
        "eventId": str(uuid.uuid4()),
        "timestamp": seconds(event.timestamp),
        "operation": event.operation,
        "jobId": job.job_id,
        "status": job.status.value,
        "targetSelection": job.target_selection.value,
        "targets": list(job.targets),
    }
    if job.description is not None:
        out["description"] = job.description
    if job.completed_at is not None:
        out["completedAt"] = _millis(job.completed_at)
    out["createdAt"] = _millis(job.created_at)
    out["lastUpdatedAt"] = _millis(job.last_updated_at)
    if job.comment is not None:
        out["comment"] = job.comment
    if event.counts is not None:
        out["jobProcessDetails"] = process_details(event.counts)
    return out


def execution_event(event: ExecutionEvent, thing_arn: str) -> dict[str, Any]:
    """``$aws/events/jobExecution/<jobId>/<operation>``."""
    execution = event.execution
    return {
        "eventType": "JOB_EXECUTION",
        "eventId": str(uuid.uuid4()),
        "timestamp": seconds(event.timestamp),
        "operation": event.operation,
        "jobId": execution.job_id,
        "thingArn": thing_arn,
        "status": execution.status.value,
        "statusDetails": dict(execution.status_details),
    }
