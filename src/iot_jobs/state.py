"""What the console knows about the session, for the toolbar and completion. Thread-safe.

Updated from command results and from events (which arrive on CRT threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any


class ConsoleState:
    def __init__(self, thing_name: str, endpoint: str) -> None:
        self.thing_name = thing_name
        self.endpoint = endpoint
        self.connection = "connecting"
        #: This thing's pending executions as far as the console has heard: jobId -> status.
        self._pending: dict[str, str] | None = None
        self.last_event: str | None = None
        self.last_event_at: float | None = None
        self._jobs: dict[str, None] = {}
        self._lock = threading.Lock()

    def remember_jobs(self, job_ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id:
                    self._jobs[job_id] = None

    @property
    def job_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    @property
    def in_progress(self) -> int | None:
        with self._lock:
            return None if self._pending is None else sum(s == "IN_PROGRESS" for s in self._pending.values())

    @property
    def queued(self) -> int | None:
        with self._lock:
            return None if self._pending is None else sum(s == "QUEUED" for s in self._pending.values())

    def _replace_pending(self, in_progress: list[dict[str, Any]], queued: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending = {e.get("jobId", ""): "QUEUED" for e in queued}
            self._pending.update({e.get("jobId", ""): "IN_PROGRESS" for e in in_progress})
        self.remember_jobs(e.get("jobId", "") for e in [*in_progress, *queued])

    def observe_status(self, job_id: str, status: str) -> None:
        """A response told us an execution's status (start-next, describe, our own update)."""
        self.remember_jobs([job_id])
        with self._lock:
            if self._pending is None:
                return
            if status in ("QUEUED", "IN_PROGRESS"):
                self._pending[job_id] = status
            else:
                self._pending.pop(job_id, None)

    def observe_event(self, name: str, wire: dict[str, Any]) -> None:
        """Take what an event says: its job ids and, for JobExecutionsChanged, the counts."""
        if name == "JobExecutionsChanged":
            jobs = wire.get("jobs") or {}
            self._replace_pending(jobs.get("IN_PROGRESS", []), jobs.get("QUEUED", []))
        elif wire.get("execution"):
            self.remember_jobs([wire["execution"].get("jobId", "")])
        with self._lock:
            self.last_event, self.last_event_at = name, time.time()

    def observe_pending(self, wire: dict[str, Any]) -> None:
        self._replace_pending(wire.get("inProgressJobs", []), wire.get("queuedJobs", []))
