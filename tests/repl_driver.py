"""Drive the real ``iot-jobs`` program: piped stdin (scripted mode) or a pseudo-terminal (pexpect)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


class PipedRepl:
    """``iot-jobs`` with stdin a pipe: one command per line, output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.transcript: list[str] = []
        #: The exit status the test expects (scripted use: 1 once a command failed).
        self.expected_code = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "iot_jobs", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def next_line(self, timeout: float = 15.0) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout:.0f} s; transcript:\n{self.dump()}") from None
        if line is None:
            raise AssertionError(f"iot-jobs exited ({self.process.wait()}); transcript:\n{self.dump()}")
        self.transcript.append(line)
        return line

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """Read lines until one starts with ``prefix``; return the whole line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line starting {prefix!r}; transcript:\n{self.dump()}")

    def lines_until(self, prefix: str, timeout: float = 15.0) -> list[str]:
        """All lines up to and including the first that starts with ``prefix``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.1, deadline - time.monotonic()))
            seen.append(line)
            if line.startswith(prefix):
                return seen

    def dump(self) -> str:
        return "\n".join(self.transcript)

    def close(self, timeout: float = 15.0) -> int:
        if self.process.stdin and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        while True:  # keep what it printed last in the transcript
            try:
                line = self._lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.transcript.append(line)
        return code


def payload(line: str) -> Any:
    """The JSON after ``... Response: `` or ``... event: ``."""
    return json.loads(line.split(": ", 1)[1])
