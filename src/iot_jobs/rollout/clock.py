"""The service's clock, estimated from the timestamps it reports.

Elapsed time and the estimate of the rest are in the service's time, so a service run N times
faster (``iot-jobs-local --time-scale N``) shows a 30-minute rollout as 30 minutes, in 30 real
seconds. Neither AWS nor the local service tells its time directly, but every change it makes is
stamped (an execution's ``lastUpdatedAt``, the job's): when the latest stamp moves, the service's
clock was at that stamp about when we saw it. Two such sightings far enough apart give the rate
of the service's clock against ours; until then it is taken as 1 (AWS's clock, the wall clock).

The HTTP ``Date`` of a response is the service's wall clock (exact for AWS). The local service
runs at least as fast as the wall clock unless it was slowed down (``--time-scale`` below 1), so
unless the rate seen is below 1 the ``Date`` is a lower bound too: a job found running for hours
without a change shows hours, not the time since its last stamp.

Pure: callers pass both times (``real`` from the monotonic clock, stamps from the responses).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Two sightings less than this many real seconds apart do not fix the rate (too noisy).
MIN_SPAN = 1.0
#: A rate this close to 1 is the wall clock seen through the polling's jitter (AWS, an unscaled service).
NEAR_ONE = (0.8, 1.25)


@dataclass(frozen=True)
class Sighting:
    real: float
    service: float


class ServiceClock:
    def __init__(self) -> None:
        self._latest: float | None = None
        #: The first change of the latest stamp we saw happen (not the state we found at start).
        self._first: Sighting | None = None
        self._last: Sighting | None = None
        #: The latest time handed out: the estimate never goes back (a new sighting may be behind it).
        self._shown: float | None = None
        #: The latest ``Date`` of a response, when we read it.
        self._wall: Sighting | None = None

    @property
    def scale(self) -> float:
        """Service seconds per real second (1 until two sightings at least ``MIN_SPAN`` apart)."""
        if self._first is None or self._last is None or self._last.real - self._first.real < MIN_SPAN:
            return 1.0
        rate = (self._last.service - self._first.service) / (self._last.real - self._first.real)
        return 1.0 if NEAR_ONE[0] <= rate <= NEAR_ONE[1] else max(1e-3, rate)

    def observe(self, real: float, stamp: float | None, wall: float | None = None) -> None:
        """The responses read at ``real`` carried ``stamp`` as their latest service time, and ``wall``
        as their HTTP ``Date``."""
        if wall is not None:
            self._wall = Sighting(real, wall)
        if stamp is None:
            return
        if self._latest is None:
            self._latest = stamp
            self._last = Sighting(real, stamp)  # a lower bound: the service may be well past it
            return
        if stamp > self._latest:
            self._latest = stamp
            sighting = Sighting(real, stamp)
            if self._first is None:
                self._first = sighting
            self._last = sighting

    def now(self, real: float) -> float | None:
        """The service's time at ``real`` (None before any stamp)."""
        if self._last is None or self._latest is None:
            return None
        value = max(self._latest, self._last.service + (real - self._last.real) * self.scale)
        if self._wall is not None and self.scale >= 1.0:
            value = max(value, self._wall.service + (real - self._wall.real))
        if self._shown is not None:
            value = max(value, self._shown)
        self._shown = value
        return value
