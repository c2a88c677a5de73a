"""The payloads only MQTT publishes: the two notify events and the registry events, in AWS's key order.

Executions inside them use the device planes' shapes (``wire.executions``); ``thingName`` is left
out as in the live captures.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..engine import Located, PendingChange
from ..jobs.lifecycle_events import ExecutionEvent, JobEvent
from ..jobs.model import ExecutionStatus
from ..wire.control import process_details
from ..wire.executions import execution_data, seconds, summary


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
