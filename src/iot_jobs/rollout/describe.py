"""DescribeJob (and ListJobExecutionsForJob) responses -> one immutable ``Snapshot``.

boto3 hands timestamps back as datetimes; they become epoch seconds here so the rest of the view
does arithmetic on plain floats. Nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Execution statuses in the order the view shows them, with their ``jobProcessDetails`` key.
STATUSES: tuple[tuple[str, str], ...] = (
    ("QUEUED", "numberOfQueuedThings"),
    ("IN_PROGRESS", "numberOfInProgressThings"),
    ("SUCCEEDED", "numberOfSucceededThings"),
    ("FAILED", "numberOfFailedThings"),
    ("REJECTED", "numberOfRejectedThings"),
    ("TIMED_OUT", "numberOfTimedOutThings"),
    ("REMOVED", "numberOfRemovedThings"),
    ("CANCELED", "numberOfCanceledThings"),
)
STATUS_NAMES = tuple(name for name, _key in STATUSES)
#: A job in one of these is done; DELETION_IN_PROGRESS ends when DescribeJob no longer finds it.
TERMINAL_JOB_STATUSES = ("COMPLETED", "CANCELED")


@dataclass(frozen=True)
class RateConfig:
    """``jobExecutionsRolloutConfig``: a fixed ``maximumPerMinute``, or an exponential rate."""

    maximum_per_minute: int | None = None
    base_rate: int | None = None
    increment_factor: float = 1.0
    notified_step: int | None = None
    succeeded_step: int | None = None


@dataclass(frozen=True)
class AbortRule:
    failure_type: str  # FAILED, REJECTED, TIMED_OUT or ALL
    threshold_percentage: float
    min_executed_things: int


@dataclass(frozen=True)
class RetryRule:
    failure_type: str  # FAILED, TIMED_OUT or ALL
    retries: int


@dataclass(frozen=True)
class JobConfig:
    target_selection: str = "SNAPSHOT"
    targets: tuple[str, ...] = ()
    rollout: RateConfig | None = None
    abort: tuple[AbortRule, ...] = ()
    retry: tuple[RetryRule, ...] = ()
    in_progress_timeout_minutes: int | None = None


@dataclass(frozen=True)
class RetryCount:
    """What ListJobExecutionsForJob shows of retries: per thing, its highest ``retryAttempt``."""

    total: int = 0
    things: int = 0


@dataclass(frozen=True)
class Snapshot:
    job_id: str
    status: str
    counts: Mapping[str, int]
    config: JobConfig
    #: ``processingTargets`` is present: things still wait for their execution (rollout not over).
    rolling_out: bool
    created_at: float | None
    last_updated_at: float | None
    completed_at: float | None
    comment: str | None = None
    reason_code: str | None = None
    force_canceled: bool = False
    retries: RetryCount | None = None
    #: The latest service timestamp in the responses (for the service-clock estimate).
    latest_stamp: float | None = None
    #: The DescribeJob response's HTTP ``Date`` (the service's wall clock), if it had one.
    reported_at: float | None = None

    @property
    def notified(self) -> int:
        """Things that have an execution of the job (every count of ``jobProcessDetails``)."""
        return sum(self.counts.values())


def seconds(value: Any) -> float | None:
    """A boto3 timestamp (datetime) or epoch number -> epoch seconds."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def http_date(response: Mapping[str, Any]) -> float | None:
    """The ``Date`` header boto3 keeps in ``ResponseMetadata`` (whole seconds), as epoch seconds."""
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    text = headers.get("date")
    if not isinstance(text, str):
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def job_config(job: Mapping[str, Any]) -> JobConfig:
    block = job.get("jobExecutionsRolloutConfig")
    rate: RateConfig | None = None
    if isinstance(block, Mapping):
        exponential = block.get("exponentialRate")
        maximum = block.get("maximumPerMinute")
        if isinstance(exponential, Mapping):
            criteria = exponential.get("rateIncreaseCriteria") or {}
            rate = RateConfig(
                maximum_per_minute=int(maximum) if maximum is not None else None,
                base_rate=int(exponential.get("baseRatePerMinute", 1)),
                increment_factor=float(exponential.get("incrementFactor", 1.0)),
                notified_step=_int_or_none(criteria.get("numberOfNotifiedThings")),
                succeeded_step=_int_or_none(criteria.get("numberOfSucceededThings")),
            )
        else:
            rate = RateConfig(maximum_per_minute=int(maximum) if maximum is not None else None)
    abort = tuple(
        AbortRule(
            str(c.get("failureType", "ALL")), float(c["thresholdPercentage"]), int(c["minNumberOfExecutedThings"])
        )
        for c in (job.get("abortConfig") or {}).get("criteriaList") or []
        if c.get("action", "CANCEL") == "CANCEL"
    )
    retry = tuple(
        RetryRule(str(c.get("failureType", "ALL")), int(c.get("numberOfRetries", 0)))
        for c in (job.get("jobExecutionsRetryConfig") or {}).get("criteriaList") or []
    )
    timeout = (job.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")
    return JobConfig(
        target_selection=str(job.get("targetSelection") or "SNAPSHOT"),
        targets=tuple(str(t) for t in job.get("targets") or ()),
        rollout=rate,
        abort=abort,
        retry=retry,
        in_progress_timeout_minutes=int(timeout) if timeout is not None else None,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def retry_count(summaries: Iterable[Mapping[str, Any]]) -> RetryCount:
    """Retries so far from ListJobExecutionsForJob's summaries.

    The local service lists every execution (a retry is a new one); AWS may list only a thing's
    latest. Taking each thing's highest ``retryAttempt`` counts the same in both cases.
    """
    highest: dict[str, int] = {}
    for s in summaries:
        attempt = int((s.get("jobExecutionSummary") or {}).get("retryAttempt") or 0)
        thing = str(s.get("thingArn", ""))
        highest[thing] = max(highest.get(thing, 0), attempt)
    return RetryCount(total=sum(highest.values()), things=sum(1 for v in highest.values() if v))


def summary_stamps(summaries: Iterable[Mapping[str, Any]]) -> list[float]:
    found = []
    for s in summaries:
        summary = s.get("jobExecutionSummary") or {}
        for key in ("queuedAt", "startedAt", "lastUpdatedAt"):
            stamp = seconds(summary.get(key))
            if stamp is not None:
                found.append(stamp)
    return found


def snapshot(
    response: Mapping[str, Any], summaries: list[Mapping[str, Any]] | None = None, config: JobConfig | None = None
) -> Snapshot:
    """One DescribeJob response (and, if listed, the job's execution summaries) as a ``Snapshot``."""
    job = response.get("job") or {}
    details = job.get("jobProcessDetails") or {}
    counts = {name: int(details.get(key) or 0) for name, key in STATUSES}
    created, updated, completed = (seconds(job.get(k)) for k in ("createdAt", "lastUpdatedAt", "completedAt"))
    stamps = [s for s in (created, updated, completed) if s is not None]
    if summaries is not None:
        stamps += summary_stamps(summaries)
    return Snapshot(
        job_id=str(job.get("jobId", "")),
        status=str(job.get("status", "")),
        counts=counts,
        config=config if config is not None else job_config(job),
        rolling_out=bool(details.get("processingTargets")),
        created_at=created,
        last_updated_at=updated,
        completed_at=completed,
        comment=job.get("comment"),
        reason_code=job.get("reasonCode"),
        force_canceled=bool(job.get("forceCanceled")),
        retries=retry_count(summaries) if summaries is not None else None,
        latest_stamp=max(stamps) if stamps else None,
        reported_at=http_date(response),
    )
