"""What both benchmark scripts need to start children and to read CPU time from /proc (Linux).

Imported as a sibling module: the scripts run as ``python benchmarks/<script>.py``, which puts
this directory first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die_with_parent() -> None:
    """preexec_fn: SIGTERM the child if this benchmark dies (even by SIGKILL); own session."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    os.setsid()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK
