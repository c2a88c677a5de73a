"""The shipped handlers run the AWS managed templates' documents, in the dry-run mode the tests and a fleet use."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.agent import AgentProcess, execution, wait_final
from support.common import unique
from support.service import ServiceProcess


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
        (managed("Reboot", "reboot.sh"), "dry run: reboot"),
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
