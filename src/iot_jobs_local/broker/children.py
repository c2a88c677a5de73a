"""Child processes that must not outlive their parent."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Use as ``preexec_fn``: the kernel sends SIGTERM to the child when its parent dies (Linux).

    The child also gets its own session, so a Ctrl-C typed at the parent's terminal reaches the
    parent only, which then stops the child in order.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's orderly shutdown still stops the child
    os.setsid()
