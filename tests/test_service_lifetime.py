"""The local service's lifetime: ``start``/``status``/``stop``/``reset``/``logs``, port 0, a
service started by a console outliving it, the clock after a ``--time-scale`` run, ``--log-requests``
and what ``--help`` imports."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from awsiot import iotjobs

from iot_jobs_local.testing import LocalService
from repl_driver import PipedRepl
from support.common import unique
from support.processes import ExitWatch, process_parent, process_state
from support.service import ServiceProcess


def cli(state: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_info(state: Path) -> dict[str, Any]:
    return dict(json.loads((state / "service.json").read_text()))


def stop_quietly(state: Path) -> None:
    """Teardown: whatever a test started in the background on ``state`` is stopped."""
    if (state / "service.json").exists():
        cli(state, "stop")


def test_start_status_stop_reset_logs_on_free_ports(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        started = cli(state, "start", "--mqtt-port", "0", "--http-port", "0")
        assert started.returncode == 0, started.stderr
        info = run_info(state)
        assert info["mqtt_port"] > 0 and info["http_port"] > 0
        # The real ports, everywhere: the start line, service.json, env.
        assert f"mqtts://localhost:{info['mqtt_port']} http://127.0.0.1:{info['http_port']}" in started.stdout
        env = cli(state, "env", "--thing", unique("thing"))
        assert env.returncode == 0, env.stderr
        assert f"export IOT_JOBS_PORT={info['mqtt_port']}" in env.stdout
        assert f"export AWS_ENDPOINT_URL_IOT=http://127.0.0.1:{info['http_port']}" in env.stdout

        # Its own session: not in the process group of whoever started it, and the start command exited.
        pid = info["pid"]
        assert os.getsid(pid) == pid
        assert process_parent(pid) != os.getpid()

        status = cli(state, "status")
        assert status.returncode == 0
        for text in (f"pid {pid}", str(state), str(info["mqtt_port"]), str(info["http_port"]), "uptime:", "clients:"):
            assert text in status.stdout
        as_json = json.loads(cli(state, "status", "--json").stdout)
        assert as_json["running"] is True and as_json["pid"] == pid and as_json["uptime"] >= 0

        again = cli(state, "start")
        assert again.returncode == 0 and "already runs" in again.stderr

        refused = cli(state, "reset")
        assert refused.returncode == 1
        assert "stop it first" in refused.stderr and "Traceback" not in refused.stderr
        assert (state / "jobs.sqlite3").exists()

        assert "iot-jobs-local ready:" in cli(state, "logs").stdout
        assert len(cli(state, "logs", "-n", "2").stdout.splitlines()) == 2

        with ExitWatch(pid) as watch:
            stopped = cli(state, "stop")
            assert stopped.returncode == 0 and f"stopped pid {pid}" in stopped.stdout
            assert watch.wait(10)
        assert not (state / "service.json").exists()
        gone = cli(state, "status")
        assert gone.returncode == 3 and "not running" in gone.stdout
        assert cli(state, "stop").returncode == 0  # nothing to stop is not an error

        # Started again by hand: the same ports as before (ports.json).
        assert cli(state, "start").returncode == 0
        assert (run_info(state)["mqtt_port"], run_info(state)["http_port"]) == (info["mqtt_port"], info["http_port"])
        second = run_info(state)["pid"]
        with ExitWatch(second) as watch:
            reset = cli(state, "reset", "--stop")
            assert reset.returncode == 0, reset.stderr
            assert watch.wait(10)
        for name in ("jobs.sqlite3", "pki", "credentials.json", "devices"):
            assert not (state / name).exists(), name
        assert (state / "ports.json").exists()
    finally:
        stop_quietly(state)


def test_a_service_started_by_a_console_outlives_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(tmp_path / "home")}
    try:
        first = PipedRepl(["--local", "--state-dir", str(state), "--thing", unique("first")], env=env)
        first.send("get-pending-job-executions")
        first.expect("GetPendingJobExecutions Response: ")
        pid = run_info(state)["pid"]
        second = PipedRepl(["--local", "--state-dir", str(state), "--thing", unique("second")], env=env)
        second.send("get-pending-job-executions")
        second.expect("GetPendingJobExecutions Response: ")
        assert run_info(state)["pid"] == pid  # the second console found the first one's service

        assert first.close() == 0
        assert process_state(pid) not in (None, "Z", "X")
        second.send("get-pending-job-executions")  # the second console still has its broker
        second.expect("GetPendingJobExecutions Response: ")
        assert second.close() == 0
        assert cli(state, "status").returncode == 0
    finally:
        stop_quietly(state)


def utc_minute(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")


def test_a_normal_speed_run_after_a_sped_up_one_keeps_the_wall_clock(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "state", 0, 0, tmp_path / "service.log", extra_args=("--time-scale", "100000"))
    svc.start()
    try:
        ports = run_info(svc.state_dir)["mqtt_port"], run_info(svc.state_dir)["http_port"]
        assert (svc.mqtt_port, svc.http_port) == ports and 0 not in ports
        # serve --mqtt-port 0 --http-port 0 announces the ports it really listens on.
        assert f"ready: mqtts://localhost:{svc.mqtt_port} http://127.0.0.1:{svc.http_port} " in svc.log_text()
        thing = unique("clock")
        svc.iot().create_thing(thingName=thing)
        fast = svc.create_job(thing, {"op": "fast"})
        created = svc.iot().describe_job(jobId=fast)["job"]["createdAt"].timestamp()
        assert created > time.time() + 3600  # the premise: the state's clock ran ahead

        svc.stop()
        svc.extra_args = ()  # the same service, at normal speed (on the same ports)
        svc.start()
        assert "ahead of the wall clock" in svc.log_text()
        soon = svc.create_job(thing, {"op": "later"}, schedulingConfig={"startTime": utc_minute(time.time() + 35 * 60)})
        job = svc.iot().describe_job(jobId=soon)["job"]
        assert job["status"] == "SCHEDULED"
        assert abs(job["createdAt"].timestamp() - time.time()) < 60
    finally:
        svc.stop()


def test_log_requests_logs_each_operation_with_outcome_and_duration(tmp_path: Path) -> None:
    with LocalService(tmp_path / "state", extra_args=("--log-requests",)) as svc:
        iot = svc.client("iot")
        iot.list_jobs()
        with contextlib.suppress(iot.exceptions.ResourceNotFoundException):
            iot.describe_job(jobId="no-such-job")
        device = svc.device()
        device.jobs.get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(thing_name=device.thing)).result(
            10
        )
        device.stop()
    log = svc.log_path.read_text()
    assert "http ListJobs -> 200 (" in log
    assert "http DescribeJob -> 404 ResourceNotFoundException (" in log
    assert f"mqtt $aws/things/{device.thing}/jobs/get -> accepted (" in log
    assert " ms)" in log


def test_help_imports_neither_boto3_nor_cryptography() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "iot_jobs_local", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "usage: iot-jobs-local" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    for heavy in ("boto3", "botocore", "cryptography", "iot_jobs_local.service", "asyncio"):
        assert heavy not in imported, heavy
    version = subprocess.run([sys.executable, "-m", "iot_jobs_local", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("iot-jobs-local ")


def test_status_lists_the_connected_devices(tmp_path: Path) -> None:
    with LocalService(tmp_path / "state") as svc:
        device = svc.device()

        def clients() -> list[str]:
            result = cli(svc.state.root, "status", "--json")
            assert result.returncode == 0, result.stderr
            return list(json.loads(result.stdout)["clients"])

        deadline = time.monotonic() + 10
        while device.client_id not in clients():  # service.json follows the broker's log
            assert time.monotonic() < deadline, "status never listed the connected device"
            time.sleep(0.1)
        status = cli(svc.state.root, "status").stdout
        assert f"1 connected: {device.client_id}" in status
        refused = cli(svc.state.root, "reset")
        assert refused.returncode == 1 and "1 device client(s) connected" in refused.stderr
        device.stop()
        deadline = time.monotonic() + 10
        while clients():
            assert time.monotonic() < deadline, "status still lists a disconnected device"
            time.sleep(0.1)


def test_local_service_env_of_a_thing_is_what_the_cli_prints(service: ServiceProcess) -> None:
    thing = unique("env")
    assert service.env(thing) == service.cli_env(thing)
    assert set(service.env()) == {name for name in service.env(thing) if name.startswith("AWS_")}
