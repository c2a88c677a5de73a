"""The view as text: the live frame, one line per change, the summary table and the timeline chart.

Pure functions of a ``View`` (and a ``Timeline``) and a width; every line fits in ``width - 1``
columns, so nothing wraps on an 80-column terminal.
"""

from __future__ import annotations

from .describe import STATUS_NAMES
from .model import AbortState, Pace, View
from .timeline import Timeline, sample

FULL = "█"
#: Bottom to top in a chart column: the finished first, then running, then waiting.
STACK = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED", "IN_PROGRESS", "QUEUED")
GLYPHS = {
    "SUCCEEDED": "#",
    "FAILED": "F",
    "REJECTED": "R",
    "TIMED_OUT": "T",
    "REMOVED": "-",
    "CANCELED": "C",
    "IN_PROGRESS": "=",
    "QUEUED": ".",
}
LABEL = 12


def duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``; None -> ``?``."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _fit(lines: list[str], width: int) -> list[str]:
    limit = max(20, width - 1)
    return [line if len(line) <= limit else line[: limit - 1] + "…" for line in lines]


def timing(view: View) -> str:
    text = f"elapsed {duration(view.elapsed)}"
    if view.final:
        return text
    if view.remaining is None:
        return text + ", rest: no estimate yet"
    return text + f", rest {'≥' if view.remaining_at_least else '~'}{duration(view.remaining)}"


def pace_text(p: Pace) -> list[str]:
    """The pace against the rate, and for an exponential rate its step (each line fits 80 columns)."""
    observed = f"{p.observed_per_minute}/min in the last minute"
    done = "" if p.rolling_out else "; rollout done"
    if p.rate_per_minute is None:
        return [f"pace: {observed}; no rollout config (every execution at once)"]
    if not p.exponential:
        configured = f"maximumPerMinute {p.maximum_per_minute}" if p.maximum_per_minute else "the default"
        return [f"pace: {observed}, rate {p.rate_per_minute}/min ({configured}){done}"]
    step = f"exponential: {p.base_rate}/min x{p.factor:g} per step, step {p.step}"
    if p.next_increase_at is not None:
        step += f"; next step at {p.next_increase_at} {p.increase_on} (now {p.increase_count})"
    else:
        step += f"; at its cap ({p.rate_per_minute}/min)"
    return [f"pace: {observed}, rate {p.rate_per_minute}/min{done}", step]


def abort_text(a: AbortState) -> str:
    """``abort FAILED >= 50% of >= 4 executed: 2/12 = 16.7%; 4 more failures fire it`` (fits 80 columns)."""
    rule = a.rule
    share = "-" if a.percent is None else f"{a.percent:.1f}%"
    head = (
        f"abort {rule.failure_type} >= {rule.threshold_percentage:g}% of >= {rule.min_executed_things} executed: "
        f"{a.failed}/{a.executed} = {share}"
    )
    if a.met:
        return head + "; MET"
    if a.reached:
        return head + "; reached: the next failure fires it"
    if a.failures_to_fire is None:
        return head + "; cannot be met"
    plural = "s" if a.failures_to_fire != 1 else ""
    return head + f"; {a.failures_to_fire} more failure{plural} fire it"


def retries_text(view: View) -> str | None:
    r = view.retries
    if not r.rules:
        return None
    budget = ", ".join(f"{rule.failure_type} {rule.retries}" for rule in r.rules)
    seen = "not visible" if r.total is None else f"{r.total} so far on {r.things} thing(s)"
    return f"retries: {seen}; budget per thing: {budget}"


def frame(view: View, width: int) -> list[str]:
    """The live view: a header, a bar per status, pace, abort criteria, retries."""
    lines = [f"{view.job_id}  {view.outcome}  ({view.target_selection})", f"  {timing(view)} (service clock)"]
    count_width = max(5, len(str(view.total)))
    bar_room = max(5, width - 1 - 2 - LABEL - count_width - 1 - 8)
    for bar in view.bars:
        cells = round(bar.share * bar_room)
        if bar.count and not cells:
            cells = 1  # a status with things is never drawn empty
        lines.append(
            f"  {bar.status:<{LABEL}}{bar.count:>{count_width}} {FULL * cells}{' ' * (bar_room - cells)} "
            f"{bar.share * 100:5.1f}%"
        )
    if view.waiting:
        lines.append(f"  {'(waiting)':<{LABEL}}{view.waiting:>{count_width}} not notified yet")
    lines += [f"  {line}" for line in pace_text(view.pace)]
    lines += [f"  {abort_text(a)}" for a in view.abort]
    retries = retries_text(view)
    if retries:
        lines.append(f"  {retries}")
    if view.timeout_minutes is not None:
        lines.append(f"  in-progress timeout: {view.timeout_minutes} min")
    return _fit(lines, width)


