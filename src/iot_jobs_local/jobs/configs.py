"""The time-related configuration blocks of a job, typed and validated from their wire form.

botocore's model already checks types, enums and the ``min``/``max`` it declares (see
``http_api/validation.py``); the rules here are the ones the model leaves to prose: combined retry
budgets, one criterion per failure type, the timeout range, the rollout bounds and the schedule.
A job keeps its blocks verbatim (wire names); these functions read them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import cron
from .errors import InvalidRequest

MAX_TIMEOUT_MINUTES = 10080
MAX_RETRIES_TOTAL = 10
MAX_PER_MINUTE = 1000
#: What AWS calls it when a rollout config gives no rate: "If you don't set the value, it uses 1000".
DEFAULT_PER_MINUTE = 1000
MIN_SCHEDULE_LEAD = 30 * 60
MAX_START_AHEAD = 366 * 86400
MAX_END_AHEAD = 2 * 366 * 86400
MIN_SCHEDULE_DURATION = 30 * 60
_TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class RetryCriterion:
    failure_type: str  # FAILED, TIMED_OUT or ALL
    retries: int


@dataclass(frozen=True)
class AbortCriterion:
    failure_type: str  # FAILED, REJECTED, TIMED_OUT or ALL
    threshold_percentage: float
    min_executed_things: int


@dataclass(frozen=True)
class Rollout:
    maximum_per_minute: int | None = None
    base_rate: int | None = None
    increment_factor: float = 1.0
    #: The rate grows each time this many more things were notified, or succeeded.
    notified_step: int | None = None
    succeeded_step: int | None = None


@dataclass(frozen=True)
class Window:
    start: cron.Cron
    duration_minutes: int


@dataclass(frozen=True)
class Schedule:
    start: float | None
    end: float | None
    end_behavior: str  # STOP_ROLLOUT, CANCEL or FORCE_CANCEL
    windows: tuple[Window, ...] = ()


# reading -----------------------------------------------------------------------------------------
def in_progress_timeout(config: Mapping[str, Any]) -> int | None:
    block = config.get("timeoutConfig") or {}
    value = block.get("inProgressTimeoutInMinutes")
    return int(value) if value is not None else None


def retry_criteria(config: Mapping[str, Any]) -> list[RetryCriterion]:
    block = config.get("jobExecutionsRetryConfig") or {}
    return [RetryCriterion(c["failureType"], int(c["numberOfRetries"])) for c in block.get("criteriaList") or []]


def abort_criteria(config: Mapping[str, Any]) -> list[AbortCriterion]:
    block = config.get("abortConfig") or {}
    return [
        AbortCriterion(c["failureType"], float(c["thresholdPercentage"]), int(c["minNumberOfExecutedThings"]))
        for c in block.get("criteriaList") or []
        if c.get("action", "CANCEL") == "CANCEL"
    ]


def rollout(config: Mapping[str, Any]) -> Rollout | None:
    block = config.get("jobExecutionsRolloutConfig")
    if block is None:
        return None
    exponential = block.get("exponentialRate")
    maximum = block.get("maximumPerMinute")
    if exponential is None:
        return Rollout(maximum_per_minute=int(maximum) if maximum is not None else DEFAULT_PER_MINUTE)
    criteria = exponential.get("rateIncreaseCriteria") or {}
    return Rollout(
        maximum_per_minute=int(maximum) if maximum is not None else None,
        base_rate=int(exponential["baseRatePerMinute"]),
        increment_factor=float(exponential["incrementFactor"]),
        notified_step=criteria.get("numberOfNotifiedThings"),
        succeeded_step=criteria.get("numberOfSucceededThings"),
    )


def schedule(config: Mapping[str, Any]) -> Schedule | None:
    block = config.get("schedulingConfig")
    if block is None:
        return None
    windows = tuple(
        Window(cron.parse(w["startTime"]), int(w["durationInMinutes"])) for w in block.get("maintenanceWindows") or []
    )
    start, end = block.get("startTime"), block.get("endTime")
    return Schedule(
        start=parse_time(start) if start is not None else None,
        end=parse_time(end) if end is not None else None,
        # UNCONFIRMED: what an endTime without endBehavior does; we stop the rollout.
        end_behavior=block.get("endBehavior") or "STOP_ROLLOUT",
        windows=windows,
    )


def is_paced(config: Mapping[str, Any]) -> bool:
    """Whether the job's executions are created over time (a rollout rate or a schedule)."""
    return config.get("jobExecutionsRolloutConfig") is not None or config.get("schedulingConfig") is not None


def parse_time(text: str) -> float:
    """A ``schedulingConfig`` time, ``YYYY-MM-DDTHH:MM`` (seconds and a ``Z`` allowed), in UTC."""
    value = text[:-1] if text.endswith("Z") else text
    for form in _TIME_FORMATS:
        try:
            parsed = datetime.datetime.strptime(value, form)
        except ValueError:
            continue
        return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()
    raise InvalidRequest(f"{text!r} is not a time of the form YYYY-MM-DDTHH:MM (UTC)")


