"""The job lifecycle in time, end to end: timeouts, retries, rollout, abort, scheduling, restarts.

Each test runs a private service with a fast clock (``serve --time-scale N``: a virtual minute lasts
60/N real seconds) and talks to it through the real SDK device client and boto3, checking the
events a device receives. Times are compared on the service's own (virtual) clock: the timestamps
it reports. Nothing sleeps for a timeout: tests wait for the device's event, with a deadline.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
from collections.abc import Callable
from typing import Any

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED
from support.common import unique
from support.service import ServiceProcess

DOC = {"operation": "update"}
#: A virtual minute lasts 0.1 s.
FAST = 600
#: AWS: "the actual job execution timeout can occur up to 60 seconds later than the estimated duration".
LATE = 60.0

Factory = Callable[..., ServiceProcess]


def fast_service(service_factory: Factory, scale: int = FAST) -> ServiceProcess:
    return service_factory("--time-scale", str(scale))


def ids(summaries: Any) -> list[tuple[str, int]]:
    return [(s.job_id, s.execution_number) for s in summaries]


def expect_queued(d: Device, job: str, number: int = 1) -> None:
    """The events of an execution joining an idle thing's pending set (it becomes the head)."""
    changed = d.next_event(JOBS_CHANGED)
    assert {k: ids(v) for k, v in changed.jobs.items()} == {"QUEUED": [(job, number)]}
    nxt = d.next_event(NEXT_CHANGED).execution
    assert (nxt.job_id, nxt.execution_number, nxt.status, nxt.version_number) == (job, number, "QUEUED", 1)


def expect_idle(d: Device) -> None:
    """The events of a thing's pending set becoming empty."""
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None


def control_execution(svc: ServiceProcess, job: str, thing: str) -> dict[str, Any]:
    return dict(svc.iot().describe_job_execution(jobId=job, thingName=thing)["execution"])


def seconds_left(svc: ServiceProcess, job: str, thing: str) -> int | None:
    """``approximateSecondsBeforeTimedOut`` as the HTTP data plane reports it (None when absent)."""
    data = svc.boto3_client("iot-jobs-data")
    found = data.describe_job_execution(thingName=thing, jobId=job)["execution"]
    return found.get("approximateSecondsBeforeTimedOut")


def virtual_now(svc: ServiceProcess) -> float:
    """The service's clock, read from the creation date of a new thing group."""
    iot = svc.iot()
    name = unique("clock")
    iot.create_thing_group(thingGroupName=name)
    created: datetime.datetime = iot.describe_thing_group(thingGroupName=name)["thingGroupMetadata"]["creationDate"]
    return created.timestamp()


