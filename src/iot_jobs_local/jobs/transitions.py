"""The execution state machine: functions of (state, request, now) returning the new state.

Where the reference marks AWS's behaviour UNCONFIRMED, the choice is a named module constant so
that changing it is a one-line edit (and the README lists each one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from . import timers
from .errors import InvalidRequest, InvalidStateTransition, LimitExceeded, ResourceNotFound, VersionMismatch
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


def start_next(
    pending: Sequence[Execution], request: StartNextRequest, now: float, in_progress_timeout: int | None = None
) -> tuple[Execution | None, bool]:
    """Return (the execution to report, whether it changed). ``pending`` is in ``pending_order``.

    An IN_PROGRESS head is returned unchanged: start-next never starts a second job. Starting the
    head arms its timers: ``in_progress_timeout`` (minutes, the head's job's ``timeoutConfig``) and
    the request's step timeout.
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
    started = timers.step(timers.started(started, in_progress_timeout, now), request.step_timeout_minutes, now)
    return started, True


def _check_version(expected: int | None, execution: Execution) -> None:
    if expected is not None and expected != execution.version_number:
        # AWS's wording, from a capture another project published (docs/fidelity.md).
        raise VersionMismatch(f"Expected version {expected} but found version {execution.version_number}", execution)


def update(
    execution: Execution | None, request: UpdateRequest, now: float, in_progress_timeout: int | None = None
) -> Execution:
    """Apply a device's UpdateJobExecution, or raise the error AWS would reject it with.

    ``in_progress_timeout`` (minutes, the job's ``timeoutConfig``) arms the in-progress timer when
    the execution enters IN_PROGRESS; ``stepTimeoutInMinutes`` sets, replaces or cancels the step
    timer; a terminal status clears both.
    """
    # Captured on AWS (HTTP 409 InvalidStateTransitionException; InvalidStateTransition over MQTT),
    # and checked before the execution is looked up: an unknown job gets this answer too.
    if request.status not in DEVICE_SETTABLE:
        raise InvalidStateTransition(f"The status of job execution cannot be changed to be {request.status.value}")
    if execution is None:
        raise ResourceNotFound("No job execution found for this thing and job")
    _check_version(request.expected_version, execution)
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
    updated = replace(
        execution,
        status=target,
        started_at=started_at,
        last_updated_at=now,
        version_number=execution.version_number + 1,
        status_details=request.status_details if request.status_details is not None else execution.status_details,
        step_timeout_minutes=step,
    )
    if target.is_terminal:
        return timers.cleared(updated)
    if execution.status is ExecutionStatus.QUEUED:
        updated = timers.started(updated, in_progress_timeout, now)
    return timers.step(updated, request.step_timeout_minutes, now)


def settle_job(job: Job, executions: Iterable[Execution], now: float) -> Job:
    """A SNAPSHOT job is COMPLETED once every one of its executions is terminal."""
    return settle_job_status(job, any(e.status.is_pending for e in executions), now)


#: UNCONFIRMED: how long a deleted job stays DELETION_IN_PROGRESS before it disappears (AWS: "can
#: take some time", depending on its executions). Seconds on the service's clock; its executions
#: leave every view at once, the job itself (DescribeJob, ListJobs, its id) only after this.
DELETION_SECONDS = 1.0
#: AWS: at most 10 jobs may be DELETION_IN_PROGRESS at once; another DeleteJob gets LimitExceeded.
MAX_JOBS_DELETING = 10


def start_deletion(job: Job, jobs_deleting: int, now: float) -> Job:
    """DeleteJob, once ``check_deletable`` passed: the job is DELETION_IN_PROGRESS until purged."""
    if jobs_deleting >= MAX_JOBS_DELETING:
        raise LimitExceeded(f"At most {MAX_JOBS_DELETING} jobs can be DELETION_IN_PROGRESS at the same time")
    return replace(job, status=JobStatus.DELETION_IN_PROGRESS, last_updated_at=now)


def check_deletable(job: Job, executions: Iterable[Execution], force: bool) -> None:
    """DeleteJob without ``force`` needs a COMPLETED or CANCELED job and no IN_PROGRESS execution."""
    if job.status is JobStatus.DELETION_IN_PROGRESS:
        raise InvalidStateTransition(f"Job {job.job_id} is already being deleted")
    if force:
        return
    if job.status not in (JobStatus.COMPLETED, JobStatus.CANCELED):
        raise InvalidStateTransition(
            f"Job {job.job_id} is {job.status.value}; it can be deleted only when COMPLETED or CANCELED, "
            "or with force=true"
        )
    if any(e.status is ExecutionStatus.IN_PROGRESS for e in executions):
        raise InvalidStateTransition(
            f"Job {job.job_id} is {job.status.value} but has IN_PROGRESS executions; "
            "it can be deleted once they end, or with force=true"
        )


# service-side changes ----------------------------------------------------------------------------
#: UNCONFIRMED: what CancelJob does to a job that is already CANCELED (succeed again, canceling with
#: ``force`` whatever is still IN_PROGRESS) or COMPLETED (refused with InvalidRequestException: the
#: model lists no InvalidStateTransitionException for CancelJob).
CANCELABLE_JOB_STATUSES = frozenset({JobStatus.IN_PROGRESS, JobStatus.SCHEDULED, JobStatus.CANCELED})

