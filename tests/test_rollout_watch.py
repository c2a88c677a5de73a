"""The rollout view end to end: ``iot_jobs.rollout.watch_job`` (the fleet's API) and the console's
``watch-job`` on a pipe, against the real service with real devices (SDK clients over MQTT).

The pseudo-terminal view is tested in ``test_console_pty.py``'s style in ``test_rollout_pty.py``.
"""

from __future__ import annotations

import io
import itertools
import json
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iot_jobs.rollout import watch_job
from iot_jobs_local.testing.device import NEXT_CHANGED, Device
from repl_driver import PipedRepl
from support.api import group_arn
from support.common import unique
from support.service import ServiceProcess

KEYS = {
    "queued": "numberOfQueuedThings",
    "in_progress": "numberOfInProgressThings",
    "succeeded": "numberOfSucceededThings",
    "failed": "numberOfFailedThings",
    "rejected": "numberOfRejectedThings",
    "timed_out": "numberOfTimedOutThings",
    "removed": "numberOfRemovedThings",
    "canceled": "numberOfCanceledThings",
}
DOC = '{"operation":"update"}'


class Lines(io.TextIOBase):
    """A stream that hands each complete line to the test as it is written (not a terminal)."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        for line in done:
            self.lines.put(line)
        return len(text)

    def until(self, text: str, timeout: float = 20.0) -> str:
        """The next line containing ``text``."""
        deadline = time.monotonic() + timeout
        while text not in (line := self.next(max(0.1, deadline - time.monotonic()))):
            pass
        return line

    def drain(self) -> list[str]:
        """Every line written so far (once the writer is done)."""
        while not self.lines.empty():
            self.next()
        return self.seen

    def next(self, timeout: float = 20.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s; so far:\n" + "\n".join(self.seen)) from None
        self.seen.append(line)
        return line


def group_of(svc: ServiceProcess, device: Callable[..., Device], count: int) -> tuple[str, list[Device]]:
    """A new thing group with ``count`` connected devices, in the order of their thing names."""
    iot = svc.iot()
    group = unique("fleet")
    iot.create_thing_group(thingGroupName=group)
    things = sorted(unique("dev") for _ in range(count))
    devices = []
    for thing in things:
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        devices.append(device(thing, service=svc))
    return group_arn(svc, group), devices


def run_execution(d: Device, job: str, status: str) -> None:
    """Wait for the device's execution of ``job`` to be announced, then start it and report ``status``."""
    deadline = time.monotonic() + 20
    while True:
        event = d.next_event(NEXT_CHANGED, timeout=max(0.1, deadline - time.monotonic()))
        if event.execution is not None and event.execution.job_id == job:
            break
    d.start_next()
    d.update(job, status)


def counts_of(iot: Any, job: str) -> dict[str, int]:
    details = iot.describe_job(jobId=job)["job"]["jobProcessDetails"]
    return {name: int(details.get(key, 0)) for name, key in KEYS.items()}


def line_counts(line: str) -> dict[str, int]:
    return {name: int(re.search(rf"\b{name}=(\d+)", line).group(1)) for name in KEYS}  # type: ignore[union-attr]


