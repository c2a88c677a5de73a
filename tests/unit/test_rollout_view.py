"""The rollout view's pure parts: responses -> snapshot, the pace, abort and retry rules, the
service-clock estimate, the estimate of the rest, the text frame, the chart and the HTML report."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any
from xml.etree import ElementTree

import pytest

from iot_jobs.rollout import describe, model, report, text
from iot_jobs.rollout.clock import ServiceClock
from iot_jobs.rollout.describe import AbortRule, RateConfig
from iot_jobs.rollout.timeline import Timeline, sample

T0 = 1_800_000_000.0
KEYS = dict(describe.STATUSES)


def when(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(T0 + seconds, datetime.timezone.utc)


def response(status: str = "IN_PROGRESS", processing: bool = True, **counts: int) -> dict[str, Any]:
    details: dict[str, Any] = {KEYS[name.upper()]: n for name, n in counts.items()}
    if processing:
        details["processingTargets"] = ["arn:aws:iot:eu-west-1:123456789012:thinggroup/fleet"]
    return {
        "job": {
            "jobId": "Job1",
            "status": status,
            "targetSelection": "SNAPSHOT",
            "targets": ["arn:aws:iot:eu-west-1:123456789012:thinggroup/fleet"],
            "createdAt": when(0),
            "lastUpdatedAt": when(0),
            "jobProcessDetails": details,
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 10},
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": 50,
                        "minNumberOfExecutedThings": 4,
                    }
                ]
            },
            "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
            "timeoutConfig": {"inProgressTimeoutInMinutes": 5},
        }
    }


def summary(thing: str, attempt: int, updated: float) -> dict[str, Any]:
    return {
        "thingArn": f"arn:aws:iot:eu-west-1:123456789012:thing/{thing}",
        "jobExecutionSummary": {"status": "QUEUED", "queuedAt": when(updated), "retryAttempt": attempt},
    }


# responses -> snapshot -----------------------------------------------------------------------
def test_a_describe_job_response_becomes_a_snapshot() -> None:
    summaries = [summary("a", 0, 10), summary("b", 0, 5), summary("b", 1, 30)]
    snap = describe.snapshot(response(queued=3, succeeded=2, failed=1), summaries)
    assert snap.status == "IN_PROGRESS" and snap.rolling_out
    assert snap.counts == {
        "QUEUED": 3,
        "IN_PROGRESS": 0,
        "SUCCEEDED": 2,
        "FAILED": 1,
        "REJECTED": 0,
        "TIMED_OUT": 0,
        "REMOVED": 0,
        "CANCELED": 0,
    }
    assert snap.notified == 6 and snap.created_at == T0 and snap.latest_stamp == T0 + 30
    config = snap.config
    assert config.rollout == RateConfig(maximum_per_minute=10)
    assert config.abort == (AbortRule("FAILED", 50.0, 4),)
    assert [(r.failure_type, r.retries) for r in config.retry] == [("FAILED", 2)]
    assert config.in_progress_timeout_minutes == 5
    assert snap.retries == describe.RetryCount(total=1, things=1)


def test_retries_count_the_same_whether_every_execution_or_only_the_latest_is_listed() -> None:
    every = [summary("a", 0, 1), summary("a", 1, 2), summary("a", 2, 3), summary("b", 0, 1), summary("b", 1, 2)]
    latest = [summary("a", 2, 3), summary("b", 1, 2), summary("c", 0, 1)]
    assert describe.retry_count(every) == describe.retry_count(latest) == describe.RetryCount(total=3, things=2)


# pace ------------------------------------------------------------------------------------------
def test_a_fixed_rate_and_the_default_one() -> None:
    assert model.current_rate(RateConfig(maximum_per_minute=2), 5, 0) == (2, None, None)
    assert model.current_rate(RateConfig(), 5, 0) == (1000, None, None)


@pytest.mark.parametrize(
    ("notified", "expected"),
    [(0, (1, 0, 1)), (1, (2, 1, 2)), (3, (8, 3, 4)), (9, (512, 9, 10)), (10, (1000, 10, None))],
)
def test_the_exponential_rate_doubles_with_each_thing_notified_up_to_its_cap(
    notified: int, expected: tuple[int, int, int | None]
) -> None:
    """As the service's test: base 1 a minute, x2 per thing notified; 1000 a minute at most."""
    rate = RateConfig(base_rate=1, increment_factor=2.0, notified_step=1)
    assert model.current_rate(rate, notified, 0) == expected


