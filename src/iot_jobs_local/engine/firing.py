"""What the scheduler calls: fire every deadline that has passed, each in its own transaction.

Deadlines live in SQLite (``executions.deadline``, ``job_pacing.wake_at``), and a firing changes
them in the same transaction as its effects, so a restart neither loses one nor fires one twice:
whatever is overdue when the service starts fires once, on the scheduler's first pass.
"""

from __future__ import annotations

from ..jobs import transitions
from ..jobs.model import JobStatus
from .rollout import RolloutOps

#: Firings of one kind per pass; the scheduler lets other work in between passes.
FIRING_BATCH = 200


class FiringOps(RolloutOps):
    def fire_due(self, limit: int = FIRING_BATCH) -> int:
        """Fire what is due now: timeouts, then job wake-ups. Returns how many fired."""
        now = self._clock()
        fired = 0
        for execution in self._store.due_executions(now, limit):
            fired += self._time_out(execution.job_id, execution.thing_name, execution.execution_number, now)
        for job_id in self._store.due_jobs(now, limit):
            self._wake_job(job_id, now)
            fired += 1
        return fired

    def next_due(self) -> float | None:
        """The earliest deadline still ahead (or already passed, if not fired yet)."""
        found = [t for t in (self._store.next_deadline(), self._store.next_wake()) if t is not None]
        return min(found) if found else None

    def _time_out(self, job_id: str, thing_name: str, execution_number: int, now: float) -> int:
        with self._store.transaction():
            current = self._store.execution(job_id, thing_name, execution_number)
            timed_out = transitions.time_out(current, now) if current is not None else None
            if timed_out is None:
                return 0
            before = self._pending(thing_name)
            self._store.put_execution(timed_out)
            others = self._after_end(timed_out, now, self._store.get_job(job_id))
            changes = self._events_since({**others, thing_name: before}, now)
        self._emit(changes)
        return 1

    def _wake_job(self, job_id: str, now: float) -> None:
        with self._store.transaction():
            job = self._store.get_job(job_id)
            if job is not None and job.status is JobStatus.DELETION_IN_PROGRESS:
                self._store.delete_job(job_id)  # the end of DeleteJob: the job and its id are gone
                self._store.delete_pacing(job_id)
                self._job_event("deleted", job, now)
                return
            if job is None or job.status not in (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED):
                self._store.delete_pacing(job_id)
                return
            changes = self._advance(job, now)
        self._emit(changes)
