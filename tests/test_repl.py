"""The real ``iot-jobs`` program through the seed walkthrough, against the real iot-jobs-local."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from repl_driver import PipedRepl, payload


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _created(repl: PipedRepl, job: str) -> dict[str, Any]:
    line = repl.expect("CreateJob Response: ")
    body = payload(line)
    assert body["jobId"] == job
    assert body["jobArn"].endswith(f":job/{job}")
    assert body["ResponseMetadata"]["HTTPStatusCode"] == 200
    return body


def test_seed_walkthrough(repl: tuple[PipedRepl, str]) -> None:
    r, thing = repl
    job1, job2 = _unique("Job1"), _unique("Job2")

    r.send("get-pending-job-executions")
    first = r.next_line()
    assert first.startswith("GetPendingJobExecutions Response: "), r.dump()
    body = payload(first)
    assert list(body) == ["clientToken", "timestamp", "inProgressJobs", "queuedJobs"]
    assert body["inProgressJobs"] == [] and body["queuedJobs"] == []
    assert isinstance(body["timestamp"], int)

    # Job1: a response, then both events (their relative order is not fixed on AWS either).
    r.send(f'create-job {job1} {{"ToDo":"Reboot"}}')
    response = r.next_line()
    assert response.startswith("CreateJob Response: "), r.dump()
    events = {r.next_line().split(" event: ")[0]: None for _ in range(2)}
    lines = r.transcript[-2:]
    assert set(events) == {"Received JobExecutionsChanged", "Received NextJobExecutionChanged"}, r.dump()
    changed = payload(next(line for line in lines if "JobExecutionsChanged" in line))
    assert list(changed["jobs"]) == ["QUEUED"]
    assert [s["jobId"] for s in changed["jobs"]["QUEUED"]] == [job1]
    summary = changed["jobs"]["QUEUED"][0]
    assert list(summary) == ["jobId", "queuedAt", "lastUpdatedAt", "executionNumber", "versionNumber"]
    assert summary["executionNumber"] == 1 and summary["versionNumber"] == 1
    nxt = payload(next(line for line in lines if "NextJobExecutionChanged" in line))
    assert nxt["execution"]["jobId"] == job1
    assert nxt["execution"]["status"] == "QUEUED"
    assert nxt["execution"]["jobDocument"] == {"ToDo": "Reboot"}
    assert list(nxt["execution"]) == [
        "jobId",
        "status",
        "queuedAt",
        "lastUpdatedAt",
        "versionNumber",
        "executionNumber",
        "jobDocument",
    ]

    # Job2 (the document has a space): one JobExecutionsChanged, and no NextJobExecutionChanged.
    r.send(f'create-job {job2} {{"ToDo":"Delete Root User"}}')
    assert r.next_line().startswith("CreateJob Response: "), r.dump()
    changed = payload(r.expect("Received JobExecutionsChanged event: "))
    assert [s["jobId"] for s in changed["jobs"]["QUEUED"]] == [job1, job2]

    # start-next: Job1 IN_PROGRESS, version 2, with its document; no events.
    r.send("start-next-pending-job-execution")
    started = payload(r.next_line())
    assert started["execution"]["jobId"] == job1
    assert started["execution"]["status"] == "IN_PROGRESS"
    assert started["execution"]["versionNumber"] == 2
    assert started["execution"]["jobDocument"] == {"ToDo": "Reboot"}
    assert "startedAt" in started["execution"]

    r.send("get-pending-job-executions")
    line = r.next_line()
    # Neither Job2's creation nor start-next published a NextJobExecutionChanged: the next line is the response.
    assert line.startswith("GetPendingJobExecutions Response: "), r.dump()
    pending = payload(line)
    assert [j["jobId"] for j in pending["inProgressJobs"]] == [job1]
    assert pending["inProgressJobs"][0]["startedAt"] == started["execution"]["startedAt"]
    assert [j["jobId"] for j in pending["queuedJobs"]] == [job2]

    # Job1 SUCCEEDED: a bare response, then Job2 alone in the set and as the next execution.
    r.send(f"update-job-execution {job1} SUCCEEDED")
    updated = payload(r.next_line())
    assert list(updated) == ["clientToken", "timestamp"]
    seen = [r.next_line(), r.next_line()]
    changed = payload(next(line for line in seen if "JobExecutionsChanged" in line))
    assert changed["jobs"] == {"QUEUED": [pending["queuedJobs"][0]]}
    nxt = payload(next(line for line in seen if "NextJobExecutionChanged" in line))
    assert nxt["execution"]["jobId"] == job2 and nxt["execution"]["status"] == "QUEUED"
    assert nxt["execution"]["jobDocument"] == {"ToDo": "Delete Root User"}

    r.send("start-next-pending-job-execution")
    started = payload(r.next_line())
    assert started["execution"]["jobId"] == job2 and started["execution"]["status"] == "IN_PROGRESS"

    # Job2 FAILED: nothing left, the events say so in their exact empty forms.
    r.send(f"update-job-execution {job2} FAILED")
    assert r.next_line().startswith("UpdateJobExecution Response: "), r.dump()
    seen = [r.next_line(), r.next_line()]
    changed_line = next(line for line in seen if "JobExecutionsChanged" in line)
    next_line = next(line for line in seen if "NextJobExecutionChanged" in line)
    assert list(payload(changed_line)) == ["timestamp", "jobs"] and payload(changed_line)["jobs"] == {}
    assert list(payload(next_line)) == ["timestamp"]

    r.send(f"delete-job {job1}")
    deleted = payload(r.next_line())
    assert list(deleted) == ["ResponseMetadata"] and deleted["ResponseMetadata"]["HTTPStatusCode"] == 200

    # Deleting a job whose executions are all terminal publishes nothing: the next line is the next response.
    r.send("get-pending-job-executions")
    assert r.next_line().startswith("GetPendingJobExecutions Response: "), r.dump()
    del thing


def test_misc_topics(repl: tuple[PipedRepl, str]) -> None:
    r, _thing = repl
    # start-next with nothing queued: accepted, no execution.
    r.send("start-next-pending-job-execution")
    assert list(payload(r.next_line())) == ["clientToken", "timestamp"], r.dump()

    job_a, job_b = _unique("A"), _unique("B")
    r.send(f'create-job {job_a} {{"step":1}}')
    _created(r, job_a)
    r.expect("Received NextJobExecutionChanged event: ")
    r.send(f'create-job {job_b} {{"step":2}}')
    _created(r, job_b)
    r.expect("Received JobExecutionsChanged event: ")

    # start-next twice in a row: the same IN_PROGRESS execution, unchanged.
    r.send("start-next-pending-job-execution")
    first = payload(r.next_line())
    r.send("start-next-pending-job-execution")
    second = payload(r.next_line())
    assert first["execution"]["jobId"] == second["execution"]["jobId"] == job_a, r.dump()
    assert second["execution"]["versionNumber"] == first["execution"]["versionNumber"] == 2

    # Two executions IN_PROGRESS at once, by update.
    r.send(f"update-job-execution {job_b} IN_PROGRESS")
    assert r.expect("UpdateJobExecution Response: ")
    r.send("get-pending-job-executions")
    pending = payload(r.expect("GetPendingJobExecutions Response: "))
    assert sorted(j["jobId"] for j in pending["inProgressJobs"]) == sorted([job_a, job_b])
    assert pending["queuedJobs"] == []

    r.send(f"describe-job-execution {job_b}")
    described = payload(r.expect("DescribeJobExecution Response: "))
    assert described["execution"]["status"] == "IN_PROGRESS"
    assert described["execution"]["jobDocument"] == {"step": 2}


def test_bad_input_is_reported_and_the_repl_carries_on(repl: tuple[PipedRepl, str]) -> None:
    r, _thing = repl
    r.expected_code = 1  # scripted: a failed command makes the exit status 1
    cases = [
        ("frobnicate", "Error: unknown command 'frobnicate'"),
        ("describe-job-execution", "Error: describe-job-execution: takes 1 argument(s), got 0; usage: "),
        ("get-pending-job-executions extra", "Error: get-pending-job-executions: takes no arguments; usage: "),
        ("update-job-execution OnlyOne", "Error: update-job-execution: takes 2 argument(s), got 1"),
        (
            "create-job NoDoc",
            "Error: create-job: a job document (JSON, or @file) or --template NAME is required; usage: create-job <jobId> <document-json> | create-job <jobId> --template NAME",
        ),
        ("create-job Bad {not json", "Error: create-job: the job document is not valid JSON"),
        ('create-job Arr ["a"]', "Error: create-job: the job document must be a JSON object"),
        ("create-job F @/nonexistent/doc.json", "Error: create-job: cannot read the job document"),
        ("update-job-execution X CANCELED", "Error: update-job-execution: a device cannot set status 'CANCELED'"),
        ("update-job-execution X DONE", "Error: update-job-execution: a device cannot set status 'DONE'"),
        (
            "update-job-execution X SUCCEEDED --expected-version two",
            "Error: update-job-execution: --expected-version expects an integer",
        ),
        (
            "update-job-execution X SUCCEEDED --details",
            "Error: update-job-execution: --details needs at least one key=value",
        ),
        ("update-job-execution X SUCCEEDED --frob", "Error: update-job-execution: unknown option --frob"),
        ("describe-job-execution NoSuchJob", "DescribeJobExecution failed: ResourceNotFound: "),
        ("update-job-execution NoSuchJob SUCCEEDED", "UpdateJobExecution failed: ResourceNotFound: "),
        ("delete-job NoSuchJob", "DeleteJob failed: ResourceNotFoundException: "),
        ("create-job bad/id {}", "CreateJob failed: InvalidRequestException: "),
        ('create-job "bad id!" {"a":1}', "CreateJob failed: InvalidRequestException: "),
        ("help nosuch", "Error: help: no command named 'nosuch'"),
    ]
    for command, expected in cases:
        r.send(command)
        line = r.next_line()
        assert line.startswith(expected), f"{command!r} -> {line!r}"
        assert "Traceback" not in line
        if "bad id!" in command:  # the id is to blame, not the (valid) document
            assert "jobId" in line and "document" not in line, line
    # A rejected update on a terminal execution shows the code, message and the execution's state.
    job = _unique("T")
    r.send(f'create-job {job} {{"a":"b"}}')
    _created(r, job)
    r.send(f"update-job-execution {job} rejected")
    r.expect("UpdateJobExecution Response: ")
    r.send(f"update-job-execution {job} SUCCEEDED")
    line = r.expect("UpdateJobExecution failed: ")
    assert "InvalidStateTransition" in line and '"status":"REJECTED"' in line and '"versionNumber":2' in line
    # Still answering, and help lists the commands.
    r.send("help")
    assert r.expect("Commands:")
    r.send("help create-job")
    assert r.expect("usage: create-job <jobId> <document-json>")
    assert r.expect("  example: create-job Job1 {")


def test_quit_and_eof_exit_zero(service: Any, tmp_path: Path) -> None:
    thing = _unique("eof")
    r = PipedRepl(
        ["--local", "--state-dir", str(service.state_dir), "--thing", thing], env={"XDG_STATE_HOME": str(tmp_path)}
    )
    r.send("get-pending-job-executions")
    r.expect("GetPendingJobExecutions Response: ")
    assert r.close() == 0  # EOF


def _aws_style(service: Any, thing: str, tmp_path: Path, *extra: str) -> tuple[list[str], dict[str, str]]:
    cert, key = service.provision(thing)
    creds = json.loads((Path(service.state_dir) / "credentials.json").read_text())
    env = {
        "AWS_ENDPOINT_URL_IOT": service.http_endpoint,
        "AWS_ACCESS_KEY_ID": creds["accessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["secretAccessKey"],
        "XDG_STATE_HOME": str(tmp_path),
    }
    args = [
        "--endpoint",
        "localhost",
        "--port",
        str(service.mqtt_port),
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--thing_name",
        thing,
        "--region",
        "us-east-1",
        *extra,
    ]
    return args, env


def test_startup_with_aws_flags_creates_a_missing_thing(service: Any, tmp_path: Path) -> None:
    """The same flags as against AWS; the thing does not exist in the registry yet, so it is created."""
    thing = _unique("fresh")
    args, env = _aws_style(service, thing, tmp_path, "--ca_file", str(Path(service.state_dir) / "pki" / "ca.crt"))
    iot = service.iot()
    r = PipedRepl(args, env=env)
    try:
        r.send("get-pending-job-executions")
        r.expect("GetPendingJobExecutions Response: ")
        assert iot.describe_thing(thingName=thing)["thingName"] == thing
    finally:
        assert r.close() == 0, r.dump()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("missing-cert", "--cert file not found"),
        ("wrong-port", "connection refused by localhost:"),
        ("wrong-ca", "is not trusted"),
        ("no-ca", "is not trusted"),
    ],
)
def test_startup_failures_fail_fast_and_say_why(service: Any, tmp_path: Path, change: str, expected: str) -> None:
    from support.common import free_port  # type: ignore[import-not-found]

    thing = _unique("bad")
    ca = str(Path(service.state_dir) / "pki" / "ca.crt")
    args, env = _aws_style(service, thing, tmp_path, "--ca_file", ca)
    if change == "missing-cert":
        args[args.index("--cert") + 1] = str(tmp_path / "nope.crt")
    elif change == "wrong-port":
        args[args.index("--port") + 1] = str(free_port())
    elif change == "wrong-ca":
        args[args.index("--ca_file") + 1] = str(tmp_path / "other-ca.crt")
        from iot_jobs_local.identity import pki

        (tmp_path / "other-ca.crt").write_bytes(pki.new_ca("someone else").certificate_pem)
    elif change == "no-ca":
        i = args.index("--ca_file")
        del args[i : i + 2]
    started = time.monotonic()
    r = PipedRepl(args, env=env)
    code = r.close(timeout=20)
    assert code == 1, r.dump()
    assert time.monotonic() - started < 10, "start-up failures must be reported quickly"
    assert any(expected in line for line in r.transcript), r.dump()
    assert not any("Traceback" in line for line in r.transcript), r.dump()
