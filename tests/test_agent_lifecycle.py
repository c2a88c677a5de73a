"""The agent over time: cancellation, step timeouts, its own crash, a broker restart, two devices."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from support.agent import AgentProcess, execution, handler_dir, step, wait_final, write_handler
from support.common import unique
from support.processes import ExitWatch
from support.service import ServiceProcess

WAIT = 20.0


def started_pid(proc: AgentProcess, job_id: str) -> int:
    return int(proc.wait_log(rf"{job_id}: step \S+ \S+ started pid (\d+)", WAIT).group(1))


@pytest.mark.parametrize("how", ["cancel-job-execution", "cancel-job"])
def test_force_cancel_stops_the_running_handler(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path, how: str
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "hang.sh", "exec sleep 600")
    proc = agent(thing, handlers=handlers)
    job_id = service.create_job(thing, {"version": "1.0", "steps": [step("hang", "hang.sh")]})
    pid = started_pid(proc, job_id)
    row = service.execution_row(job_id, thing)
    assert row is not None and row["step_timeout_minutes"] == 61  # the service's timer: --step-timeout 3600 s + 1 min
    with ExitWatch(pid) as watch:
        if how == "cancel-job":
            service.iot().cancel_job(jobId=job_id, force=True)
        else:
            service.iot().cancel_job_execution(jobId=job_id, thingName=thing, force=True)
        assert watch.wait(WAIT), "the handler still runs after the cancellation"
    proc.wait_log(rf"{job_id}: stopped", WAIT)
    found = execution(service, job_id, thing)
    assert found["status"] == "CANCELED"
    assert "reason" not in found.get("statusDetails", {}).get("detailsMap", {})


def test_step_timeout_kills_an_overrunning_handler(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    # Ignores SIGTERM (and so does its sleep): only the SIGKILL after the grace period ends it.
    write_handler(handlers, "stubborn.sh", "trap '' TERM; sleep 600")
    proc = agent(thing, "--step-timeout", "1", "--grace", "0.5", handlers=handlers)
    job_id = service.create_job(thing, {"version": "1.0", "steps": [step("hang", "stubborn.sh")]})
    pid = started_pid(proc, job_id)
    with ExitWatch(pid) as watch:
        wait_final(proc, job_id, "FAILED")
        assert watch.wait(5)
    details = execution(service, job_id, thing)["statusDetails"]["detailsMap"]
    assert details["reason"] == "step 1/1 hang timed out after 1 s and was stopped"
    assert details["signal"] == "SIGKILL"
    # A document's timeoutSeconds wins over the flag; a handler that honours SIGTERM ends at once.
    write_handler(handlers, "polite.sh", "exec sleep 600")
    job_id = service.create_job(thing, {"version": "1.0", "steps": [step("wait", "polite.sh", timeoutSeconds=0.5)]})
    wait_final(proc, job_id, "FAILED")
    details = execution(service, job_id, thing)["statusDetails"]["detailsMap"]
    assert details == {
        "step": "1/1 wait",
        "reason": "step 1/1 wait timed out after 0.5 s and was stopped",
        "signal": "SIGTERM",
    }


@pytest.mark.parametrize("safe", [False, True])
def test_kill9_mid_job_then_restart_follows_the_policy(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path, safe: bool
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    runs = tmp_path / "runs"
    # The first run hangs (the agent dies under it); a second run finishes.
    write_handler(
        handlers, "once.sh", f'echo run >> "{runs}"; [ "$(wc -l < "{runs}")" -gt 1 ] && exit 0; exec sleep 600'
    )
    document: dict[str, object] = {"version": "1.0", "steps": [step("work", "once.sh")]}
    if safe:
        document["safeToRepeat"] = "true"
    first = agent(thing, handlers=handlers)
    job_id = service.create_job(thing, document)
    orphan = started_pid(first, job_id)
    first.kill9()
    try:
        second = agent(thing, handlers=handlers, ready=False)
        if safe:
            second.wait_log(rf"{job_id}: was IN_PROGRESS before this agent started; safeToRepeat", WAIT)
            wait_final(second, job_id, "SUCCEEDED")
            assert runs.read_text().split() == ["run", "run"]
        else:
            wait_final(second, job_id, "FAILED")
            assert execution(service, job_id, thing)["statusDetails"]["detailsMap"] == {"reason": "agent restarted"}
            assert runs.read_text().split() == ["run"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)  # the first agent's handler, orphaned by kill -9


def test_broker_restart_mid_job(
    service_factory: Callable[..., ServiceProcess], agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    private = service_factory()
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    runs = tmp_path / "runs"
    write_handler(handlers, "gated.sh", f'echo run >> "{runs}"; read line < "{gate}"')
    write_handler(handlers, "after.sh", "exit 0")
    proc = agent(thing, service=private, handlers=handlers)
    job_id = private.create_job(
        thing, {"version": "1.0", "steps": [step("gated", "gated.sh"), step("after", "after.sh")]}
    )
    started_pid(proc, job_id)
    private.restart()
    proc.wait_log(r"step 3: reconnected; re-reading the pending set", 30)
    proc.wait_log(r"step 2 \(after reconnecting\): 1 pending", WAIT)
    with open(gate, "w") as fifo:
        fifo.write("go\n")
    wait_final(proc, job_id, "SUCCEEDED", 30)
    assert runs.read_text().split() == ["run"]  # never run twice
    assert execution(private, job_id, thing)["status"] == "SUCCEEDED"


def test_two_agents_on_two_things(service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    handlers = handler_dir(tmp_path)
    seen = tmp_path / "seen"
    write_handler(handlers, "who.sh", f'echo "$IOT_JOBS_THING_NAME $IOT_JOBS_JOB_ID" >> "{seen}"')
    things = [unique("agent-a"), unique("agent-b")]
    procs = [agent(t, handlers=handlers) for t in things]
    jobs = [service.create_job(t, {"version": "1.0", "steps": [step("who", "who.sh")]}) for t in things]
    shared = service.create_job(things, {"version": "1.0", "steps": [step("who", "who.sh")]})
    for proc, job_id in zip(procs, jobs, strict=True):
        wait_final(proc, job_id, "SUCCEEDED")
        wait_final(proc, shared, "SUCCEEDED")
    assert sorted(seen.read_text().splitlines()) == sorted(
        [f"{t} {j}" for t, j in zip(things, jobs, strict=True)] + [f"{t} {shared}" for t in things]
    )
