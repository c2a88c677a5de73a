"""The two timers of an IN_PROGRESS execution, as deadlines (epoch seconds of the service's clock).

- The in-progress timer (``timeoutConfig.inProgressTimeoutInMinutes``) starts when the execution
  enters IN_PROGRESS and is never moved afterwards.
- The step timer (``stepTimeoutInMinutes`` on start-next or update) starts when it is given; a new
  value replaces it, -1 cancels it, leaving it out keeps it running. It never ends after the
  in-progress deadline (AWS docs: a 20-minute job timer started at 12:00 and a 9-minute step
  timer set at 12:13 still time out at 12:20).

Whichever comes first moves the execution to TIMED_OUT. Terminal executions have no timers.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .model import Execution, ExecutionStatus

#: ``stepTimeoutInMinutes`` value that cancels the current step timer (UpdateJobExecution only).
CANCEL_STEP = -1


def started(execution: Execution, in_progress_minutes: int | None, now: float) -> Execution:
    """Arm the in-progress timer of an execution that has just entered IN_PROGRESS."""
    if in_progress_minutes is None or execution.in_progress_deadline is not None:
        return execution
    return replace(execution, in_progress_deadline=now + in_progress_minutes * 60)


def step(execution: Execution, step_minutes: int | None, now: float) -> Execution:
    """Apply a request's ``stepTimeoutInMinutes``: None keeps, -1 cancels, n replaces the step timer."""
    if step_minutes is None:
        return execution
    if step_minutes == CANCEL_STEP:
        return replace(execution, step_deadline=None)
    deadline = now + step_minutes * 60
    if execution.in_progress_deadline is not None:
        deadline = min(deadline, execution.in_progress_deadline)
    return replace(execution, step_deadline=deadline)


def cleared(execution: Execution) -> Execution:
    """No timers (the execution reached a terminal status)."""
    if execution.in_progress_deadline is None and execution.step_deadline is None:
        return execution
    return replace(execution, in_progress_deadline=None, step_deadline=None)


def is_due(execution: Execution, now: float) -> bool:
    deadline = execution.deadline
    return execution.status is ExecutionStatus.IN_PROGRESS and deadline is not None and deadline <= now


def seconds_left(execution: Execution, now: float) -> int | None:
    """``approximateSecondsBeforeTimedOut``: whole seconds until the deadline while a timer is armed."""
    deadline = execution.deadline
    if deadline is None or execution.status is not ExecutionStatus.IN_PROGRESS:
        return None
    return max(0, math.ceil(deadline - now))