def change_line(view: View) -> str:
    """One line per change, for a pipe: every count, the pace, the abort criteria, the estimate."""
    counts = " ".join(f"{b.status.lower()}={b.count}" for b in view.bars)
    parts = [f"[{duration(view.elapsed)}] {view.job_id} {view.status} {counts}"]
    if view.waiting:
        parts.append(f"waiting={view.waiting}")
    p = view.pace
    if p.rate_per_minute is not None:
        parts.append(f"pace {p.observed_per_minute}/min of {p.rate_per_minute}/min")
    for a in view.abort:
        share = "-" if a.percent is None else f"{a.percent:.1f}%"
        state = " MET" if a.met else " reached" if a.reached else ""
        parts.append(f"abort {a.rule.failure_type} {share}/{a.rule.threshold_percentage:g}%{state}")
    if view.retries.total is not None and view.retries.rules:
        parts.append(f"retries {view.retries.total}")
    if not view.final and view.remaining is not None:
        parts.append(f"rest {'>=' if view.remaining_at_least else '~'}{duration(view.remaining)}")
    if view.final:
        parts.append(view.outcome)
    return " | ".join(parts)


def summary(view: View, width: int = 80) -> list[str]:
    lines = [f"Job {view.job_id}: {view.outcome}", f"{'status':<{LABEL}}{'things':>8}{'share':>9}"]
    for bar in view.bars:
        lines.append(f"{bar.status:<{LABEL}}{bar.count:>8}{bar.share * 100:>8.1f}%")
    lines.append(f"{'total':<{LABEL}}{view.total:>8}")
    lines.append(f"{timing(view)} (service clock)")
    lines += pace_text(view.pace)
    lines += [abort_text(a) for a in view.abort]
    retries = retries_text(view)
    if retries:
        lines.append(retries)
    return _fit(lines, width)


def chart(timeline: Timeline, end: float, width: int = 80, height: int = 10) -> list[str]:
    """Executions by status over time: one stacked column per time slice, from the job's creation to ``end``."""
    origin = timeline.origin()
    if origin is None or not timeline.points:
        return ["(no executions seen)"]
    top = max(1, max(p.total for p in timeline.points))
    axis = len(str(top))
    columns = max(10, min(120, width - 1 - axis - 2))
    slices = sample(timeline.points, origin, max(end, origin), columns)
    grid = [[" "] * columns for _ in range(height)]
    for x, (_when, counts) in enumerate(slices):
        by_name = dict(zip(STATUS_NAMES, counts, strict=True))
        below, filled = 0, 0
        for name in STACK:
            below += by_name[name]
            reach = round(below / top * height)
            for y in range(filled, reach):
                grid[height - 1 - y][x] = GLYPHS[name]
            filled = max(filled, reach)
    lines = [f"Executions by status over time (service clock, {duration(end - origin)} in all)"]
    for row, cells in enumerate(grid):
        label = str(top) if row == 0 else ("0" if row == height - 1 else "")
        lines.append(f"{label:>{axis}} |{''.join(cells)}")
    lines.append(f"{'':>{axis}} +{'-' * columns}")
    start_label, end_label = duration(0), duration(end - origin)
    lines.append(f"{'':>{axis}}  {start_label}{end_label:>{columns - len(start_label)}}")
    indent = " " * (axis + 2)
    legend = indent
    for entry in (f"{GLYPHS[n]} {n}" for n in STACK):  # the legend, wrapped between entries
        if legend.strip() and len(legend) + 2 + len(entry) > width - 1:
            lines.append(legend)
            legend = indent
        legend += ("  " if legend.strip() else "") + entry
    lines.append(legend)
    return _fit(lines, width)
