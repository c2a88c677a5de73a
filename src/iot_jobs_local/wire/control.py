"""Domain records to the control plane's (``iot``) job shapes. Timestamps are epoch seconds.

The control plane's JobExecution differs from the device's: ``thingArn`` instead of
``thingName``, ``statusDetails`` nested as ``{"detailsMap": {...}}``, no job document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..jobs import timers
from ..jobs.managed_templates import ManagedTemplate
from ..jobs.model import Execution, ExecutionStatus, Job, JobStatus, JobTemplate

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

#: DescribeJobTemplate members kept in the template's configuration (wire names).
_TEMPLATE_MEMBERS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "maintenanceWindows",
    "destinationPackageVersions",
)


def process_details(counts: Mapping[ExecutionStatus, int], processing: Sequence[str] = ()) -> dict[str, Any]:
    """Counts over each thing's latest execution of the job; ``processingTargets`` while rolling out."""
    out: dict[str, Any] = {"processingTargets": list(processing)} if processing else {}
    out.update((name, counts.get(status, 0)) for status, name in _COUNTERS.items())
    return out


def job(
    j: Job,
    counts: Mapping[ExecutionStatus, int],
    processing: Sequence[str] = (),
    window_starts: Sequence[str] = (),
) -> dict[str, Any]:
    """``processing``: the targets still rolling out; ``window_starts``: the next maintenance windows."""
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
    out["jobProcessDetails"] = process_details(counts, processing)
    out["isConcurrent"] = bool(processing)
    for key, value in j.config.items():
        out.setdefault(key, value)
    # Present, empty, when the job has none (captured on AWS by another project; docs/fidelity.md).
    out.setdefault("timeoutConfig", {})
    out.setdefault("schedulingConfig", {})
    if window_starts:
        out["scheduledJobRollouts"] = [{"startTime": start} for start in window_starts]
    return out


def job_summary(j: Job, rolling_out: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobArn": j.job_arn,
        "jobId": j.job_id,
        "targetSelection": j.target_selection.value,
        "status": j.status.value,
        "isConcurrent": rolling_out,
        "createdAt": j.created_at,
        "lastUpdatedAt": j.last_updated_at,
    }
    if j.completed_at is not None:
        out["completedAt"] = j.completed_at
    return out


def job_reference(j: Job) -> dict[str, Any]:
    """CreateJob / CancelJob / AssociateTargetsWithJob output."""
    out: dict[str, Any] = {"jobArn": j.job_arn, "jobId": j.job_id}
    if j.description is not None:
        out["description"] = j.description
    return out


def execution(e: Execution, thing_arn: str, now: float) -> dict[str, Any]:
    """Control-plane JobExecution; ``approximateSecondsBeforeTimedOut`` only while a timer is armed."""
    out: dict[str, Any] = {"jobId": e.job_id, "status": e.status.value}
    if e.status is ExecutionStatus.CANCELED or e.force_canceled:
        out["forceCanceled"] = e.force_canceled
    # ``{}`` without details, as in the AWS CLI reference's describe-job-execution example.
    out["statusDetails"] = {"detailsMap": dict(e.status_details)} if e.status_details else {}
    out["thingArn"] = thing_arn
    out["queuedAt"] = e.queued_at
    if e.started_at is not None:
        out["startedAt"] = e.started_at
    out["lastUpdatedAt"] = e.last_updated_at
    out["executionNumber"] = e.execution_number
    out["versionNumber"] = e.version_number
    seconds = timers.seconds_left(e, now)
    if seconds is not None:
        out["approximateSecondsBeforeTimedOut"] = seconds
    return out


def execution_summary(e: Execution) -> dict[str, Any]:
    out: dict[str, Any] = {"status": e.status.value, "queuedAt": e.queued_at}
    if e.started_at is not None:
        out["startedAt"] = e.started_at
    out["lastUpdatedAt"] = e.last_updated_at
    out["executionNumber"] = e.execution_number
    out["retryAttempt"] = e.retry_attempt
    return out


def template(t: JobTemplate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobTemplateArn": t.arn,
        "jobTemplateId": t.template_id,
        "description": t.description,
        "document": t.document,
        "createdAt": t.created_at,
    }
    for key in _TEMPLATE_MEMBERS:
        if key in t.config:
            out[key] = t.config[key]
    return out


def template_summary(t: JobTemplate) -> dict[str, Any]:
    return {
        "jobTemplateArn": t.arn,
        "jobTemplateId": t.template_id,
        "description": t.description,
        "createdAt": t.created_at,
    }


def managed_template_summary(t: ManagedTemplate, region: str) -> dict[str, Any]:
    """ManagedJobTemplateSummary, members in the model's order."""
    return {
        "templateArn": t.arn(region),
        "templateName": t.name,
        "description": t.description,
        "environments": list(t.environments),
        "templateVersion": t.version,
    }


def managed_template(t: ManagedTemplate, region: str) -> dict[str, Any]:
    """DescribeManagedJobTemplate's output, members in the model's order; each document parameter's
    members in the order of the developer guide's describe-managed-job-template output."""
    return {
        "templateName": t.name,
        "templateArn": t.arn(region),
        "description": t.description,
        "templateVersion": t.version,
        "environments": list(t.environments),
        "documentParameters": [
            {"key": p.key, "description": p.description, "regex": p.regex, "example": p.example, "optional": p.optional}
            for p in t.parameters
        ],
        "document": t.document,
    }