def utc_minute(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")


# --------------------------------------------------------------------------------------------------
# Timers
# --------------------------------------------------------------------------------------------------


def test_in_progress_timeout_times_the_execution_out(service_factory: Factory, device: Callable[..., Device]) -> None:
    svc = fast_service(service_factory)
    iot = svc.iot()
    d = device(service=svc)
    job = svc.create_job(d.thing, DOC, timeoutConfig={"inProgressTimeoutInMinutes": 10})
    expect_queued(d, job)

    assert d.start_next().execution.status == "IN_PROGRESS"
    armed = control_execution(svc, job, d.thing)
    assert 0 < armed["approximateSecondsBeforeTimedOut"] <= 600
    left = seconds_left(svc, job, d.thing)
    assert left is not None and 0 < left <= 600

    expect_idle(d)  # ten virtual minutes later: TIMED_OUT, nothing pending
    timed_out = control_execution(svc, job, d.thing)
    assert (timed_out["status"], timed_out["versionNumber"]) == ("TIMED_OUT", 3)
    assert "approximateSecondsBeforeTimedOut" not in timed_out
    assert 600 <= (timed_out["lastUpdatedAt"] - timed_out["startedAt"]).total_seconds() <= 600 + LATE
    assert seconds_left(svc, job, d.thing) is None

    rejected = d.rejected("update", job, "SUCCEEDED")
    assert rejected.code == "InvalidStateTransition" and rejected.execution_state.status == "TIMED_OUT"
    described = iot.describe_job(jobId=job)["job"]
    assert described["status"] == "COMPLETED"
    assert described["jobProcessDetails"]["numberOfTimedOutThings"] == 1
    d.assert_no_event(within=0.3)


def test_step_timeout_set_replaced_and_cancelled(service_factory: Factory, device: Callable[..., Device]) -> None:
    svc = fast_service(service_factory)
    d = device(service=svc)
    job = svc.create_job(d.thing, DOC)  # no in-progress timer: only the step timer
    expect_queued(d, job)

    d.start_next(step_timeout_in_minutes=10)  # one real second
    left = seconds_left(svc, job, d.thing)
    assert left is not None and 0 < left <= 600
    d.update(job, "IN_PROGRESS", step_timeout_in_minutes=60)  # replaces it
    left = seconds_left(svc, job, d.thing)
    assert left is not None and 600 < left <= 3600
    d.update(job, "IN_PROGRESS", step_timeout_in_minutes=-1)  # cancels it
    assert seconds_left(svc, job, d.thing) is None
    assert svc.execution_row(job, d.thing)["deadline"] is None  # type: ignore[index]
    d.assert_no_event(within=1.0)  # past the first step timer's deadline: nothing fired

    set_at = d.update(job, "IN_PROGRESS", step_timeout_in_minutes=1).timestamp.timestamp()
    expect_idle(d)
    timed_out = control_execution(svc, job, d.thing)
    assert (timed_out["status"], timed_out["versionNumber"]) == ("TIMED_OUT", 6)
    # The response's timestamp has whole seconds.
    assert 60 - 1 <= timed_out["lastUpdatedAt"].timestamp() - set_at <= 60 + 1 + LATE


# --------------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------------


def test_retries_after_failed_up_to_the_budget_and_no_further(
    service_factory: Factory, device: Callable[..., Device]
) -> None:
    svc = fast_service(service_factory)
    iot = svc.iot()
    d = device(service=svc)
    job = svc.create_job(
        d.thing, DOC, jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}
    )
    expect_queued(d, job)
    for attempt in (1, 2, 3):
        started = d.start_next().execution
        assert (started.job_id, started.execution_number) == (job, attempt)
        d.update(job, "FAILED")
        if attempt < 3:
            expect_queued(d, job, attempt + 1)  # the retry: a new QUEUED execution, the new head
            details = iot.describe_job(jobId=job)["job"]
            assert details["status"] == "IN_PROGRESS"  # not COMPLETED while a retry is pending
            assert (
                details["jobProcessDetails"]["numberOfQueuedThings"],
                details["jobProcessDetails"]["numberOfFailedThings"],
            ) == (1, 0)
        else:
            expect_idle(d)
    d.assert_no_event(within=0.3)

    summaries = iot.list_job_executions_for_thing(thingName=d.thing, jobId=job)["executionSummaries"]
    assert sorted(
        (
            s["jobExecutionSummary"]["executionNumber"],
            s["jobExecutionSummary"]["retryAttempt"],
            s["jobExecutionSummary"]["status"],
        )
        for s in summaries
    ) == [(1, 0, "FAILED"), (2, 1, "FAILED"), (3, 2, "FAILED")]
    details = iot.describe_job(jobId=job)["job"]
    assert details["status"] == "COMPLETED" and details["jobProcessDetails"]["numberOfFailedThings"] == 1


def test_retries_after_timed_out_and_none_after_rejected(
    service_factory: Factory, device: Callable[..., Device]
) -> None:
    svc = fast_service(service_factory)
    iot = svc.iot()
    slow, picky = device(service=svc), device(service=svc)
    retry = {
        "criteriaList": [
            {"failureType": "TIMED_OUT", "numberOfRetries": 1},
            {"failureType": "FAILED", "numberOfRetries": 5},
        ]
    }
    job = svc.create_job(
        [slow.thing, picky.thing], DOC, timeoutConfig={"inProgressTimeoutInMinutes": 1}, jobExecutionsRetryConfig=retry
    )
    expect_queued(slow, job)
    expect_queued(picky, job)

    slow.start_next()
    expect_queued(slow, job, 2)  # timed out a virtual minute later, and queued again
    assert slow.start_next().execution.execution_number == 2
    expect_idle(slow)  # timed out again: the TIMED_OUT budget is spent

    picky.update(job, "REJECTED")
    expect_idle(picky)
    for d in (slow, picky):
        d.assert_no_event(within=0.3)

    def attempts(thing: str) -> list[tuple[int, int, str]]:
        found = iot.list_job_executions_for_thing(thingName=thing, jobId=job)["executionSummaries"]
        return sorted(
            (
                s["jobExecutionSummary"]["executionNumber"],
                s["jobExecutionSummary"]["retryAttempt"],
                s["jobExecutionSummary"]["status"],
            )
            for s in found
        )

    assert attempts(slow.thing) == [(1, 0, "TIMED_OUT"), (2, 1, "TIMED_OUT")]
    assert attempts(picky.thing) == [(1, 0, "REJECTED")]
    assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"


