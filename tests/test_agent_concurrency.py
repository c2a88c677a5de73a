"""The agent's process handling and concurrency: chatty handlers, signal deaths, --max-concurrent."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.agent import AgentProcess, execution, handler_dir, step, wait_final, write_handler
from support.common import unique
from support.service import ServiceProcess

WAIT = 20.0


def test_a_chatty_handler_cannot_block_and_a_signal_death_is_a_failure(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    # Megabytes on both streams, interleaved: a reader of one stream at a time would deadlock.
    write_handler(
        handlers,
        "chatty.sh",
        "for i in 1 2 3 4; do head -c 500000 /dev/zero | tr '\\0' a; head -c 500000 /dev/zero | tr '\\0' b >&2; done",
    )
    write_handler(handlers, "suicide.sh", "kill -USR1 $$")
    proc = agent(thing, handlers=handlers)
    chatty = service.create_job(
        thing, {"version": "1.0", "includeStdOut": "true", "steps": [step("talk", "chatty.sh")]}
    )
    wait_final(proc, chatty, "SUCCEEDED")
    details = execution(service, chatty, thing)["statusDetails"]["detailsMap"]
    assert details["stdout"] == "a" * 1024 and details["stderr"] == "b" * 1024
    dying = service.create_job(thing, {"version": "1.0", "steps": [step("die", "suicide.sh")]})
    wait_final(proc, dying, "FAILED")
    details = execution(service, dying, thing)["statusDetails"]["detailsMap"]
    assert details == {"step": "1/1 die", "reason": "step 1/1 die killed by signal SIGUSR1", "signal": "SIGUSR1"}


def test_one_at_a_time_unless_max_concurrent(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    handlers = handler_dir(tmp_path)
    gates = tmp_path / "gates"
    gates.mkdir()
    write_handler(handlers, "gated.sh", f'read line < "{gates}/$IOT_JOBS_JOB_ID"')

    def jobs(thing: str) -> list[str]:
        ids = [unique("job") for _ in range(2)]
        for job_id in ids:
            os.mkfifo(gates / job_id)
        for job_id in ids:
            service.create_job(thing, {"version": "1.0", "steps": [step("gated", "gated.sh")]}, job_id=job_id)
        return ids

    def release(job_id: str) -> None:
        with open(gates / job_id, "w") as fifo:
            fifo.write("go\n")

    single = unique("agent")
    proc = agent(single, handlers=handlers)
    first, second = jobs(single)
    proc.wait_log(rf"{first}: step 1/1 gated started", WAIT)
    assert execution(service, second, single)["status"] == "QUEUED"
    release(first)
    wait_final(proc, first, "SUCCEEDED")
    proc.wait_log(rf"{second}: step 1/1 gated started", WAIT)  # the log is read in order: only after the first
    release(second)
    wait_final(proc, second, "SUCCEEDED")

    double = unique("agent")
    proc = agent(double, "--max-concurrent", "2", handlers=handlers)
    first, second = jobs(double)
    proc.wait_log(rf"({first}|{second}): step 1/1 gated started", WAIT)
    proc.wait_log(rf"({first}|{second}): step 1/1 gated started", WAIT)
    assert {execution(service, j, double)["status"] for j in (first, second)} == {"IN_PROGRESS"}
    release(second)
    release(first)
    wait_final(proc, second, "SUCCEEDED")


def test_a_concurrent_change_is_noticed_through_expected_version(
    service: ServiceProcess, agent: Callable[..., AgentProcess], device: Callable[..., Any], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_handler(handlers, "gated.sh", f'read line < "{gate}"')
    write_handler(handlers, "ok.sh", "exit 0")
    proc = agent(thing, handlers=handlers)
    job_id = service.create_job(thing, {"version": "1.0", "steps": [step("a", "gated.sh"), step("b", "ok.sh")]})
    proc.wait_log(rf"{job_id}: step 1/2 a started", WAIT)
    operator = device(thing)  # another connection of the same thing changes the execution meanwhile
    operator.update(job_id, "IN_PROGRESS", status_details={"operator": "looked"})
    with open(gate, "w") as fifo:
        fifo.write("go\n")
    proc.wait_log(rf"{job_id}: the execution changed concurrently", WAIT)
    wait_final(proc, job_id, "SUCCEEDED")
