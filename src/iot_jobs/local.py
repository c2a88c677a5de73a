"""``--local``: find the iot-jobs-local running on a state directory, or start one for this session.

Local mode is configuration only: it yields an endpoint, a CA, a device certificate, a control-plane
URL and credentials. Nothing else in the console knows which service it talks to.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from iot_jobs_local.broker.children import die_with_parent
from iot_jobs_local.broker.process import free_port
from iot_jobs_local.cli import provision
from iot_jobs_local.service import DEFAULT_HTTP_PORT, DEFAULT_MQTT_PORT
from iot_jobs_local.state_dir import RunInfo, StateDir, default_state_dir

from .errors import IotJobsError

DEFAULT_THING = "iot-jobs-sample-thing"


def _port_or_free(preferred: int) -> int:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        return free_port()


@contextlib.contextmanager
def local_service(state_dir: Path | None, start_timeout: float = 20.0) -> Iterator[tuple[StateDir, RunInfo]]:
    """Yield the running service's info; start one (stopped on exit) if none runs."""
    state = StateDir((state_dir or default_state_dir()).expanduser().resolve())
    info = state.read_run_info()
    if info is not None:
        yield state, info
        return
    state.create()
    log_path = state.root / "service.log"
    command = [
        sys.executable,
        "-m",
        "iot_jobs_local",
        "--state-dir",
        str(state.root),
        "serve",
        "--mqtt-port",
        str(_port_or_free(DEFAULT_MQTT_PORT)),
        "--http-port",
        str(_port_or_free(DEFAULT_HTTP_PORT)),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent
        )
    try:
        deadline = time.monotonic() + start_timeout
        while (info := state.read_run_info()) is None or info.pid != process.pid:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                raise IotJobsError("iot-jobs-local failed to start:\n  " + "\n  ".join(tail), "LocalServiceFailed")
            if time.monotonic() > deadline:
                raise IotJobsError(f"iot-jobs-local did not start within {start_timeout:g} s (log: {log_path})")
            time.sleep(0.05)  # polling a child's readiness file
        yield state, info
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def device_files(state: StateDir, info: RunInfo, thing_name: str) -> tuple[Path, Path]:
    """Register the thing locally and issue its certificate (idempotent)."""
    return provision(state, thing_name, info.region, info.account)
