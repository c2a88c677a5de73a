"""The state directory's lock: a service starting while a ``reset`` runs waits for it (and then
starts on the fresh state), a ``reset`` while a service starts waits for the start; a lock held too
long is one line."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from iot_jobs_local.state_dir import StateDir, StateLock, StateLocked
from iot_jobs_local.testing import terminate

TIMEOUT = 30.0


class Lines:
    """The merged output of a process, line by line, waited on with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, fragment: str, timeout: float = TIMEOUT) -> str:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {fragment!r} within {timeout} s; output: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the process ended without a line with {fragment!r}; output: {self.seen}")
            self.seen.append(line)
            if fragment in line:
                return line


def launch(state: Path, *args: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, Lines(process)


def test_a_service_starting_during_a_reset_waits_for_it(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    reset = StateLock(state, "a test's reset").acquire()
    process, lines = launch(state.root, "serve", "--mqtt-port", "0", "--http-port", "0")
    try:
        lines.wait_for(f"waiting for a test's reset (pid {os.getpid()}) to finish on {state.root}")
        assert state.read_run_info() is None and not state.ca_cert.exists()  # it read nothing yet
        reset.release()
        lines.wait_for("iot-jobs-local ready:")
        assert state.read_run_info() is not None
        # Once ready it holds the lock no more: a reset gets it (and refuses, as a service runs).
        result = subprocess.run(
            [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state.root), "reset"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 1 and "stop it first" in result.stderr, result.stderr
    finally:
        reset.release()
        terminate(process, 10)


def test_a_reset_during_a_start_waits_for_the_start(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    starting = StateLock(state, "a starting iot-jobs-local").acquire()
    process, lines = launch(state.root, "reset", "--stop")
    try:
        lines.wait_for("iot-jobs-local: waiting for a starting iot-jobs-local (pid")
        assert process.poll() is None
        starting.release()
        assert process.wait(TIMEOUT) == 0, lines.seen
        lines.wait_for(f"reset {state.root}")
    finally:
        starting.release()
        terminate(process, 10)


def test_a_lock_held_too_long_is_one_line(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    with StateLock(state, "iot-jobs-local reset").held(), pytest.raises(StateLocked) as raised:
        StateLock(state, "a starting iot-jobs-local").acquire(timeout=0.2)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{state.root} is busy: iot-jobs-local reset (pid ")
    assert message.endswith("did not finish within 0.2 s; try again")
    # Released: the next one takes it at once.
    StateLock(state, "a starting iot-jobs-local").acquire(timeout=0).release()
