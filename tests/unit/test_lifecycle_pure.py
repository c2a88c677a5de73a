"""The lifecycle in time, as pure pieces: the clock, timers, retries, abort, rollout pacing, cron and
the validation of the configuration blocks. Table-driven, with ``now`` passed in.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import pytest

from iot_jobs_local.clock import Clock
from iot_jobs_local.jobs import abort, configs, cron, retry, rollout, timers, transitions
from iot_jobs_local.jobs.errors import InvalidRequest, InvalidStateTransition
from iot_jobs_local.jobs.model import Execution, ExecutionStatus, Job, JobStatus, TargetSelection
from iot_jobs_local.jobs.requests import StartNextRequest, UpdateRequest

S = ExecutionStatus
Q, IP = S.QUEUED, S.IN_PROGRESS
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a whole minute
MIN = 60.0


def ex(status: ExecutionStatus = Q, number: int = 1, attempt: int = 0, **kwargs: Any) -> Execution:
    return Execution("J", "T", number, status, NOW, NOW, retry_attempt=attempt, **kwargs)


def utc(text: str) -> float:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc).timestamp()


# --- the clock -----------------------------------------------------------------------------------


class FakeTime:
    def __init__(self, wall: float, mono: float) -> None:
        self.wall, self.mono = wall, mono


def test_clock_runs_scale_times_faster_from_the_wall_clock() -> None:
    t = FakeTime(NOW, 100.0)
    clock = Clock(600, wall=lambda: t.wall, monotonic=lambda: t.mono)
    assert clock() == NOW
    t.mono += 0.1  # a tenth of a real second...
    t.wall += 0.1
    assert clock() == pytest.approx(NOW + 60)  # ...is a virtual minute
    assert clock.real_delay(NOW + 120) == pytest.approx(0.1)
    assert clock.real_delay(NOW) == 0


def test_a_fast_clock_continues_from_a_later_recorded_time_and_never_runs_backwards() -> None:
    t = FakeTime(NOW, 5.0)
    assert Clock(600, not_before=NOW + 3600, wall=lambda: t.wall, monotonic=lambda: t.mono)() == NOW + 3600
    assert Clock(600, not_before=NOW - 3600, wall=lambda: t.wall, monotonic=lambda: t.mono)() == NOW
    with pytest.raises(ValueError):
        Clock(0)


def test_a_real_time_clock_after_a_fast_run_is_the_wall_clock() -> None:
    """After ``--time-scale`` left the state hours ahead, a normal-speed run is not ahead of the wall
    clock (else a schedule 35 minutes ahead would be "less than 30 minutes from now")."""
    t = FakeTime(NOW, 5.0)
    clock = Clock(1, not_before=NOW + 5 * 3600, wall=lambda: t.wall, monotonic=lambda: t.mono)
    assert clock() == NOW
    assert clock.ahead_by == 5 * 3600
    t.mono += 2
    assert clock() == NOW + 2
    assert Clock(1, not_before=NOW - 60, wall=lambda: t.wall, monotonic=lambda: t.mono).ahead_by == 0


# --- timers --------------------------------------------------------------------------------------


def test_start_next_arms_the_in_progress_and_step_timers() -> None:
    started, changed = transitions.start_next([ex()], StartNextRequest(step_timeout_minutes=5), NOW, 20)
    assert changed and started is not None
    assert (started.in_progress_deadline, started.step_deadline) == (NOW + 20 * MIN, NOW + 5 * MIN)
    assert started.deadline == NOW + 5 * MIN
    assert timers.seconds_left(started, NOW + 61.2) == 239


def test_start_next_without_timeout_config_arms_nothing() -> None:
    started, _ = transitions.start_next([ex()], StartNextRequest(), NOW)
    assert started is not None and started.deadline is None
    assert timers.seconds_left(started, NOW) is None


@pytest.mark.parametrize(
    ("step", "at", "expected_step_deadline"),
    [
        pytest.param(None, 13, NOW + 3 * MIN, id="left-out-keeps-the-step-timer"),
        pytest.param(-1, 13, None, id="minus-one-cancels"),
        pytest.param(4, 13, NOW + 17 * MIN, id="new-value-replaces"),
        pytest.param(9, 13, NOW + 20 * MIN, id="never-past-the-in-progress-deadline"),  # AWS docs' example
    ],
)
def test_update_sets_replaces_and_cancels_the_step_timer(
    step: int | None, at: int, expected_step_deadline: float | None
) -> None:
    running = ex(IP, in_progress_deadline=NOW + 20 * MIN, step_deadline=NOW + 3 * MIN, started_at=NOW)
    updated = transitions.update(running, UpdateRequest(IP, step_timeout_minutes=step), NOW + at * MIN, 20)
    assert updated.step_deadline == expected_step_deadline
    assert updated.in_progress_deadline == NOW + 20 * MIN  # the in-progress timer is never moved


def test_update_to_in_progress_starts_the_in_progress_timer_and_terminal_clears_both() -> None:
    started = transitions.update(ex(), UpdateRequest(IP), NOW, 10)
    assert started.in_progress_deadline == NOW + 10 * MIN and started.step_deadline is None
    done = transitions.update(started, UpdateRequest(S.SUCCEEDED), NOW + MIN, 10)
    assert done.deadline is None and timers.seconds_left(done, NOW) is None


def test_time_out_fires_only_when_due_and_bumps_the_version() -> None:
    running = ex(IP, version_number=2, step_deadline=NOW + MIN, step_timeout_minutes=1)
    assert transitions.time_out(running, NOW + 59) is None
    timed_out = transitions.time_out(running, NOW + MIN)
    assert timed_out is not None
    assert (timed_out.status, timed_out.version_number, timed_out.deadline) == (S.TIMED_OUT, 3, None)
    assert timed_out.last_updated_at == NOW + MIN
    assert transitions.time_out(ex(Q, step_deadline=NOW), NOW + MIN) is None  # only IN_PROGRESS times out
    with pytest.raises(InvalidStateTransition):
        transitions.update(timed_out, UpdateRequest(S.SUCCEEDED), NOW + 2 * MIN)


def test_service_changes_clear_the_timers() -> None:
    running = ex(IP, in_progress_deadline=NOW + MIN)
    assert transitions.service_update(running, S.CANCELED, NOW).deadline is None


# --- retries -------------------------------------------------------------------------------------


def crit(*pairs: tuple[str, int]) -> list[configs.RetryCriterion]:
    return [configs.RetryCriterion(t, n) for t, n in pairs]


@pytest.mark.parametrize(
    ("criteria", "history", "expected"),
    [
        pytest.param(crit(("FAILED", 2)), [S.FAILED], True, id="first-failure"),
        pytest.param(crit(("FAILED", 2)), [S.FAILED, S.FAILED], True, id="second-failure"),
        pytest.param(crit(("FAILED", 2)), [S.FAILED, S.FAILED, S.FAILED], False, id="budget-spent"),
        pytest.param(crit(("FAILED", 2)), [S.TIMED_OUT], False, id="other-type"),
        pytest.param(crit(("TIMED_OUT", 1)), [S.TIMED_OUT], True, id="timed-out"),
        pytest.param(crit(("ALL", 2)), [S.FAILED, S.TIMED_OUT], True, id="all-counts-both"),
        pytest.param(crit(("ALL", 2)), [S.FAILED, S.TIMED_OUT, S.FAILED], False, id="all-spent"),
        pytest.param(crit(("FAILED", 1), ("ALL", 5)), [S.FAILED, S.FAILED], False, id="specific-cap-wins"),
        pytest.param(crit(("FAILED", 5), ("ALL", 1)), [S.FAILED, S.FAILED], False, id="all-caps-specific"),
        pytest.param(crit(("FAILED", 2), ("ALL", 2)), [S.FAILED, S.TIMED_OUT], True, id="timeout-under-all"),
        pytest.param(crit(("ALL", 10)), [S.REJECTED], False, id="rejected-never"),
        pytest.param(crit(("ALL", 10)), [S.SUCCEEDED], False, id="succeeded-never"),
        pytest.param(crit(("FAILED", 0)), [S.FAILED], False, id="zero-retries"),
        pytest.param([], [S.FAILED], False, id="no-config"),
    ],
)
def test_should_retry(criteria: list[configs.RetryCriterion], history: list[ExecutionStatus], expected: bool) -> None:
    attempts = [ex(status, number=i + 1, attempt=i) for i, status in enumerate(history)]
    assert retry.should_retry(criteria, attempts) is expected


def test_retry_chain_restarts_at_a_first_attempt_and_the_retry_is_the_next_execution() -> None:
    history = [ex(S.FAILED, 1, 0), ex(S.FAILED, 2, 1), ex(S.REMOVED, 3, 0), ex(S.FAILED, 4, 0)]
    assert [e.execution_number for e in retry.chain(history)] == [4]
    again = retry.retried(history[-1], seq=9, now=NOW + 5)
    assert (again.status, again.execution_number, again.retry_attempt, again.version_number) == (Q, 5, 1, 1)
    assert again.queued_at == again.last_updated_at == NOW + 5


# --- abort ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure_type", "threshold", "minimum", "counts", "expected"),
    [
        pytest.param("FAILED", 50, 2, {S.FAILED: 1, S.SUCCEEDED: 1, Q: 5}, True, id="at-threshold"),
        pytest.param("FAILED", 50.01, 2, {S.FAILED: 1, S.SUCCEEDED: 1}, False, id="below-threshold"),
        pytest.param("FAILED", 10, 3, {S.FAILED: 2, IP: 4}, False, id="too-few-executed"),
        pytest.param("REJECTED", 10, 1, {S.FAILED: 3, S.SUCCEEDED: 1}, False, id="other-type"),
        pytest.param("ALL", 75, 4, {S.FAILED: 1, S.REJECTED: 1, S.TIMED_OUT: 1, S.SUCCEEDED: 1}, True, id="all"),
        pytest.param("TIMED_OUT", 100, 1, {S.TIMED_OUT: 1, S.CANCELED: 3}, True, id="canceled-not-executed"),
    ],
)
def test_should_abort(
    failure_type: str, threshold: float, minimum: int, counts: dict[ExecutionStatus, int], expected: bool
) -> None:
    criteria = [configs.AbortCriterion(failure_type, threshold, minimum)]
    assert abort.should_abort(criteria, counts) is expected


def test_aborted_job_is_canceled_with_a_comment() -> None:
    job = Job("J", "arn", "{}", (), TargetSelection.SNAPSHOT, JobStatus.IN_PROGRESS, NOW, NOW)
    aborted = abort.aborted(job, NOW + 1)
    assert (aborted.status, aborted.comment, aborted.reason_code, aborted.force_canceled) == (
        JobStatus.CANCELED,
        abort.ABORT_COMMENT,
        None,
        False,
    )


# --- rollout -------------------------------------------------------------------------------------

#: The docs' example: 50 a minute, doubling each time another 1000 things were notified.
DOCS_EXPONENTIAL = {
    "exponentialRate": {
        "baseRatePerMinute": 50,
        "incrementFactor": 2,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1000},
    }
}


@pytest.mark.parametrize(
    ("block", "notified", "succeeded", "expected"),
    [
        pytest.param(None, 0, 0, None, id="no-config-all-at-once"),
        pytest.param({}, 0, 0, 1000, id="empty-config-aws-default"),
        pytest.param({"maximumPerMinute": 7}, 0, 0, 7, id="constant"),
        pytest.param(DOCS_EXPONENTIAL, 999, 0, 50, id="docs-example-start"),
        pytest.param(DOCS_EXPONENTIAL, 1000, 0, 100, id="docs-example-1000"),
        pytest.param(DOCS_EXPONENTIAL, 3500, 0, 400, id="docs-example-3000"),
        pytest.param({**DOCS_EXPONENTIAL, "maximumPerMinute": 150}, 3500, 0, 150, id="capped"),
        pytest.param(
            {
                "exponentialRate": {
                    "baseRatePerMinute": 2,
                    "incrementFactor": 1.5,
                    "rateIncreaseCriteria": {"numberOfSucceededThings": 2},
                }
            },
            50,
            4,
            4,
            id="succeeded-criterion",
        ),
    ],
)
def test_batch_size(block: dict[str, Any] | None, notified: int, succeeded: int, expected: int | None) -> None:
    config = {} if block is None else {"jobExecutionsRolloutConfig": block}
    assert rollout.batch_size(configs.rollout(config), notified, succeeded) == expected


def test_batches_keep_a_steady_pace_unless_far_behind() -> None:
    assert rollout.after_batch(NOW, NOW + 3) == NOW + 60
    assert rollout.after_batch(NOW, NOW + 75) == NOW + 135


def job_with(config: dict[str, Any], status: JobStatus = JobStatus.IN_PROGRESS) -> Job:
    return Job("J", "arn", "{}", (), TargetSelection.SNAPSHOT, status, NOW, NOW, config=config)


def test_scheduled_job_starts_and_ends_on_time() -> None:
    config = {
        "schedulingConfig": {"startTime": "2027-01-15T08:30", "endTime": "2027-01-15T09:00", "endBehavior": "CANCEL"}
    }
    schedule = configs.schedule(config)
    scheduled = job_with(config, JobStatus.SCHEDULED)
    pacing = rollout.Pacing("J", next_batch_at=NOW)
    assert rollout.wake_at(scheduled, schedule, pacing, rolling_out=False) == utc("2027-01-15T08:30")
    assert not rollout.starts(scheduled, schedule, utc("2027-01-15T08:29"))
    assert rollout.starts(scheduled, schedule, utc("2027-01-15T08:30"))
    running = replace(scheduled, status=JobStatus.IN_PROGRESS)
    assert rollout.wake_at(running, schedule, pacing, rolling_out=False) == utc("2027-01-15T09:00")
    assert rollout.ends(running, schedule, pacing, utc("2027-01-15T09:00"))
    assert not rollout.ends(running, schedule, rollout.ended(pacing), utc("2027-01-15T09:00"))
    assert rollout.wake_at(running, schedule, rollout.ended(pacing), rolling_out=False) is None


def test_maintenance_windows() -> None:
    windows = (configs.Window(cron.parse("cron(0 10 ? * MON-FRI *)"), 90),)  # 10:00-11:30 on weekdays
    friday_morning = utc("2027-01-15T09:00")  # a Friday
    assert not rollout.in_window(windows, friday_morning)
    assert rollout.window_start(windows, friday_morning) == utc("2027-01-15T10:00")
    assert rollout.in_window(windows, utc("2027-01-15T11:29"))
    assert rollout.window_start(windows, utc("2027-01-15T11:29")) == utc("2027-01-15T10:00")
    assert not rollout.in_window(windows, utc("2027-01-15T11:30"))
    assert rollout.window_start(windows, utc("2027-01-15T11:30")) == utc("2027-01-18T10:00")  # Monday
    assert rollout.in_window((), friday_morning)
    upcoming = rollout.upcoming_windows(windows, friday_morning, 3)
    assert [configs.format_time(t) for t in upcoming] == ["2027-01-15T10:00", "2027-01-18T10:00", "2027-01-19T10:00"]


# --- cron ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 0 ? * SUN *)", "2027-01-15T08:00", "2027-01-17T00:00"),
        ("cron(*/15 * * * ? *)", "2027-01-15T08:01", "2027-01-15T08:15"),
        ("30 2 1 JAN,JUL ? *", "2027-01-15T08:00", "2027-07-01T02:30"),
        ("cron(0 12 29 2 ? 2028)", "2027-01-15T08:00", "2028-02-29T12:00"),
        ("cron(5 8 * * ? *)", "2027-01-15T08:05", "2027-01-15T08:05"),  # at-or-after
    ],
)
def test_cron_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert cron.parse(expression).next_at_or_after(utc(after)) == utc(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 * *)",
        "cron(60 0 ? * * *)",
        "cron(0 24 ? * * *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 ? 13 * *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 ? * 6#3 *)",
        "cron(0 0 15W * ? *)",
        "cron(x 0 ? * * *)",
        "cron(5-1 0 ? * * *)",
    ],
)
def test_cron_refuses(expression: str) -> None:
    with pytest.raises(InvalidRequest):
        cron.parse(expression)


# --- validation of the blocks --------------------------------------------------------------------

_SOON = "2027-01-15T08:30"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}, "inProgressTimeoutInMinutes"),
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}, "inProgressTimeoutInMinutes"),
        (
            {
                "jobExecutionsRetryConfig": {
                    "criteriaList": [
                        {"failureType": "FAILED", "numberOfRetries": 6},
                        {"failureType": "TIMED_OUT", "numberOfRetries": 5},
                    ]
                }
            },
            "at most 10",
        ),
        (
            {
                "jobExecutionsRetryConfig": {
                    "criteriaList": [
                        {"failureType": "ALL", "numberOfRetries": 1},
                        {"failureType": "ALL", "numberOfRetries": 1},
                    ]
                }
            },
            "only one",
        ),
        (
            {
                "abortConfig": {
                    "criteriaList": [
                        {
                            "failureType": "FAILED",
                            "action": "CANCEL",
                            "thresholdPercentage": 10.555,
                            "minNumberOfExecutedThings": 1,
                        }
                    ]
                }
            },
            "two digits",
        ),
        ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}, "maximumPerMinute"),
        (
            {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 1,
                        "incrementFactor": 1.25,
                        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                    }
                }
            },
            "one digit",
        ),
        (
            {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 2, "rateIncreaseCriteria": {}}
                }
            },
            "exactly one",
        ),
        ({"schedulingConfig": {"startTime": "2027-01-15T08:29"}}, "30 minutes"),
        ({"schedulingConfig": {"startTime": "2028-02-15T08:30"}}, "one year"),
        ({"schedulingConfig": {"startTime": _SOON, "endTime": "2027-01-15T08:59"}}, "30 minutes after"),
        ({"schedulingConfig": {"endTime": "2029-02-15T08:30"}}, "two years"),
        ({"schedulingConfig": {"startTime": "15/01/2027 08:30"}}, "YYYY-MM-DDTHH:MM"),
        ({"schedulingConfig": {"maintenanceWindows": [{"startTime": "every day", "durationInMinutes": 30}]}}, "cron"),
    ],
)
def test_configs_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        configs.check(config, NOW + 20)


def test_configs_accepted() -> None:
    configs.check(
        {
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10080},
            "jobExecutionsRetryConfig": {
                "criteriaList": [
                    {"failureType": "FAILED", "numberOfRetries": 5},
                    {"failureType": "TIMED_OUT", "numberOfRetries": 5},
                ]
            },
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 1000},
            "schedulingConfig": {
                "startTime": _SOON,
                "endTime": "2027-01-15T09:00Z",
                "endBehavior": "CANCEL",
                "maintenanceWindows": [{"startTime": "cron(0 0 ? * SUN *)", "durationInMinutes": 60}],
            },
        },
        NOW + 20,  # 30 minutes ahead counts from the start of the current minute
    )
    assert configs.parse_time("2027-01-15T08:30:15") == utc("2027-01-15T08:30:15")