#: DeleteJobExecution without ``force`` deletes only terminal executions (API reference: "Otherwise,
#: you can only delete a job execution which is in a terminal state"). UNCONFIRMED: the CLI guide
#: also allows QUEUED; flip this to follow it.
DELETE_QUEUED_EXECUTION_WITHOUT_FORCE = False


def settle_job_status(job: Job, any_pending: bool, now: float) -> Job:
    """``settle_job`` for callers that know whether any execution of the job is still pending."""
    if job.status is not JobStatus.IN_PROGRESS or job.target_selection is not TargetSelection.SNAPSHOT:
        return job
    if any_pending:
        return job
    return replace(job, status=JobStatus.COMPLETED, completed_at=now, last_updated_at=now)


def service_update(
    execution: Execution,
    status: ExecutionStatus,
    now: float,
    *,
    force_canceled: bool = False,
    status_details: dict[str, str] | None = None,
    bump_version: bool = True,
) -> Execution:
    """A change the service makes (cancel, removal, timeout): bumps versionNumber like a device update.

    UNCONFIRMED whether AWS bumps it on a cancel or a timeout; the reference recommends it, since
    CancelJobExecution takes an ``expectedVersion``. A QUEUED execution REMOVED because its thing
    left the target group keeps its version (captured on AWS): ``bump_version=False``. Every status
    the service sets is terminal, so the timers stop.
    """
    changed = replace(
        execution,
        status=status,
        last_updated_at=now,
        version_number=execution.version_number + (1 if bump_version else 0),
        force_canceled=force_canceled or execution.force_canceled,
        status_details=status_details if status_details is not None else execution.status_details,
        step_timeout_minutes=None,
    )
    return timers.cleared(changed)


def time_out(execution: Execution, now: float) -> Execution | None:
    """IN_PROGRESS -> TIMED_OUT if one of the execution's timers has expired by ``now``, else None."""
    if not timers.is_due(execution, now):
        return None
    return service_update(execution, ExecutionStatus.TIMED_OUT, now)


def cancel_job(job: Job, force: bool, reason_code: str | None, comment: str | None, now: float) -> Job:
    """CancelJob: the job becomes CANCELED; ``force`` is recorded (it also cancels IN_PROGRESS executions)."""
    if job.status not in CANCELABLE_JOB_STATUSES:
        raise InvalidRequest(f"Job {job.job_id} is {job.status.value} and cannot be canceled")
    return replace(
        job,
        status=JobStatus.CANCELED,
        force_canceled=force or job.force_canceled,
        reason_code=reason_code if reason_code is not None else job.reason_code,
        comment=comment if comment is not None else job.comment,
        last_updated_at=now,
    )


def cancel_for_job(executions: Iterable[Execution], force: bool, now: float) -> list[Execution]:
    """The executions CancelJob cancels: every QUEUED one, and the IN_PROGRESS ones with ``force``."""
    canceled = []
    for e in executions:
        if e.status is ExecutionStatus.QUEUED or (force and e.status is ExecutionStatus.IN_PROGRESS):
            canceled.append(service_update(e, ExecutionStatus.CANCELED, now, force_canceled=force))
    return canceled


def cancel_execution(
    execution: Execution | None,
    force: bool,
    expected_version: int | None,
    status_details: dict[str, str] | None,
    now: float,
) -> Execution:
    """CancelJobExecution: QUEUED -> CANCELED; IN_PROGRESS -> CANCELED only with ``force``."""
    if execution is None:
        raise ResourceNotFound("No job execution found for this thing and job")
    _check_version(expected_version, execution)
    if execution.status.is_terminal:
        # UNCONFIRMED: canceling a terminal execution; the model's InvalidStateTransitionException fits.
        raise InvalidStateTransition(f"Job execution is already in terminal state {execution.status.value}", execution)
    if execution.status is ExecutionStatus.IN_PROGRESS and not force:
        raise InvalidStateTransition("Job execution is IN_PROGRESS; it can be canceled only with force=true", execution)
    return service_update(execution, ExecutionStatus.CANCELED, now, force_canceled=force, status_details=status_details)


def check_execution_deletable(execution: Execution, force: bool) -> None:
    """DeleteJobExecution: IN_PROGRESS (and QUEUED, see the constant) only with ``force``."""
    if force or execution.status.is_terminal:
        return
    if execution.status is ExecutionStatus.QUEUED and DELETE_QUEUED_EXECUTION_WITHOUT_FORCE:
        return
    raise InvalidStateTransition(
        f"Job execution is {execution.status.value}; only a terminal execution can be deleted without force=true",
        execution,
    )


def check_associate(job: Job) -> None:
    """AssociateTargetsWithJob applies to CONTINUOUS jobs that are IN_PROGRESS."""
    if job.target_selection is not TargetSelection.CONTINUOUS:
        raise InvalidRequest(f"Job {job.job_id} is a SNAPSHOT job; targets can be added only to CONTINUOUS jobs")
    if job.status is not JobStatus.IN_PROGRESS:
        raise InvalidRequest(f"Job {job.job_id} is {job.status.value}; targets can be added only while IN_PROGRESS")


def update_job(job: Job, description: str | None, config: dict[str, Any], now: float) -> Job:
    """UpdateJob: a new description and configuration blocks; the document and targets stay."""
    if job.status is JobStatus.DELETION_IN_PROGRESS:
        raise InvalidRequest(f"Job {job.job_id} is being deleted")
    return replace(
        job,
        description=description if description is not None else job.description,
        config={**job.config, **config},
        last_updated_at=now,
    )
