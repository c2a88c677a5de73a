"""The engine's lifecycle in time on a real SQLite store and a hand-moved clock: what fires when,
once, and which events each firing emits. No broker, no sockets, no sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.engine import Engine, Identity, PendingChange
from iot_jobs_local.jobs.errors import InvalidStateTransition
from iot_jobs_local.jobs.model import ExecutionStatus, JobStatus
from iot_jobs_local.jobs.requests import StartNextRequest, UpdateRequest
from iot_jobs_local.store import Store

S = ExecutionStatus
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
REGION, ACCOUNT = "us-east-1", "123456789012"


class Hand:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, path: Path) -> None:
        self.clock = Hand()
        self.store = Store(path)
        self.engine = Engine(self.store, Identity(REGION, ACCOUNT), self.clock)
        self.events: list[PendingChange] = []
        self.deadlines: list[float] = []
        self.engine.subscribe(self.events.extend)
        self.engine.watch_deadlines(self.deadlines.append)

    def things(self, *names: str) -> list[str]:
        for name in names:
            self.engine.create_thing(name)
        return list(names)

    def job(self, job_id: str, things: Sequence[str], **config: Any) -> None:
        targets = [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{t}" for t in things]
        self.engine.create_job(job_id, targets, json.dumps({"do": job_id}), None, None, config)

    def advance(self, seconds: float) -> int:
        self.clock.now += seconds
        return self.engine.fire_due()

    def take_events(self) -> dict[str, tuple[bool, bool, list[tuple[str, int, str]]]]:
        out = {
            c.thing_name: (c.notify, c.notify_next, [(e.job_id, e.execution_number, e.status.value) for e in c.pending])
            for c in self.events
        }
        self.events.clear()
        return out


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "jobs.sqlite3")
    yield w
    w.store.close()


def test_in_progress_timeout_fires_once_at_its_deadline(world: World) -> None:
    (thing,) = world.things("A")
    world.job("J", [thing], timeoutConfig={"inProgressTimeoutInMinutes": 2})
    world.take_events()
    world.engine.start_next(thing, StartNextRequest())
    assert world.deadlines == [T0 + 120] and world.engine.next_due() == T0 + 120
    assert world.advance(119.9) == 0
    assert world.advance(0.1) == 1
    assert world.engine.describe_execution("J", thing, None).status is S.TIMED_OUT
    assert world.take_events() == {thing: (True, True, [])}
    assert world.advance(600) == 0 and world.engine.next_due() is None
    assert world.engine.describe_job("J")[0].status is JobStatus.COMPLETED


def test_overdue_deadlines_fire_once_when_a_new_engine_starts_on_the_same_store(tmp_path: Path) -> None:
    first = World(tmp_path / "jobs.sqlite3")
    first.things("A", "B")
    first.job("J", ["A", "B"], timeoutConfig={"inProgressTimeoutInMinutes": 1})
    first.engine.start_next("A", StartNextRequest())
    first.engine.start_next("B", StartNextRequest(step_timeout_minutes=3))
    first.store.close()  # "killed" with both timers armed

    second = World(tmp_path / "jobs.sqlite3")
    second.clock.now = T0 + 3600  # the service comes back long after both deadlines
    assert second.engine.next_due() == T0 + 60
    assert second.engine.fire_due() == 2
    assert second.engine.fire_due() == 0
    assert {c.thing_name for c in second.events} == {"A", "B"}
    assert second.store.latest_timestamp() == T0 + 3600
    second.store.close()


def test_retry_after_failure_then_timeout_until_the_budget_is_spent(world: World) -> None:
    (thing,) = world.things("A")
    retries = {
        "criteriaList": [
            {"failureType": "FAILED", "numberOfRetries": 1},
            {"failureType": "TIMED_OUT", "numberOfRetries": 1},
        ]
    }
    world.job("J", [thing], timeoutConfig={"inProgressTimeoutInMinutes": 1}, jobExecutionsRetryConfig=retries)
    world.take_events()
    world.engine.start_next(thing, StartNextRequest())
    world.engine.update(thing, "J", UpdateRequest(S.FAILED))
    assert world.take_events() == {thing: (True, True, [("J", 2, "QUEUED")])}
    world.engine.start_next(thing, StartNextRequest())
    assert world.advance(60) == 1
    assert world.take_events() == {thing: (True, True, [("J", 3, "QUEUED")])}
    world.engine.start_next(thing, StartNextRequest())
    world.engine.update(thing, "J", UpdateRequest(S.FAILED))  # the FAILED budget is spent
    assert world.take_events() == {thing: (True, True, [])}
    attempts = world.store.attempts("J", thing)
    assert [(e.execution_number, e.retry_attempt, e.status) for e in attempts] == [
        (1, 0, S.FAILED),
        (2, 1, S.TIMED_OUT),
        (3, 2, S.FAILED),
    ]
    assert world.engine.describe_job("J")[0].status is JobStatus.COMPLETED


def test_abort_cancels_queued_executions_and_queued_retries_but_not_in_progress_ones(world: World) -> None:
    things = world.things("A", "B", "C", "D", "E")
    world.job(
        "J",
        things,
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]},
        abortConfig={
            "criteriaList": [
                {"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}
            ]
        },
    )
    world.engine.start_next("A", StartNextRequest())  # no timer: stays IN_PROGRESS
    world.engine.start_next("E", StartNextRequest(step_timeout_minutes=1))
    world.advance(60)  # E times out and gets a queued retry
    assert world.store.execution("J", "E").status is S.QUEUED
    world.engine.update("B", "J", UpdateRequest(S.SUCCEEDED))
    world.take_events()
    world.engine.update("C", "J", UpdateRequest(S.REJECTED))  # executed 2, failed 1: 50 %
    job = world.engine.describe_job("J")[0]
    assert (job.status, job.comment) == (JobStatus.CANCELED, "Job canceled by abort config")
    statuses = {t: world.store.execution("J", t).status for t in things}
    assert statuses == {"A": S.IN_PROGRESS, "B": S.SUCCEEDED, "C": S.REJECTED, "D": S.CANCELED, "E": S.CANCELED}
    assert world.take_events() == {"C": (True, True, []), "D": (True, True, []), "E": (True, True, [])}


def test_rollout_batches_at_the_configured_pace(world: World) -> None:
    things = world.things(*(f"T{i}" for i in range(5)))
    world.job("J", things, jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    assert sorted(world.take_events()) == ["T0", "T1"]
    assert world.engine.processing_targets("J") == [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/T{i}" for i in (2, 3, 4)]
    assert world.advance(59) == 0
    assert world.advance(1) == 1 and sorted(world.take_events()) == ["T2", "T3"]
    assert world.advance(60) == 1 and sorted(world.take_events()) == ["T4"]
    assert world.engine.rolling_out(["J"]) == set() and world.engine.next_due() is None
    assert sorted(e.queued_at - T0 for e in world.store.executions_for_job("J")) == [0, 0, 60, 60, 120]


def test_snapshot_job_completes_only_once_the_rollout_is_over(world: World) -> None:
    things = world.things("A", "B")
    world.job("J", things, jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    world.engine.update("A", "J", UpdateRequest(S.SUCCEEDED))
    assert world.engine.describe_job("J")[0].status is JobStatus.IN_PROGRESS  # B still waits for its turn
    world.advance(60)
    world.engine.update("B", "J", UpdateRequest(S.SUCCEEDED))
    assert world.engine.describe_job("J")[0].status is JobStatus.COMPLETED


def test_scheduled_job_with_maintenance_window_and_force_cancel_at_the_end(world: World) -> None:
    things = world.things("A", "B")
    schedule = {
        "startTime": "2027-01-15T08:30",
        "endTime": "2027-01-15T10:00",
        "endBehavior": "FORCE_CANCEL",
        "maintenanceWindows": [{"startTime": "cron(0 9 * * ? *)", "durationInMinutes": 30}],
    }
    world.job("J", things, schedulingConfig=schedule, jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    assert world.engine.describe_job("J")[0].status is JobStatus.SCHEDULED
    assert world.engine.upcoming_windows(world.engine.describe_job("J")[0])[:2] == [
        "2027-01-15T09:00",
        "2027-01-16T09:00",
    ]
    assert world.engine.get_pending("A") == ([], []) and world.engine.next_due() == T0 + 1800
    world.advance(1800)  # 08:30: started, but outside the maintenance window
    assert world.engine.describe_job("J")[0].status is JobStatus.IN_PROGRESS
    assert world.take_events() == {} and world.engine.next_due() == T0 + 3600
    world.advance(1800)  # 09:00: the window opens, the first batch goes out
    assert list(world.take_events()) == ["A"]
    world.engine.start_next("A", StartNextRequest())
    world.advance(60)
    assert list(world.take_events()) == ["B"]
    world.advance(3540)  # 10:00: FORCE_CANCEL cancels the IN_PROGRESS execution too
    job = world.engine.describe_job("J")[0]
    assert (job.status, job.force_canceled) == (JobStatus.CANCELED, True)
    assert {t: world.store.execution("J", t).status for t in things} == {"A": S.CANCELED, "B": S.CANCELED}
    assert world.engine.next_due() is None


def test_registry_events_of_timeouts_aborts_and_rollbacks(world: World) -> None:
    """Execution events come from every path that ends an execution (here a timeout and an abort),
    job events from the job's own transitions; a failed operation publishes nothing."""
    seen: list[Any] = []
    world.engine.watch_lifecycle(seen.extend)
    world.engine.update_event_configurations({"JOB": {"Enabled": True}, "JOB_EXECUTION": {"Enabled": True}})
    things = world.things("A", "B", "C")
    world.job(
        "J",
        things,
        abortConfig={
            "criteriaList": [
                {"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 1}
            ]
        },
    )
    assert seen == []
    world.engine.start_next("A", StartNextRequest(step_timeout_minutes=1))
    world.advance(60)  # A times out: executed 1, failed 1 -> the abort cancels B and C
    operations = [
        (type(e).__name__, e.operation, getattr(e, "execution", None) and e.execution.thing_name) for e in seen
    ]
    assert sorted(operations, key=str) == sorted(
        [
            ("ExecutionEvent", "timed_out", "A"),
            ("ExecutionEvent", "canceled", "B"),
            ("ExecutionEvent", "canceled", "C"),
            ("JobEvent", "canceled", None),
        ],
        key=str,
    )
    job_event = next(e for e in seen if e.operation == "canceled" and type(e).__name__ == "JobEvent")
    assert job_event.job.status is JobStatus.CANCELED and job_event.counts[S.CANCELED] == 2
    seen.clear()
    with pytest.raises(InvalidStateTransition):  # A's execution is terminal: refused, rolled back
        world.engine.update("A", "J", UpdateRequest(S.SUCCEEDED))
    world.engine.update_event_configurations({"THING": {"Enabled": True}})  # commits, nothing to publish
    assert seen == []


def test_job_view_is_read_again_after_every_write(world: World) -> None:
    a, b = world.things("A", "B")
    world.job("J", [a, b])
    first = world.engine.job_view("J")
    assert world.engine.job_view("J") is first  # nothing written in between: not read again
    assert first.counts == {S.QUEUED: 2}
    world.engine.start_next(a, StartNextRequest())
    assert world.engine.job_view("J").counts == {S.QUEUED: 1, S.IN_PROGRESS: 1}
    world.things("C")  # any write, even one that leaves the job alone, forgets what was read
    assert world.engine.job_view("J") is not first
    world.engine.cancel_job("J", False, None, None)
    view = world.engine.job_view("J")
    assert view.job.status is JobStatus.CANCELED and view.counts == {S.CANCELED: 1, S.IN_PROGRESS: 1}


def test_a_batch_shares_one_commit_and_undoes_a_failed_operation_alone(world: World) -> None:
    """The MQTT link answers the requests of one read in a batch: each operation a savepoint, the
    events of all of them after the one commit, a refused one undone without the others."""
    seen: list[Any] = []
    world.engine.watch_lifecycle(seen.extend)
    world.engine.update_event_configurations({"JOB": {"Enabled": True}, "JOB_EXECUTION": {"Enabled": True}})
    a, b = world.things("A", "B")
    world.job("J", [a, b])
    world.take_events()
    with world.engine.batch():
        world.engine.start_next(a, StartNextRequest())
        world.engine.update(a, "J", UpdateRequest(S.SUCCEEDED))
        with pytest.raises(InvalidStateTransition):  # terminal already: refused, its savepoint undone
            world.engine.update(a, "J", UpdateRequest(S.FAILED))
        world.engine.update(b, "J", UpdateRequest(S.SUCCEEDED))
        assert world.events == [] and seen == []  # nothing is told before the commit
    assert world.take_events() == {a: (True, True, []), b: (True, True, [])}
    assert [(type(e).__name__, e.operation) for e in seen] == [
        ("ExecutionEvent", "succeeded"),
        ("ExecutionEvent", "succeeded"),
        ("JobEvent", "completed"),
    ]
    assert world.engine.describe_execution("J", a, None).status is S.SUCCEEDED
    assert world.engine.describe_job("J")[0].status is JobStatus.COMPLETED


def test_a_batch_whose_commit_fails_tells_nobody(world: World) -> None:
    (a,) = world.things("A")
    world.job("J", [a])
    world.take_events()
    with pytest.raises(RuntimeError), world.engine.batch():
        world.engine.update(a, "J", UpdateRequest(S.SUCCEEDED))
        raise RuntimeError("the batch fails before its commit")
    assert world.events == []
    assert world.engine.describe_execution("J", a, None).status is S.QUEUED
    assert world.engine.describe_job("J")[0].status is JobStatus.IN_PROGRESS  # the job memo forgot it too
