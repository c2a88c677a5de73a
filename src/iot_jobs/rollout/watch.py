"""Watch a job until it ends: poll DescribeJob (and ListJobExecutionsForJob), feed the view model,
hand each view to a sink, then print the summary and the timeline and write the report.

Works against AWS IoT and iot-jobs-local alike: it reads only boto3 ``iot`` responses. Ends when
the job is COMPLETED or CANCELED, when DescribeJob no longer finds it (deleted), on Ctrl-C
(KeyboardInterrupt in the calling thread) or when ``stop`` is set.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from . import describe, model, report
from .clock import ServiceClock
from .describe import Snapshot
from .sinks import JsonSink, LineSink, LiveSink, Sink
from .timeline import Timeline

log = logging.getLogger(__name__)

#: Listing the executions costs a page per 250: at most this often (real seconds) per 1000 executions.
LIST_EVERY_PER_THOUSAND = 1.0
#: Pages of 250 read at most: of the executions at each listing, of a target group's things once.
EXECUTION_PAGES = 100
TARGET_PAGES = 200
NOT_FOUND = "ResourceNotFoundException"


def error_code(exc: BaseException) -> str | None:
    """AWS's error code of a botocore ``ClientError`` (without importing botocore)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None


def count_targets(client: Any, targets: tuple[str, ...]) -> int | None:
    """How many things the job's targets cover (things, and the things of its groups), or None."""
    names: set[str] = set()
    try:
        for arn in targets:
            kind, _, name = arn.rpartition(":")[2].partition("/")
            if kind == "thing":
                names.add(name)
            elif kind == "thinggroup":
                kwargs: dict[str, Any] = {"thingGroupName": name, "recursive": True, "maxResults": 250}
                for _ in range(TARGET_PAGES):
                    page = client.list_things_in_thing_group(**kwargs)
                    names.update(page.get("things") or [])
                    if not page.get("nextToken"):
                        break
                    kwargs["nextToken"] = page["nextToken"]
                else:
                    return None
    except Exception as exc:  # the count only improves the estimate: never fail the watch for it
        log.info("cannot count the job's targets: %s", exc)
        return None
    return len(names)


