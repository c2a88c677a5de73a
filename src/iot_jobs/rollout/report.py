"""``--report FILE``: the summary and the timeline as one self-contained HTML file.

Inline SVG and CSS, no script and no external asset, so it opens anywhere and can be attached
to a ticket. The chart's data is embedded as a JSON block (``<script type="application/json"
id="rollout-data">``, which browsers do not run) so tools and tests can read it back.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .describe import STATUS_NAMES
from .model import View
from .text import STACK, duration, summary
from .timeline import Timeline

COLOURS = {
    "SUCCEEDED": "#2e7d32",
    "FAILED": "#c62828",
    "REJECTED": "#ad1457",
    "TIMED_OUT": "#ef6c00",
    "REMOVED": "#757575",
    "CANCELED": "#5d4037",
    "IN_PROGRESS": "#1565c0",
    "QUEUED": "#90caf9",
}
WIDTH, HEIGHT, PAD = 720, 260, 40


def data(view: View, timeline: Timeline, end: float) -> dict[str, Any]:
    """What the report shows, as JSON: the counts over time (seconds since creation) and the summary."""
    origin = timeline.origin() or end
    return {
        "jobId": view.job_id,
        "status": view.status,
        "outcome": view.outcome,
        "statuses": list(STATUS_NAMES),
        "createdAt": origin,
        "elapsed": view.elapsed,
        "timeline": [{"t": round(p.at - origin, 3), "counts": p.as_dict()} for p in timeline.points],
        "summary": {"counts": view.counts, "total": view.total},
        "abort": [
            {
                "failureType": a.rule.failure_type,
                "thresholdPercentage": a.rule.threshold_percentage,
                "minNumberOfExecutedThings": a.rule.min_executed_things,
                "executed": a.executed,
                "failed": a.failed,
                "met": a.met,
            }
            for a in view.abort
        ],
        "retries": view.retries.total,
    }


def svg(timeline: Timeline, end: float) -> str:
    """A stacked area chart of the counts (step function) from creation to ``end``."""
    origin = timeline.origin()
    points = timeline.points
    if origin is None or not points:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="40">'
            '<text x="10" y="25">no executions</text></svg>'
        )
    # A margin after the end, so that the final counts (often seen only at the end) show.
    end = max(end, points[-1].at)
    span = max(end - origin, 1e-9) * 1.04
    top = max(1, max(p.total for p in points))
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(t: float) -> float:
        return PAD + (max(t, origin) - origin) / span * inner_w

    def y(v: float) -> float:
        return HEIGHT - PAD - v / top * inner_h

    # Each point holds until the next one: two x positions per point.
    steps: list[tuple[float, dict[str, int]]] = []
    for index, p in enumerate(points):
        until = points[index + 1].at if index + 1 < len(points) else origin + span
        steps += [(p.at, p.as_dict()), (until, p.as_dict())]
    shapes = []
    for level, name in enumerate(STACK):
        lower = [sum(c[n] for n in STACK[:level]) for _t, c in steps]
        upper = [low + c[name] for low, (_t, c) in zip(lower, steps, strict=True)]
        if not any(c[name] for _t, c in steps):
            continue
        forward = [f"{x(t):.1f},{y(u):.1f}" for (t, _c), u in zip(steps, upper, strict=True)]
        back = [f"{x(t):.1f},{y(low):.1f}" for (t, _c), low in reversed(list(zip(steps, lower, strict=True)))]
        shapes.append(
            f'<polygon points="{" ".join(forward + back)}" fill="{COLOURS[name]}"><title>{name}</title></polygon>'
        )
    axes = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{PAD - 6}" y="{PAD + 4}" text-anchor="end">{top}</text>'
        f'<text x="{PAD - 6}" y="{HEIGHT - PAD + 4}" text-anchor="end">0</text>'
        f'<text x="{PAD}" y="{HEIGHT - PAD + 18}">0:00</text>'
        f'<text x="{x(end):.1f}" y="{HEIGHT - PAD + 18}" text-anchor="middle">{duration(end - origin)}</text>'
    )
    legend, left = [], float(PAD)
    for name in STACK:
        legend.append(
            f'<rect x="{left:.0f}" y="8" width="10" height="10" fill="{COLOURS[name]}"/>'
            f'<text x="{left + 14:.0f}" y="17">{name}</text>'
        )
        left += 14 + 6.5 * len(name) + 10  # about 6.5 px a character at 10 px sans-serif

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10" role="img" '
        f'aria-label="executions by status over time">{"".join(legend)}{"".join(shapes)}{axes}</svg>'
    )


def render(view: View, timeline: Timeline, end: float) -> str:
    """The whole HTML document."""
    payload = json.dumps(data(view, timeline, end), separators=(",", ":")).replace("<", "\\u003c")
    rows = "".join(
        f'<tr><td><span class="key" style="background:{COLOURS[b.status]}"></span>{b.status}</td>'
        f"<td>{b.count}</td><td>{b.share * 100:.1f} %</td></tr>"
        for b in view.bars
    )
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in summary(view, 200)[2 + len(view.bars) + 1 :])
    title = html.escape(f"Rollout of {view.job_id}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222 }}
table {{ border-collapse: collapse }} td, th {{ padding: 2px 12px; text-align: right }}
td:first-child, th:first-child {{ text-align: left }}
.key {{ display: inline-block; width: 10px; height: 10px; margin-right: 6px }}
</style></head>
<body>
<h1>{title}</h1>
<p>{html.escape(view.outcome)}</p>
{svg(timeline, end)}
<table><tr><th>status</th><th>things</th><th>share</th></tr>{rows}
<tr><th>total</th><th>{view.total}</th><th></th></tr></table>
<ul>{notes}</ul>
<script type="application/json" id="rollout-data">{payload}</script>
</body></html>
"""


def view_document(view: View) -> dict[str, Any]:
    """One moment of the view as JSON (``watch-job --output json``, one per change)."""
    p = view.pace
    return {
        "jobId": view.job_id,
        "status": view.status,
        "final": view.final,
        "outcome": view.outcome,
        "counts": view.counts,
        "waiting": view.waiting,
        "elapsed": view.elapsed,
        "remaining": view.remaining,
        "pace": {
            "ratePerMinute": p.rate_per_minute,
            "observedPerMinute": p.observed_per_minute,
            "rollingOut": p.rolling_out,
            "step": p.step,
            "nextIncreaseAt": p.next_increase_at,
        },
        "abort": [
            {
                "failureType": a.rule.failure_type,
                "thresholdPercentage": a.rule.threshold_percentage,
                "executed": a.executed,
                "failed": a.failed,
                "percent": a.percent,
                "reached": a.reached,
                "met": a.met,
                "failuresToFire": a.failures_to_fire,
            }
            for a in view.abort
        ],
        "retries": view.retries.total,
    }