def test_the_exponential_rate_of_the_aws_documentation_example() -> None:
    """50 a minute, x2 each 1000 things notified: 100 after 1000, 200 after 2000, 400 after 3000."""
    rate = RateConfig(base_rate=50, increment_factor=2.0, notified_step=1000)
    assert [model.current_rate(rate, n, 0)[0] for n in (999, 1000, 2000, 3000)] == [50, 100, 200, 400]
    by_success = RateConfig(base_rate=50, increment_factor=2.0, succeeded_step=1000, maximum_per_minute=120)
    assert model.current_rate(by_success, 5000, 1000) == (100, 1, 2000)
    assert model.current_rate(by_success, 5000, 2000) == (120, 2, None)  # at its cap: no further step


def test_the_observed_pace_is_the_things_notified_in_the_last_minute() -> None:
    timeline = Timeline(start=T0)
    timeline.add(T0 + 1, {"QUEUED": 10})
    timeline.add(T0 + 61, {"QUEUED": 15, "SUCCEEDED": 5})
    snap = describe.snapshot(response(queued=15, succeeded=5))
    assert model.pace(snap, timeline, T0 + 30).observed_per_minute == 20  # the first minute: all since creation
    assert model.pace(snap, timeline, T0 + 90).observed_per_minute == 10
    assert model.pace(snap, timeline, T0 + 200).observed_per_minute == 0


# abort -----------------------------------------------------------------------------------------
def test_an_abort_criterion_waits_for_its_minimum_then_fires_at_its_threshold() -> None:
    """The service's own case: FAILED >= 50 % once 2 were executed."""
    rule = AbortRule("FAILED", 50, 2)
    one = model.abort_state(rule, {"SUCCEEDED": 1, "IN_PROGRESS": 1, "QUEUED": 1})
    assert (one.executed, one.failed, one.reached, one.failures_to_fire) == (1, 0, False, 1)
    counts = {"SUCCEEDED": 1, "FAILED": 1, "IN_PROGRESS": 1}
    two = model.abort_state(rule, counts, canceled=True)
    assert (two.executed, two.failed, two.percent, two.reached, two.met, two.failures_to_fire) == (
        2,
        1,
        50.0,
        True,
        True,
        0,
    )
    assert text.abort_text(two).endswith("1/2 = 50.0%; MET")


def test_a_criterion_reached_by_a_success_fires_at_the_next_failure() -> None:
    """The service checks the criteria when an execution fails: a success that brings the executed
    things to the minimum, above the threshold, leaves the job running."""
    state = model.abort_state(AbortRule("ALL", 50, 4), {"SUCCEEDED": 2, "FAILED": 1, "TIMED_OUT": 1})
    assert (state.reached, state.met, state.failures_to_fire) == (True, False, 1)
    assert text.abort_text(state).endswith("2/4 = 50.0%; reached: the next failure fires it")


@pytest.mark.parametrize(
    ("rule", "counts", "to_fire"),
    [
        (AbortRule("FAILED", 50, 1), {"SUCCEEDED": 6, "FAILED": 2}, 4),  # 6 of 12
        (AbortRule("FAILED", 50, 20), {"SUCCEEDED": 6, "FAILED": 2}, 12),  # the minimum decides
        # 2 of 8: reached already, but it is checked at a failure (which keeps it reached).
        (AbortRule("ALL", 25, 1), {"SUCCEEDED": 6, "REJECTED": 1, "TIMED_OUT": 1}, 1),
        # FAILED things count as executed, not as rejections: 4 of 11.
        (AbortRule("REJECTED", 33.33, 1), {"SUCCEEDED": 2, "FAILED": 5}, 4),
        (AbortRule("TIMED_OUT", 100, 1), {"SUCCEEDED": 1}, None),  # 100 % can no longer be reached
        (AbortRule("TIMED_OUT", 100, 3), {"TIMED_OUT": 1}, 2),
    ],
)
def test_how_many_more_failures_would_fire_a_criterion(
    rule: AbortRule, counts: dict[str, int], to_fire: int | None
) -> None:
    state = model.abort_state(rule, counts)
    assert state.failures_to_fire == to_fire
    if to_fire:  # and that many do fire it, one fewer does not
        failure = "FAILED" if rule.failure_type in ("FAILED", "ALL") else rule.failure_type
        more = {**counts, failure: counts.get(failure, 0) + to_fire}
        assert model.abort_state(rule, more).reached
        fewer = {**counts, failure: counts.get(failure, 0) + to_fire - 1}
        assert not model.abort_state(rule, fewer).reached or state.reached


