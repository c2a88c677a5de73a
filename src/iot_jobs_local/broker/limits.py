"""How many device connections the broker can hold: open-file limits, checked and raised at start.

Mosquitto holds one descriptor per connection, and inherits the service's limit (it is the
service's child), so the service raises its own soft ``RLIMIT_NOFILE`` to what ``max_devices``
needs, up to the hard limit, before it starts the broker. A number of devices asked for that the
hard limit cannot give is refused at start, in one line; the default is lowered to what fits,
with a warning. Mosquitto's own ``max_connections`` is set to the same number, so the broker
refuses the next device cleanly instead of failing to accept it.

Not configurable here, and documented in docs/local-service.md: Mosquitto listens with a backlog
of 100 (hard-coded in 2.0), which the kernel caps at ``net.core.somaxconn``: more than ~100
connections in their handshake at once overflow it, and those clients retry their SYN after 1 s.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Device connections the service is configured for unless told otherwise (``--max-devices``).
DEFAULT_MAX_DEVICES = 10_000
#: Descriptors besides the devices' own: listeners, the service's connections, log, plugin
#: sockets, the HTTP API's clients, SQLite files, the key workers' pipes.
RESERVED_FDS = 256
#: Mosquitto's listen backlog (``listen(sock, 100)`` in its net.c).
MOSQUITTO_BACKLOG = 100
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


class LimitError(RuntimeError):
    """The OS cannot give the broker the descriptors the device count needs."""


@dataclass(frozen=True)
class Capacity:
    max_devices: int
    soft_limit: int
    hard_limit: int


def needed_fds(max_devices: int) -> int:
    return max_devices + RESERVED_FDS


def fitting_devices(hard_limit: int) -> int:
    return max(0, hard_limit - RESERVED_FDS)


def plan(max_devices: int | None, soft: int, hard: int) -> tuple[int, int]:
    """(devices, soft limit to set) for ``max_devices`` (None: the default, lowered to what fits)."""
    unlimited = hard == resource.RLIM_INFINITY
    if max_devices is None:
        devices = DEFAULT_MAX_DEVICES if unlimited else min(DEFAULT_MAX_DEVICES, fitting_devices(hard))
    else:
        devices = max_devices
        if not unlimited and needed_fds(devices) > hard:
            raise LimitError(
                f"--max-devices {devices} needs {needed_fds(devices)} open files but the hard limit is {hard} "
                f"(ulimit -Hn): raise it (as root: ulimit -Hn {needed_fds(devices)}, or LimitNOFILE= in a "
                f"systemd unit) or ask for at most {fitting_devices(hard)} devices"
            )
    return devices, max(soft, needed_fds(devices)) if soft != resource.RLIM_INFINITY else soft


def check(max_devices: int | None) -> None:
    """Raise ``LimitError`` if this process's hard limit cannot give ``max_devices`` connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    plan(max_devices, soft, hard)


def ensure(max_devices: int | None) -> Capacity:
    """Raise the soft descriptor limit for ``max_devices`` connections; the devices configured."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    devices, wanted = plan(max_devices, soft, hard)
    if max_devices is None and devices < DEFAULT_MAX_DEVICES:
        log.warning(
            "the open-file hard limit (%d) leaves room for %d device connections, not %d: raise it "
            "(ulimit -Hn) for more",
            hard,
            devices,
            DEFAULT_MAX_DEVICES,
        )
    if wanted != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    _check_backlog()
    return Capacity(devices, wanted, hard)


def _check_backlog() -> None:
    try:
        somaxconn = int(SOMAXCONN.read_text())
    except (OSError, ValueError):
        return
    if somaxconn < MOSQUITTO_BACKLOG:
        log.warning(
            "net.core.somaxconn is %d: the broker's listen queue holds only that many connections "
            "being set up (Mosquitto asks for %d); ramp devices up slower, or raise it with sysctl",
            somaxconn,
            MOSQUITTO_BACKLOG,
        )