def format_time(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")


# validation --------------------------------------------------------------------------------------
def check(config: Mapping[str, Any], now: float, *, scheduling: bool = True) -> None:
    """Raise InvalidRequest for a block AWS would refuse. ``scheduling``: check ``schedulingConfig``
    against ``now`` (CreateJob; it cannot be changed afterwards)."""
    _check_timeout(config.get("timeoutConfig"))
    _check_retry(config.get("jobExecutionsRetryConfig"))
    _check_abort(config.get("abortConfig"))
    _check_rollout(config.get("jobExecutionsRolloutConfig"))
    if scheduling:
        _check_schedule(config.get("schedulingConfig"), now)


def check_template(config: Mapping[str, Any], now: float) -> None:
    """CreateJobTemplate's blocks: those of a job, and its ``maintenanceWindows``."""
    check(config, now, scheduling=False)
    windows = config.get("maintenanceWindows")
    if isinstance(windows, list):
        for window in windows:
            if isinstance(window, dict) and isinstance(window.get("startTime"), str):
                cron.parse(window["startTime"])


def _block(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be an object")
    return value


def _check_timeout(value: Any) -> None:
    block = _block(value, "timeoutConfig")
    minutes = (block or {}).get("inProgressTimeoutInMinutes")
    if minutes is None:
        return
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_TIMEOUT_MINUTES:
        raise InvalidRequest(f"inProgressTimeoutInMinutes must be between 1 and {MAX_TIMEOUT_MINUTES}")


def _check_retry(value: Any) -> None:
    block = _block(value, "jobExecutionsRetryConfig")
    if block is None:
        return
    criteria = block.get("criteriaList") or []
    types = [c.get("failureType") for c in criteria]
    if len(set(types)) != len(types):
        raise InvalidRequest("jobExecutionsRetryConfig: each failureType may appear in only one criterion")
    total = sum(int(c.get("numberOfRetries") or 0) for c in criteria)
    if total > MAX_RETRIES_TOTAL:
        raise InvalidRequest(f"jobExecutionsRetryConfig: at most {MAX_RETRIES_TOTAL} retries in all, got {total}")


def _check_abort(value: Any) -> None:
    block = _block(value, "abortConfig")
    if block is None:
        return
    types = [c.get("failureType") for c in block.get("criteriaList") or []]
    if len(set(types)) != len(types):
        raise InvalidRequest("abortConfig: each failureType may appear in only one criterion")
    for criterion in block.get("criteriaList") or []:
        threshold = criterion.get("thresholdPercentage")
        if isinstance(threshold, (int, float)) and round(threshold, 2) != threshold:
            raise InvalidRequest("abortConfig: thresholdPercentage may have at most two digits after the decimal point")


def _check_rollout(value: Any) -> None:
    block = _block(value, "jobExecutionsRolloutConfig")
    if block is None:
        return
    maximum = block.get("maximumPerMinute")
    if isinstance(maximum, int) and not 1 <= maximum <= MAX_PER_MINUTE:
        raise InvalidRequest(f"maximumPerMinute must be between 1 and {MAX_PER_MINUTE}")
    exponential = block.get("exponentialRate")
    if exponential is None:
        return
    factor = exponential.get("incrementFactor")
    if isinstance(factor, (int, float)) and round(factor, 1) != factor:
        raise InvalidRequest("incrementFactor may have at most one digit after the decimal point")
    criteria = exponential.get("rateIncreaseCriteria") or {}
    given = [k for k in ("numberOfNotifiedThings", "numberOfSucceededThings") if criteria.get(k) is not None]
    if len(given) != 1:
        raise InvalidRequest(
            "rateIncreaseCriteria must give exactly one of numberOfNotifiedThings and numberOfSucceededThings"
        )


def _check_schedule(value: Any, now: float) -> None:
    block = _block(value, "schedulingConfig")
    if block is None:
        return
    parsed = schedule({"schedulingConfig": block})
    assert parsed is not None
    # Times have minute precision: "30 minutes ahead" counts from the start of the current minute.
    earliest = now - now % 60 + MIN_SCHEDULE_LEAD
    if parsed.start is not None:
        if parsed.start < earliest:
            raise InvalidRequest("schedulingConfig.startTime must be at least 30 minutes from now")
        if parsed.start > now + MAX_START_AHEAD:
            raise InvalidRequest("schedulingConfig.startTime must be at most one year from now")
    if parsed.end is not None:
        if parsed.end < earliest:
            raise InvalidRequest("schedulingConfig.endTime must be at least 30 minutes from now")
        if parsed.end > now + MAX_END_AHEAD:
            raise InvalidRequest("schedulingConfig.endTime must be at most two years from now")
        start = parsed.start if parsed.start is not None else now
        if parsed.end - start < MIN_SCHEDULE_DURATION:
            raise InvalidRequest("schedulingConfig: endTime must be at least 30 minutes after startTime")
        if parsed.end - start > MAX_END_AHEAD:
            raise InvalidRequest("schedulingConfig: endTime must be at most two years after startTime")
