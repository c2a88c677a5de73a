"""The service's clock: real time, or a virtual time that runs N times faster (``serve --time-scale N``).

``now = t0 + (monotonic elapsed since start) * scale``. Every timestamp, deadline, rollout pace and
schedule of the service is read from one ``Clock``, so with ``--time-scale 600`` a one-minute
timeout fires after 0.1 s of real time, and timestamps run ten minutes ahead per real second.

``t0`` is the wall clock at start, or the latest time the state directory already recorded if that
is later: a service that ran fast and is restarted continues from where its clock was instead of
going back in time (so persisted deadlines keep their distance, and a restart does not make them
fire late or early). Nothing about the scale itself is persisted.

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
        self._t0 = start if not_before is None else max(start, not_before)

    def __call__(self) -> float:
        return self._t0 + (self._monotonic() - self._m0) * self.scale

    def real_delay(self, at: float) -> float:
        """Real seconds from now until the virtual time ``at`` (0 if it has passed)."""
        return max(0.0, (at - self()) / self.scale)
