"""Retries (``jobExecutionsRetryConfig``): when a FAILED or TIMED_OUT execution is queued again.

A retry is a new QUEUED execution of the same job on the same thing, with the next execution
number and ``retryAttempt`` + 1 (UNCONFIRMED mechanics; the reference recommends them). The
budget of a failure type is its own criterion's ``numberOfRetries``; an ``ALL`` criterion caps
the retries of both types together (UNCONFIRMED how AWS combines a specific criterion with
``ALL``: here both must allow the retry). REJECTED, CANCELED and REMOVED are never retried.
"""

from __future__ import annotations

from collections.abc import Sequence

from .configs import MAX_RETRIES_TOTAL, RetryCriterion
from .model import Execution, ExecutionStatus

RETRYABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT})


def chain(executions: Sequence[Execution]) -> list[Execution]:
    """The current attempt and the earlier attempts it retries, oldest first.

    ``executions`` are every execution of one job on one thing. The chain starts at the latest
    first attempt (``retryAttempt`` 0): a thing that joins a CONTINUOUS job again starts afresh.
    """
    ordered = sorted(executions, key=lambda e: e.execution_number)
    start = 0
    for index, execution in enumerate(ordered):
        if execution.retry_attempt == 0:
            start = index
    return ordered[start:]


def should_retry(criteria: Sequence[RetryCriterion], attempts: Sequence[Execution]) -> bool:
    """Whether the last of ``attempts`` (a ``chain``, ending in the failure) is retried."""
    if not attempts or not criteria:
        return False
    failure = attempts[-1].status
    if failure not in RETRYABLE:
        return False
    earlier = [e.status for e in attempts[:-1]]
    if len(earlier) >= MAX_RETRIES_TOTAL:
        return False
    budgets = {c.failure_type: c.retries for c in criteria}
    specific = budgets.get(failure.value)
    overall = budgets.get("ALL")
    if specific is None and overall is None:
        return False
    if specific is not None and earlier.count(failure) >= specific:
        return False
    return overall is None or sum(1 for s in earlier if s in RETRYABLE) < overall


def retried(failed: Execution, seq: int, now: float) -> Execution:
    """The new QUEUED execution that retries ``failed``."""
    return Execution(
        job_id=failed.job_id,
        thing_name=failed.thing_name,
        execution_number=failed.execution_number + 1,
        status=ExecutionStatus.QUEUED,
        queued_at=now,
        last_updated_at=now,
        seq=seq,
        retry_attempt=failed.retry_attempt + 1,
    )
