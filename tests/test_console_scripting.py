"""``iot-jobs`` in scripts and misconfigured: exit statuses, stderr, ``-c``, ``--output json``, and
one readable line (never a traceback) for every start-up mistake."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from support.common import free_port


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _run(
    args: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iot_jobs", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No AWS configuration anywhere: an empty HOME, no AWS_* variables, no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOT_JOBS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
    )
    env.update(extra)
    return env


def _one_line_failure(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode != 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("iot-jobs: ") and expected in lines[0], lines[0]


@pytest.fixture
def device_files(service: Any) -> tuple[Path, Path, Path]:
    cert, key = service.provision(_unique("misconf"))
    return Path(cert), Path(key), Path(service.state_dir) / "pki" / "ca.crt"


def _aws_args(cert: Path, key: Path, ca: Path | None, port: int, *extra: str) -> list[str]:
    args = ["--endpoint", "localhost", "--port", str(port), "--cert", str(cert), "--key", str(key)]
    args += ["--thing_name", _unique("t")]
    if ca is not None:
        args += ["--ca_file", str(ca)]
    return [*args, *extra]


def test_no_region_anywhere(tmp_path: Path, device_files: tuple[Path, Path, Path], service: Any) -> None:
    cert, key, ca = device_files
    env = _clean_env(tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    _one_line_failure(_run(_aws_args(cert, key, ca, service.mqtt_port), env), "no AWS region")


def test_missing_profile(tmp_path: Path, device_files: tuple[Path, Path, Path], service: Any) -> None:
    cert, key, ca = device_files
    done = _run(
        _aws_args(cert, key, ca, service.mqtt_port, "--profile", "nosuch", "--region", "us-east-1"),
        _clean_env(tmp_path),
    )
    _one_line_failure(done, "AWS profile 'nosuch' not found")
    done = _run(
        _aws_args(cert, key, ca, service.mqtt_port, "--region", "us-east-1"), _clean_env(tmp_path, AWS_PROFILE="gone")
    )
    _one_line_failure(done, "AWS profile 'gone' not found")


def test_no_credentials(tmp_path: Path, device_files: tuple[Path, Path, Path], service: Any) -> None:
    cert, key, ca = device_files
    env = _clean_env(tmp_path, AWS_ENDPOINT_URL_IOT=service.http_endpoint)
    done = _run(_aws_args(cert, key, ca, service.mqtt_port, "--region", "us-east-1"), env)
    _one_line_failure(done, "no AWS credentials found")


@pytest.mark.parametrize("broken", ["missing-cert", "missing-key", "missing-ca", "not-a-key", "not-a-ca"])
def test_bad_files_are_refused_before_any_network_call(
    tmp_path: Path, device_files: tuple[Path, Path, Path], broken: str
) -> None:
    """The control-plane endpoint is a black hole: any network call first would hang, not fail fast."""
    cert, key, ca = device_files
    junk = tmp_path / "junk.pem"
    junk.write_text("not PEM at all\n")
    expected = {
        "missing-cert": "--cert file not found",
        "missing-key": "--key file not found",
        "missing-ca": "--ca_file file not found",
        "not-a-key": "cannot use --cert/--key",
        "not-a-ca": "is not a PEM certificate",
    }[broken]
    if broken == "missing-cert":
        cert = tmp_path / "nope.crt"
    elif broken == "missing-key":
        key = tmp_path / "nope.key"
    elif broken == "missing-ca":
        ca = tmp_path / "nope-ca.crt"
    elif broken == "not-a-key":
        key = junk
    else:
        ca = junk
    env = _clean_env(
        tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_ENDPOINT_URL_IOT="http://192.0.2.1:9"
    )
    started = time.monotonic()
    done = _run(_aws_args(cert, key, ca, 8883, "--region", "us-east-1"), env, timeout=30)
    assert time.monotonic() - started < 5, "the files must be checked before any network call"
    _one_line_failure(done, expected)


def test_unreachable_control_plane(tmp_path: Path, device_files: tuple[Path, Path, Path], service: Any) -> None:
    cert, key, ca = device_files
    env = _clean_env(
        tmp_path,
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_ENDPOINT_URL_IOT=f"http://127.0.0.1:{free_port()}",
    )
    _one_line_failure(_run(_aws_args(cert, key, ca, service.mqtt_port, "--region", "us-east-1"), env), "cannot reach")


def test_unreachable_broker(tmp_path: Path, service: Any) -> None:
    cert, key = service.provision(_unique("broker"))
    creds = json.loads((Path(service.state_dir) / "credentials.json").read_text())
    env = _clean_env(
        tmp_path,
        AWS_ACCESS_KEY_ID=creds["accessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["secretAccessKey"],
        AWS_ENDPOINT_URL_IOT=service.http_endpoint,
    )
    ca = Path(service.state_dir) / "pki" / "ca.crt"
    done = _run(_aws_args(Path(cert), Path(key), ca, free_port(), "--region", "us-east-1"), env)
    _one_line_failure(done, "connection refused by localhost:")


def test_usage_mistakes_are_one_line(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    _one_line_failure(_run(["--output", "yaml"], env), "--output must be one of text, json, pretty")
    _one_line_failure(_run(["--endpoint", "x.example.com"], env), "missing --cert, --key, --thing_name")
    config = tmp_path / "config.ini"
    config.write_text("[iot-jobs]\nfrobnicate = 1\n")
    _one_line_failure(_run(["--config", str(config)], env), "unknown setting(s)")


def test_version_and_help(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    done = _run(["--version"], env)
    assert done.returncode == 0 and done.stdout.startswith("iot-jobs "), done
    done = _run(["--help"], env)
    assert done.returncode == 0 and "--stop-on-error" in done.stdout and "--profile" in done.stdout


def test_config_keys_are_named_as_the_flags(tmp_path: Path, service: Any) -> None:
    """``thing`` in the config file works as ``--thing`` does (and ``state-dir`` as ``--state-dir``)."""
    thing = _unique("cfg")
    config = tmp_path / "config.ini"
    config.write_text(f"[iot-jobs]\nthing = {thing}\nstate-dir = {service.state_dir}\nlocal = true\n")
    done = _run(["--config", str(config), "-c", "get-pending-job-executions"], _clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("GetPendingJobExecutions Response: "), done.stdout
    assert service.iot().describe_thing(thingName=thing)["thingName"] == thing


def _local(service: Any, *extra: str) -> list[str]:
    return ["--local", "--state-dir", str(service.state_dir), "--thing", _unique("script"), *extra]


def test_dash_c_exit_status_and_stderr(tmp_path: Path, service: Any) -> None:
    env = _clean_env(tmp_path)
    script = "get-pending-job-executions; describe-job NoSuchJob-xyz; get-pending-job-executions"
    done = _run(_local(service, "-c", script), env)
    assert done.returncode == 1, done
    out = done.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in out] == ["GetPendingJobExecutions", "GetPendingJobExecutions"], out
    assert (
        done.stderr.strip().splitlines()
        == [
            line for line in done.stderr.strip().splitlines() if line.startswith("DescribeJob failed: ResourceNotFound")
        ]
        and done.stderr.strip()
    ), done.stderr
    stopped = _run(_local(service, "--stop-on-error", "-c", script), env)
    assert stopped.returncode == 1
    assert len(stopped.stdout.splitlines()) == 1, stopped.stdout
    ok = _run(_local(service, "-c", "get-pending-job-executions;help"), env)
    assert ok.returncode == 0 and ok.stderr == "", ok


def test_piped_input_exit_status(tmp_path: Path, service: Any) -> None:
    env = _clean_env(tmp_path)
    failed = _run(_local(service), env, stdin="frobnicate\nget-pending-job-executions\n")
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: unknown command 'frobnicate'"), failed.stderr
    assert failed.stdout.startswith("GetPendingJobExecutions Response: "), failed.stdout
    stopped = _run(_local(service, "--stop-on-error"), env, stdin="frobnicate\nget-pending-job-executions\n")
    assert stopped.returncode == 1 and stopped.stdout == "", stopped.stdout
    ok = _run(_local(service), env, stdin="get-pending-job-executions\n")
    assert ok.returncode == 0 and ok.stderr == "", ok


def test_output_json_is_json_lines_only(tmp_path: Path, service: Any) -> None:
    job = _unique("Json")
    script = (
        f'create-job {job} {{"ToDo":"a; b"}}; start-next-pending-job-execution; '
        f"update-job-execution {job} SUCCEEDED; help; describe-job NoSuchJob-xyz"
    )
    done = _run(_local(service, "--output", "json", "-c", script), _clean_env(tmp_path))
    assert done.returncode == 1
    documents = [json.loads(line) for line in done.stdout.splitlines()]  # every line parses
    kinds = [(d["kind"], d.get("operation") or d.get("event")) for d in documents]
    responses = [k for k in kinds if k[0] == "response"]
    assert responses == [
        ("response", "CreateJob"),
        ("response", "StartNextPendingJobExecution"),
        ("response", "UpdateJobExecution"),
    ], kinds
    assert ("event", "NextJobExecutionChanged") in kinds and ("text", None) in kinds, kinds
    start = next(d for d in documents if d.get("operation") == "StartNextPendingJobExecution")
    assert start["response"]["execution"]["jobDocument"] == {"ToDo": "a; b"}
    (error,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert error["kind"] == "error" and error["operation"] == "DescribeJob"
    assert error["code"] == "ResourceNotFoundException"


def test_output_pretty_when_piped_is_indented_without_colour(tmp_path: Path, service: Any) -> None:
    done = _run(_local(service, "--output", "pretty", "-c", "get-pending-job-executions"), _clean_env(tmp_path))
    assert done.returncode == 0
    head, _, body = done.stdout.partition("\n")
    assert head == "GetPendingJobExecutions Response:"
    assert "\x1b[" not in done.stdout
    assert json.loads(body)["queuedJobs"] == [] and body.startswith("{\n  ")


def test_events_print_in_causal_order(tmp_path: Path, service: Any) -> None:
    """CreateJob's events follow its response; they reach us before the next command's MQTT response,
    so they print before that response too (not held until after it)."""
    job = _unique("Causal")
    script = f'create-job {job} {{"a":1}}; get-pending-job-executions; get-pending-job-executions'
    done = _run(_local(service, "--output", "json", "-c", script), _clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    order = [d.get("operation") or d.get("event") for d in documents]
    created = order.index("CreateJob")
    changed = next(
        i
        for i, d in enumerate(documents)
        if d.get("event") == "JobExecutionsChanged" and job in json.dumps(d["payload"])
    )
    assert created < changed, order
    # Each GetPending response that already lists the job comes after the event that announced it.
    for i, d in enumerate(documents):
        if d.get("operation") == "GetPendingJobExecutions" and job in json.dumps(d["response"]):
            assert changed < i, order


def test_client_id_takeover_is_explained_once_and_stops_the_loop(tmp_path: Path, service: Any) -> None:
    """Two consoles with one client id: one of them stops reconnecting and says why in one line; the
    other keeps the connection and answers."""
    from repl_driver import PipedRepl

    client_id = f"test-{uuid.uuid4()}"
    env = _clean_env(tmp_path)
    consoles = [PipedRepl(_local(service, "--client_id", client_id), env=env)]
    try:
        consoles[0].send("get-pending-job-executions")
        consoles[0].expect("GetPendingJobExecutions Response: ")
        consoles.append(PipedRepl(_local(service, "--client_id", client_id), env=env))
        deadline = time.monotonic() + 60
        stopped: PipedRepl | None = None
        while stopped is None:
            assert time.monotonic() < deadline, [c.dump() for c in consoles]
            for console in consoles:
                with contextlib.suppress(AssertionError):
                    if console.next_line(timeout=0.2).startswith("Disconnected: "):
                        stopped = console
        line = stopped.transcript[-1]
        assert f"client id '{client_id}'" in line and "not reconnecting" in line, line
        (other,) = [c for c in consoles if c is not stopped]
        stopped.send("get-pending-job-executions")
        failed = stopped.expect("GetPendingJobExecutions failed: ")
        assert "Offline" in failed or "Timeout" in failed, failed
        other.send("get-pending-job-executions")
        other.expect("GetPendingJobExecutions Response: ")
        assert sum("Disconnected: " in line for line in stopped.transcript) == 1, stopped.dump()
    finally:
        codes = sorted(c.close() for c in consoles)
    assert codes == [0, 1], codes
    log = (tmp_path / "home" / "state" / "iot-jobs" / "iot-jobs.log").read_text()
    assert "not reconnecting" in log and "GetPendingJobExecutions failed" in log, log


def test_delete_job_on_a_canceled_job_says_what_stands_in_the_way(tmp_path: Path, service: Any) -> None:
    job = _unique("Canceled")
    script = (
        f'create-job {job} {{"a":1}}; start-next-pending-job-execution; cancel-job {job}; '
        f"describe-job {job}; delete-job {job}"
    )
    done = _run(_local(service, "--output", "json", "-c", script), _clean_env(tmp_path))
    assert done.returncode == 1
    described = next(json.loads(line) for line in done.stdout.splitlines() if '"operation":"DescribeJob"' in line)
    assert described["response"]["job"]["status"] == "CANCELED"
    (error,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert error["operation"] == "DeleteJob" and error["code"] == "InvalidStateTransitionException"
    assert "IN_PROGRESS executions" in error["message"], error
    assert "only when COMPLETED or CANCELED" not in error["message"], error


@pytest.mark.parametrize("module", ["iot_jobs", "iot_jobs_agent", "iot_jobs_fleet", "iot_jobs_local"])
def test_every_program_prints_its_version(module: str) -> None:
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=30)
    program = module.replace("_", "-")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{program} {version('iot-jobs')}\n", "")