def test_a_job_canceled_by_its_abort_config_says_so() -> None:
    snap = describe.snapshot(response("CANCELED", False, succeeded=2, failed=2, in_progress=1, canceled=3))
    view = model.build(snap, Timeline(T0), T0 + 100)
    assert view.final and view.remaining == 0
    assert view.outcome == "CANCELED by its abort config (FAILED reached 50 %); 1 IN_PROGRESS left to finish"


# the service clock -----------------------------------------------------------------------------
def test_the_service_clock_is_estimated_from_the_stamps_it_reports() -> None:
    clock = ServiceClock()
    assert clock.now(0.0) is None
    clock.observe(100.0, T0)  # the state found at start: only a lower bound
    assert clock.scale == 1.0 and clock.now(100.5) == T0 + 0.5
    clock.observe(101.0, T0 + 600)  # a change seen: the service is 60 times faster
    clock.observe(103.0, T0 + 600 + 120)
    assert clock.scale == pytest.approx(60.0)
    assert clock.now(104.0) == pytest.approx(T0 + 780, abs=1e-3)
    clock.observe(104.5, T0 + 700)  # an older stamp changes nothing, and the estimate never goes back
    assert clock.now(104.0) == pytest.approx(T0 + 780, abs=1e-3)


def test_the_http_date_is_a_lower_bound_of_the_service_clock() -> None:
    """A job found long after its last change: the response's Date says how long."""
    snap = describe.snapshot(
        {**response(queued=1), "ResponseMetadata": {"HTTPHeaders": {"date": "Fri, 15 Jan 2027 08:00:00 GMT"}}}
    )
    assert snap.reported_at == datetime.datetime(2027, 1, 15, 8, tzinfo=datetime.timezone.utc).timestamp()
    clock = ServiceClock()
    clock.observe(10.0, T0, T0 + 3 * 3600)
    assert clock.now(12.0) == T0 + 3 * 3600 + 2
    slow = ServiceClock()  # a service slowed down: once its rate shows, the wall clock is no bound
    slow.observe(0.0, T0, T0)
    slow.observe(1.0, T0 + 1, T0 + 1)
    slow.observe(11.0, T0 + 3, T0 + 11)
    assert slow.scale == pytest.approx(0.2) and slow.now(11.0) == pytest.approx(T0 + 3, abs=1e-3)
    assert slow.now(21.0) == pytest.approx(T0 + 5, abs=1e-3)


def test_a_rate_near_one_is_the_wall_clock_seen_through_the_polling() -> None:
    clock = ServiceClock()
    clock.observe(0.0, T0)
    clock.observe(1.0, T0 + 10)
    clock.observe(3.0, T0 + 12.3)  # 1.15 service seconds per real one: polling jitter
    assert clock.scale == 1.0


# the estimate of the rest ----------------------------------------------------------------------
def test_the_rest_is_estimated_from_the_rollout_and_the_pace_of_finishing() -> None:
    timeline = Timeline(start=T0)
    timeline.add(T0, {"QUEUED": 10})
    timeline.add(T0 + 60, {"QUEUED": 10, "SUCCEEDED": 10})
    snap = describe.snapshot(response(queued=10, succeeded=10))
    # 40 things still waiting at 10 a minute: 4 more batches, the next at +2:00.
    view = model.build(snap, timeline, T0 + 90, expected_total=60)
    assert view.waiting == 40 and view.total == 60
    assert model._rollout_left(view.pace, 40, timeline, T0 + 90) == pytest.approx(30 + 3 * 60)
    # Finishing: 10 in 90 s, 50 unfinished: 450 s, longer than the rollout's 210 s.
    assert view.remaining == pytest.approx(450, abs=1) and not view.remaining_at_least
    early = model.build(snap, Timeline(T0), T0 + 1, expected_total=60)
    assert early.remaining_at_least  # nothing seen finishing: only the rollout's part


# text ------------------------------------------------------------------------------------------
def _view() -> tuple[model.View, Timeline]:
    timeline = Timeline(start=T0)
    timeline.add(T0 + 1, {"QUEUED": 10})
    timeline.add(T0 + 30, {"QUEUED": 4, "IN_PROGRESS": 3, "SUCCEEDED": 2, "FAILED": 1})
    timeline.add(T0 + 61, {"QUEUED": 6, "IN_PROGRESS": 2, "SUCCEEDED": 10, "FAILED": 2})
    summaries = [summary("a", 1, 61)]
    snap = describe.snapshot(response(queued=6, in_progress=2, succeeded=10, failed=2), summaries)
    return model.build(snap, timeline, T0 + 75, expected_total=30), timeline


