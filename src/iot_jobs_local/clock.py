"""The service's clock: real time, or a virtual time that runs N times faster (``serve --time-scale N``).

``now = t0 + (monotonic elapsed since start) * scale``. Every timestamp, deadline, rollout pace and
schedule of the service is read from one ``Clock``, so with ``--time-scale 600`` a one-minute
timeout fires after 0.1 s of real time, and timestamps run ten minutes ahead per real second.

``t0`` is the wall clock at start. A sped-up service (scale above 1) that is restarted sped up
continues from the latest time the state directory recorded if that is later, instead of going
back in time (so persisted deadlines keep their distance). A service at real time (scale 1) always
runs on the wall clock, even after a sped-up run left the state's times ahead of it: otherwise
its "now" would stay hours ahead of the wall clock for ever, and every rule relative to now (a
schedule at least 30 minutes ahead, SigV4-signed timestamps from clients) would be judged against
a time nobody else has. ``ahead_by`` says how far the state had run ahead, for the start-up log.
Nothing about the scale itself is persisted.

The clock is a plain object over injected time sources: tests drive it with fake ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """A callable returning the current (virtual) epoch seconds."""

    def __init__(
        self,
        scale: float = 1.0,
        *,
        not_before: float | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.scale = scale
        self._monotonic = monotonic
        self._m0 = monotonic()
        start = wall()
        #: How far the state's recorded time was ahead of the wall clock at start (0 if not).
        self.ahead_by = 0.0 if not_before is None else max(0.0, not_before - start)
        self._t0 = start + self.ahead_by if scale != 1 else start

    def __call__(self) -> float:
        return self._t0 + (self._monotonic() - self._m0) * self.scale

    def real_delay(self, at: float) -> float:
        """Real seconds from now until the virtual time ``at`` (0 if it has passed)."""
        return max(0.0, (at - self()) / self.scale)
