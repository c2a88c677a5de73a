"""The view model of a job's rollout: what the live view, the summary and the report show.

Pure: built from the latest ``Snapshot``, the ``Timeline`` of counts and ``now`` (service time),
with no I/O and no clock reads. The rules mirror the service's (iot_jobs_local's
``jobs/rollout.py``, ``jobs/abort.py``, ``jobs/retry.py``, which follow the AWS IoT Jobs
documentation) so the view tells the story the service acts on:

- pace: one batch a minute; a fixed ``maximumPerMinute`` (1000 when a rollout config gives no
  rate), or ``baseRatePerMinute`` times ``incrementFactor`` to the power of how many times the
  criterion's count (things notified, or succeeded) was reached, capped by ``maximumPerMinute``;
- abort: over each thing's latest execution, the executed things are those SUCCEEDED, FAILED,
  REJECTED or TIMED_OUT; a criterion is reached once at least ``minNumberOfExecutedThings`` were
  executed and its failures are at least ``thresholdPercentage`` percent of them. The service
  checks the criteria when an execution fails (FAILED, REJECTED, TIMED_OUT), so a success that
  brings the executed things to the minimum leaves the job running until the next failure;
- retries: a FAILED or TIMED_OUT execution with budget left becomes a new QUEUED one (the thing
  counts as queued again, not as failed, until its retries are over).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .describe import STATUS_NAMES, TERMINAL_JOB_STATUSES, AbortRule, RateConfig, RetryRule, Snapshot
from .timeline import Timeline

MINUTE = 60.0
#: AWS's rate when a rollout config sets none ("If you don't set the value, it uses 1000").
DEFAULT_PER_MINUTE = 1000
EXECUTED = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT")
FAILURES = {
    "FAILED": ("FAILED",),
    "REJECTED": ("REJECTED",),
    "TIMED_OUT": ("TIMED_OUT",),
    "ALL": ("FAILED", "REJECTED", "TIMED_OUT"),
}
FINISHED = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED")
#: How far back (service seconds) the pace of finishing executions is measured, for the estimate.
FINISH_WINDOW = 5 * MINUTE


@dataclass(frozen=True)
class Bar:
    status: str
    count: int
    #: Of every thing the job covers (known so far).
    share: float


@dataclass(frozen=True)
class Pace:
    rolling_out: bool
    #: The rate the service applies to the next batch, things per minute (None: no rollout config,
    #: every execution at once).
    rate_per_minute: int | None
    #: Things that got their execution in the last minute (service time).
    observed_per_minute: int
    exponential: bool = False
    #: Exponential rate: how many increases so far, and the count (of ``increase_on``) at the next.
    step: int | None = None
    next_increase_at: int | None = None
    increase_on: str | None = None  # "notified" or "succeeded"
    increase_count: int | None = None
    factor: float | None = None
    base_rate: int | None = None
    maximum_per_minute: int | None = None


@dataclass(frozen=True)
class AbortState:
    rule: AbortRule
    executed: int
    failed: int
    #: Failures of this type as a percentage of the executed things (None: nothing executed).
    percent: float | None
    #: The criterion holds on the current counts.
    reached: bool
    #: It canceled the job (reached, and the job is CANCELED without force).
    met: bool
    #: Further failures of its type (with no successes meanwhile) that would fire it; None: none would.
    failures_to_fire: int | None


@dataclass(frozen=True)
class RetryState:
    rules: tuple[RetryRule, ...]
    #: Retries the service created so far, and how many things they concern (None: not visible).
    total: int | None
    things: int | None


@dataclass(frozen=True)
class View:
    job_id: str
    status: str
    final: bool
    #: One line: the final status and why, or what the job is doing.
    outcome: str
    bars: tuple[Bar, ...]
    #: Things known to the job: notified, plus those still waiting for the rollout if known.
    total: int
    #: Things the targets cover that have no execution yet (None: unknown).
    waiting: int | None
    pace: Pace
    abort: tuple[AbortState, ...]
    retries: RetryState
    timeout_minutes: int | None
    #: Service seconds since the job was created (to its completion once it completed).
    elapsed: float | None
    #: Service seconds until every execution is expected to be done (None: no estimate yet).
    remaining: float | None
    #: ``remaining`` is only the rollout's part (nothing finished yet to measure the rest by).
    remaining_at_least: bool
    target_selection: str

    @property
    def counts(self) -> dict[str, int]:
        return {b.status: b.count for b in self.bars}


def current_rate(rate: RateConfig, notified: int, succeeded: int) -> tuple[int, int | None, int | None]:
    """(things per minute now, exponential step, the count at which the rate grows next)."""
    if rate.base_rate is None:
        return rate.maximum_per_minute or DEFAULT_PER_MINUTE, None, None
    step_size = rate.notified_step or rate.succeeded_step or 1
    count = notified if rate.notified_step else succeeded
    step = count // step_size
    cap = rate.maximum_per_minute or DEFAULT_PER_MINUTE
    now = max(1, min(cap, math.floor(rate.base_rate * rate.increment_factor**step)))
    following = math.floor(rate.base_rate * rate.increment_factor ** (step + 1))
    next_at = (step + 1) * step_size if now < cap and following > now else None
    return now, step, next_at


def pace(snap: Snapshot, timeline: Timeline, now: float) -> Pace:
    notified = snap.notified
    origin = timeline.origin()
    before = 0 if origin is None or now - MINUTE < origin else timeline.notified_at(now - MINUTE)
    observed = max(0, notified - before)
    rate = snap.config.rollout
    if rate is None:
        return Pace(snap.rolling_out, None, observed)
    per_minute, step, next_at = current_rate(rate, notified, snap.counts.get("SUCCEEDED", 0))
    if rate.base_rate is None:
        return Pace(snap.rolling_out, per_minute, observed, maximum_per_minute=rate.maximum_per_minute)
    on = "notified" if rate.notified_step else "succeeded"
    return Pace(
        snap.rolling_out,
        per_minute,
        observed,
        exponential=True,
        step=step,
        next_increase_at=next_at,
        increase_on=on,
        increase_count=notified if on == "notified" else snap.counts.get("SUCCEEDED", 0),
        factor=rate.increment_factor,
        base_rate=rate.base_rate,
        maximum_per_minute=rate.maximum_per_minute,
    )


def abort_state(rule: AbortRule, counts: dict[str, int], canceled: bool = False) -> AbortState:
    """One criterion against the counts; ``canceled``: the job is CANCELED (without force)."""
    executed = sum(counts.get(s, 0) for s in EXECUTED)
    failed = sum(counts.get(s, 0) for s in FAILURES.get(rule.failure_type, FAILURES["ALL"]))
    minimum = max(1, rule.min_executed_things)
    # Thresholds have two decimals: compare in hundredths of a percent, exactly.
    threshold = round(rule.threshold_percentage * 100)
    reached = executed >= minimum and failed * 10000 >= threshold * executed
    met = reached and canceled
    if met:
        to_fire: int | None = 0
    elif reached:
        to_fire = 1  # checked at the next failure, which keeps it reached
    else:
        to_fire = _failures_to_fire(executed, failed, minimum, threshold)
    return AbortState(
        rule=rule,
        executed=executed,
        failed=failed,
        percent=failed * 100 / executed if executed else None,
        reached=reached,
        met=met,
        failures_to_fire=to_fire,
    )


def _failures_to_fire(executed: int, failed: int, minimum: int, threshold: int) -> int | None:
    """The least k with executed+k >= minimum and (failed+k) >= threshold% of (executed+k)."""
    floor = max(0, minimum - executed)
    if threshold >= 10000:
        return floor if failed == executed else None
    need = threshold * executed - 10000 * failed
    by_share = max(0, -(-need // (10000 - threshold)))
    return max(floor, by_share)


def _finish_rate(timeline: Timeline, now: float) -> float | None:
    """Executions reaching a final status per service second, over the recent past."""
    origin = timeline.origin()
    if origin is None or now <= origin:
        return None
    since = max(origin, now - FINISH_WINDOW)
    start, end = timeline.at(since), timeline.at(now)
    if end is None:
        return None

    def done(counts: tuple[int, ...]) -> int:
        return sum(c for name, c in zip(STATUS_NAMES, counts, strict=True) if name in FINISHED)

    gained = done(end.counts) - (done(start.counts) if start is not None else 0)
    return gained / (now - since) if gained > 0 else None


def _rollout_left(p: Pace, waiting: int | None, timeline: Timeline, now: float) -> float | None:
    """Service seconds until the things still waiting get their executions, one batch a minute."""
    if not p.rolling_out or not waiting or p.rate_per_minute is None:
        return 0.0 if not waiting else None
    batches, left, rate, count = 0, waiting, p.rate_per_minute, p.increase_count or 0
    while left > 0 and batches < 100000:
        left -= rate
        batches += 1
        if p.exponential and p.increase_on == "notified":
            count += rate
            if p.next_increase_at is not None and count >= p.next_increase_at and p.factor:
                cap = p.maximum_per_minute or DEFAULT_PER_MINUTE
                rate = max(rate, min(cap, math.floor(rate * p.factor)))
    last_batch = _last_growth(timeline)
    next_batch = max(now, last_batch + MINUTE) if last_batch is not None else now + MINUTE
    return (next_batch - now) + (batches - 1) * MINUTE


def _last_growth(timeline: Timeline) -> float | None:
    """When the number of notified things last grew (the last batch seen)."""
    found, previous = None, 0
    for point in timeline.points:
        if point.total > previous:
            found = point.at
        previous = point.total
    return found


def outcome(snap: Snapshot, gone: bool, abort: tuple[AbortState, ...]) -> str:
    if gone:
        return "the job was deleted"
    status = snap.status
    if status == "COMPLETED":
        return "COMPLETED: every execution reached a final status"
    if status == "CANCELED":
        why = []
        fired = [a for a in abort if a.met]
        if fired:
            rule = fired[0].rule
            why.append(f"by its abort config ({rule.failure_type} reached {rule.threshold_percentage:g} %)")
        elif snap.comment:
            why.append(f"({snap.comment})")
        if snap.force_canceled:
            why.append("with force")
        if snap.reason_code:
            why.append(f"reason {snap.reason_code}")
        left = snap.counts.get("IN_PROGRESS", 0)
        tail = f"; {left} IN_PROGRESS left to finish" if left and not snap.force_canceled else ""
        return " ".join(["CANCELED", *why]) + tail
    if status == "DELETION_IN_PROGRESS":
        return "DELETION_IN_PROGRESS: the job is being deleted"
    if status == "SCHEDULED":
        return "SCHEDULED: waiting for its start time"
    if snap.rolling_out:
        return "IN_PROGRESS: rolling out"
    return f"{status}: executions running" if status else "unknown"


def build(
    snap: Snapshot, timeline: Timeline, now: float, expected_total: int | None = None, gone: bool = False
) -> View:
    """The view at service time ``now``; ``expected_total``: the things the job's targets cover."""
    counts = dict(snap.counts)
    final = gone or snap.status in TERMINAL_JOB_STATUSES
    notified = snap.notified
    waiting = None
    if expected_total is not None:
        waiting = 0 if final or not snap.rolling_out else max(0, expected_total - notified)
    elif not snap.rolling_out:
        waiting = 0
    total = notified + (waiting or 0)
    bars = tuple(Bar(name, counts.get(name, 0), counts.get(name, 0) / total if total else 0.0) for name in STATUS_NAMES)
    p = pace(snap, timeline, now)
    canceled = snap.status == "CANCELED" and not snap.force_canceled
    abort = tuple(abort_state(rule, counts, canceled) for rule in snap.config.abort)
    retries = RetryState(
        snap.config.retry,
        snap.retries.total if snap.retries is not None else None,
        snap.retries.things if snap.retries is not None else None,
    )
    end = snap.completed_at if snap.completed_at is not None else now
    elapsed = max(0.0, end - snap.created_at) if snap.created_at is not None else None
    remaining: float | None
    at_least = False
    if final:
        remaining = 0.0
    elif snap.status == "SCHEDULED":
        remaining = None
    else:
        unfinished = counts.get("QUEUED", 0) + counts.get("IN_PROGRESS", 0) + (waiting or 0)
        rollout_left = _rollout_left(p, waiting, timeline, now)
        rate = _finish_rate(timeline, now)
        finish_left = unfinished / rate if rate else None
        if unfinished == 0:
            remaining = 0.0
        elif finish_left is not None:
            remaining = max(finish_left, rollout_left or 0.0)
        elif rollout_left:  # nothing seen finishing yet: only the rollout's part is known
            remaining, at_least = rollout_left, True
        else:
            remaining = None
    return View(
        job_id=snap.job_id,
        status="DELETION_IN_PROGRESS" if gone else snap.status,
        final=final,
        outcome=outcome(snap, gone, abort),
        bars=bars,
        total=total,
        waiting=waiting,
        pace=p,
        abort=abort,
        retries=retries,
        timeout_minutes=snap.config.in_progress_timeout_minutes,
        elapsed=elapsed,
        remaining=remaining,
        remaining_at_least=at_least,
        target_selection=snap.config.target_selection,
    )
