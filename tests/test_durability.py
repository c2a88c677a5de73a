"""Durability of iot-jobs-local: what a client was told succeeded survives ``kill -9`` of the service,
and the Mosquitto child never outlives it. Each test runs its own service (own state dir and ports)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED
from support.api import wait_job_gone
from support.common import READY_PREFIX, free_port, unique
from support.processes import ExitWatch, process_parent, process_state
from support.service import ServiceProcess

BROKER_EXIT_TIMEOUT = 5.0


def _execution_view(response: Any) -> dict[str, Any]:
    e = response.execution
    return {
        "job_id": e.job_id,
        "status": e.status,
        "version_number": e.version_number,
        "execution_number": e.execution_number,
        "status_details": e.status_details,
        "queued_at": e.queued_at,
        "started_at": e.started_at,
        "last_updated_at": e.last_updated_at,
        "job_document": e.job_document,
    }


def _pending_view(response: Any) -> dict[str, list[tuple[Any, ...]]]:
    def rows(summaries: Any) -> list[tuple[Any, ...]]:
        return [
            (s.job_id, s.version_number, s.execution_number, s.queued_at, s.started_at, s.last_updated_at)
            for s in summaries
        ]

    return {"in_progress": rows(response.in_progress_jobs), "queued": rows(response.queued_jobs)}


def _job_view(iot: Any, job_id: str) -> dict[str, Any]:
    job = iot.describe_job(jobId=job_id)["job"]
    return {k: job.get(k) for k in ("jobId", "status", "targets", "createdAt", "completedAt", "jobProcessDetails")}


def _the_broker(svc: ServiceProcess) -> int:
    pids = svc.broker_pids()
    assert len(pids) == 1, f"expected one Mosquitto for {svc.broker_conf}, found {pids}"
    assert process_parent(pids[0]) == svc.pid, "Mosquitto should be the service's child"
    return pids[0]


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
def test_restart_loses_nothing_a_client_was_told_succeeded(
    service_factory: Callable[[], ServiceProcess], device: Callable[..., Device], stop: str
) -> None:
    svc = service_factory()
    iot = svc.iot()
    d = device(service=svc)
    thing = d.thing
    job1, job2, job3, gone = (unique(p) for p in ("J1", "J2", "J3", "Gone"))
    for job, doc in ((job1, {"n": 1}), (job2, {"n": 2}), (job3, {"n": 3, "text": "ünïcode"}), (gone, {"n": 0})):
        iot.create_job(jobId=job, targets=[svc.thing_arn(thing)], document=json.dumps(doc))
    iot.delete_job(jobId=gone, force=True)

    started = d.start_next(status_details={"step": "1"})
    assert started.execution.job_id == job1 and started.execution.version_number == 2
    progressed = d.update(
        job1, "IN_PROGRESS", status_details={"step": "2"}, expected_version=2, include_job_execution_state=True
    )
    assert progressed.execution_state.version_number == 3
    assert d.update(job2, "SUCCEEDED", status_details={"result": "ok"}, include_job_execution_state=True)

    jobs = (job1, job2, job3)
    before_executions = {job: _execution_view(d.describe(job)) for job in jobs}
    before_pending = _pending_view(d.get_pending())
    before_next = _execution_view(d.describe("$next"))
    before_jobs = {job: _job_view(iot, job) for job in jobs}
    assert before_executions[job1]["status"] == "IN_PROGRESS" and before_executions[job1]["version_number"] == 3
    assert before_executions[job2]["status"] == "SUCCEEDED" and before_executions[job2]["version_number"] == 2
    assert before_executions[job3]["status"] == "QUEUED" and before_executions[job3]["version_number"] == 1
    assert before_jobs[job2]["status"] == "COMPLETED"

    # The last writes come right before the stop: a reply must never precede the commit.
    job4 = svc.create_job(thing, {"n": 4})
    late = d.update(job3, "IN_PROGRESS", include_job_execution_state=True)
    assert late.execution_state.version_number == 2

    broker = _the_broker(svc)
    with ExitWatch(broker) as watch:
        if stop == "kill -9":
            svc.kill9()
        else:
            assert svc.stop() == 0, svc.log_text()
        assert watch.wait(BROKER_EXIT_TIMEOUT), f"Mosquitto {broker} outlived the service ({process_state(broker)})"
    d.stop()
    svc.start()  # same state dir, same ports

    after = device(thing, service=svc)
    assert {job: _execution_view(after.describe(job)) for job in (job1, job2)} == {
        job: before_executions[job] for job in (job1, job2)
    }
    third = _execution_view(after.describe(job3))
    assert (third["status"], third["version_number"]) == ("IN_PROGRESS", 2)
    assert third["queued_at"] == before_executions[job3]["queued_at"] and third["started_at"] is not None
    pending = _pending_view(after.get_pending())
    assert [row[0] for row in pending["in_progress"]] == [job1, job3]
    assert pending["in_progress"][0] == before_pending["in_progress"][0]
    assert [row[:3] for row in pending["queued"]] == [(job4, 1, 1)]
    assert _execution_view(after.describe("$next")) == before_next
    assert {job: _job_view(iot, job) for job in (job1, job2)} == {job: before_jobs[job] for job in (job1, job2)}
    details = iot.describe_job(jobId=job3)["job"]["jobProcessDetails"]
    assert (details["numberOfQueuedThings"], details["numberOfInProgressThings"]) == (0, 1)
    assert iot.describe_job(jobId=job4)["job"]["status"] == "IN_PROGRESS"
    wait_job_gone(iot, gone)  # its DELETION_IN_PROGRESS (if any left) ends after the restart too
    assert after.rejected("describe", gone).code == "ResourceNotFound"

    # And the service carries on from there: versions continue, events flow, new jobs queue behind.
    finished = after.update(job1, "SUCCEEDED", expected_version=3, include_job_execution_state=True)
    assert finished.execution_state.version_number == 4
    changed = after.next_event(JOBS_CHANGED)
    assert {k: [s.job_id for s in v] for k, v in changed.jobs.items()} == {"IN_PROGRESS": [job3], "QUEUED": [job4]}
    nxt = after.next_event(NEXT_CHANGED).execution
    assert (nxt.job_id, nxt.status, nxt.version_number) == (job3, "IN_PROGRESS", 2)
    job5 = svc.create_job(thing, {"n": 5})
    changed = after.next_event(JOBS_CHANGED)
    assert [s.job_id for s in changed.jobs["QUEUED"]] == [job4, job5]
    assert iot.describe_job(jobId=job1)["job"]["status"] == "COMPLETED"


def test_kill_9_takes_the_broker_down_and_the_ports_are_reusable(
    service_factory: Callable[[], ServiceProcess], device: Callable[..., Device]
) -> None:
    svc = service_factory()
    broker = _the_broker(svc)
    with ExitWatch(broker) as watch:
        svc.kill9()
        assert watch.wait(BROKER_EXIT_TIMEOUT), (
            f"Mosquitto {broker} is still running {BROKER_EXIT_TIMEOUT} s after kill -9 of its service "
            f"(state {process_state(broker)})"
        )
    assert svc.broker_pids() == []
    # Nothing listens on the device port any more.
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", svc.mqtt_port))

    # A new service starts on the same state dir and ports, with a new broker, and devices connect.
    svc.start()
    assert _the_broker(svc) != broker
    d = device(service=svc)
    assert d.get_pending().queued_jobs == []


def test_a_connected_device_rides_out_a_kill_9_and_restart(
    service_factory: Callable[[], ServiceProcess], device: Callable[..., Device]
) -> None:
    """The device keeps its SDK client across the outage: it reconnects by itself, its streams are
    re-established, its state is intact, and events flow again."""
    svc = service_factory()
    d = device(service=svc, min_reconnect_delay_ms=100, max_reconnect_delay_ms=500)
    job = svc.create_job(d.thing, {"n": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    assert d.start_next().execution.version_number == 2

    broker = _the_broker(svc)
    with ExitWatch(broker) as watch:
        svc.kill9()
        assert watch.wait(BROKER_EXIT_TIMEOUT), f"Mosquitto {broker} outlived the service"
    d.wait_lifecycle("disconnected")
    svc.start()
    d.wait_lifecycle("connected")
    d.wait_streams("SUBSCRIPTION_ESTABLISHED")

    described = d.describe(job)
    assert described.execution.status == "IN_PROGRESS" and described.execution.version_number == 2
    job2 = svc.create_job(d.thing, {"n": 2})
    changed = d.next_event(JOBS_CHANGED)
    assert {k: [s.job_id for s in v] for k, v in changed.jobs.items()} == {"IN_PROGRESS": [job], "QUEUED": [job2]}
    d.update(job, "SUCCEEDED")
    assert d.next_event(NEXT_CHANGED).execution.job_id == job2


def test_a_second_service_on_the_same_state_dir_is_refused(
    service_factory: Callable[[], ServiceProcess], device: Callable[..., Device]
) -> None:
    svc = service_factory()
    broker = _the_broker(svc)
    second = ServiceProcess(svc.state_dir, free_port(), free_port(), svc.log_path.with_name("second.log"))
    result = subprocess.run(second.command(), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "already runs" in result.stderr and READY_PREFIX not in result.stdout
    # The first one is undisturbed: same broker, same state, still serving.
    assert svc.process is not None and svc.process.poll() is None
    assert svc.broker_pids() == [broker]
    d = device(service=svc)
    job = svc.create_job(d.thing, {"n": 1})
    assert d.next_event(NEXT_CHANGED).execution.job_id == job
