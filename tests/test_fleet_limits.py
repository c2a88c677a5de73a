"""Ready for a fleet's connections: the open-file limit the broker inherits, its max_connections,
and a device count the OS cannot give refused at start in one line."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from iot_jobs_local.broker import limits
from support.service import ServiceProcess


def soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc")


def test_the_broker_may_hold_the_default_fleet(service: ServiceProcess) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    devices = (
        limits.DEFAULT_MAX_DEVICES
        if hard == resource.RLIM_INFINITY
        else min(limits.DEFAULT_MAX_DEVICES, limits.fitting_devices(hard))
    )
    [broker] = service.broker_pids()
    assert soft_open_files(broker) >= limits.needed_fds(devices)
    assert f"max_connections {devices}" in service.broker_conf.read_text()


def test_more_devices_than_the_hard_limit_allows_are_refused_in_one_line(tmp_path: Path) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 10_000_000:
        pytest.skip("no finite open-file hard limit to exceed")
    state = str(tmp_path / "state")
    argv = ["--state-dir", state, "serve", "--mqtt-port", "0", "--http-port", "0", "--max-devices", str(hard)]
    result = subprocess.run(
        [sys.executable, "-m", "iot_jobs_local", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hard limit" in lines[0] and "--max-devices" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
