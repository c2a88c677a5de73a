"""``--local``: find the iot-jobs-local running on a state directory, or start one in the background.

Local mode is configuration only: it yields an endpoint, a CA, a device certificate, a control-plane
URL and credentials. Nothing else in the console knows which service it talks to.

A service this starts is not the console's: it runs detached (``iot-jobs-local start``: its own
session, its log in the state directory) and outlives the console, so other consoles and devices
using it keep their broker when this one quits. ``iot-jobs-local stop`` stops it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from iot_jobs_local.state_dir import DEFAULT_HTTP_PORT, DEFAULT_MQTT_PORT, RunInfo, StateDir, default_state_dir

from .errors import IotJobsError

DEFAULT_THING = "iot-jobs-sample-thing"


def _port_or_free(preferred: int) -> int:
    """``preferred`` if nothing listens on it, else 0 (the service picks a free one and reports it)."""
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        return 0


@contextlib.contextmanager
def local_service(state_dir: Path | None, start_timeout: float = 30.0) -> Iterator[tuple[StateDir, RunInfo]]:
    """Yield the running service's info; start one in the background if none runs (left running)."""
    state = StateDir((state_dir or default_state_dir()).expanduser().resolve())
    info = state.read_run_info()
    if info is None:
        info = start_detached(state, start_timeout)
    yield state, info


def start_detached(state: StateDir, timeout: float) -> RunInfo:
    """``iot-jobs-local start`` as a process of its own: it returns once the service is ready, and
    exits, so the service is not our child (no zombie, no Ctrl-C from our terminal, no death with us).

    On the ports this state directory used last (where clients may be configured for them), else on
    the defaults; on free ones where those are taken.
    """
    mqtt_port, http_port = state.stored_ports() or (DEFAULT_MQTT_PORT, DEFAULT_HTTP_PORT)
    command = [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state.root), "start"]
    command += ["--mqtt-port", str(_port_or_free(mqtt_port)), "--http-port", str(_port_or_free(http_port))]
    command += ["--timeout", f"{timeout:g}"]
    try:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout + 10, check=False
        )
    except subprocess.TimeoutExpired:
        raise IotJobsError(f"iot-jobs-local did not start within {timeout:g} s (log: {state.log_path})") from None
    info = state.read_run_info()
    if result.returncode != 0 or info is None:
        detail = (result.stderr or result.stdout).strip().removeprefix("iot-jobs-local: ")
        raise IotJobsError(detail or f"iot-jobs-local failed to start (log: {state.log_path})", "LocalServiceFailed")
    return info


def device_files(state: StateDir, info: RunInfo, thing_name: str) -> tuple[Path, Path]:
    """The thing's certificate and key: reused if issued before, else the thing is provisioned.

    Reusing skips boto3, cryptography and a round trip (~0.5-0.8 s of an attach): the service
    registered the certificate when it issued it, and adopts any in ``devices/`` it does not know
    when it starts.
    """
    cert, key = state.device_cert(thing_name), state.device_key(thing_name)
    if cert.is_file() and key.is_file():
        return cert, key
    from iot_jobs_local.cli import provision  # only a new thing needs the registry clients

    return provision(state, thing_name, info.region, info.account)
