"""The console in a real pseudo-terminal: completion, history, toolbar, options reaching the service."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest

from repl_driver import ANSI


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class _AnsweringScreen(pyte.Screen):  # type: ignore[misc]
    """A terminal that answers cursor-position requests, so prompt_toolkit knows its height
    and draws the bottom toolbar (it hides the toolbar when the terminal cannot tell)."""

    def __init__(self, columns: int, lines: int, child: pexpect.spawn) -> None:
        super().__init__(columns, lines)
        self._child = child

    def write_process_input(self, data: str) -> None:
        self._child.send(data)


class Console:
    """``iot-jobs`` under pexpect with an emulated screen (fixed size, own HOME), the way pgcli's tests do it."""

    def __init__(
        self,
        service: Any,
        thing: str,
        home: Path,
        *extra: str,
        env_extra: dict[str, str] | None = None,
        columns: int = 200,
    ) -> None:
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "TERM": "xterm",
            "LINES": "40",
            "COLUMNS": str(columns),
        }
        env.pop("NO_COLOR", None)
        env.update(env_extra or {})
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "iot_jobs", "--local", "--state-dir", str(service.state_dir), "--thing", thing, *extra],
            env=env,
            encoding="utf-8",
            timeout=20,
            dimensions=(40, columns),
        )
        self.screen = _AnsweringScreen(columns, 40, self.child)
        self._stream = pyte.Stream(self.screen)
        self._log = open(home / f"pty-{thing}.log", "a")  # noqa: SIM115 - closed in close()
        self.child.logfile_read = self  # everything pexpect reads also feeds the emulated screen
        self.expect("iot-jobs>")

    def write(self, data: str) -> None:
        self._stream.feed(data)
        self._log.write(data)

    def flush(self) -> None:
        self._log.flush()

    def display(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_screen(self, pattern: str, timeout: float = 20, absent: str | None = None) -> re.Match[str]:
        """Wait until the emulated screen (what a user sees, highlighting and redraws applied) matches
        ``pattern`` (and, if given, no longer shows ``absent``)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.display()
            found = re.search(pattern, screen, re.MULTILINE)
            if found and not (absent and re.search(absent, screen, re.MULTILINE)):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} (without {absent!r}) not on screen:\n{screen}")
            with contextlib.suppress(pexpect.TIMEOUT):
                self.child.read_nonblocking(65536, timeout=0.1)

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        try:
            self.child.expect(pattern, timeout=timeout)
        except pexpect.TIMEOUT:
            raise AssertionError(f"{pattern!r} not seen; screen:\n{ANSI.sub('', self.child.before or '')}") from None
        match = self.child.match
        assert isinstance(match, re.Match)
        return match

    def run(self, line: str, until: str) -> str:
        """Type a line, return what follows ``until`` on the output line, and wait for the next prompt.

        Keys sent before the prompt is back would reach a terminal in cooked mode (where Ctrl-D is
        the EOF character, not a key), so every step waits for the prompt.
        """
        self.child.send(line + "\r")
        text = ANSI.sub("", self.expect(until + r"(.*?)\r\n").group(1))
        self.expect("iot-jobs>")
        return text

    def quit(self) -> int:
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF, timeout=20)
        self.child.close()
        return int(self.child.exitstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)
        self._log.close()


@pytest.fixture
def console_home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def console(service: Any, console_home: Path) -> Iterator[tuple[Console, str]]:
    thing = _unique("pty")
    c = Console(service, thing, console_home)
    try:
        yield c, thing
    finally:
        c.close()


def test_completes_commands_job_ids_and_statuses(console: tuple[Console, str], service: Any) -> None:
    c, thing = console
    job = _unique("Firmware")
    service.iot().create_job(jobId=job, targets=[service.thing_arn(thing)], document='{"v":2}')
    c.expect("Received NextJobExecutionChanged event: ")
    c.expect("iot-jobs>")
    # Each step: type a prefix, wait until the menu offers exactly what we expect, Tab, check the line.
    c.child.send("upd")
    c.wait_screen(r"update-job-execution +set the status", absent=r"describe-job ")
    c.child.send("\t")
    c.wait_screen(r"iot-jobs> update-job-execution$")
    c.child.send(" fIrM")  # job ids seen on the streams, matched case-insensitively
    c.wait_screen(re.escape(job) + " +job")
    c.child.send("\t")
    c.wait_screen(r"iot-jobs> update-job-execution " + re.escape(job) + "$")
    c.child.send(" in")
    c.wait_screen(r"IN_PROGRESS +status", absent=r"SUCCEEDED +status")
    c.child.send("\t")
    c.wait_screen(r"iot-jobs> update-job-execution " + re.escape(job) + " IN_PROGRESS$")
    c.child.send(" --inc")
    c.wait_screen(r"--include-document +option", absent=r"--details +option")
    c.child.send("\t")
    c.wait_screen(r"iot-jobs> update-job-execution " + re.escape(job) + " IN_PROGRESS --include-state$")
    out = c.run("", "UpdateJobExecution Response: ")
    assert json.loads(out)["executionState"]["status"] == "IN_PROGRESS"
    assert c.quit() == 0


def test_history_survives_a_restart_and_ctrl_r_finds_it(service: Any, console_home: Path) -> None:
    thing = _unique("hist")
    first = Console(service, thing, console_home)
    try:
        first.run("describe-job-execution $next --no-document", "DescribeJobExecution Response: ")
        assert first.quit() == 0
    finally:
        first.close()
    assert "describe-job-execution $next --no-document" in (console_home / "state" / "iot-jobs" / "history").read_text()
    second = Console(service, thing, console_home)
    try:
        second.child.sendcontrol("r")
        second.child.send("no-doc")
        second.wait_screen(r"reverse-i-search.*no-doc.*describe-job-execution \$next --no-document")
        second.child.send("\r")  # accept the search result: it becomes the line being edited
        second.wait_screen(r"iot-jobs> describe-job-execution \$next --no-document\s*$")
        second.child.send("\r")  # and run it
        second.expect("DescribeJobExecution Response: ")
        second.expect("iot-jobs>")
        # Fish-style suggestion: typing a prefix offers the rest of a past line; Right-arrow accepts it.
        second.child.send("describe-job-exe")
        # The suggestion, greyed, on the current prompt line (the last one on screen: the line run above
        # shows the same text); prompt_toolkit computes it asynchronously, so wait before Right-arrow.
        second.wait_screen(r"iot-jobs> describe-job-execution \$next --no-document(?![\s\S]*iot-jobs>)")
        second.child.send("\x1b[C")
        second.child.send("\r")
        second.expect("DescribeJobExecution Response: ")
        second.expect("iot-jobs>")
        assert second.quit() == 0
    finally:
        second.close()


def test_toolbar_counts_follow_events(console: tuple[Console, str], service: Any) -> None:
    c, thing = console
    iot = service.iot()
    jobs = [_unique("Tb") for _ in range(2)]
    for job in jobs:
        iot.create_job(jobId=job, targets=[service.thing_arn(thing)], document="{}")
    c.wait_screen(r"in progress 0, queued 2")
    c.run("start-next-pending-job-execution", "StartNextPendingJobExecution Response: ")
    c.run(f"update-job-execution {jobs[1]} IN_PROGRESS", "UpdateJobExecution Response: ")
    # Neither command publishes an event (AWS sends none for them); the console counts its own changes.
    c.wait_screen(r"in progress 2, queued 0 \| last event: JobExecutionsChanged \d+s ago")
    assert c.quit() == 0


def test_event_while_a_line_is_half_typed_leaves_the_line_intact(console: tuple[Console, str], service: Any) -> None:
    c, thing = console
    c.child.send("get-pending-job-exe")
    job = _unique("Half")
    service.iot().create_job(jobId=job, targets=[service.thing_arn(thing)], document='{"x":1}')
    c.expect("Received JobExecutionsChanged event: ")
    c.child.send("cutions\r")
    body = json.loads(ANSI.sub("", c.expect(r"GetPendingJobExecutions Response: (.*?)\r\n").group(1)))
    assert [j["jobId"] for j in body["queuedJobs"]] == [job]
    c.expect("iot-jobs>")
    assert c.quit() == 0


def test_options_reach_the_service(console: tuple[Console, str], service: Any, device: Any) -> None:
    """--details, --expected-version and --step-timeout are asserted from the service's side."""
    c, thing = console
    job = _unique("Opt")
    service.iot().create_job(jobId=job, targets=[service.thing_arn(thing)], document='{"x":1}')
    c.expect("Received NextJobExecutionChanged event: ")
    c.run(
        "start-next-pending-job-execution --details phase=download --step-timeout 7",
        "StartNextPendingJobExecution Response: ",
    )
    out = c.run(
        f'update-job-execution {job} IN_PROGRESS --details "phase=install now" pct=50 --expected-version 2 '
        "--step-timeout 15 --include-state",
        "UpdateJobExecution Response: ",
    )
    assert json.loads(out)["executionState"] == {
        "status": "IN_PROGRESS",
        "statusDetails": {"phase": "install now", "pct": "50"},
        "versionNumber": 3,
    }
    line = c.run(f"update-job-execution {job} SUCCEEDED --expected-version 2", "UpdateJobExecution failed: ")
    assert line.startswith("VersionMismatch")
    # Another client (the SDK, as a second device session of the same thing) sees what the service stored.
    observer = device(thing)
    execution = observer.describe(job).execution
    assert execution.status_details == {"phase": "install now", "pct": "50"}
    assert execution.version_number == 3
    stored = service.execution_row(job, thing)
    assert stored["step_timeout_minutes"] == 15
    assert c.quit() == 0


def test_pretty_output_is_coloured_on_a_terminal_unless_no_color(service: Any, console_home: Path) -> None:
    thing = _unique("pretty")
    c = Console(service, thing, console_home, "--output", "pretty")
    try:
        c.child.send("get-pending-job-executions\r")
        c.expect("GetPendingJobExecutions Response:\r\n")
        c.expect('\x1b\\[34m"inProgressJobs"')  # keys coloured on a terminal
        c.expect("iot-jobs>")
        assert c.quit() == 0
    finally:
        c.close()
    other = _unique("plain")
    plain = Console(service, other, console_home, "--output", "pretty", env_extra={"NO_COLOR": "1"})
    try:
        out = plain.run("get-pending-job-executions", "GetPendingJobExecutions Response:")
        assert out == ""  # pretty: the JSON starts on the next line
        screen = plain.display()
        assert '"inProgressJobs": []' in screen
        assert "\x1b[34m" not in (console_home / f"pty-{other}.log").read_text()
        assert plain.quit() == 0
    finally:
        plain.close()


def test_broker_restart_mid_session(service_factory: Any, console_home: Path) -> None:
    """Mosquitto dies: the console says so (one line, toolbar), reconnects by itself, streams come back."""
    svc = service_factory()
    thing = _unique("restart")
    c = Console(svc, thing, console_home)
    try:
        c.run("get-pending-job-executions", "GetPendingJobExecutions Response: ")
        (broker,) = svc.broker_pids()
        os.kill(broker, signal.SIGKILL)  # the service notices and starts Mosquitto again on the same ports
        c.expect("Disconnected from the broker")
        c.expect("Reconnected to localhost:")
        c.wait_screen(r" connected .* thing " + thing)
        job = _unique("AfterRestart")
        svc.iot().create_job(jobId=job, targets=[svc.thing_arn(thing)], document='{"again":true}')
        c.expect("Received NextJobExecutionChanged event: .*" + job)  # the streams are back
        out = c.run("start-next-pending-job-execution", "StartNextPendingJobExecution Response: ")
        assert json.loads(out)["execution"]["jobId"] == job
        assert c.quit() == 0
    finally:
        c.close()


def test_ctrl_c_cancels_a_stalled_command_and_typed_ahead_keys_wait_unechoed(
    service_factory: Any, console_home: Path
) -> None:
    """The broker is frozen (SIGSTOP), so a data-plane request gets no answer. Keys typed meanwhile are
    not echoed into the output and reach the next prompt; Ctrl-C cancels the request, the console is
    back at its prompt, still connected, and answers once the broker runs again."""
    svc = service_factory()
    thing = _unique("stall")
    c = Console(svc, thing, console_home)
    (broker,) = svc.broker_pids()
    log = console_home / "state" / "iot-jobs" / "iot-jobs.log"

    def started(count: int) -> None:
        """Wait until the console's log says the command has started for the ``count``-th time."""
        deadline = time.monotonic() + 20
        while log.read_text().count("running get-pending-job-executions") < count:
            assert time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(pexpect.TIMEOUT):
                c.child.read_nonblocking(65536, timeout=0.1)

    try:
        c.run("get-pending-job-executions", "GetPendingJobExecutions Response: ")
        os.kill(broker, signal.SIGSTOP)
        try:
            c.child.send("get-pending-job-executions\r")
            started(2)
            c.child.send("help")  # typed ahead while the command waits
            with contextlib.suppress(pexpect.TIMEOUT):
                c.child.read_nonblocking(65536, timeout=0.5)
            assert "help" not in c.display().split("iot-jobs> get-pending-job-executions")[-1], c.display()
        finally:
            os.kill(broker, signal.SIGCONT)
        c.expect("GetPendingJobExecutions Response: ")
        c.wait_screen(r"iot-jobs> help$")  # the typed-ahead keys, on the next prompt line
        c.run("", "Commands:")

        os.kill(broker, signal.SIGSTOP)
        try:
            c.child.send("get-pending-job-executions\r")
            started(3)
            c.child.sendcontrol("c")
            c.expect("Canceled get-pending-job-executions")
            c.expect("iot-jobs>")
            assert c.child.isalive()
        finally:
            os.kill(broker, signal.SIGCONT)
        c.wait_screen(r" connected .* thing " + thing)
        c.run("get-pending-job-executions", "GetPendingJobExecutions Response: ")
        assert c.quit() == 0
    finally:
        c.close()


@pytest.mark.parametrize("when", ["with-the-command", "after-the-response"])
def test_ctrl_d_right_after_a_response_is_not_lost(service: Any, console_home: Path, when: str) -> None:
    c = Console(service, _unique("eof"), console_home)
    try:
        if when == "with-the-command":
            c.child.send("get-pending-job-executions\r\x04")  # both in one write
            c.expect("GetPendingJobExecutions Response: ")
        else:
            c.child.send("get-pending-job-executions\r")
            c.expect("GetPendingJobExecutions Response: ")
            c.child.sendcontrol("d")  # before the prompt is back
        c.child.expect(pexpect.EOF, timeout=20)
        c.child.close()
        assert c.child.exitstatus == 0
    finally:
        c.close()


def test_toolbar_fits_80_columns(service: Any, console_home: Path) -> None:
    thing = _unique("narrow-toolbar-thing-name")
    c = Console(service, thing, console_home, columns=80)
    try:
        c.wait_screen(r" connected ")
        bottom = c.screen.display[-1].rstrip()
        assert len(bottom) <= 80
        assert "in progress ?, queued ?" in bottom or "queued" in bottom, bottom
        c.run("get-pending-job-executions", "GetPendingJobExecutions Response: ")
        c.wait_screen(r"queued 0")
        bottom = c.screen.display[-1].rstrip()
        assert bottom.lstrip().startswith("connected") and "queued 0" in bottom, bottom
        out = c.run("help", "Commands:")
        assert out == ""
        for line in c.display().splitlines():
            assert not line.endswith("-") or line.endswith(" -"), line  # help lines end on whole words
        assert c.quit() == 0
    finally:
        c.close()


def test_job_ids_complete_from_the_service_and_at_paths_from_disk(
    service: Any, console_home: Path, tmp_path: Path
) -> None:
    """A job created elsewhere, for another thing, is offered (ListJobs, fetched in the background);
    ``@`` completes a job document's path."""
    iot = service.iot()
    other = _unique("elsewhere")
    iot.create_thing(thingName=other)
    job = _unique("Remote")
    iot.create_job(jobId=job, targets=[service.thing_arn(other)], document="{}")
    docs = tmp_path / "docs-dir"
    docs.mkdir()
    (docs / "reboot.json").write_text('{"ToDo":"Reboot"}')
    c = Console(service, _unique("complete"), console_home)
    try:
        c.child.send("describe-job " + job[:10])
        c.wait_screen(re.escape(job) + " +job")
        c.child.send("\t")
        c.wait_screen(r"iot-jobs> describe-job " + re.escape(job) + "$")
        out = c.run("", "DescribeJob Response: ")
        assert json.loads(out)["job"]["jobId"] == job
        new = _unique("FromFile")
        c.child.send(f"create-job {new} @{docs}/reb")
        c.wait_screen(r"reboot\.json +file")
        c.child.send("\t")
        c.wait_screen(r"iot-jobs> create-job " + re.escape(f"{new} @{docs}/reboot.json") + "$")
        out = c.run("", "CreateJob Response: ")
        assert json.loads(out)["jobId"] == new
        assert c.quit() == 0
    finally:
        c.close()


@pytest.mark.parametrize("paged", [True, False])
def test_long_output_goes_through_the_pager(service: Any, console_home: Path, paged: bool) -> None:
    """Taller than the screen (40 rows): paged on a terminal; ``--no-pager`` prints it straight."""
    iot = service.iot()
    other = _unique("pager-target")
    iot.create_thing(thingName=other)
    for _ in range(8):  # ListJobs in pretty form: ~9 rows a job
        iot.create_job(jobId=_unique("Long"), targets=[service.thing_arn(other)], document="{}")
    extra = ("--output", "pretty") if paged else ("--output", "pretty", "--no-pager")
    pager_env = {"PAGER": "less -R -X -F -PsPAGER-PROMPT"}
    thing = _unique("pager")
    c = Console(service, thing, console_home, *extra, env_extra=pager_env)
    try:
        c.child.send("list-jobs\r")
        if paged:
            c.expect("PAGER-PROMPT")
            c.child.send("q")
        else:
            c.expect("ListJobs Response:")
        c.expect("iot-jobs>")
        c.run("get-pending-job-executions", "GetPendingJobExecutions Response:")
        c.flush()
        assert ("PAGER-PROMPT" in (console_home / f"pty-{thing}.log").read_text()) is paged
        assert c.quit() == 0
    finally:
        c.close()
