"""A job's life in time: scheduled start, paced rollout, maintenance windows, scheduled end.

A job with a ``jobExecutionsRolloutConfig`` or a ``schedulingConfig`` is *paced*: the things its
targets cover wait in a rollout queue and get their executions in batches, one batch a minute
(of the service's clock), only between ``startTime`` and ``endTime`` and, when maintenance windows
are given, only inside one. ``Pacing`` is what the service remembers of it between batches.
A job without either block gets every execution at once, as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .configs import MAX_PER_MINUTE, Rollout, Schedule, Window
from .model import Job, JobStatus

BATCH_INTERVAL = 60.0


@dataclass(frozen=True)
class Pacing:
    job_id: str
    #: When the next batch may go out (None: no batch planned).
    next_batch_at: float | None = None
    #: The scheduled end time was reached and its end behavior applied.
    ended: bool = False


def is_paced(rollout: Rollout | None, schedule: Schedule | None) -> bool:
    return rollout is not None or schedule is not None


def batch_size(rollout: Rollout | None, notified: int, succeeded: int) -> int | None:
    """How many things get an execution in the next batch (None: all that remain).

    Exponential rate: ``baseRatePerMinute`` times ``incrementFactor`` to the power of how many
    times the criterion's count was reached, capped by ``maximumPerMinute`` (else 1000).
    """
    if rollout is None:
        return None
    if rollout.base_rate is None:
        return rollout.maximum_per_minute or MAX_PER_MINUTE
    step = rollout.notified_step or rollout.succeeded_step or 1
    count = notified if rollout.notified_step else succeeded
    rate = rollout.base_rate * rollout.increment_factor ** (count // step)
    cap = rollout.maximum_per_minute or MAX_PER_MINUTE
    return max(1, min(cap, math.floor(rate)))


def starts(job: Job, schedule: Schedule | None, now: float) -> bool:
    """A SCHEDULED job whose start time has come."""
    if job.status is not JobStatus.SCHEDULED:
        return False
    return schedule is None or schedule.start is None or schedule.start <= now


def ends(job: Job, schedule: Schedule | None, pacing: Pacing, now: float) -> bool:
    """An unfinished job whose end time has come (its end behavior not applied yet)."""
    if pacing.ended or schedule is None or schedule.end is None:
        return False
    return job.status in (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED) and schedule.end <= now


def window_start(windows: Sequence[Window], now: float) -> float | None:
    """The start of the maintenance window ``now`` is in, else of the next one (None: no windows, or none ahead)."""
    if not windows:
        return None
    starts_at = []
    for window in windows:
        length = window.duration_minutes * 60
        current = window.start.next_at_or_after(now - length + 1)
        if current is not None:
            starts_at.append(current)
    return min(starts_at) if starts_at else None


def in_window(windows: Sequence[Window], now: float) -> bool:
    """Whether rollout may proceed at ``now``: inside a maintenance window, or there are none."""
    if not windows:
        return True
    for window in windows:
        current = window.start.next_at_or_after(now - window.duration_minutes * 60 + 1)
        if current is not None and current <= now:
            return True
    return False


def upcoming_windows(windows: Sequence[Window], now: float, count: int = 7) -> list[float]:
    """The start times of the next ``count`` maintenance windows (``scheduledJobRollouts``)."""
    found: set[float] = set()
    for window in windows:
        after = now
        for _ in range(count):
            start = window.start.next_at_or_after(after)
            if start is None:
                break
            found.add(start)
            after = start + 60
    return sorted(found)[:count]


def after_batch(previous: float, now: float) -> float:
    """When the batch after one due at ``previous`` (and sent at ``now``) is due: a minute on, at a
    steady pace, unless the service fell more than a minute behind."""
    following = previous + BATCH_INTERVAL
    return following if following > now else now + BATCH_INTERVAL


def wake_at(job: Job, schedule: Schedule | None, pacing: Pacing, rolling_out: bool) -> float | None:
    """The next time the service must look at the job again (None: never, unless something changes)."""
    times: list[float] = []
    if job.status is JobStatus.SCHEDULED and schedule is not None and schedule.start is not None:
        times.append(schedule.start)
    if job.status is JobStatus.IN_PROGRESS and rolling_out and pacing.next_batch_at is not None:
        times.append(pacing.next_batch_at)
    if (
        not pacing.ended
        and schedule is not None
        and schedule.end is not None
        and job.status in (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED)
    ):
        times.append(schedule.end)
    return min(times) if times else None


def ended(pacing: Pacing) -> Pacing:
    return replace(pacing, ended=True, next_batch_at=None)
