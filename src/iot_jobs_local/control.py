"""Run a service in the background and manage it: ``start``, ``status``, ``stop``, ``reset``, ``logs``.

A background service is a ``serve`` process in its own session (no controlling terminal, so
neither Ctrl-C nor closing the terminal that started it reaches it), with its output appended to
``service.log`` in the state directory. ``start`` returns once it is ready and the ``start``
process then exits, so the service is nobody's child: the console that started it can quit and
every other console and device keeps the broker. It runs until ``stop``.

Only the standard library and ``state_dir`` are imported here: these commands start fast.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from .state_dir import RunInfo, StateDir, StateLock, notice_on_stderr

#: What ``reset`` removes: the service's own files, nothing else a user may keep in the directory.
#: ``ports.json`` and ``service.log`` stay: a reset service comes back on the same ports.
STATE_ENTRIES = (
    "jobs.sqlite3",
    "jobs.sqlite3-wal",
    "jobs.sqlite3-shm",
    "jobs.sqlite3-journal",
    "pki",
    "devices",
    "broker",
    "credentials.json",
    "service.json",
    "service.json.tmp",
    "ports.json.tmp",
)

#: Exit status of ``status`` when no service runs (as ``systemctl status`` and LSB init scripts).
NOT_RUNNING = 3


class ControlError(Exception):
    """One line (or a log tail) for the user; the command exits 1."""


def _log_tail(path: Path, offset: int, lines: int = 15) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n  ".join(text.splitlines()[-lines:]) or "(nothing logged)"


def start(state: StateDir, serve_args: Sequence[str], timeout: float = 30.0) -> tuple[RunInfo, bool]:
    """Start ``serve serve_args...`` in the background and wait until it is ready.

    Returns (its run info, True), or (the running one's, False) if one already runs on ``state``.
    """
    running = state.read_run_info()
    if running is not None:
        return running, False
    state.create()
    offset = state.log_path.stat().st_size if state.log_path.exists() else 0
    command = [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state.root), "serve", *serve_args]
    with open(state.log_path, "ab") as log:
        log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} started in the background\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while (info := state.read_run_info()) is None or info.pid != process.pid:
        if process.poll() is not None:
            raise ControlError(f"iot-jobs-local failed to start:\n  {_log_tail(state.log_path, offset)}")
        if time.monotonic() > deadline:
            process.terminate()
            raise ControlError(f"iot-jobs-local did not start within {timeout:g} s (log: {state.log_path})")
        time.sleep(0.05)  # polling the child's readiness file: it is not ours to wait on otherwise
    return info, True


def _wait_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (it is not our child: a pidfd, else /proc)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
            return bool(readable)
        finally:
            os.close(fd)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # no pidfd on this system: poll /proc
    return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def stop(state: StateDir, timeout: float = 15.0) -> RunInfo | None:
    """Stop the service running on ``state`` (SIGTERM: it stops the broker and closes the database
    in order). Returns what ran, or None if nothing did. Raises if it does not stop in time."""
    info = state.read_run_info()
    if info is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    if not _wait_exit(info.pid, timeout):
        raise ControlError(
            f"iot-jobs-local (pid {info.pid}) did not stop within {timeout:g} s; "
            f"see {state.log_path} or stop it with: kill -9 {info.pid}"
        )
    return info


def reset(state: StateDir, *, stop_first: bool, keep_credentials: bool = False) -> list[str]:
    """Remove the state (jobs, things, certificates, credentials): the next start begins afresh.

    Refused while a service runs on it, unless ``stop_first`` (then it is stopped first). With
    ``keep_credentials`` the local access key survives (clients made before keep signing with it).
    Returns what was removed. Holds the state directory's lock throughout: a service starting
    meanwhile waits and begins on the fresh state (one that is starting now is waited for first).
    """
    with StateLock(state, "iot-jobs-local reset").held(notice=notice_on_stderr):
        return _reset(state, stop_first, keep_credentials)


def _reset(state: StateDir, stop_first: bool, keep_credentials: bool) -> list[str]:
    info = state.read_run_info()
    if info is not None:
        if not stop_first:
            clients = f", {len(info.clients)} device client(s) connected" if info.clients else ""
            raise ControlError(
                f"iot-jobs-local runs on {state.root} (pid {info.pid}{clients}); "
                "stop it first (iot-jobs-local stop) or use: iot-jobs-local reset --stop"
            )
        stop(state)
    removed = []
    for name in STATE_ENTRIES:
        if keep_credentials and name == "credentials.json":
            continue
        path = state.root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    if state.root.is_dir():
        with open(state.log_path, "a", encoding="utf-8") as log:
            log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} state reset\n")
    return removed


def status_lines(state: StateDir, info: RunInfo, now: float | None = None) -> Iterator[str]:
    now = time.time() if now is None else now
    yield f"iot-jobs-local is running (pid {info.pid})"
    yield f"  state directory: {state.root}"
    yield f"  MQTT (devices):  mqtts://localhost:{info.mqtt_port}"
    yield f"  HTTP API:        {info.http_endpoint}"
    yield f"  region/account:  {info.region} / {info.account}"
    if info.time_scale != 1:
        yield f"  time scale:      {info.time_scale:g}x real time"
    yield f"  uptime:          {format_duration(now - info.started_at) if info.started_at else 'unknown'}"
    yield f"  clients:         {len(info.clients)} connected" + (f": {', '.join(info.clients)}" if info.clients else "")
    if state.log_path.exists():
        yield f"  log:             {state.log_path}"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    shown = [f"{value} {unit}" for value, unit in parts if value]
    return " ".join([*shown, f"{secs} s"]) if not days else " ".join(shown)


def print_log(path: Path, out: TextIO, lines: int | None, follow: bool, poll: float = 0.2) -> None:
    """Print the log (its last ``lines`` lines if given); with ``follow``, keep printing what is
    appended until interrupted (as ``tail -f``)."""
    try:
        log = open(path, "rb")  # noqa: SIM115 - closed below, kept open while following
    except FileNotFoundError:
        if not follow:
            raise ControlError(f"no log yet at {path} (a service started in the background writes it)") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        log = open(path, "rb")  # noqa: SIM115
    with log:
        text = log.read().decode(errors="replace")
        if lines is not None:
            text = "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""
        out.write(text)
        out.flush()
        while follow:
            chunk = log.read()
            if chunk:
                out.write(chunk.decode(errors="replace"))
                out.flush()
            else:
                time.sleep(poll)  # tail -f: a file gives no readiness signal to wait on
