"""AWS IoT's registry events for jobs (``$aws/events/job/...``, ``$aws/events/jobExecution/...``).

AWS publishes them only for the event types enabled with UpdateEventConfigurations (all are off
by default). iot-jobs-local stores every type's setting but publishes only ``JOB`` and
``JOB_EXECUTION``; the others (things, groups, policies, certificates) are never published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .model import Execution, ExecutionStatus, Job, JobStatus

#: The event types of the ``iot`` model, in its order.
EVENT_TYPES = (
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
)
JOB = "JOB"
JOB_EXECUTION = "JOB_EXECUTION"

#: The ``operation`` of a JOB_EXECUTION event for each terminal status.
EXECUTION_OPERATIONS: dict[ExecutionStatus, str] = {
    ExecutionStatus.SUCCEEDED: "succeeded",
    ExecutionStatus.FAILED: "failed",
    ExecutionStatus.REJECTED: "rejected",
    ExecutionStatus.CANCELED: "canceled",
    ExecutionStatus.REMOVED: "removed",
    ExecutionStatus.TIMED_OUT: "timed_out",
}


#: The ``operation`` of a JOB event for each status a job can move into (``deleted`` has none).
JOB_OPERATIONS: dict[JobStatus, str] = {
    JobStatus.COMPLETED: "completed",
    JobStatus.CANCELED: "canceled",
    JobStatus.DELETION_IN_PROGRESS: "deletion_in_progress",
}


@dataclass(frozen=True)
class JobEvent:
    """A job reached ``operation``: completed, canceled, deletion_in_progress or deleted.
    ``counts``: its things' latest execution statuses, for ``jobProcessDetails`` (not once deleted)."""

    operation: str
    job: Job
    timestamp: float
    counts: Mapping[ExecutionStatus, int] | None = None


@dataclass(frozen=True)
class ExecutionEvent:
    """An execution reached a terminal status (``EXECUTION_OPERATIONS``)."""

    operation: str
    execution: Execution
    timestamp: float


LifecycleEvent = JobEvent | ExecutionEvent


def parse_configurations(value: Any) -> dict[str, bool]:
    """UpdateEventConfigurations' ``eventConfigurations``: event type -> ``{"Enabled": bool}``."""
    if not isinstance(value, Mapping):
        raise InvalidRequest("eventConfigurations must be a map of event type to configuration")
    out: dict[str, bool] = {}
    for event_type, config in value.items():
        if event_type not in EVENT_TYPES:
            raise InvalidRequest(f"Invalid event type {event_type}; valid types: {', '.join(EVENT_TYPES)}")
        enabled = config.get("Enabled") if isinstance(config, Mapping) else None
        if not isinstance(enabled, bool):
            raise InvalidRequest(f"eventConfigurations.{event_type}.Enabled must be true or false")
        out[event_type] = enabled
    return out


def execution_event(execution: Execution, timestamp: float) -> ExecutionEvent | None:
    """The event of an execution written in a terminal status, None for a pending one."""
    operation = EXECUTION_OPERATIONS.get(execution.status)
    return None if operation is None else ExecutionEvent(operation, execution, timestamp)
