"""The real iot-jobs-agent against a real iot-jobs-local: steps, progress, failures, final step."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from support.agent import AgentProcess, execution, handler_dir, step, wait_final, write_handler
from support.common import unique
from support.service import ServiceProcess

WAIT = 20.0


def test_three_steps_succeed_with_progress_as_it_happens(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_handler(handlers, "say.sh", 'echo "said $2"')
    # Blocks until the test opens the fifo: statusDetails can be read while step 2 runs.
    write_handler(handlers, "wait.sh", f'read line < "{gate}"; echo "got $line"')
    proc = agent(thing, handlers=handlers)
    document = {
        "version": "1.0",
        "includeStdOut": "true",
        "steps": [step("download", "say.sh", "one"), step("install", "wait.sh"), step("verify", "say.sh", "three")],
    }
    job_id = service.create_job(thing, document)
    proc.wait_log(rf"{job_id}: step 1/3 download started pid", WAIT)
    proc.wait_log(rf"{job_id}: step 2/3 install started pid", WAIT)
    running = execution(service, job_id, thing)
    assert running["status"] == "IN_PROGRESS"
    assert running["statusDetails"]["detailsMap"] == {"step": "2/3 install"}
    with open(gate, "w") as fifo:
        fifo.write("go\n")
    proc.wait_log(rf"{job_id}: step 3/3 verify started pid", WAIT)
    wait_final(proc, job_id, "SUCCEEDED")
    proc.wait_log(r"step 4: no queued work", WAIT)
    done = execution(service, job_id, thing)
    assert done["status"] == "SUCCEEDED"
    details = done["statusDetails"]["detailsMap"]
    assert details["step"] == "3/3 verify"
    assert details["reason"] == "every step succeeded"
    assert details["stdout"] == "said one got go said three"


def test_failing_step_fails_the_job_with_step_and_exit_code(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "ok.sh", "exit 0")
    write_handler(handlers, "bad.sh", 'echo "broken: $2" >&2; exit 3')
    marker = tmp_path / "ran-third"
    write_handler(handlers, "third.sh", f'touch "{marker}"')
    proc = agent(thing, handlers=handlers)
    document = {
        "version": "1.0",
        "includeStdOut": True,
        "steps": [step("prepare", "ok.sh"), step("install", "bad.sh", "disk"), step("after", "third.sh")],
    }
    job_id = service.create_job(thing, document)
    wait_final(proc, job_id, "FAILED")
    details = execution(service, job_id, thing)["statusDetails"]["detailsMap"]
    assert execution(service, job_id, thing)["status"] == "FAILED"
    assert details["step"] == "2/3 install"
    assert details["exitCode"] == "3"
    assert details["reason"] == "step 2/3 install exited with status 3"
    assert details["stderr"] == "broken: disk"
    assert not marker.exists()


def test_ignore_step_failure_and_final_step(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    log = tmp_path / "ran"
    write_handler(handlers, "note.sh", f'echo "$2" >> "{log}"')
    write_handler(handlers, "fail.sh", f'echo "fail-$2" >> "{log}"; exit 7')
    proc = agent(thing, handlers=handlers)
    ignored = service.create_job(
        thing,
        {
            "version": "1.0",
            "steps": [step("a", "fail.sh", "1", ignoreStepFailure="true"), step("b", "note.sh", "2")],
            "finalStep": step("cleanup", "note.sh", "final"),
        },
    )
    wait_final(proc, ignored, "SUCCEEDED")
    assert log.read_text().split() == ["fail-1", "2", "final"]
    assert execution(service, ignored, thing)["statusDetails"]["detailsMap"]["step"] == "3/3 cleanup"
    log.unlink()
    failing = service.create_job(
        thing,
        {
            "version": "1.0",
            "steps": [step("a", "fail.sh", "x")],
            "finalStep": step("cleanup", "note.sh", "final"),
        },
    )
    wait_final(proc, failing, "FAILED")
    assert log.read_text().split() == ["fail-x"]  # no finalStep after a failure
    assert execution(service, failing, thing)["statusDetails"]["detailsMap"]["exitCode"] == "7"


def test_old_schema_runs_one_operation(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "echo-args", 'echo "user=[$1] $2 $3"')
    proc = agent(thing, handlers=handlers)
    job_id = service.create_job(thing, {"operation": "echo-args", "args": ["a", "b"], "includeStdOut": "true"})
    wait_final(proc, job_id, "SUCCEEDED")
    assert execution(service, job_id, thing)["statusDetails"]["detailsMap"]["stdout"] == "user=[] a b"
    assert json.loads(service.iot().get_job_document(jobId=job_id)["document"])["operation"] == "echo-args"
