"""The shipped handlers run the AWS managed templates' documents, in the dry-run mode the tests and a fleet use."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.agent import AgentProcess, execution, wait_final
from support.common import unique
from support.processes import ExitWatch
from support.service import ServiceProcess

WAIT = 20.0


def managed(name: str, handler: str, *args: str) -> dict[str, Any]:
    """The managed template's document (reference §1.2) with its parameters substituted, plus includeStdOut."""
    action: dict[str, Any] = {
        "name": name,
        "type": "runHandler",
        "input": {"handler": handler, "path": ""},
        "runAsUser": "",
    }
    if args:
        action["input"] = {"handler": handler, "args": list(args), "path": ""}
    return {"version": "1.0", "includeStdOut": "true", "steps": [{"action": action}]}


def install(tmp_path: Path) -> Path:
    handlers = tmp_path / "shipped-handlers"
    subprocess.run(
        [sys.executable, "-m", "iot_jobs_agent", "--install-handlers", "--handlers", str(handlers)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return handlers


def wait_for_file(path: Path, timeout: float) -> None:
    """Until ``path`` exists (the handler writes it; nothing else tells when)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {timeout} s")
        time.sleep(0.02)  # polling a condition with a deadline


@pytest.mark.parametrize("down", ["kill9", "shutdown"])
def test_aws_reboot_runs_in_two_phases_across_the_agent_restart(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path, down: str
) -> None:
    """AWS-Reboot from the managed template, dry run: run 1 writes its lock and waits for the reboot;
    the agent dies under it (the reboot); the next agent finds the job IN_PROGRESS, runs reboot.sh
    again because the handler says it is safe to repeat, and run 2 reports the reboot done.
    ``shutdown``: as a system shutdown does, SIGTERM reaches the handler and the agent together."""
    handlers = install(tmp_path)
    thing = unique("agent")
    first = agent(thing, "--dry-run", "--grace", "0.5", handlers=handlers)
    job_id = unique("reboot")
    service.iot().create_job(
        jobId=job_id,
        targets=[service.thing_arn(thing)],
        jobTemplateArn=f"arn:aws:iot:{service.region}::jobtemplate/AWS-Reboot:1.0",
    )
    pid = int(first.wait_log(rf"{job_id}: step 1/1 Reboot started pid (\d+)", WAIT).group(1))
    lock = Path(f"/var/tmp/iot-jobs-reboot-{thing}-{job_id}")
    try:
        wait_for_file(lock, WAIT)
        assert execution(service, job_id, thing)["status"] == "IN_PROGRESS"  # waiting for the reboot
        # The reboot: the agent and its handler go down together.
        with ExitWatch(pid) as watch:
            if down == "kill9":
                first.kill9()
                os.killpg(pid, signal.SIGKILL)
            else:
                os.killpg(pid, signal.SIGTERM)  # ignored while it waits for the reboot
                assert first.stop() == 0
            assert watch.wait(WAIT)
        assert execution(service, job_id, thing)["status"] == "IN_PROGRESS"
        second = agent(thing, "--dry-run", handlers=handlers, ready=False)
        second.wait_log(rf"{job_id}: was IN_PROGRESS before this agent started; its handlers are safe to repeat", WAIT)
        wait_final(second, job_id, "SUCCEEDED")
        details = execution(service, job_id, thing)["statusDetails"]["detailsMap"]
        assert details == {"step": "1/1 Reboot", "reason": "every step succeeded"}
        assert not lock.exists()
    finally:
        lock.unlink(missing_ok=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_managed_template_documents_in_dry_run(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    handlers = tmp_path / "shipped-handlers"
    installed = subprocess.run(
        [sys.executable, "-m", "iot_jobs_agent", "--install-handlers", "--handlers", str(handlers)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "installed" in installed.stdout and (handlers / "reboot.sh").stat().st_mode & 0o777 == 0o700
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    thing = unique("agent")
    proc = agent(thing, "--dry-run", "--allow-run-command", "--download-dir", str(downloads), handlers=handlers)
    cases = [
        (managed("Download-File", "download-file.sh", "http://example.com/a.bin", str(downloads / "a.bin")), "a.bin"),
        (managed("Install-Application", "install-packages.sh", "pkg-one pkg-two"), "install -y pkg-one pkg-two"),
        (managed("Remove-Application", "remove-packages.sh", "pkg-one"), "pkg-one"),
        (managed("Start-Application", "start-services.sh", "svc-a svc-b"), "svc-b"),
        (managed("Stop-Application", "stop-services.sh", "svc-a"), "svc-a"),
        (managed("Restart-Application", "restart-services.sh", "svc-a"), "svc-a"),
        (
            {
                "version": "1.0",
                "includeStdOut": "true",
                "steps": [
                    {
                        "action": {
                            "name": "Run-Command",
                            "type": "runCommand",
                            "input": {"command": "echo,ok"},
                            "runAsUser": "",
                        }
                    }
                ],
            },
            "ok",
        ),
    ]
    for document, expected in cases:
        job_id = service.create_job(thing, document)
        wait_final(proc, job_id, "SUCCEEDED")
        stdout = execution(service, job_id, thing)["statusDetails"]["detailsMap"]["stdout"]
        assert expected in stdout, (json.dumps(document), stdout)
        assert stdout.startswith("dry run") or document["steps"][0]["action"]["type"] == "runCommand"
    assert not (downloads / "a.bin").exists()
    outside = service.create_job(
        thing, managed("Download-File", "download-file.sh", "http://example.com/a.bin", str(tmp_path / "a.bin"))
    )
    wait_final(proc, outside, "FAILED")
    details = execution(service, outside, thing)["statusDetails"]["detailsMap"]
    assert details["exitCode"] == "2" and "is not inside" in details["stderr"]
