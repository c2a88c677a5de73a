"""The agent refuses what it must: invalid documents, unsafe handlers, runCommand unless allowed."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.agent import AgentProcess, execution, handler_dir, step, wait_final, write_handler
from support.common import unique
from support.service import ServiceProcess


@pytest.fixture
def setup(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> tuple[str, Path, AgentProcess, Path]:
    thing = unique("agent")
    handlers = handler_dir(tmp_path)
    marker = tmp_path / "ran"
    write_handler(handlers, "ok.sh", f'touch "{marker}"')
    return thing, handlers, agent(thing, handlers=handlers), marker


def rejected_reason(service: ServiceProcess, proc: AgentProcess, thing: str, document: Any) -> str:
    job_id = service.create_job(thing, document)
    wait_final(proc, job_id, "REJECTED")
    found = execution(service, job_id, thing)
    assert found["status"] == "REJECTED"
    return str(found["statusDetails"]["detailsMap"]["reason"])


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        # (A document that is not a JSON object never reaches a device: CreateJob refuses it.)
        ({"version": "1.0", "steps": [{"action": {"name": "a", "type": "runHandler"}}]}, "input must be an object"),
        ({"version": "1.0", "steps": "install"}, "steps must be a non-empty list"),
        ({"version": 1, "steps": []}, 'version must be the string "1.0"'),
        ({"version": "1.0", "steps": [step("a", "ok.sh", ignoreStepFailure=3)]}, "ignoreStepFailure must be"),
        (
            {"version": "1.0", "steps": [{"action": {"name": "a", "type": "runScript", "input": {}}}]},
            "type must be runHandler or runCommand",
        ),
        ({"version": "1.0", "steps": [step("a", "missing.sh")]}, "handler 'missing.sh' not found"),
        ({"version": "1.0", "steps": [step("a", "../ok.sh")]}, "must be a file name in the handler directory"),
        (
            {
                "version": "1.0",
                "steps": [
                    {"action": {"name": "a", "type": "runHandler", "input": {"handler": "ok.sh", "path": "/tmp"}}}
                ],
            },
            "is not the handler directory",
        ),
        ({"args": ["x"]}, "operation is required"),
    ],
    ids=[
        "not-object",
        "wrong-type",
        "version",
        "flag-type",
        "unknown-type",
        "missing",
        "dotdot",
        "path-escape",
        "old-no-op",
    ],
)
def test_invalid_documents_are_rejected_with_a_reason(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path], document: Any, reason: str
) -> None:
    thing, _handlers, proc, marker = setup
    assert reason in rejected_reason(service, proc, thing, document)
    assert not marker.exists()


def test_symlink_out_of_the_directory_is_refused(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path], tmp_path: Path
) -> None:
    thing, handlers, proc, marker = setup
    outside = write_handler(tmp_path, "outside.sh", f'touch "{marker}"')
    (handlers / "link.sh").symlink_to(outside)
    assert "symlink out of the handler directory" in rejected_reason(
        service, proc, thing, {"version": "1.0", "steps": [step("a", "link.sh")]}
    )
    assert not marker.exists()


@pytest.mark.parametrize("mode", [0o720, 0o702, 0o777])
def test_a_loose_handler_never_runs(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path], mode: int
) -> None:
    thing, handlers, proc, marker = setup
    loose = write_handler(handlers, "loose.sh", f'touch "{marker}"')
    loose.chmod(mode)
    reason = rejected_reason(service, proc, thing, {"version": "1.0", "steps": [step("a", "loose.sh")]})
    assert "writable by group or others" in reason
    assert not marker.exists()


def test_a_loose_directory_refuses_every_handler(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path]
) -> None:
    thing, handlers, proc, marker = setup
    handlers.chmod(0o777)
    try:
        reason = rejected_reason(service, proc, thing, {"version": "1.0", "steps": [step("a", "ok.sh")]})
    finally:
        handlers.chmod(0o700)
    assert "handler directory" in reason and "writable by group or others" in reason
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_handler_owned_by_another_user_never_runs(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path]
) -> None:
    thing, handlers, proc, marker = setup
    os.chown(handlers / "ok.sh", 65534, -1)
    reason = rejected_reason(service, proc, thing, {"version": "1.0", "steps": [step("a", "ok.sh")]})
    assert "is owned by uid 65534" in reason
    assert not marker.exists()


def run_command(command: str) -> dict[str, Any]:
    return {
        "version": "1.0",
        "includeStdOut": "true",
        "steps": [{"action": {"name": "cmd", "type": "runCommand", "input": {"command": command}}}],
    }


def test_run_command_is_refused_unless_enabled(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent")
    marker = tmp_path / "made"
    refusing = agent(thing, handlers=handler_dir(tmp_path))
    reason = rejected_reason(service, refusing, thing, run_command(f"touch,{marker}"))
    assert "--allow-run-command" in reason
    assert not marker.exists()
    refusing.stop()
    allowing = agent(thing, "--allow-run-command", handlers=handler_dir(tmp_path))
    job_id = service.create_job(thing, run_command(f"touch,{marker}"))
    wait_final(allowing, job_id, "SUCCEEDED")
    assert marker.exists()
    # Never a shell: the semicolon is an argument of echo.
    job_id = service.create_job(thing, run_command(f"echo,hi; rm {marker}"))
    wait_final(allowing, job_id, "SUCCEEDED")
    assert marker.exists()
    assert execution(service, job_id, thing)["statusDetails"]["detailsMap"]["stdout"] == f"hi; rm {marker}"


def test_run_as_user_not_allowed_fails_the_step(
    service: ServiceProcess, setup: tuple[str, Path, AgentProcess, Path]
) -> None:
    thing, _handlers, proc, marker = setup
    job_id = service.create_job(thing, {"version": "1.0", "steps": [step("a", "ok.sh", runAsUser="nobody")]})
    wait_final(proc, job_id, "FAILED")
    assert (
        "runAsUser 'nobody' is not allowed"
        in execution(service, job_id, thing)["statusDetails"]["detailsMap"]["reason"]
    )
    assert not marker.exists()


@pytest.fixture
def shared_handlers() -> Iterator[Path]:
    """A handler directory another user can reach (pytest's own temporary directories are private to
    their owner), still safe by the agent's rules: owned by us, writable by nobody else."""
    base = Path(tempfile.mkdtemp(prefix="iot-jobs-agent-runas-"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(shutil.which("sudo") is None or os.geteuid() != 0, reason="needs sudo, and root to use it unasked")
def test_run_as_an_allowed_user_runs_the_handler_as_that_user_through_sudo(
    service: ServiceProcess, agent: Callable[..., AgentProcess], shared_handlers: Path
) -> None:
    thing = unique("runas")
    write_handler(shared_handlers, "whoami.sh", "id -un", mode=0o755)
    proc = agent(thing, "--run-as-user", "nobody", handlers=shared_handlers)
    document = {"version": "1.0", "includeStdOut": True, "steps": [step("who", "whoami.sh", runAsUser="nobody")]}
    job_id = service.create_job(thing, document)
    wait_final(proc, job_id, "SUCCEEDED")
    assert execution(service, job_id, thing)["statusDetails"]["detailsMap"]["stdout"].strip() == "nobody"
    # The same step as a user the configuration does not name is refused, never run as ourselves.
    other = service.create_job(thing, {**document, "steps": [step("who", "whoami.sh", runAsUser="daemon")]})
    wait_final(proc, other, "FAILED")
    details = execution(service, other, thing)["statusDetails"]["detailsMap"]
    assert "runAsUser 'daemon' is not allowed" in details["reason"] and "stdout" not in details