class Watcher:
    def __init__(
        self,
        client: Any,
        job_id: str,
        sink: Sink,
        interval: float = 0.5,
        stop: threading.Event | None = None,
        refresh: float = 1.0,
    ) -> None:
        self._client = client
        self._job_id = job_id
        self._sink = sink
        self._interval = max(0.05, interval)
        #: A live sink redraws at least this often (elapsed time moves on between polls).
        self._refresh = refresh
        self._stop = stop or threading.Event()
        self.clock = ServiceClock()
        self.timeline = Timeline()
        self.expected: int | None = None
        self._summaries: list[Mapping[str, Any]] | None = None
        self._listed_at = -1e9
        self._last_counts: Mapping[str, int] | None = None
        self._last_key: tuple[Any, ...] | None = None
        self.problem: str | None = None

    def _describe(self) -> Mapping[str, Any]:
        return dict(self._client.describe_job(jobId=self._job_id))

    def _list(self) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        kwargs: dict[str, Any] = {"jobId": self._job_id, "maxResults": 250}
        for _ in range(EXECUTION_PAGES):
            page = self._client.list_job_executions_for_job(**kwargs)
            found.extend(page.get("executionSummaries") or [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return found

    def poll(self, real: float) -> Snapshot:
        """One DescribeJob, and a listing of the executions when the counts changed (not too often)."""
        response = self._describe()
        counts = (response.get("job") or {}).get("jobProcessDetails") or {}
        total = sum(int(v) for k, v in counts.items() if k.startswith("numberOf"))
        gap = max(self._interval, LIST_EVERY_PER_THOUSAND * total / 1000)
        if (counts != self._last_counts and real - self._listed_at >= gap) or self._summaries is None:
            try:
                self._summaries = self._list()
                self._listed_at = real
                self._last_counts = counts
            except Exception as exc:
                if error_code(exc) == NOT_FOUND:
                    raise
                log.info("ListJobExecutionsForJob failed: %s", exc)
        return describe.snapshot(response, self._summaries)

    def _record(self, snap: Snapshot, real: float) -> float:
        """Feed the clock and the timeline; the service time now."""
        previous = self.timeline.points[-1].at if self.timeline.points else None
        self.clock.observe(real, snap.latest_stamp, snap.reported_at)
        now = self.clock.now(real) or snap.latest_stamp or 0.0
        if self.timeline.start is None:
            self.timeline.start = snap.created_at
        stamp = snap.latest_stamp
        at = stamp if stamp is not None and (previous is None or stamp > previous) and stamp <= now else now
        self.timeline.add(at, snap.counts)
        return now

    @staticmethod
    def _key(view: model.View) -> tuple[Any, ...]:
        return (
            view.status,
            tuple(view.counts.items()),
            view.waiting,
            view.retries.total,
            tuple((a.reached, a.met) for a in view.abort),
            view.pace.rate_per_minute,
            view.pace.rolling_out,
        )

    def _show(self, view: model.View) -> None:
        key = self._key(view)
        changed = key != self._last_key
        self._last_key = key
        self._sink.show(view, changed, self.problem)

    def _poll_or_note(self, snap: Snapshot, real: float) -> tuple[Snapshot, bool]:
        """Poll once; (the new snapshot, gone). Other errors keep the last snapshot and show a line."""
        try:
            found = self.poll(real)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if error_code(exc) == NOT_FOUND:
                return snap, True
            self.problem = f"DescribeJob failed: {error_code(exc) or type(exc).__name__}: {exc}"
            log.warning("%s", self.problem)
            return snap, False
        self.problem = None
        self._record(found, real)
        return found, False

    def run(self, report_path: pathlib.Path | None = None) -> str:
        real = time.monotonic()
        snap = self.poll(real)  # a job that does not exist: the caller's error
        now = self._record(snap, real)
        gone = False
        note: str | None = None
        try:
            self.expected = count_targets(self._client, snap.config.targets)
            view = model.build(snap, self.timeline, now, self.expected)
            self._show(view)
            next_poll = real + self._interval
            while not view.final:
                if self._stop.wait(min(self._refresh, max(0.0, next_poll - time.monotonic()))):
                    note = f"Stopped watching {self._job_id}; the job is {snap.status}."
                    break
                real = time.monotonic()
                if real >= next_poll:
                    next_poll = real + self._interval
                    snap, gone = self._poll_or_note(snap, real)
                now = self.clock.now(real) or now
                view = model.build(snap, self.timeline, now, self.expected, gone)
                self._show(view)
        except KeyboardInterrupt:
            note = f"Left the view (Ctrl-C); the job is {snap.status}."
        end = snap.completed_at if snap.completed_at is not None else now
        view = model.build(snap, self.timeline, end, self.expected, gone)
        self._sink.finish(view, self.timeline, end, note)
        if report_path is not None:
            report_path.write_text(report.render(view, self.timeline, end), encoding="utf-8")
        return view.status


def make_sink(stream: TextIO, live: bool | None, json_lines: bool = False) -> Sink:
    if json_lines:
        return JsonSink(stream)
    if live is None:
        isatty = getattr(stream, "isatty", None)
        live = bool(isatty()) if callable(isatty) else False
    return LiveSink(stream) if live else LineSink(stream)


def watch_job(
    iot_client: Any,
    job_id: str,
    *,
    stream: TextIO,
    live: bool | None = None,
    interval: float = 0.5,
    report: pathlib.Path | None = None,
    stop: threading.Event | None = None,
) -> str:
    """Watch ``job_id`` until it ends, Ctrl-C or ``stop``; print the summary and the timeline on
    ``stream``; write the HTML report to ``report`` if given. Returns the job's last status
    (DELETION_IN_PROGRESS when it was deleted meanwhile). ``live=None``: live if ``stream`` is a tty.

    A DescribeJob error before the first view (the job does not exist, no credentials) is raised
    as boto3 raised it.
    """
    return Watcher(iot_client, job_id, make_sink(stream, live), interval, stop).run(report)
