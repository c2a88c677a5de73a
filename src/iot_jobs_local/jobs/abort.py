"""Abort (``abortConfig``): when enough of a job's things fail, the job is canceled.

UNCONFIRMED how AWS counts. Here, over each thing's latest execution of the job (the counts of
``jobProcessDetails``): the executed things are those whose execution reached SUCCEEDED, FAILED,
REJECTED or TIMED_OUT (a failure that is being retried counts once its retries are over); a
criterion is met when at least ``minNumberOfExecutedThings`` things were executed and the
failures of its type are at least ``thresholdPercentage`` percent of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .configs import AbortCriterion
from .model import ExecutionStatus, Job, JobStatus

#: UNCONFIRMED: the comment AWS records on a job canceled by its abort config; no reasonCode is set.
ABORT_COMMENT = "Job canceled by abort config"

EXECUTED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT)
_FAILURES = {
    "FAILED": (ExecutionStatus.FAILED,),
    "REJECTED": (ExecutionStatus.REJECTED,),
    "TIMED_OUT": (ExecutionStatus.TIMED_OUT,),
    "ALL": (ExecutionStatus.FAILED, ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT),
}


def should_abort(criteria: Sequence[AbortCriterion], counts: Mapping[ExecutionStatus, int]) -> bool:
    executed = sum(counts.get(s, 0) for s in EXECUTED)
    for criterion in criteria:
        if executed == 0 or executed < criterion.min_executed_things:
            continue
        failed = sum(counts.get(s, 0) for s in _FAILURES[criterion.failure_type])
        if failed * 100 >= criterion.threshold_percentage * executed:
            return True
    return False


def aborted(job: Job, now: float) -> Job:
    """The job, CANCELED by its abort config (IN_PROGRESS executions are left to finish)."""
    return replace(job, status=JobStatus.CANCELED, comment=ABORT_COMMENT, last_updated_at=now)
