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
        self.in_progress: int | None = None
        self.queued: int | None = None
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

    def set_counts(self, in_progress: int, queued: int) -> None:
        with self._lock:
            self.in_progress, self.queued = in_progress, queued

    def observe_event(self, name: str, wire: dict[str, Any]) -> None:
        """Take what an event says: its job ids and, for JobExecutionsChanged, the counts."""
        ids: list[str] = []
        if name == "JobExecutionsChanged":
            jobs = wire.get("jobs") or {}
            for entries in jobs.values():
                ids += [e.get("jobId", "") for e in entries]
            self.set_counts(len(jobs.get("IN_PROGRESS", [])), len(jobs.get("QUEUED", [])))
        elif wire.get("execution"):
            ids.append(wire["execution"].get("jobId", ""))
        self.remember_jobs(ids)
        with self._lock:
            self.last_event, self.last_event_at = name, time.time()

    def observe_pending(self, wire: dict[str, Any]) -> None:
        in_progress, queued = wire.get("inProgressJobs", []), wire.get("queuedJobs", [])
        self.set_counts(len(in_progress), len(queued))
        self.remember_jobs(e.get("jobId", "") for e in [*in_progress, *queued])
