"""Counts the whole fleet shares: devices per state, reports per status, and a few events.

Devices call :meth:`FleetStats.move` and :meth:`FleetStats.count`; nothing per device is kept
here, so the cost stays flat at any fleet size. :func:`status_line` is pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: Device states, in the order the status line shows them.
STATES = ("offline", "connecting", "idle", "busy")


@dataclass
class FleetStats:
    total: int
    states: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    #: Real seconds (monotonic, from the fleet's start) when the last device first connected.
    all_connected_at: float | None = None
    connected_once: int = 0

    def move(self, old: str | None, new: str) -> None:
        if old is not None:
            self.states[old] -= 1
        self.states[new] += 1

    def count(self, event: str, n: int = 1) -> None:
        self.events[event] += n

    @property
    def connected(self) -> int:
        return self.states["idle"] + self.states["busy"]

    @property
    def done(self) -> int:
        return sum(self.events[s] for s in ("SUCCEEDED", "FAILED", "REJECTED"))


def status_line(stats: FleetStats, elapsed: float) -> str:
    """``fleet 12 s: connected 180/200, busy 40, done 95 (SUCCEEDED 80, FAILED 10, REJECTED 5), ...``."""
    e = stats.events
    finals = ", ".join(f"{s} {e[s]}" for s in ("SUCCEEDED", "FAILED", "REJECTED") if e[s])
    extras = [
        f"{label} {e[key]}"
        for key, label in (
            ("hung", "hung"),
            ("gone", "gone"),
            ("dropped", "dropped"),
            ("reconnected", "reconnects"),
            ("resent", "requests resent"),
            ("refused", "refused"),
            ("errors", "connection errors"),
        )
        if e[key]
    ]
    waiting = stats.states["offline"] + stats.states["connecting"]
    parts = [
        f"fleet {elapsed:.0f} s: connected {stats.connected}/{stats.total}",
        f"busy {stats.states['busy']}",
        f"done {stats.done}" + (f" ({finals})" if finals else ""),
    ]
    if waiting:
        parts.insert(1, f"not yet {waiting}")
    return ", ".join(parts + extras)
