"""Domain records to the control plane's (``iot``) JSON shapes. Timestamps are epoch seconds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..jobs.model import Execution, ExecutionStatus, Job, JobStatus, Thing

_COUNTERS = {
    ExecutionStatus.CANCELED: "numberOfCanceledThings",
    ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
    ExecutionStatus.FAILED: "numberOfFailedThings",
    ExecutionStatus.REJECTED: "numberOfRejectedThings",
    ExecutionStatus.QUEUED: "numberOfQueuedThings",
    ExecutionStatus.IN_PROGRESS: "numberOfInProgressThings",
    ExecutionStatus.REMOVED: "numberOfRemovedThings",
    ExecutionStatus.TIMED_OUT: "numberOfTimedOutThings",
}


def thing(t: Thing) -> dict[str, Any]:
    out: dict[str, Any] = {
        "defaultClientId": t.thing_name,
        "thingName": t.thing_name,
        "thingId": t.thing_id,
        "thingArn": t.thing_arn,
    }
    if t.thing_type_name:
        out["thingTypeName"] = t.thing_type_name
    out["attributes"] = dict(t.attributes)
    out["version"] = t.version
    return out


def process_details(executions: Iterable[Execution]) -> dict[str, Any]:
    """Counts over each thing's latest execution of the job."""
    latest: dict[str, Execution] = {}
    for e in executions:
        if e.thing_name not in latest or e.execution_number > latest[e.thing_name].execution_number:
            latest[e.thing_name] = e
    counts = dict.fromkeys(_COUNTERS.values(), 0)
    for e in latest.values():
        counts[_COUNTERS[e.status]] += 1
    return counts


def job(j: Job, executions: Iterable[Execution]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobArn": j.job_arn,
        "jobId": j.job_id,
        "targetSelection": j.target_selection.value,
        "status": j.status.value,
    }
    if j.status is JobStatus.CANCELED or j.force_canceled:
        out["forceCanceled"] = j.force_canceled
    for key, value in (("reasonCode", j.reason_code), ("comment", j.comment)):
        if value is not None:
            out[key] = value
    out["targets"] = list(j.targets)
    if j.description is not None:
        out["description"] = j.description
    out["createdAt"] = j.created_at
    out["lastUpdatedAt"] = j.last_updated_at
    if j.completed_at is not None:
        out["completedAt"] = j.completed_at
    out["jobProcessDetails"] = process_details(executions)
    out["isConcurrent"] = False
    for key, value in j.config.items():
        out.setdefault(key, value)
    return out