@pytest.mark.parametrize("width", [80, 60, 200])
def test_the_frame_fits_the_width_and_shows_every_count(width: int) -> None:
    view, _ = _view()
    lines = text.frame(view, width)
    assert all(len(line) < width for line in lines)
    for status, count in view.counts.items():
        assert any(re.match(rf"  {status} +{count} ", line) for line in lines), status
    body = "\n".join(lines)
    if width < 80:
        return  # narrower: the lines are cut, not wrapped
    assert "(waiting)" in body and "10 not notified yet" in body
    assert "rate 10/min (maximumPerMinute 10)" in body
    assert "abort FAILED >= 50% of >= 4 executed: 2/12 = 16.7%; 8 more failures fire it" in body
    assert "retries: 1 so far on 1 thing(s); budget per thing: FAILED 2" in body
    assert "elapsed 1:15" in body


def test_a_change_line_holds_every_count_in_one_line() -> None:
    view, _ = _view()
    line = text.change_line(view)
    assert "\n" not in line
    assert line.startswith("[1:15] Job1 IN_PROGRESS queued=6 in_progress=2 succeeded=10 failed=2 rejected=0")
    assert "waiting=10" in line and "pace 10/min of 10/min" in line and "abort FAILED 16.7%/50%" in line


def test_durations() -> None:
    assert [text.duration(s) for s in (0, 59.6, 75, 3725, None)] == ["0:00", "1:00", "1:15", "1:02:05", "?"]


def test_the_chart_stacks_the_counts_of_each_moment() -> None:
    _, timeline = _view()
    lines = text.chart(timeline, T0 + 120, width=80, height=10)
    assert all(len(line) < 80 for line in lines)
    grid = [line.split("|", 1)[1] for line in lines[1:11]]
    columns = ["".join(row[x] for row in grid) for x in range(len(grid[0]))]
    # The last column: 20 things at the top; bottom up 10 succeeded, 2 failed, 2 in progress, 6 queued.
    assert columns[-1][::-1] == "#####F=..."
    assert columns[0].strip() == ""  # before anything was seen
    assert lines[1].startswith("20 |") and lines[10].startswith(" 0 |")
    assert "# SUCCEEDED" in "\n".join(lines[-2:]) and ". QUEUED" in "\n".join(lines[-2:])


def test_sampling_holds_each_point_until_the_next() -> None:
    timeline = Timeline(start=0)
    timeline.add(10, {"QUEUED": 1})
    timeline.add(20, {"SUCCEEDED": 1})
    found = [(t, sum(c), c[2]) for t, c in sample(timeline.points, 0, 30, 4)]
    assert found == [(0, 0, 0), (10, 1, 0), (20, 1, 1), (30, 1, 1)]


# the report --------------------------------------------------------------------------------------
def test_the_report_is_self_contained_and_embeds_the_chart_data() -> None:
    view, timeline = _view()
    page = report.render(view, timeline, T0 + 120)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polygon" in page
    assert not re.search(r"<link|<img|<iframe|\bsrc=|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    found = re.search(r'<script type="application/json" id="rollout-data">(.*?)</script>', page, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert data["jobId"] == "Job1" and data["statuses"][0] == "QUEUED"
    assert [p["t"] for p in data["timeline"]] == [1, 30, 61]
    assert data["timeline"][-1]["counts"]["SUCCEEDED"] == 10
    assert data["summary"]["counts"] == view.counts and data["retries"] == 1
    assert data["abort"][0]["executed"] == 12 and not data["abort"][0]["met"]
    drawing = ElementTree.fromstring(report.svg(timeline, T0 + 120))  # well-formed, stand-alone SVG
    assert drawing.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(drawing.findall("{http://www.w3.org/2000/svg}polygon")) == 4  # queued, in progress, succeeded, failed


def test_the_report_escapes_what_it_shows() -> None:
    snap = describe.snapshot(response("CANCELED", False, canceled=1))
    snap = describe.Snapshot(**{**snap.__dict__, "job_id": "</script><b>x", "comment": "<i>"})
    page = report.render(model.build(snap, Timeline(T0), T0), Timeline(T0), T0)
    assert "<b>x" not in page and "</script><b>" not in page