# --------------------------------------------------------------------------------------------------
# Rollout
# --------------------------------------------------------------------------------------------------


def _rollout_batches(svc: ServiceProcess, job: str, things: list[str]) -> list[list[str]]:
    """The job's things grouped by the (virtual) time their execution was queued, and those times."""
    found = svc.iot().list_job_executions_for_job(jobId=job)["executionSummaries"]
    queued = {s["thingArn"]: s["jobExecutionSummary"]["queuedAt"].timestamp() for s in found}
    assert len(queued) == len(things)
    batches: dict[float, list[str]] = {}
    for thing in things:
        batches.setdefault(queued[svc.thing_arn(thing)], []).append(thing)
    return [batches[t] for t in sorted(batches)]


def _batch_times(svc: ServiceProcess, job: str) -> list[float]:
    found = svc.iot().list_job_executions_for_job(jobId=job)["executionSummaries"]
    return sorted({s["jobExecutionSummary"]["queuedAt"].timestamp() for s in found})


def test_rollout_creates_executions_at_the_configured_pace(
    service_factory: Factory, device: Callable[..., Device]
) -> None:
    svc = fast_service(service_factory, 300)  # a virtual minute lasts 0.2 s
    iot = svc.iot()
    things = sorted(unique("roll") for _ in range(5))
    for thing in things:
        iot.create_thing(thingName=thing)
    first, last = device(things[0], service=svc), device(things[-1], service=svc)

    job = svc.create_job(things, DOC, jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    described = iot.describe_job(jobId=job)["job"]
    assert described["isConcurrent"] is True
    processing = described["jobProcessDetails"]["processingTargets"]
    assert processing and set(processing) <= {svc.thing_arn(t) for t in things[2:]}
    expect_queued(first, job)  # the first batch goes out at once
    expect_queued(last, job)  # the last thing's turn comes in the third batch

    assert _rollout_batches(svc, job, things) == [things[:2], things[2:4], things[4:]]
    times = _batch_times(svc, job)
    for earlier, later in itertools.pairwise(times):
        assert abs(later - earlier - 60) <= 20, times  # a virtual minute apart
    done = iot.describe_job(jobId=job)["job"]
    assert done["isConcurrent"] is False and "processingTargets" not in done["jobProcessDetails"]
    assert done["jobProcessDetails"]["numberOfQueuedThings"] == 5
    assert iot.list_jobs()["jobs"][0]["isConcurrent"] is False


def test_exponential_rollout_rate(service_factory: Factory, device: Callable[..., Device]) -> None:
    svc = fast_service(service_factory, 300)
    iot = svc.iot()
    things = sorted(unique("exp") for _ in range(7))
    for thing in things:
        iot.create_thing(thingName=thing)
    last = device(things[-1], service=svc)
    rate = {
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
        }
    }
    job = svc.create_job(things, DOC, jobExecutionsRolloutConfig=rate)
    assert any(j["jobId"] == job and j["isConcurrent"] for j in iot.list_jobs()["jobs"])
    expect_queued(last, job)
    # 1 a minute at first, doubling with each thing notified: 1, then 2, then the 4 left.
    assert _rollout_batches(svc, job, things) == [things[:1], things[1:3], things[3:]]


# --------------------------------------------------------------------------------------------------
# Abort
# --------------------------------------------------------------------------------------------------


def test_abort_at_its_threshold_leaves_in_progress_executions_alone(
    service_factory: Factory, device: Callable[..., Device]
) -> None:
    svc = fast_service(service_factory)
    iot = svc.iot()
    running, succeeding, failing, waiting = (device(service=svc) for _ in range(4))
    every = (running, succeeding, failing, waiting)
    abort = {
        "criteriaList": [
            {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}
        ]
    }
    job = svc.create_job([d.thing for d in every], DOC, abortConfig=abort)
    for d in every:
        expect_queued(d, job)

    running.start_next()
    succeeding.update(job, "SUCCEEDED")
    expect_idle(succeeding)
    assert iot.describe_job(jobId=job)["job"]["status"] == "IN_PROGRESS"  # one thing executed: below the minimum

    failing.update(job, "FAILED")  # two executed, one failed: 50 %
    expect_idle(failing)
    expect_idle(waiting)  # its QUEUED execution is canceled
    running.assert_no_event(within=0.3)
    aborted = iot.describe_job(jobId=job)["job"]
    assert (aborted["status"], aborted["comment"], aborted["forceCanceled"]) == (
        "CANCELED",
        "Job canceled by abort config",
        False,
    )
    assert "reasonCode" not in aborted
    assert control_execution(svc, job, waiting.thing)["status"] == "CANCELED"
    assert control_execution(svc, job, running.thing)["status"] == "IN_PROGRESS"

    # The IN_PROGRESS execution runs to its end.
    running.update(job, "SUCCEEDED")
    expect_idle(running)
    details = iot.describe_job(jobId=job)["job"]["jobProcessDetails"]
    assert (
        details["numberOfSucceededThings"],
        details["numberOfFailedThings"],
        details["numberOfCanceledThings"],
        details["numberOfInProgressThings"],
    ) == (2, 1, 1, 0)


