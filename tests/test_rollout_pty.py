"""``watch-job`` in a real pseudo-terminal: the live view redrawn in place shows the counts
DescribeJob reports as a group job advances, fits 80 columns, and Ctrl-C leaves the view, not the
console."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.testing.device import Device
from support.common import unique
from support.service import ServiceProcess
from test_console_pty import Console
from test_rollout_watch import DOC, KEYS, counts_of, group_of, report_data, run_execution

STATUS_LINE = re.compile(r"^  ([A-Z_]+) +(\d+) .*%$", re.M)


def screen_counts(screen: str) -> dict[str, int]:
    """The count of each status bar on the screen (the last frame drawn)."""
    found = {status.lower(): int(n) for status, n in STATUS_LINE.findall(screen) if status.lower() in KEYS}
    return found


def wait_counts(c: Console, iot: Any, job: str) -> dict[str, int]:
    """Wait until the screen shows the counts DescribeJob reports (they settle: the test drives the devices)."""
    expected = counts_of(iot, job)
    pattern = "".join(rf"(?=[\s\S]*^  {name.upper()} +{n} )" for name, n in expected.items())
    c.wait_screen(pattern)
    assert screen_counts(c.display()) == expected == counts_of(iot, job)
    return expected


@pytest.fixture
def narrow(service: ServiceProcess, tmp_path: Path) -> Iterator[Console]:
    c = Console(service, unique("watch"), tmp_path, columns=80)
    try:
        yield c
    finally:
        c.close()


def test_the_live_view_shows_what_describe_job_reports_and_ctrl_c_leaves_it(
    narrow: Console, service: ServiceProcess, device: Callable[..., Device], tmp_path: Path
) -> None:
    c, iot = narrow, service.iot()
    target, devices = group_of(service, device, 4)
    job = unique("live")
    iot.create_job(
        jobId=job,
        targets=[target],
        document=DOC,
        abortConfig={
            "criteriaList": [
                {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 90, "minNumberOfExecutedThings": 2}
            ]
        },
    )
    report = tmp_path / "live.html"
    c.child.send(f"watch-job {job} --report {report}\r")
    assert wait_counts(c, iot, job)["queued"] == 4
    run_execution(devices[0], job, "SUCCEEDED")
    wait_counts(c, iot, job)
    run_execution(devices[1], job, "FAILED")
    wait_counts(c, iot, job)
    devices[2].start_next()  # stays IN_PROGRESS; the fourth stays QUEUED
    counts = wait_counts(c, iot, job)
    assert (counts["succeeded"], counts["failed"], counts["in_progress"], counts["queued"]) == (1, 1, 1, 1)
    screen = c.display()
    assert re.search(rf"^{re.escape(job)}  IN_PROGRESS", screen, re.M)
    assert "abort FAILED >= 90% of >= 2 executed: 1/2 = 50.0%; 8 more failures fire it" in screen
    assert re.search(r"elapsed \d+:\d\d", screen)
    # Redrawn in place at 80 columns: one frame, no line wrapped, the screen's width respected.
    assert screen.count(f"{job}  IN_PROGRESS") == 1
    frame = screen[screen.index(f"{job}  IN_PROGRESS") :].splitlines()
    assert all(len(line) < 80 for line in frame), frame
    assert len(STATUS_LINE.findall(screen)) == 8
    # Ctrl-C leaves the view: the summary and chart follow, then the prompt, and the console still answers.
    c.child.sendcontrol("c")
    c.expect(r"Left the view \(Ctrl-C\); the job is IN_PROGRESS\.")
    c.expect("Executions by status over time")
    c.expect(r"Report written to .*live\.html")
    c.expect("iot-jobs>")
    assert report_data(report)["summary"]["counts"]["IN_PROGRESS"] == 1
    out = c.run(f"describe-job {job}", "DescribeJob Response: ")
    assert json.loads(out)["job"]["status"] == "IN_PROGRESS"
    pending = c.run("get-pending-job-executions", "GetPendingJobExecutions Response: ")  # MQTT still up
    assert json.loads(pending)["queuedJobs"] == []
    assert c.quit() == 0
