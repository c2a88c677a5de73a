"""The execution state machine (``iot_jobs_local.jobs.transitions``), as pure functions of ``now``.

The notify/notify-next cases follow the trigger table of the reference's section 1.5; the update
cases follow its sections 1.3 and 2.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from iot_jobs_local.jobs import transitions
from iot_jobs_local.jobs.errors import InvalidStateTransition, ResourceNotFound, VersionMismatch
from iot_jobs_local.jobs.model import DEVICE_SETTABLE, Execution, ExecutionStatus, Job, JobStatus, TargetSelection
from iot_jobs_local.jobs.requests import StartNextRequest, UpdateRequest
from iot_jobs_local.jobs.transitions import (
    check_deletable,
    events_for_change,
    pending_order,
    settle_job,
    start_next,
    update,
)

S = ExecutionStatus
Q, IP = S.QUEUED, S.IN_PROGRESS
TERMINAL = [S.SUCCEEDED, S.FAILED, S.REJECTED, S.TIMED_OUT, S.REMOVED, S.CANCELED]
SERVICE_ONLY = [S.QUEUED, S.TIMED_OUT, S.REMOVED, S.CANCELED]
NOW = 1_719_943_955.0
T0 = 1_719_940_000.0


def ex(
    job_id: str,
    status: ExecutionStatus = Q,
    queued_at: float = T0,
    seq: int = 0,
    *,
    execution_number: int = 1,
    version: int = 1,
    started_at: float | None = None,
    details: dict[str, str] | None = None,
    step: int | None = None,
) -> Execution:
    return Execution(
        job_id=job_id,
        thing_name="thing1",
        execution_number=execution_number,
        status=status,
        queued_at=queued_at,
        last_updated_at=queued_at,
        version_number=version,
        started_at=started_at,
        status_details=dict(details or {}),
        seq=seq,
        step_timeout_minutes=step,
    )


def job(status: JobStatus = JobStatus.IN_PROGRESS, selection: TargetSelection = TargetSelection.SNAPSHOT) -> Job:
    return Job(
        job_id="Job1",
        job_arn="arn:aws:iot:us-east-1:123456789012:job/Job1",
        document='{"ToDo":"Reboot"}',
        targets=("arn:aws:iot:us-east-1:123456789012:thing/thing1",),
        target_selection=selection,
        status=status,
        created_at=T0,
        last_updated_at=T0,
    )


def ids(executions: Sequence[Execution]) -> list[str]:
    return [e.job_id for e in executions]


def upd(status: ExecutionStatus, **kwargs: object) -> UpdateRequest:
    return UpdateRequest(status=status, **kwargs)  # type: ignore[arg-type]


# --- pending_order ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("executions", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([ex("J1", S.SUCCEEDED), ex("J2", S.CANCELED)], [], id="only-terminal"),
        pytest.param(
            [ex("J2", Q, T0 + 2, 2), ex("J1", Q, T0 + 1, 1), ex("J3", Q, T0 + 3, 3)],
            ["J1", "J2", "J3"],
            id="queued-by-queue-time",
        ),
        pytest.param(
            [ex("J1", Q, T0 + 1, 1), ex("J2", IP, T0 + 2, 2), ex("J3", Q, T0 + 3, 3)],
            ["J2", "J1", "J3"],
            id="in-progress-first-even-if-queued-later",
        ),
        pytest.param(
            [ex("J3", IP, T0 + 3, 3), ex("J1", IP, T0 + 1, 1), ex("J2", Q, T0, 0)],
            ["J1", "J3", "J2"],
            id="in-progress-among-themselves-by-queue-time",
        ),
        pytest.param(
            [ex("B", Q, T0, 7), ex("A", Q, T0, 9), ex("C", Q, T0, 8)],
            ["B", "C", "A"],
            id="equal-queue-time-by-creation-order",
        ),
        pytest.param(
            [ex("J1", S.FAILED, T0), ex("J2", Q, T0 + 1, 1), ex("J3", S.TIMED_OUT, T0 + 2, 2), ex("J4", IP, T0 + 3, 3)],
            ["J4", "J2"],
            id="terminal-filtered-out",
        ),
    ],
)
def test_pending_order(executions: list[Execution], expected: list[str]) -> None:
    assert ids(pending_order(executions)) == expected


def test_pending_order_does_not_mutate_its_input() -> None:
    executions = [ex("J2", Q, T0 + 2, 2), ex("J1", IP, T0 + 1, 1)]
    pending_order(executions)
    assert ids(executions) == ["J2", "J1"]


# --- events_for_change: the reference's section 1.5 trigger table ----------------------------------

J1 = ex("J1", Q, T0 + 1, 1)
J2 = ex("J2", Q, T0 + 2, 2)
J3 = ex("J3", Q, T0 + 3, 3)


def _to(execution: Execution, status: ExecutionStatus, **changes: object) -> Execution:
    return replace(execution, status=status, version_number=execution.version_number + 1, **changes)  # type: ignore[arg-type]


EVENT_ROWS = [
    # (before: every execution of the thing, after: likewise, notify, notify-next)
    pytest.param([], [J1], True, True, id="job-created-thing-idle"),
    pytest.param([J1], [J1, J2], True, False, id="another-job-created-while-head-exists"),
    pytest.param([J1], [J1, J2, J3], True, False, id="two-jobs-rolled-out-behind-head"),
    pytest.param([], [J2], True, True, id="thing-added-to-continuous-group-becomes-head"),
    pytest.param([J1], [J1, J2], True, False, id="thing-added-to-continuous-group-behind-head"),
    pytest.param(
        [J1, J2], [_to(J1, IP, started_at=NOW), J2], False, False, id="start-next-queued-to-in-progress-head-same"
    ),
    pytest.param(
        [J1, J3], [J1, _to(J3, IP, started_at=NOW)], False, True, id="non-head-queued-to-in-progress-sorts-first"
    ),
    pytest.param(
        [_to(J1, IP), J2],
        [_to(_to(J1, IP), IP, status_details={"step": "2"}), J2],
        False,
        False,
        id="in-progress-to-in-progress-progress-report",
    ),
    pytest.param([_to(J1, IP), J2], [_to(J1, S.SUCCEEDED), J2], True, True, id="head-terminal-others-remain"),
    pytest.param([_to(J2, IP)], [_to(J2, S.FAILED)], True, True, id="last-pending-terminal"),
    pytest.param([_to(J1, IP), J2, J3], [_to(J1, IP), J2, _to(J3, S.REJECTED)], True, False, id="non-head-terminal"),
    pytest.param([J1, J2], [J1, _to(J2, S.CANCELED)], True, False, id="cancel-non-head"),
    pytest.param([J1, J2], [_to(J1, S.CANCELED), J2], True, True, id="cancel-head"),
    pytest.param([_to(J3, IP)], [], True, True, id="force-delete-only-pending-execution"),
    pytest.param([_to(J1, IP), J2], [_to(J1, IP)], True, False, id="force-delete-non-head"),
    pytest.param([_to(J1, IP), J2], [_to(J1, S.TIMED_OUT), J2], True, True, id="timeout-of-head"),
    pytest.param(
        [_to(J1, IP), _to(J2, IP)], [_to(J1, IP), _to(J2, S.TIMED_OUT)], True, False, id="timeout-of-non-head"
    ),
    pytest.param([J1, J2], [_to(J1, S.REMOVED), J2], True, True, id="removed-from-group-head"),
    pytest.param([J1, J2], [J1, _to(J2, S.REMOVED)], True, False, id="removed-from-group-non-head"),
    pytest.param(
        [_to(J1, IP)],
        [_to(J1, S.FAILED), ex("J1", Q, NOW, 10, execution_number=2)],
        True,
        True,
        id="retry-requeues-same-job-new-execution-number",
    ),
    pytest.param(
        [J1, _to(J2, IP)],
        [J1, _to(J2, S.TIMED_OUT), ex("J2", Q, NOW, 10, execution_number=2)],
        True,
        True,
        id="retry-of-head-requeued-behind-others",
    ),
    pytest.param([], [], False, False, id="idle-stays-idle"),
    pytest.param([J1, J2], [J1, J2], False, False, id="read-only-no-change"),
]


@pytest.mark.parametrize(("before", "after", "notify", "notify_next"), EVENT_ROWS)
def test_events_for_change(before: list[Execution], after: list[Execution], notify: bool, notify_next: bool) -> None:
    assert events_for_change(pending_order(before), pending_order(after)) == (notify, notify_next)


# --- start_next -----------------------------------------------------------------------------------


def test_start_next_nothing_pending() -> None:
    assert start_next([], StartNextRequest(), NOW) == (None, False)


@pytest.mark.parametrize(
    ("request_", "expected_details", "expected_step"),
    [
        pytest.param(StartNextRequest(), {"old": "x"}, None, id="no-args-keeps-details"),
        pytest.param(StartNextRequest(status_details={"step": "1"}), {"step": "1"}, None, id="details-replaced"),
        pytest.param(StartNextRequest(status_details={}), {}, None, id="empty-details-replace"),
        pytest.param(StartNextRequest(step_timeout_minutes=10), {"old": "x"}, 10, id="step-timeout-armed"),
    ],
)
def test_start_next_queued_head(
    request_: StartNextRequest, expected_details: dict[str, str], expected_step: int | None
) -> None:
    head = ex("J1", Q, T0, 1, version=1, details={"old": "x"})
    pending = pending_order([ex("J2", Q, T0 + 5, 2), head])
    started, changed = start_next(pending, request_, NOW)
    assert changed is True
    assert started is not None
    assert started.key == head.key
    assert started.status is IP
    assert started.started_at == NOW
    assert started.last_updated_at == NOW
    assert started.queued_at == T0
    assert started.version_number == 2
    assert started.status_details == expected_details
    assert started.step_timeout_minutes == expected_step
    assert head.status is Q, "the input execution is left as it was"


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(StartNextRequest(), id="no-args"),
        pytest.param(StartNextRequest(status_details={"new": "y"}, step_timeout_minutes=5), id="args-ignored"),
    ],
)
def test_start_next_in_progress_head_returned_unchanged(request_: StartNextRequest) -> None:
    head = ex("J2", IP, T0 + 5, 2, version=3, started_at=T0 + 6, details={"step": "2"}, step=7)
    pending = pending_order([ex("J1", Q, T0, 1), head])
    started, changed = start_next(pending, request_, NOW)
    assert changed is False
    assert started == head


# --- update ---------------------------------------------------------------------------------------

LEGAL = [
    (Q, IP),
    (Q, S.REJECTED),
    (Q, S.SUCCEEDED),
    (Q, S.FAILED),
    (IP, IP),
    (IP, S.SUCCEEDED),
    (IP, S.FAILED),
    (IP, S.REJECTED),
]


@pytest.mark.parametrize(("current", "target"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_update_legal_transition(current: ExecutionStatus, target: ExecutionStatus) -> None:
    started = T0 + 1 if current is IP else None
    execution = ex("J1", current, T0, version=4, started_at=started)
    result = update(execution, upd(target), NOW)
    assert result.status is target
    assert result.version_number == 5
    assert result.last_updated_at == NOW
    assert result.queued_at == T0
    assert result.key == execution.key
    assert execution.status is current, "the input execution is left as it was"


ILLEGAL = [(a, b) for a in TERMINAL for b in sorted(DEVICE_SETTABLE, key=lambda s: s.value)]


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL])
def test_update_from_terminal_is_invalid_state_transition(current: ExecutionStatus, target: ExecutionStatus) -> None:
    execution = ex("J1", current, T0, version=3)
    with pytest.raises(InvalidStateTransition) as info:
        update(execution, upd(target), NOW)
    assert info.value.execution == execution


def test_update_force_canceled_execution_is_rejected() -> None:
    execution = replace(ex("J1", S.CANCELED, T0, version=3), force_canceled=True)
    with pytest.raises(InvalidStateTransition):
        update(execution, upd(S.SUCCEEDED), NOW)


FORBIDDEN = [(a, b) for a in (Q, IP) for b in SERVICE_ONLY]


@pytest.mark.parametrize(("current", "target"), FORBIDDEN, ids=[f"{a.value}->{b.value}" for a, b in FORBIDDEN])
def test_update_to_service_only_status_is_an_invalid_transition(
    current: ExecutionStatus, target: ExecutionStatus
) -> None:
    with pytest.raises(InvalidStateTransition, match=f"cannot be changed to be {target.value}"):
        update(ex("J1", current, T0), upd(target), NOW)
    with pytest.raises(InvalidStateTransition):  # before the lookup: no execution at all
        update(None, upd(target), NOW)


def test_device_settable_statuses() -> None:
    assert {IP, S.SUCCEEDED, S.FAILED, S.REJECTED} == DEVICE_SETTABLE


def test_update_missing_execution_is_resource_not_found() -> None:
    with pytest.raises(ResourceNotFound):
        update(None, upd(S.SUCCEEDED), NOW)


@pytest.mark.parametrize(
    ("expected_version", "ok"),
    [
        pytest.param(None, True, id="not-given"),
        pytest.param(3, True, id="matches"),
        pytest.param(2, False, id="older"),
        pytest.param(4, False, id="newer"),
        pytest.param(0, False, id="zero"),
    ],
)
def test_update_expected_version(expected_version: int | None, ok: bool) -> None:
    execution = ex("J1", IP, T0, version=3, started_at=T0 + 1, details={"step": "2"})
    request = upd(IP, expected_version=expected_version)
    if ok:
        assert update(execution, request, NOW).version_number == 4
        return
    with pytest.raises(VersionMismatch) as info:
        update(execution, request, NOW)
    assert info.value.execution == execution
    assert str(expected_version) in info.value.message


@pytest.mark.parametrize(
    ("supplied", "expected"),
    [
        pytest.param(None, {"a": "1", "b": "2"}, id="omitted-unchanged"),
        pytest.param({"c": "3"}, {"c": "3"}, id="supplied-replaces-whole-map"),
        pytest.param({"a": "9"}, {"a": "9"}, id="supplied-subset-drops-others"),
        pytest.param({}, {}, id="empty-map-clears"),
    ],
)
def test_update_status_details(supplied: dict[str, str] | None, expected: dict[str, str]) -> None:
    execution = ex("J1", IP, T0, started_at=T0 + 1, details={"a": "1", "b": "2"})
    assert update(execution, upd(IP, status_details=supplied), NOW).status_details == expected


@pytest.mark.parametrize(
    ("current_step", "requested", "target", "expected"),
    [
        pytest.param(None, None, IP, None, id="none-stays-none"),
        pytest.param(None, 10, IP, 10, id="set"),
        pytest.param(10, None, IP, 10, id="omitted-keeps-timer"),
        pytest.param(10, 20, IP, 20, id="replaced"),
        pytest.param(10, -1, IP, None, id="minus-one-cancels"),
        pytest.param(None, -1, IP, None, id="minus-one-without-timer"),
        pytest.param(10, None, S.SUCCEEDED, None, id="terminal-clears"),
        pytest.param(10, 30, S.FAILED, None, id="terminal-clears-even-when-given"),
        pytest.param(10, None, S.REJECTED, None, id="rejected-clears"),
    ],
)
def test_update_step_timeout(
    current_step: int | None, requested: int | None, target: ExecutionStatus, expected: int | None
) -> None:
    execution = ex("J1", IP, T0, started_at=T0 + 1, step=current_step)
    result = update(execution, upd(target, step_timeout_minutes=requested), NOW)
    assert result.step_timeout_minutes == expected


def test_update_queued_to_in_progress_with_step_timeout() -> None:
    result = update(ex("J1", Q, T0), upd(IP, step_timeout_minutes=5), NOW)
    assert (result.status, result.step_timeout_minutes) == (IP, 5)


@pytest.mark.parametrize(
    ("current", "started_at", "target", "expected"),
    [
        pytest.param(Q, None, IP, NOW, id="first-in-progress-sets"),
        pytest.param(IP, T0 + 1, IP, T0 + 1, id="second-in-progress-keeps"),
        pytest.param(IP, T0 + 1, S.SUCCEEDED, T0 + 1, id="terminal-keeps"),
        pytest.param(Q, None, S.REJECTED, None, id="queued-rejected-never-started"),
        pytest.param(Q, None, S.SUCCEEDED, None, id="queued-succeeded-never-started"),
    ],
)
def test_update_started_at_set_once(
    current: ExecutionStatus, started_at: float | None, target: ExecutionStatus, expected: float | None
) -> None:
    execution = ex("J1", current, T0, started_at=started_at)
    assert update(execution, upd(target), NOW).started_at == expected


def test_update_started_at_survives_a_sequence() -> None:
    execution = ex("J1", Q, T0)
    execution = update(execution, upd(IP), T0 + 10)
    execution = update(execution, upd(IP, status_details={"step": "2"}), T0 + 20)
    execution = update(execution, upd(S.SUCCEEDED), T0 + 30)
    assert (execution.started_at, execution.last_updated_at, execution.version_number) == (T0 + 10, T0 + 30, 4)


@pytest.mark.parametrize("target", [S.SUCCEEDED, S.FAILED])
def test_update_queued_to_terminal_when_disallowed(monkeypatch: pytest.MonkeyPatch, target: ExecutionStatus) -> None:
    monkeypatch.setattr(transitions, "ALLOW_QUEUED_TO_TERMINAL", False)
    execution = ex("J1", Q, T0)
    with pytest.raises(InvalidStateTransition) as info:
        update(execution, upd(target), NOW)
    assert info.value.execution == execution


def test_update_queued_to_rejected_allowed_even_when_queued_to_terminal_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transitions, "ALLOW_QUEUED_TO_TERMINAL", False)
    assert update(ex("J1", Q, T0), upd(S.REJECTED), NOW).status is S.REJECTED


# --- settle_job -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "selection", "executions", "completes"),
    [
        pytest.param(JobStatus.IN_PROGRESS, TargetSelection.SNAPSHOT, [ex("J1", S.SUCCEEDED)], True, id="all-done"),
        pytest.param(
            JobStatus.IN_PROGRESS,
            TargetSelection.SNAPSHOT,
            [
                ex("J1", S.FAILED),
                ex("J1", S.CANCELED),
                ex("J1", S.TIMED_OUT),
                ex("J1", S.REJECTED),
                ex("J1", S.REMOVED),
            ],
            True,
            id="every-terminal-kind-counts",
        ),
        pytest.param(
            JobStatus.IN_PROGRESS,
            TargetSelection.SNAPSHOT,
            [ex("J1", S.SUCCEEDED), ex("J1", Q)],
            False,
            id="one-queued",
        ),
        pytest.param(JobStatus.IN_PROGRESS, TargetSelection.SNAPSHOT, [ex("J1", IP)], False, id="one-in-progress"),
        pytest.param(JobStatus.IN_PROGRESS, TargetSelection.SNAPSHOT, [], True, id="no-executions"),
        pytest.param(
            JobStatus.IN_PROGRESS, TargetSelection.CONTINUOUS, [ex("J1", S.SUCCEEDED)], False, id="continuous-never"
        ),
        pytest.param(JobStatus.CANCELED, TargetSelection.SNAPSHOT, [ex("J1", S.CANCELED)], False, id="canceled-stays"),
        pytest.param(
            JobStatus.COMPLETED, TargetSelection.SNAPSHOT, [ex("J1", S.SUCCEEDED)], False, id="completed-stays"
        ),
        pytest.param(JobStatus.DELETION_IN_PROGRESS, TargetSelection.SNAPSHOT, [], False, id="deleting-stays"),
        pytest.param(JobStatus.SCHEDULED, TargetSelection.SNAPSHOT, [], False, id="scheduled-stays"),
    ],
)
def test_settle_job(
    status: JobStatus, selection: TargetSelection, executions: list[Execution], completes: bool
) -> None:
    before = job(status, selection)
    after = settle_job(before, executions, NOW)
    if completes:
        assert after.status is JobStatus.COMPLETED
        assert after.completed_at == NOW
        assert after.last_updated_at == NOW
        assert after.created_at == before.created_at
    else:
        assert after == before


# --- check_deletable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "executions", "force", "ok"),
    [
        pytest.param(JobStatus.COMPLETED, [ex("J1", S.SUCCEEDED)], False, True, id="completed"),
        pytest.param(JobStatus.COMPLETED, [], False, True, id="completed-no-executions"),
        pytest.param(JobStatus.CANCELED, [ex("J1", S.CANCELED)], False, True, id="canceled"),
        pytest.param(JobStatus.CANCELED, [ex("J1", Q)], False, True, id="canceled-with-queued"),
        pytest.param(JobStatus.CANCELED, [ex("J1", IP)], False, False, id="canceled-with-in-progress"),
        pytest.param(JobStatus.IN_PROGRESS, [ex("J1", S.SUCCEEDED)], False, False, id="job-in-progress"),
        pytest.param(JobStatus.IN_PROGRESS, [ex("J1", Q)], False, False, id="job-in-progress-queued"),
        pytest.param(JobStatus.SCHEDULED, [], False, False, id="scheduled"),
        pytest.param(JobStatus.IN_PROGRESS, [ex("J1", IP)], True, True, id="force-in-progress"),
        pytest.param(JobStatus.CANCELED, [ex("J1", IP)], True, True, id="force-canceled-with-in-progress"),
        pytest.param(JobStatus.DELETION_IN_PROGRESS, [], False, False, id="already-deleting"),
        pytest.param(JobStatus.DELETION_IN_PROGRESS, [], True, False, id="already-deleting-even-with-force"),
    ],
)
def test_check_deletable(status: JobStatus, executions: list[Execution], force: bool, ok: bool) -> None:
    if ok:
        check_deletable(job(status), executions, force)
        return
    with pytest.raises(InvalidStateTransition, match="Job1"):
        check_deletable(job(status), executions, force)


def test_deletion_marks_the_job_and_is_limited_to_ten_at_once() -> None:
    from iot_jobs_local.jobs.errors import LimitExceeded

    deleting = transitions.start_deletion(job(JobStatus.COMPLETED), 9, 123.0)
    assert deleting.status is JobStatus.DELETION_IN_PROGRESS and deleting.last_updated_at == 123.0
    with pytest.raises(LimitExceeded):
        transitions.start_deletion(job(JobStatus.COMPLETED), transitions.MAX_JOBS_DELETING, 123.0)
    with pytest.raises(InvalidStateTransition):  # a job being deleted cannot be deleted again, even with force
        transitions.check_deletable(deleting, [], force=True)
