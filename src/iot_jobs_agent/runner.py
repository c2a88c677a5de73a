"""Run one step's process: argv (never a shell), both output streams read at once, a timeout.

The process leads its own process group, so stopping it (timeout or cancellation) reaches whatever
it started: SIGTERM to the group, then SIGKILL after ``grace`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

TAIL = 1024


class Tail:
    """The last ``TAIL`` characters written to one stream, across every step of a job."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, chunk: str) -> None:
        self.text = (self.text + chunk)[-4 * TAIL :]

    def value(self) -> str:
        """Control characters (newlines included) become spaces: statusDetails values may hold none."""
        clean = "".join(" " if unicodedata.category(c).startswith("C") else c for c in self.text)
        return clean.strip()[-TAIL:]


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return f"timed out and was stopped ({signal_name(self.signal) if self.signal else 'exited'})"
        if self.signal is not None:
            return f"killed by signal {signal_name(self.signal)}"
        return f"exited with status {self.exit_code}"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


async def _pump(stream: asyncio.StreamReader | None, tail: Tail) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        tail.add(chunk.decode(errors="replace"))


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    _kill_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        _kill_group(process.pid, signal.SIGKILL)
        await process.wait()
    _kill_group(process.pid, signal.SIGKILL)  # anything the handler left behind in its group


async def run(
    argv: tuple[str, ...],
    env: dict[str, str],
    cwd: str,
    timeout: float | None,
    grace: float,
    stdout: Tail,
    stderr: Tail,
    on_start: Callable[[int], None],
) -> Outcome:
    """Run to the end, or until ``timeout``; on cancellation the process is stopped first."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        stderr.add(f"cannot start {argv[0]}: {exc.strerror or exc}\n")
        return Outcome(exit_code=127)
    on_start(process.pid)
    pumps = asyncio.gather(_pump(process.stdout, stdout), _pump(process.stderr, stderr))
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        timed_out = True
        await _stop(process, grace)
    except asyncio.CancelledError:
        await asyncio.shield(_stop(process, grace))
        pumps.cancel()
        raise
    _kill_group(process.pid, signal.SIGKILL)  # a daemon left in the group would hold the pipes open
    with contextlib.suppress(asyncio.CancelledError):
        await pumps
    code = process.returncode
    assert code is not None
    if code < 0:
        return Outcome(exit_code=None, signal=-code, timed_out=timed_out)
    return Outcome(exit_code=code, timed_out=timed_out)
