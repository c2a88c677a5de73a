"""The scheduler task: it sleeps until the earliest deadline, is woken by an earlier one, and keeps
going when a firing fails. A fake engine on a fast clock; waits are for events, with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from iot_jobs_local.clock import Clock
from iot_jobs_local.engine.scheduler import Scheduler

SCALE = 10_000.0  # a virtual minute lasts 6 ms


class FakeEngine:
    """Deadlines in a list; ``fire_due`` fires (and records) the ones that have passed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.deadlines: list[float] = []
        self.fired: list[float] = []
        self.fired_event = asyncio.Event()
        self.fail_next = False
        self.listener: Callable[[float], None] | None = None

    def watch_deadlines(self, listener: Callable[[float], None]) -> None:
        self.listener = listener

    def add(self, at: float) -> None:
        self.deadlines.append(at)
        assert self.listener is not None
        self.listener(at)

    def fire_due(self) -> int:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a broken firing")
        now = self.clock()
        due = [d for d in self.deadlines if d <= now]
        for d in due:
            self.deadlines.remove(d)
            self.fired.append(d)
        if due:
            self.fired_event.set()
        return len(due)

    def next_due(self) -> float | None:
        return min(self.deadlines) if self.deadlines else None


async def _wait_fired(engine: FakeEngine, count: int) -> None:
    while len(engine.fired) < count:
        engine.fired_event.clear()
        await asyncio.wait_for(engine.fired_event.wait(), 5)


def test_fires_in_order_and_an_earlier_deadline_wakes_it() -> None:
    async def main() -> list[float]:
        clock = Clock(SCALE)
        engine = FakeEngine(clock)
        task = asyncio.create_task(Scheduler(engine, clock).run())
        try:
            now = clock()
            engine.add(now + 3600)  # an hour: 0.36 s
            await asyncio.sleep(0)
            engine.add(now + 60)  # earlier: must not wait for the hour
            await _wait_fired(engine, 1)
            assert engine.fired == [now + 60] and clock() < now + 3600
            await _wait_fired(engine, 2)
            assert clock() >= now + 3600
            return engine.fired
        finally:
            task.cancel()

    fired = asyncio.run(main())
    assert fired == sorted(fired)


def test_a_failing_firing_is_retried() -> None:
    async def main() -> None:
        clock = Clock(SCALE)
        engine = FakeEngine(clock)
        engine.fail_next = True
        engine.deadlines.append(clock() - 1)  # overdue before the scheduler starts
        task = asyncio.create_task(Scheduler(engine, clock).run())
        try:
            await _wait_fired(engine, 1)
        finally:
            task.cancel()

    asyncio.run(main())
