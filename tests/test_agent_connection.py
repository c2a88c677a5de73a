"""The agent's connection: MQTT 3.1.1 as well as 5, a first connection retried until the broker is up,
a misconfiguration reported in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.agent import AgentProcess, execution, handler_dir, step, wait_final, write_handler
from support.common import unique
from support.service import ServiceProcess

WAIT = 20.0


def test_a_job_end_to_end_over_mqtt_3_1_1(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    thing = unique("agent311")
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "say.sh", 'echo "said $2"')
    proc = agent(thing, "--mqtt", "3.1.1", handlers=handlers)
    assert "over MQTT 3.1.1" in proc.log_text()
    job_id = service.create_job(
        thing,
        {"version": "1.0", "includeStdOut": "true", "steps": [step("a", "say.sh", "one"), step("b", "say.sh", "two")]},
    )
    proc.wait_log(rf"{job_id}: step 2/2 b started pid", WAIT)
    wait_final(proc, job_id, "SUCCEEDED")
    found = execution(service, job_id, thing)
    assert found["status"] == "SUCCEEDED"
    details = found["statusDetails"]["detailsMap"]
    assert details["step"] == "2/2 b" and details["stdout"] == "said one said two"


def test_the_data_plane_over_mqtt_3_1_1_is_an_mqtt_3_1_1_connection(service: ServiceProcess) -> None:
    """The agent's ``DataPlane`` with ``mqtt="3.1.1"``: an ``awscrt.mqtt.Connection`` under IotJobsClientV2."""
    from awscrt import mqtt

    from iot_jobs.data_plane import DataPlane
    from iot_jobs.settings import Settings

    thing = unique("dp311")
    cert, key = service.device_files(thing)
    settings = Settings(
        endpoint="localhost",
        port=service.mqtt_port,
        cert=cert,
        key=key,
        ca_file=service.ca_path,
        thing_name=thing,
        client_id=thing,
    )
    states: list[str] = []
    with DataPlane(settings, lambda *_: None, lambda _s: None, states.append, mqtt="3.1.1") as plane:
        assert isinstance(plane._client.client, mqtt.Connection)
        job_id = service.create_job(thing, {"operation": "x"})
        pending = plane.get_pending(report=False)
        assert [j.job_id for j in pending.queued_jobs] == [job_id]
    assert states == ["connected", "stopped"]


def test_mqtt_3_1_1_reconnects_after_a_broker_restart(
    service_factory: Callable[..., ServiceProcess], agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    private = service_factory()
    thing = unique("agent311")
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "ok.sh", "exit 0")
    proc = agent(thing, "--mqtt", "3.1.1", service=private, handlers=handlers)
    private.restart()
    proc.wait_log(r"connection: Disconnected from the broker", 30)
    proc.wait_log(r"step 3: reconnected; re-reading the pending set", 30)
    job_id = private.create_job(thing, {"version": "1.0", "steps": [step("ok", "ok.sh")]})
    wait_final(proc, job_id, "SUCCEEDED", 30)


def test_mqtt_3_1_1_client_id_clash_is_detected(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    """3.1.1 has no DISCONNECT from the broker: two agents sharing a client id see quick drops."""
    thing = unique("agent311")
    shared_id = unique("clash")
    first = agent(thing, "--mqtt", "3.1.1", "--client_id", shared_id)
    second = agent(thing, "--mqtt", "3.1.1", "--client_id", shared_id, ready=False)
    second.wait_log(r"step 1: connected", WAIT)
    first.wait_log(r"not reconnecting\. Restart with another --client_id", 60)


@pytest.mark.parametrize("mqtt", ["5", "3.1.1"])
def test_started_before_the_broker_it_retries_then_runs_a_job(
    service_factory: Callable[..., ServiceProcess], agent: Callable[..., AgentProcess], tmp_path: Path, mqtt: str
) -> None:
    private = service_factory()
    thing = unique("agent")
    private.device_files(thing)  # provisioned while the service runs
    private.stop()
    handlers = handler_dir(tmp_path)
    write_handler(handlers, "ok.sh", "exit 0")
    proc = agent(thing, "--mqtt", mqtt, service=private, handlers=handlers, ready=False)
    proc.wait_log(r"connection: attempt 1 failed: Connect failed: ConnectionRefused: .*; retrying in 0\.5 s", WAIT)
    proc.wait_log(r"connection: attempt 2 failed: .*; retrying in 1\.0 s", WAIT)
    assert proc.process is not None and proc.process.poll() is None
    private.start()
    proc.wait_log(r"step 1: connected", 30)
    job_id = private.create_job(thing, {"version": "1.0", "steps": [step("ok", "ok.sh")]})
    wait_final(proc, job_id, "SUCCEEDED")


def test_a_misconfiguration_is_one_line_and_an_exit(
    service: ServiceProcess, agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.crt"
    proc = agent(unique("agent"), "--cert", str(missing), ready=False)
    assert proc.process is not None
    try:
        code = proc.process.wait(WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent kept running with a missing certificate:\n{proc.log_text()}")
    proc.stop()
    lines = [line for line in proc.log_text().splitlines() if "iot-jobs-agent:" in line or "attempt" in line]
    assert code == 1
    assert lines == [f"iot-jobs-agent: Connect failed: FileNotFound: --cert file not found: {missing}"], lines
    assert "Traceback" not in proc.log_text()
    assert not os.path.exists(missing)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_console_shares_the_flag(service: ServiceProcess, tmp_path: Path, how: str) -> None:
    thing = unique("console311")
    service.provision(thing)
    job_id = service.create_job(thing, {"operation": "x"})
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("IOT_JOBS_LOCAL", None)
    args = ["--local", "--state-dir", str(service.state_dir), "--thing", thing, "-c", "get-pending-job-executions"]
    if how == "flag":
        args = ["--mqtt", "3.1.1", *args]
    else:
        env["IOT_JOBS_MQTT"] = "3.1.1"
    done = subprocess.run(
        [sys.executable, "-m", "iot_jobs", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert job_id in done.stdout and "GetPendingJobExecutions Response" in done.stdout, done.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "iot_jobs", *args, "--mqtt", "4"], capture_output=True, text=True, env=env, timeout=60
    )
    assert wrong.returncode == 2 and wrong.stderr.strip() == "iot-jobs: --mqtt must be 5 or 3.1.1, got '4'"