# --------------------------------------------------------------------------------------------------
# Scheduling
# --------------------------------------------------------------------------------------------------


def test_scheduled_job_starts_and_ends_on_time(service_factory: Factory, device: Callable[..., Device]) -> None:
    svc = fast_service(service_factory, 1200)  # half an hour lasts 1.5 s
    iot = svc.iot()
    d = device(service=svc)
    now = virtual_now(svc)
    start = math.ceil(now / 60) * 60 + 32 * 60  # AWS wants at least 30 minutes' notice
    end = start + 30 * 60
    schedule = {"startTime": utc_minute(start), "endTime": utc_minute(end), "endBehavior": "CANCEL"}
    job = svc.create_job(d.thing, DOC, schedulingConfig=schedule)

    scheduled = iot.describe_job(jobId=job)["job"]
    assert (scheduled["status"], scheduled["isConcurrent"]) == ("SCHEDULED", False)
    assert scheduled["schedulingConfig"] == schedule
    assert job in [j["jobId"] for j in iot.list_jobs(status="SCHEDULED")["jobs"]]
    pending = d.get_pending()
    assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])

    expect_queued(d, job)  # the start time came
    started = iot.describe_job(jobId=job)["job"]
    assert started["status"] == "IN_PROGRESS"
    queued_at = control_execution(svc, job, d.thing)["queuedAt"].timestamp()
    assert start <= queued_at <= start + LATE

    expect_idle(d)  # the end time came: CANCEL cancels the QUEUED execution
    ended = iot.describe_job(jobId=job)["job"]
    assert ended["status"] == "CANCELED"
    assert end <= ended["lastUpdatedAt"].timestamp() <= end + LATE
    assert control_execution(svc, job, d.thing)["status"] == "CANCELED"


def test_scheduling_config_is_validated_on_the_service_clock(service_factory: Factory) -> None:
    svc = fast_service(service_factory, 1200)
    iot = svc.iot()
    iot.create_thing(thingName=(thing := unique("sched")))
    now = virtual_now(svc)
    too_soon = {"startTime": utc_minute(now + 10 * 60)}
    bad_cron = {
        "startTime": utc_minute(now + 40 * 60),
        "maintenanceWindows": [{"startTime": "cron(0 0 L * ? *)", "durationInMinutes": 60}],
    }
    for schedule in (too_soon, bad_cron, {"startTime": "tomorrow"}):
        try:
            iot.create_job(
                jobId=unique("job"), targets=[svc.thing_arn(thing)], document=json.dumps(DOC), schedulingConfig=schedule
            )
        except iot.exceptions.InvalidRequestException:
            continue
        raise AssertionError(f"schedulingConfig {schedule} was accepted")


# --------------------------------------------------------------------------------------------------
# Restart
# --------------------------------------------------------------------------------------------------


def test_kill_9_in_the_middle_of_a_timeout_still_fires_it_once_on_time(
    service_factory: Factory, device: Callable[..., Device]
) -> None:
    svc = fast_service(service_factory)
    d = device(service=svc)
    job = svc.create_job(d.thing, DOC, timeoutConfig={"inProgressTimeoutInMinutes": 40})  # 4 real seconds
    expect_queued(d, job)
    d.start_next()
    started_at = control_execution(svc, job, d.thing)["startedAt"].timestamp()

    svc.kill9()
    d.stop()
    svc.start()  # same state, same ports, same time scale; the clock continues from the last record
    after = device(d.thing, service=svc)
    still = control_execution(svc, job, d.thing)
    assert still["status"] == "IN_PROGRESS" and 0 < still["approximateSecondsBeforeTimedOut"] <= 2400

    expect_idle(after)
    after.assert_no_event(within=0.5)  # once
    timed_out = control_execution(svc, job, d.thing)
    assert (timed_out["status"], timed_out["versionNumber"]) == ("TIMED_OUT", 3)
    assert 2400 <= timed_out["lastUpdatedAt"].timestamp() - started_at <= 2400 + LATE
    listed = svc.iot().list_job_executions_for_job(jobId=job)["executionSummaries"]
    assert len(listed) == 1
