"""The execution state machine: functions of (state, request, now) returning the new state.

Where the reference marks AWS's behaviour UNCONFIRMED, the choice is a named module constant so
that changing it is a one-line edit (and the README lists each one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from .errors import InvalidRequest, InvalidStateTransition, ResourceNotFound, VersionMismatch
from .model import DEVICE_SETTABLE, Execution, ExecutionStatus, Job, JobStatus, TargetSelection
from .requests import StartNextRequest, UpdateRequest

#: UNCONFIRMED: whether a device may move QUEUED straight to SUCCEEDED/FAILED. No document forbids it.
ALLOW_QUEUED_TO_TERMINAL = True


def pending_order(executions: Iterable[Execution]) -> list[Execution]:
    """A thing's pending set in AWS's order: IN_PROGRESS first, then QUEUED, each by queue time."""
    pending = [e for e in executions if e.status.is_pending]
    pending.sort(key=lambda e: (e.status is not ExecutionStatus.IN_PROGRESS, e.queued_at, e.seq))
    return pending


def events_for_change(before: Sequence[Execution], after: Sequence[Execution]) -> tuple[bool, bool]:
    """(notify, notify_next): the pending set's membership changed; its head's identity changed.

    Both arguments are pending sets in ``pending_order``.
    """
    membership_changed = {e.key for e in before} != {e.key for e in after}
    head_before = before[0].key if before else None
    head_after = after[0].key if after else None
    return membership_changed, head_before != head_after


def start_next(pending: Sequence[Execution], request: StartNextRequest, now: float) -> tuple[Execution | None, bool]:
    """Return (the execution to report, whether it changed). ``pending`` is in ``pending_order``.

    An IN_PROGRESS head is returned unchanged: start-next never starts a second job.
    """
    if not pending:
        return None, False
    head = pending[0]
    if head.status is ExecutionStatus.IN_PROGRESS:
        return head, False
    started = replace(
        head,
        status=ExecutionStatus.IN_PROGRESS,
        started_at=now,
        last_updated_at=now,
        version_number=head.version_number + 1,
        status_details=request.status_details if request.status_details is not None else head.status_details,
        step_timeout_minutes=request.step_timeout_minutes,
    )
    return started, True


def update(execution: Execution | None, request: UpdateRequest, now: float) -> Execution:
    """Apply a device's UpdateJobExecution, or raise the error AWS would reject it with."""
    if execution is None:
        raise ResourceNotFound("No job execution found for this thing and job")
    if request.status not in DEVICE_SETTABLE:
        # UNCONFIRMED: InvalidRequest rather than InvalidStateTransition for a service-only status.
        allowed = ", ".join(s.value for s in sorted(DEVICE_SETTABLE, key=lambda s: s.value))
        raise InvalidRequest(f"A device cannot set status {request.status.value}; allowed: {allowed}")
    if request.expected_version is not None and request.expected_version != execution.version_number:
        raise VersionMismatch(
            f"expectedVersion {request.expected_version} does not match the current version {execution.version_number}",
            execution,
        )
    if execution.status.is_terminal:
        raise InvalidStateTransition(f"Job execution is already in terminal state {execution.status.value}", execution)
    target = request.status
    if (
        execution.status is ExecutionStatus.QUEUED
        and target in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
        and not ALLOW_QUEUED_TO_TERMINAL
    ):
        raise InvalidStateTransition(f"Cannot move a QUEUED execution to {target.value}", execution)
    step = execution.step_timeout_minutes
    if request.step_timeout_minutes is not None:
        step = None if request.step_timeout_minutes == -1 else request.step_timeout_minutes
    if target.is_terminal:
        step = None
    started_at = execution.started_at
    if target is ExecutionStatus.IN_PROGRESS and started_at is None:
        started_at = now
    return replace(
        execution,
        status=target,
        started_at=started_at,
        last_updated_at=now,
        version_number=execution.version_number + 1,
        status_details=request.status_details if request.status_details is not None else execution.status_details,
        step_timeout_minutes=step,
    )


def settle_job(job: Job, executions: Iterable[Execution], now: float) -> Job:
    """A SNAPSHOT job is COMPLETED once every one of its executions is terminal."""
    if job.status is not JobStatus.IN_PROGRESS or job.target_selection is not TargetSelection.SNAPSHOT:
        return job
    if any(e.status.is_pending for e in executions):
        return job
    return replace(job, status=JobStatus.COMPLETED, completed_at=now, last_updated_at=now)


def check_deletable(job: Job, executions: Iterable[Execution], force: bool) -> None:
    """DeleteJob without ``force`` needs a COMPLETED or CANCELED job and no IN_PROGRESS execution."""
    if job.status is JobStatus.DELETION_IN_PROGRESS:
        raise InvalidStateTransition(f"Job {job.job_id} is already being deleted")
    if force:
        return
    if job.status not in (JobStatus.COMPLETED, JobStatus.CANCELED) or any(
        e.status is ExecutionStatus.IN_PROGRESS for e in executions
    ):
        raise InvalidStateTransition(
            f"Job {job.job_id} is {job.status.value}; it can be deleted only when COMPLETED or CANCELED, "
            "or with force=true"
        )
