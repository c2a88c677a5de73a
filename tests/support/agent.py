"""The real ``iot-jobs-agent`` process (``sys.executable -m iot_jobs_agent``) and its handler directory.

:class:`AgentProcess` starts the agent for one thing of a :class:`ServiceProcess`, copies its log
(stderr) line by line into a file and a queue, and lets a test wait for a log line matching a
pattern (``wait_log``): the agent logs every decision, e.g. ``step 2/3 b started pid 123``.
:func:`handler_dir` makes a private directory (mode 700) and :func:`write_handler` a handler in it.
"""

from __future__ import annotations

import os
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

AGENT_START_TIMEOUT = 20.0


def handler_dir(base: Path) -> Path:
    directory = base / "handlers"
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    return directory


def write_handler(directory: Path, name: str, body: str, mode: int = 0o700) -> Path:
    """A ``/bin/sh`` handler script ``name`` with ``body``."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


class AgentProcess:
    def __init__(
        self,
        service: ServiceProcess,
        thing: str,
        handlers: Path,
        log_path: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self.thing = thing
        self.handlers = handlers
        self.log_path = log_path
        self.extra = extra
        self.env = env
        self.lines: queue.Queue[str] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def command(self) -> list[str]:
        cert, key = self.service.device_files(self.thing)
        return [
            sys.executable,
            "-m",
            "iot_jobs_agent",
            "--endpoint",
            "localhost",
            "--port",
            str(self.service.mqtt_port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--ca_file",
            str(self.service.ca_path),
            "--thing_name",
            self.thing,
            "--handlers",
            str(self.handlers),
            *self.extra,
        ]

    def start(self, ready: bool = True) -> AgentProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        env.pop("IOT_JOBS_LOCAL", None)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = copy_lines(self.process, self.log_path, self.lines)
        if ready:
            self.wait_log(r"step 4: |step 2 \(start-up\)", AGENT_START_TIMEOUT)
        return self

    def wait_log(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first log line from now on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise AssertionError(
                    f"agent: no log line matching {pattern!r} within {timeout} s:\n{self.log_text()}"
                ) from None
            if found := compiled.search(line):
                return found
            if line == "" and self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"agent exited ({self.process.returncode}) before {pattern!r}:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no agent log)"

    def stop(self, timeout: float = 15.0) -> int | None:
        process = self.process
        if process is None:
            return None
        terminate(process, timeout)
        if self._reader is not None:
            self._reader.join(5)
        return process.returncode

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        if self._reader is not None:
            self._reader.join(5)


def step(name: str, handler: str, *args: str, **extra: Any) -> dict[str, Any]:
    """A schema 1.0 runHandler step."""
    return {"action": {"name": name, "type": "runHandler", "input": {"handler": handler, "args": list(args)}, **extra}}


def execution(service: ServiceProcess, job_id: str, thing: str) -> dict[str, Any]:
    """DescribeJobExecution through the control plane."""
    return dict(service.iot().describe_job_execution(jobId=job_id, thingName=thing)["execution"])


def wait_final(agent: AgentProcess, job_id: str, status: str, timeout: float = 20.0) -> None:
    """Until the agent logs that the service accepted its final ``status`` for ``job_id``."""
    agent.wait_log(rf"{job_id}: reported {status}$", timeout)
