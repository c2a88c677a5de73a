"""Paced jobs: scheduled start and end, rollout batches, maintenance windows (see ``jobs/rollout.py``).

``_advance`` runs inside a transaction, at creation and whenever the job's wake-up time comes: it
starts a SCHEDULED job whose start time has come, applies the end behavior at the end time, sends
the batch that is due, and records when to wake up next (``job_pacing.wake_at``).
"""

from __future__ import annotations

from dataclasses import replace

from ..jobs import configs, creation, rollout
from ..jobs.model import ExecutionStatus, Job, JobStatus, TargetSelection
from ..jobs.rollout import Pacing
from .core import PendingChange
from .lifecycle import LifecycleOps


class RolloutOps(LifecycleOps):
    def _advance(self, job: Job, now: float) -> list[PendingChange]:
        schedule = configs.schedule(job.config)
        pacing = self._store.get_pacing(job.job_id) or Pacing(job.job_id, next_batch_at=now)
        changes: list[PendingChange] = []
        if rollout.starts(job, schedule, now):
            job = replace(job, status=JobStatus.IN_PROGRESS, last_updated_at=now)
            self._store.put_job(job)
            self._store.enqueue_rollout(job.job_id, self._rollout_entries(job))
            pacing = replace(pacing, next_batch_at=now)
        if rollout.ends(job, schedule, pacing, now):
            assert schedule is not None
            self._store.clear_rollout(job.job_id)
            pacing = rollout.ended(pacing)
            if schedule.end_behavior in ("CANCEL", "FORCE_CANCEL"):
                job = self._cancel_at_end(job, schedule.end_behavior == "FORCE_CANCEL", now, changes)
        waiting = bool(self._store.rolling_out([job.job_id]))
        due = pacing.next_batch_at
        if job.status is JobStatus.IN_PROGRESS and waiting and due is not None and due <= now:
            windows = schedule.windows if schedule is not None else ()
            if rollout.in_window(windows, now):
                changes.extend(self._batch(job, now))
                pacing = replace(pacing, next_batch_at=rollout.after_batch(due, now))
                waiting = bool(self._store.rolling_out([job.job_id]))
            else:
                pacing = replace(pacing, next_batch_at=rollout.window_start(windows, now))
        self._settle_job(job.job_id, now)
        job = self._store.get_job(job.job_id) or job
        wake = rollout.wake_at(job, schedule, pacing, waiting)
        self._store.put_pacing(pacing, wake)
        self._deadline(wake)
        return changes

    def _cancel_at_end(self, job: Job, force: bool, now: float, changes: list[PendingChange]) -> Job:
        """endBehavior CANCEL / FORCE_CANCEL: what CancelJob (with ``force``) does."""
        canceled = replace(
            job, status=JobStatus.CANCELED, force_canceled=force or job.force_canceled, last_updated_at=now
        )
        self._store.put_job(canceled)
        self._job_status_changed(job, canceled, now)
        changes.extend(self._events_since(self._cancel_executions(job.job_id, force, now), now))
        return canceled

    def _batch(self, job: Job, now: float) -> list[PendingChange]:
        """Give the next things in the rollout queue their executions, as many as the rate allows."""
        counts = self._store.latest_status_counts(job.job_id)
        size = rollout.batch_size(
            configs.rollout(job.config), sum(counts.values()), counts.get(ExecutionStatus.SUCCEEDED, 0)
        )
        names = self._store.take_rollout(job.job_id, size)
        if not names:
            return []
        present = self._store.existing_things(names)
        ran = self._store.latest_execution_numbers(job.job_id, names)
        eligible = [n for n in names if n in present and n not in ran]
        if job.target_selection is TargetSelection.CONTINUOUS and eligible:
            targeted = self._store.continuous_jobs_for_things(eligible)
            eligible = [n for n in eligible if job.job_id in targeted[n]]
        return self._queue(job.job_id, eligible, now, new_job=False)

    def _rollout_entries(self, job: Job) -> list[tuple[str, str]]:
        """Each thing the job's targets cover, once, with the first target (ARN) that covers it."""
        region, account = self.identity.region, self.identity.account
        entries: dict[str, str] = {}
        for arn, target in zip(job.targets, creation.parse_targets(list(job.targets), region, account), strict=True):
            for name in self._resolve_targets([target], strict=False):
                entries.setdefault(name, arn)
        return list(entries.items())

    def _start_paced(self, job: Job, now: float) -> list[PendingChange]:
        """A new paced job: SCHEDULED until its start time, else its things queued for rollout and
        the first batch sent at once."""
        if job.status is not JobStatus.SCHEDULED:
            self._store.enqueue_rollout(job.job_id, self._rollout_entries(job))
        self._store.put_pacing(Pacing(job.job_id, next_batch_at=now), None)
        return self._advance(job, now)

    # reads --------------------------------------------------------------------------------------
    def processing_targets(self, job_id: str) -> list[str]:
        """The targets whose things are still waiting for their execution (``processingTargets``)."""
        return self._store.rollout_targets(job_id)

    def upcoming_windows(self, job: Job) -> list[str]:
        """The next maintenance windows of an unfinished job with a schedule (``scheduledJobRollouts``)."""
        schedule = configs.schedule(job.config)
        if schedule is None or not schedule.windows or job.status not in (JobStatus.SCHEDULED, JobStatus.IN_PROGRESS):
            return []
        return [configs.format_time(t) for t in rollout.upcoming_windows(schedule.windows, self._clock())]

    def rolling_out(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs are still rolling out (``isConcurrent``)."""
        return self._store.rolling_out(job_ids)
