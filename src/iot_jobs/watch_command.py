"""The console's ``watch-job <jobId> [--report FILE] [--interval S]``: the live rollout view.

The view itself is ``iot_jobs.rollout``; here are the options, the checks that give one clear line
before anything is watched, and the choice of output: redrawn in place on a terminal, a line per
change when piped, a JSON document per change with ``--output json``. The view writes straight to
stdout (a command's output is otherwise gathered for the pager until it ends); Ctrl-C ends the
view, not the console.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .arguments import Option, Parsed
from .errors import IotJobsError, UsageError

if TYPE_CHECKING:
    from .commands import Context

SUMMARY = (
    "watch a job's rollout live: a bar per status, the pace, each abort criterion, retries, "
    "elapsed time and the rest (Ctrl-C leaves the view); then a summary and a timeline"
)
EXAMPLE = "watch-job Firmware-7 --report rollout.html"
USAGE = "watch-job <jobId> [--report FILE] [--interval S]"
OPTIONS = (
    Option("--report", "also write the summary and the timeline as a self-contained HTML file", "FILE"),
    Option("--interval", "seconds between two DescribeJob calls (default 0.5, at least 0.1)", "S"),
)
DEFAULT_INTERVAL = 0.5


def interval(value: str | None) -> float:
    if value is None:
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"--interval expects seconds, got {value!r}") from None
    if not math.isfinite(seconds) or not 0.1 <= seconds <= 3600:
        raise UsageError(f"--interval must be between 0.1 and 3600 seconds, got {value}")
    return seconds


def report_path(value: str | None) -> Path | None:
    """The report's path, checked now: a watch that ends in an unwritable path wastes the rollout."""
    if value is None:
        return None
    path = Path(value).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--report {value}: is a directory")
    if not folder.is_dir():
        raise UsageError(f"--report {value}: no directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--report {value}: not writable")
    return path


def watch_job(ctx: Context, p: Parsed) -> None:
    job_id = p.args[0]
    seconds = interval(p.get("--interval"))
    report = report_path(p.get("--report"))
    ctx.control.describe_job(job_id)  # an unknown job or bad credentials: AWS's error, one line
    from .rollout.watch import Watcher, make_sink

    sink = make_sink(sys.stdout, None, json_lines=ctx.fmt.json_lines)
    try:
        status = Watcher(ctx.control.iot_client(), job_id, sink, seconds).run(report)
    except OSError as exc:
        raise IotJobsError(f"cannot write the report {report}: {exc.strerror}", "ReportNotWritten") from exc
    ctx.state.remember_jobs([job_id])
    if report is not None:
        ctx.out.line(ctx.fmt.status(f"Report written to {report} (job {status})."))
