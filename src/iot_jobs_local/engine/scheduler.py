"""The scheduler: one asyncio task that fires timeouts, rollout batches and scheduled starts and ends.

It sleeps until the earliest persisted deadline (converted from the service's clock to real time),
or until the engine reports an earlier one, then asks the engine to fire what is due. Each firing
is its own transaction and its events go out through the engine's listeners after the commit.
The first pass, when the service starts, fires whatever became overdue while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from ..clock import Clock

log = logging.getLogger(__name__)

#: Real seconds to wait after a firing failed, so that a broken one does not spin.
ERROR_BACKOFF = 1.0


class Firing(Protocol):
    def fire_due(self) -> int: ...

    def next_due(self) -> float | None: ...

    def watch_deadlines(self, listener: Callable[[float], None]) -> None: ...


class Scheduler:
    def __init__(self, engine: Firing, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._woken = asyncio.Event()
        self._target: float | None = None
        engine.watch_deadlines(self.deadline_set)

    def deadline_set(self, at: float) -> None:
        """Engine listener: something is due at ``at``; wake up if that is before the current target."""
        if self._target is None or at < self._target:
            self._woken.set()

    async def run(self) -> None:
        while True:
            self._woken.clear()
            try:
                self._engine.fire_due()
                self._target = self._engine.next_due()
            except Exception:  # the service never dies on a bad firing; try again shortly
                log.exception("scheduler: firing failed")
                self._target = self._clock() + ERROR_BACKOFF * self._clock.scale
            delay = None if self._target is None else self._clock.real_delay(self._target)
            if delay == 0:
                await asyncio.sleep(0)  # more is due (a large batch): let requests in between passes
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._woken.wait(), delay)