def report_data(path: Path) -> Any:
    found = re.search(r'<script type="application/json" id="rollout-data">(.*?)</script>', path.read_text(), re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_watch_job_follows_a_paced_rollout_on_the_service_clock(
    service_factory: Callable[..., ServiceProcess],
    device: Callable[..., Device],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """The fleet's call: a group job at 2 things a minute on a clock 60 times faster (a virtual
    minute per second). The lines follow the counts, the elapsed time is the service's (three
    batches: two virtual minutes at least), the report holds the timeline."""
    svc = service_factory("--time-scale", "60")
    iot = svc.iot()
    target, devices = group_of(svc, device, 5)
    job = unique("roll")
    iot.create_job(
        jobId=job,
        targets=[target],
        document=DOC,
        jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        abortConfig={
            "criteriaList": [
                {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 80, "minNumberOfExecutedThings": 3}
            ]
        },
    )
    stream, report, stop = Lines(), tmp_path / "rollout.html", threading.Event()
    result: list[str] = []
    started = time.monotonic()
    watcher = threading.Thread(
        target=lambda: result.append(watch_job(iot, job, stream=stream, interval=0.1, report=report, stop=stop)),
        daemon=True,
    )
    watcher.start()
    request.addfinalizer(stop.set)
    first = stream.next()
    assert first.startswith("[") and f" {job} IN_PROGRESS " in first and "waiting=3" in first, first
    assert "pace 2/min of 2/min" in first and "abort FAILED -/80%" in first
    for index, d in enumerate(devices):
        run_execution(d, job, "FAILED" if index == 1 else "SUCCEEDED")
    watcher.join(30)
    assert not watcher.is_alive(), "\n".join(stream.seen)
    real = time.monotonic() - started
    stream.drain()
    changes = [line for line in stream.seen if line.startswith("[")]
    final = counts_of(iot, job)
    assert result == ["COMPLETED"] == [iot.describe_job(jobId=job)["job"]["status"]]
    assert line_counts(changes[-1]) == final == {**dict.fromkeys(KEYS, 0), "succeeded": 4, "failed": 1}
    assert "COMPLETED" in changes[-1] and "abort FAILED 20.0%/80%" in changes[-1]
    # Every line is a change: no two in a row show the same counts and status.
    states = [(line_counts(line), line.split()[2]) for line in changes]
    assert all(a != b for a, b in itertools.pairwise(states))
    # Elapsed on the service's clock: three batches a virtual minute apart, far more than the real time.
    minutes, seconds = (int(x) for x in changes[-1][1:].split("]")[0].split(":")[-2:])
    assert 120 <= minutes * 60 + seconds <= 60 * real + 60, (changes[-1], real)
    summary = stream.seen[stream.seen.index("") + 1 :]
    assert summary[0] == f"Job {job}: COMPLETED: every execution reached a final status"
    assert re.search(r"^SUCCEEDED +4 +80\.0%$", "\n".join(summary), re.M)
    assert any(line.startswith("Executions by status over time") for line in summary)
    data = report_data(report)
    assert data["jobId"] == job and data["status"] == "COMPLETED"
    assert data["timeline"][-1]["counts"] == {name.upper(): n for name, n in final.items()}
    assert data["timeline"][-1]["t"] >= 120
    notified = [sum(p["counts"].values()) for p in data["timeline"]]
    assert notified == sorted(notified) and notified[0] == 2 and notified[-1] == 5


def test_watch_job_stops_when_told(service: ServiceProcess, device: Callable[..., Device]) -> None:
    iot = service.iot()
    d = device()
    job = service.create_job(d.thing, DOC)
    stream, stop = Lines(), threading.Event()
    result: list[str] = []
    watcher = threading.Thread(target=lambda: result.append(watch_job(iot, job, stream=stream, stop=stop)))
    watcher.start()
    assert "queued=1" in stream.next()
    stop.set()
    watcher.join(10)
    assert result == ["IN_PROGRESS"]
    assert f"Stopped watching {job}; the job is IN_PROGRESS." in [stream.next() for _ in range(2)]


def test_the_console_prints_a_line_per_change_when_piped(
    repl: tuple[PipedRepl, str], service: ServiceProcess, device: Callable[..., Device], tmp_path: Path
) -> None:
    r, _thing = repl
    iot = service.iot()
    target, devices = group_of(service, device, 3)
    job = unique("piped")
    iot.create_job(jobId=job, targets=[target], document=DOC)
    report = tmp_path / "piped.html"
    r.send(f"watch-job {job} --interval 0.1 --report {report}")
    first = r.expect("[")
    assert line_counts(first) == counts_of(iot, job) == {**dict.fromkeys(KEYS, 0), "queued": 3}
    for d, status in zip(devices, ("SUCCEEDED", "REJECTED", "SUCCEEDED"), strict=True):
        run_execution(d, job, status)
    seen = r.lines_until("Report written to")
    assert seen[-1] == f"Report written to {report} (job COMPLETED)."
    changes = [first] + [line for line in seen if line.startswith("[")]
    assert line_counts(changes[-1]) == counts_of(iot, job)
    assert "COMPLETED" in changes[-1]
    assert len(changes) >= 2 and all(a != b for a, b in itertools.pairwise(changes))
    assert report_data(report)["summary"]["counts"]["REJECTED"] == 1
    # The console carries on.
    r.send("help watch-job")
    assert r.expect("usage: watch-job") == "usage: watch-job <jobId> [--report FILE] [--interval S]"
    r.send(f"describe-job {job}")
    assert '"status":"COMPLETED"' in r.expect("DescribeJob Response: ")
    r.send("watch-job NoSuchJob-x")
    assert r.expect("DescribeJob failed: ").startswith("DescribeJob failed: ResourceNotFoundException")
    r.send("watch-job x --interval 0")
    assert "--interval must be between 0.1 and 3600 seconds" in r.expect("Error: watch-job:")
    r.expected_code = 1


def test_the_console_prints_a_json_document_per_change(
    service: ServiceProcess, device: Callable[..., Device], tmp_path: Path
) -> None:
    d = device()
    job = service.create_job(d.thing, DOC)
    thing = unique("json")
    r = PipedRepl(
        ["--local", "--state-dir", str(service.state_dir), "--thing", thing, "--output", "json"],
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    try:
        r.send(f"watch-job {job} --interval 0.1")
        first = json.loads(r.expect('{"kind":"rollout"'))
        assert first["counts"]["QUEUED"] == 1 and first["status"] == "IN_PROGRESS" and not first["final"]
        run_execution(d, job, "SUCCEEDED")
        documents = [json.loads(line) for line in r.lines_until('{"kind":"rollout-summary"')]
        kinds = {doc["kind"] for doc in documents}
        assert kinds <= {"rollout", "rollout-summary", "event", "status"}, documents
        last = [doc for doc in documents if doc["kind"] == "rollout"][-1]
        assert last["final"] and last["counts"]["SUCCEEDED"] == 1 and last["status"] == "COMPLETED"
        summary = documents[-1]
        assert summary["timeline"][-1]["counts"]["SUCCEEDED"] == 1
        r.send("quit")
    finally:
        assert r.close() == 0, r.dump()


def test_the_view_tells_the_story_of_retries_a_timeout_and_an_abort(
    service_factory: Callable[..., ServiceProcess], device: Callable[..., Device], request: pytest.FixtureRequest
) -> None:
    """On a 60x clock: a failure retried once, a device that hangs and is timed out after a
    (virtual) minute, then the abort criterion met; the view ends as the service does."""
    svc = service_factory("--time-scale", "60")
    iot = svc.iot()
    target, (ok, flaky, hangs, late, last, _waits) = group_of(svc, device, 6)
    job = unique("story")
    iot.create_job(
        jobId=job,
        targets=[target],
        document=DOC,
        abortConfig={
            "criteriaList": [
                {"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 4}
            ]
        },
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]},
        timeoutConfig={"inProgressTimeoutInMinutes": 1},
    )
    stream, stop = Lines(), threading.Event()
    result: list[str] = []
    watcher = threading.Thread(
        target=lambda: result.append(watch_job(iot, job, stream=stream, interval=0.1, stop=stop)), daemon=True
    )
    watcher.start()
    request.addfinalizer(stop.set)  # a failed test does not leave the watch polling a stopped service
    assert "queued=6" in stream.next()
    run_execution(ok, job, "SUCCEEDED")
    run_execution(flaky, job, "FAILED")
    retrying = line_counts(stream.until("retries 1"))  # retried: QUEUED again, not failed
    assert (retrying["failed"], retrying["queued"], retrying["succeeded"]) == (0, 5, 1)
    run_execution(flaky, job, "FAILED")  # its retry fails too: the budget is spent
    run_execution(hangs, job, "IN_PROGRESS")
    stream.until("timed_out=1")  # a virtual minute later (a real second or so), as the view shows it
    assert counts_of(iot, job)["timed_out"] == 1
    run_execution(late, job, "SUCCEEDED")  # 4 executed, 2 of them failures: 50 %, but no failure to check it
    reached = stream.until("succeeded=2")
    assert "abort ALL 50.0%/50% reached" in reached and " IN_PROGRESS " in reached
    # The next failure fires it (its retry, QUEUED, and the one still waiting are canceled).
    run_execution(last, job, "FAILED")
    watcher.join(20)
    assert not watcher.is_alive(), "\n".join(stream.seen)
    stream.drain()
    described = iot.describe_job(jobId=job)["job"]
    assert result == ["CANCELED"] == [described["status"]]
    final = counts_of(iot, job)
    assert final == {**dict.fromkeys(KEYS, 0), "succeeded": 2, "failed": 1, "timed_out": 1, "canceled": 2}
    changes = [line for line in stream.seen if line.startswith("[")]
    assert line_counts(changes[-1]) == final
    assert "abort ALL 50.0%/50% MET" in changes[-1]
    assert "CANCELED by its abort config (ALL reached 50 %)" in changes[-1]
    # The retries as the service lists them, and as the view counted them.
    summaries = iot.list_job_executions_for_job(jobId=job)["executionSummaries"]
    retried = [s for s in summaries if s["jobExecutionSummary"].get("retryAttempt")]
    assert len(retried) == 2 and "retries 2" in changes[-1]
    assert any("timed_out=1" in line for line in changes)
    summary = "\n".join(stream.seen)
    assert "abort ALL >= 50% of >= 4 executed: 2/4 = 50.0%; MET" in summary
    assert "retries: 2 so far on 2 thing(s); budget per thing: FAILED 1" in summary


def test_watch_job_ends_when_the_job_is_deleted(service: ServiceProcess) -> None:
    iot = service.iot()
    thing = unique("gone")
    iot.create_thing(thingName=thing)
    job = service.create_job(thing, DOC)
    stream = Lines()
    result: list[str] = []
    watcher = threading.Thread(target=lambda: result.append(watch_job(iot, job, stream=stream, interval=0.1)))
    watcher.start()
    assert "queued=1" in stream.next()
    iot.delete_job(jobId=job, force=True)
    watcher.join(20)
    assert result == ["DELETION_IN_PROGRESS"]
    assert f"Job {job}: the job was deleted" in [stream.next() for _ in range(4)]


def test_the_exponential_rate_in_the_view_is_the_one_the_service_applies(
    service_factory: Callable[..., ServiceProcess], request: pytest.FixtureRequest
) -> None:
    """1 a minute, doubling with each thing notified: the service sends batches of 1, 2 and 4
    things (its own test, ``test_exponential_rollout_rate``); before each, the view shows the rate
    of the batch to come. No device is needed: executions are queued whether or not one listens."""
    svc = service_factory("--time-scale", "60")
    iot = svc.iot()
    group = unique("exp")
    iot.create_thing_group(thingGroupName=group)
    for _ in range(7):
        thing = unique("exp")
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    job = unique("exp")
    rate = {"baseRatePerMinute": 1, "incrementFactor": 2.0, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}
    iot.create_job(
        jobId=job, targets=[group_arn(svc, group)], document=DOC, jobExecutionsRolloutConfig={"exponentialRate": rate}
    )
    stream, stop = Lines(), threading.Event()
    watcher = threading.Thread(target=lambda: watch_job(iot, job, stream=stream, interval=0.1, stop=stop))
    watcher.start()
    request.addfinalizer(stop.set)
    seen: dict[int, str] = {}
    while 7 not in seen:
        line = stream.next()
        if line.startswith("["):
            seen.setdefault(line_counts(line)["queued"], line)
    assert sorted(seen) == [1, 3, 7], seen  # the batches: 1, then 2, then the 4 left
    assert "pace 1/min of 2/min" in seen[1] and "waiting=6" in seen[1]
    assert "pace 2/min of 8/min" in seen[3] and "waiting=4" in seen[3]
    iot.cancel_job(jobId=job)
    watcher.join(20)
    summary = "\n".join(stream.drain())
    assert "pace: 4/min in the last minute, rate 128/min; rollout done" in summary
    assert "exponential: 1/min x2 per step, step 7; next step at 8 notified (now 7)" in summary
    assert "CANCELED" in summary
