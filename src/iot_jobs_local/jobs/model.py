"""Plain records of the jobs domain."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ExecutionStatus(str, enum.Enum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"

    @property
    def is_pending(self) -> bool:
        return self in (ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS)

    @property
    def is_terminal(self) -> bool:
        return not self.is_pending


#: What a device may ask for in UpdateJobExecution (AWS IoT developer guide, device API).
DEVICE_SETTABLE = frozenset(
    {ExecutionStatus.IN_PROGRESS, ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED}
)


class JobStatus(str, enum.Enum):
    IN_PROGRESS = "IN_PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
    SCHEDULED = "SCHEDULED"


class TargetSelection(str, enum.Enum):
    SNAPSHOT = "SNAPSHOT"
    CONTINUOUS = "CONTINUOUS"


@dataclass(frozen=True)
class Execution:
    """One execution of a job on a thing. Times are epoch seconds (float)."""

    job_id: str
    thing_name: str
    execution_number: int
    status: ExecutionStatus
    queued_at: float
    last_updated_at: float
    version_number: int = 1
    started_at: float | None = None
    status_details: dict[str, str] = field(default_factory=dict)
    #: Creation order across the whole service; breaks ties between equal queue times.
    seq: int = 0
    step_timeout_minutes: int | None = None
    force_canceled: bool = False
    #: When the in-progress timer (``timeoutConfig``) and the step timer expire; None when not armed.
    in_progress_deadline: float | None = None
    step_deadline: float | None = None
    #: 0 for a first execution, n for the n-th retry (``jobExecutionsRetryConfig``).
    retry_attempt: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.job_id, self.execution_number)

    @property
    def deadline(self) -> float | None:
        """When the execution times out if nothing happens first: the earlier of its two timers."""
        armed = [d for d in (self.in_progress_deadline, self.step_deadline) if d is not None]
        return min(armed) if armed else None


@dataclass(frozen=True)
class Job:
    job_id: str
    job_arn: str
    document: str
    targets: tuple[str, ...]
    target_selection: TargetSelection
    status: JobStatus
    created_at: float
    last_updated_at: float
    description: str | None = None
    completed_at: float | None = None
    force_canceled: bool = False
    reason_code: str | None = None
    comment: str | None = None
    #: Every other CreateJob member, kept verbatim (wire names) for DescribeJob.
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Thing:
    thing_name: str
    thing_id: str
    thing_arn: str
    attributes: dict[str, str] = field(default_factory=dict)
    version: int = 1
    thing_type_name: str | None = None


@dataclass(frozen=True)
class ThingGroup:
    """A static thing group. The parent is fixed at creation."""

    name: str
    group_id: str
    arn: str
    created_at: float
    parent_name: str | None = None
    description: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class JobTemplate:
    template_id: str
    arn: str
    description: str
    document: str
    created_at: float
    #: The optional CreateJobTemplate members (wire names), as given or copied from a job.
    config: dict[str, Any] = field(default_factory=dict)
