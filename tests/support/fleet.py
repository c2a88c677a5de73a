"""The real ``iot-jobs-fleet`` process (``sys.executable -m iot_jobs_fleet``) against a test service.

:class:`FleetProcess` runs it in local mode on a :class:`ServiceProcess`'s state directory (the
fleet finds the service through its ``service.json``, as the console does), copies its stderr into
a file and a queue, and lets a test wait for a line (``wait_line``). :func:`wait_job` polls
DescribeJob until the job reaches a status, with a deadline. :func:`executions` reads every
execution of a job (retries included) from the service's database.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from iot_jobs_local.testing.service import terminate
from support.processes import copy_lines
from support.service import ServiceProcess

CONNECT_TIMEOUT = 20.0


def fleet_command(service: ServiceProcess, fleet_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "iot_jobs_fleet",
        "--state-dir",
        str(service.state_dir),
        "--fleet-dir",
        str(fleet_dir),
        *args,
    ]


def run_fleet(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``iot-jobs-fleet ARGS`` to its end (usage errors, --print-assignment)."""
    return subprocess.run(
        [sys.executable, "-m", "iot_jobs_fleet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assignment(*args: str) -> dict[str, str]:
    """thing -> share name, as ``--print-assignment`` prints it for these flags."""
    result = run_fleet(*args, "--print-assignment")
    assert result.returncode == 0, result.stderr
    return dict(line.split("\t") for line in result.stdout.splitlines())


class FleetProcess:
    def __init__(
        self, service: ServiceProcess, fleet_dir: Path, log_path: Path, *args: str, stdout: Path | None = None
    ) -> None:
        """``stdout``: a file for the fleet's standard output (the --watch view's lines), else discarded."""
        self.command = fleet_command(service, fleet_dir, *args)
        self.log_path = log_path
        self.stdout_path = stdout
        self.lines: queue.Queue[str] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> FleetProcess:
        out = open(self.stdout_path, "w", encoding="utf-8") if self.stdout_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, text=True
            )
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own copy
        self._reader = copy_lines(self.process, self.log_path, self.lines)
        return self

    def wait_line(self, pattern: str, timeout: float = CONNECT_TIMEOUT) -> re.Match[str]:
        """The first stderr line from now on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"fleet: no line matching {pattern!r} within {timeout} s:\n{self.log()}") from None
            if found := compiled.search(line):
                return found
            if line == "" and self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"fleet exited ({self.process.returncode}) before {pattern!r}:\n{self.log()}")

    def connected(self, timeout: float = CONNECT_TIMEOUT) -> None:
        self.wait_line(r"all \d+ devices connected", timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no fleet log)"

    def stop(self, timeout: float = 15.0) -> str:
        """SIGTERM (the fleet disconnects its devices and prints a last status line); its log."""
        if self.process is not None:
            terminate(self.process, timeout)
        if self._reader is not None:
            self._reader.join(5)
        return self.log()


def wait_job(iot: Any, job_id: str, statuses: set[str], timeout: float = 20.0) -> dict[str, Any]:
    """DescribeJob until the job's status is one of ``statuses`` (polled: the control plane has no event)."""
    deadline = time.monotonic() + timeout
    while True:
        job = iot.describe_job(jobId=job_id)["job"]
        if job["status"] in statuses:
            return dict(job)
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s: {job}"
        time.sleep(0.1)  # polling DescribeJob


def executions(service: ServiceProcess, job_id: str) -> list[dict[str, Any]]:
    """Every execution of the job (each retry is one), oldest first per thing."""
    return service.query("SELECT * FROM executions WHERE job_id = ? ORDER BY thing_name, execution_number", job_id)
