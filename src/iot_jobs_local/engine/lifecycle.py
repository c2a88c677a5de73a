"""What follows an execution's end: a retry (``jobExecutionsRetryConfig``) and the job's abort
(``abortConfig``); and canceling a job's waiting executions (CancelJob, abort, scheduled end).

These run inside the transaction of the operation that ended the execution (a device update, a
timeout), so the events of everything they change go out together after its commit.
"""

from __future__ import annotations

from ..jobs import abort, configs, retry, transitions
from ..jobs.model import Execution, ExecutionStatus, Job, JobStatus
from .core import Pending, PendingChange
from .targets import TargetOps


class LifecycleOps(TargetOps):
    def _after_end(self, ended: Execution, now: float, job: Job | None) -> Pending:
        """Retry ``ended`` (just stored, terminal) if its ``job`` allows, abort the job if its criteria
        are met, settle the job. Returns the pending sets, before any change, of the *other* things
        an abort touched (the caller knows the ended execution's own thing)."""
        if job is None:
            return {}
        others: Pending = {}
        if job.status is JobStatus.IN_PROGRESS:
            retry_criteria = configs.retry_criteria(job.config)
            if retry_criteria and ended.status in retry.RETRYABLE:
                self._retry(job, retry_criteria, ended, now)
            criteria = configs.abort_criteria(job.config)
            failed = ended.status in abort.EXECUTED and ended.status is not ExecutionStatus.SUCCEEDED
            if failed and criteria and abort.should_abort(criteria, self._store.latest_status_counts(job.job_id)):
                others = self._abort(job, now)
        self._settle_job(job.job_id, now)
        return {name: pending for name, pending in others.items() if name != ended.thing_name}

    def _retry(self, job: Job, criteria: list[configs.RetryCriterion], ended: Execution, now: float) -> None:
        attempts = retry.chain(self._store.attempts(job.job_id, ended.thing_name))
        latest = bool(attempts) and attempts[-1].key == ended.key
        if latest and retry.should_retry(criteria, attempts):
            self._store.put_execution(retry.retried(ended, self._store.next_seq(), now))

    def _abort(self, job: Job, now: float) -> Pending:
        """The job becomes CANCELED; its QUEUED executions (queued retries too) are canceled, the
        IN_PROGRESS ones run on, and no more things get an execution."""
        aborted = abort.aborted(job, now)
        self._store.put_job(aborted)
        self._job_status_changed(job, aborted, now)
        self._store.delete_pacing(job.job_id)
        return self._cancel_executions(job.job_id, False, now)

    def _cancel_executions(self, job_id: str, force: bool, now: float) -> Pending:
        """Cancel the job's QUEUED executions (and with ``force`` its IN_PROGRESS ones). Returns the
        pending sets of the things concerned as they were before."""
        canceled = transitions.cancel_for_job(self._store.pending_for_job(job_id), force, now)
        before = self._pending_many({e.thing_name for e in canceled})
        self._store.put_executions(canceled)
        return before

    def _events_since(self, before: Pending, now: float) -> list[PendingChange]:
        """The events of the things in ``before``, whose pending sets were those before the change."""
        return self._changes(before, self._pending_many(before), now)
