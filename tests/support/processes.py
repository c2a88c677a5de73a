"""Processes that need not be our children: waiting for their exit, and what ``/proc`` says of them."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import subprocess
import threading
import time
from pathlib import Path


class ExitWatch:
    """Watch a process that need not be our child, so that we can wait for its exit without polling.

    Open it while the process runs (``ExitWatch(pid)``); ``wait(timeout)`` returns True once the process
    has terminated. It holds a pidfd, which becomes readable when the process exits (a zombie counts:
    in a container an orphan's new parent may never reap it), and which is immune to pid reuse.
    Falls back to reading ``/proc/<pid>/stat`` where pidfds are unavailable.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)

    def wait(self, timeout: float) -> bool:
        if self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            return bool(readable)
        deadline = time.monotonic() + timeout
        while process_state(self.pid) not in (None, "Z", "X"):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)  # fallback polling of a foreign process, not test synchronisation
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def process_parent(pid: int) -> int | None:
    """The parent pid of ``pid`` (from ``/proc``), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from ``/proc`` (``R``, ``S``, ``Z``...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pids_with_cmdline(fragment: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and process_state(int(entry.name)) not in (None, "Z", "X"):
            found.append(int(entry.name))
    return found


def copy_lines(process: subprocess.Popen[str], log_path: Path, lines: queue.Queue[str]) -> threading.Thread:
    """Copy ``process``'s stderr into ``log_path`` and ``lines`` as it comes (a thread, started); an
    empty string on ``lines`` marks the end of the output, so a waiter wakes up when the process ends."""
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the reader thread

    def copy() -> None:
        assert process.stderr is not None
        try:
            for line in process.stderr:
                log.write(line)
                log.flush()
                lines.put(line.rstrip("\n"))
        finally:
            log.close()
            lines.put("")

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    return reader
