"""Jobs: create (from a document or a template), describe, list, update, cancel, delete, add targets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..jobs import configs, creation, managed_templates, rollout, transitions
from ..jobs.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from ..jobs.model import ExecutionStatus, Job, JobStatus, TargetSelection
from ..store import Cursor, Page
from .core import JobView, PendingChange
from .rollout import RolloutOps

#: Jobs whose DescribeJob view is remembered (between two writes).
_JOB_VIEWS = 64


class JobOps(RolloutOps):
    def create_job(
        self,
        job_id: str,
        targets: Any,
        document: Any,
        description: Any = None,
        target_selection: Any = None,
        config: dict[str, Any] | None = None,
    ) -> Job:
        """``config`` holds the other CreateJob members (wire names), ``jobTemplateArn`` among them."""
        creation.check_job_id(job_id)
        creation.check_description(description)
        try:
            selection = TargetSelection(target_selection or "SNAPSHOT")
        except ValueError:
            raise InvalidRequest(f"targetSelection {target_selection!r} is not SNAPSHOT or CONTINUOUS") from None
        parsed = creation.unique_targets(creation.parse_targets(targets, self.identity.region, self.identity.account))
        config = dict(config or {})
        now = self._clock()
        with self._store.transaction():
            if self._store.get_job(job_id) is not None:
                raise ResourceAlreadyExists(f"Job {job_id} already exists.", job_id, self.identity.job_arn(job_id))
            template_arn = config.get("jobTemplateArn")
            managed = self._managed_template(template_arn)
            if managed is not None:
                document = self._from_managed_template(managed, document, config.get("documentParameters"))
                if description is None:  # the template's, as the developer guide's example shows
                    description = managed.description
            elif "documentParameters" in config:
                raise InvalidRequest(managed_templates.PARAMETERS_ONLY_MANAGED)
            elif template_arn is not None:
                document, config = self._from_template(template_arn, document, config)
            if not isinstance(document, str):
                raise InvalidRequest("document is required (documentSource is not supported by this service)")
            creation.check_document(document)
            configs.check(config, now)
            things = self._resolve_targets(parsed)
            job = creation.new_job(
                job_id, self.identity.job_arn(job_id), document, targets, selection, description, config, now
            )
            schedule = configs.schedule(config)
            if schedule is not None and schedule.start is not None:
                job = replace(job, status=JobStatus.SCHEDULED)
            self._store.put_job(job)
            self._store.add_job_targets(job_id, ((t.kind, t.name) for t in parsed))
            if rollout.is_paced(configs.rollout(config), schedule):
                changes = self._start_paced(job, now)
                job = self._store.get_job(job_id) or job
            else:
                changes = self._queue(job_id, things, now, new_job=True)
                if not things:
                    job = self._settle_job_status(job, False, now)  # a SNAPSHOT job with no things is done
                    self._store.put_job(job)
        self._emit(changes)
        return job

    def _managed_template(self, template_arn: Any) -> managed_templates.ManagedTemplate | None:
        """The AWS managed template ``template_arn`` names; None if it is not a managed template's ARN."""
        if template_arn is None:
            return None
        if not isinstance(template_arn, str):
            raise InvalidRequest("jobTemplateArn must be a string")
        parsed = managed_templates.parse_arn(template_arn)
        if parsed is None:
            return None
        found = managed_templates.from_arn(template_arn, self.identity.region)
        if found is None:
            # UNCONFIRMED: code and message for a managed template AWS does not have (or another region's).
            raise ResourceNotFound(f"Job template {template_arn} cannot be found.")
        return found

    @staticmethod
    def _from_managed_template(template: managed_templates.ManagedTemplate, document: Any, parameters: Any) -> str:
        """The template's document with ``documentParameters`` substituted, once they pass its rules."""
        if document is not None:
            raise InvalidRequest("Specify either a document or a jobTemplateArn, not both")
        values = dict(parameters or {})
        managed_templates.check_parameters(template, values)
        return managed_templates.substitute(template, values)

    def _from_template(self, template_arn: Any, document: Any, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not isinstance(template_arn, str):
            raise InvalidRequest("jobTemplateArn must be a string")
        template_id = creation.template_id_from_arn(template_arn, self.identity.region, self.identity.account)
        template = self._store.get_template(template_id)
        if template is None:
            raise ResourceNotFound(f"Job template {template_id} cannot be found.")
        return creation.from_template(template, document, config)

    def describe_job(self, job_id: str) -> tuple[Job, dict[ExecutionStatus, int]]:
        """The job and how many things' latest execution is in each status."""
        job = self._require_job(job_id)
        return job, self._store.latest_status_counts(job_id)

    def job_view(self, job_id: str) -> JobView:
        """What DescribeJob shows of a job. Read again only after a write: a client polling a job
        until it completes costs no query between two changes."""
        changes = self._store.changes
        cached = self._job_views.get(job_id)
        if cached is not None and cached[0] == changes:
            return cached[1]
        job, counts = self.describe_job(job_id)
        view = JobView(job, counts, tuple(self.processing_targets(job_id)))
        if len(self._job_views) >= _JOB_VIEWS:
            self._job_views.clear()
        self._job_views[job_id] = (changes, view)
        return view

    def get_job_document(self, job_id: str, before_substitution: bool = False) -> str:
        """The document devices get; ``before_substitution``: a managed template's document with its
        ``${aws:iot:parameter:...}`` placeholders, as the job was created from it."""
        job = self._require_job(job_id)
        if before_substitution:
            managed = managed_templates.from_arn(job.config.get("jobTemplateArn"), self.identity.region)
            if managed is not None:
                return managed.document
        return job.document

    def list_jobs(
        self,
        *,
        status: str | None,
        target_selection: str | None,
        group_name: str | None,
        group_id: str | None,
        namespace_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> Page[Job]:
        if group_id is not None:
            named = self._store.group_name_by_id(group_id)
            if named is None or (group_name is not None and group_name != named):
                return Page([])
            group_name = named
        return self._store.list_jobs(
            status=status,
            target_selection=target_selection,
            group_name=group_name,
            namespace_id=namespace_id,
            after=after,
            limit=limit,
        )

    def update_job(self, job_id: str, description: str | None, config: dict[str, Any]) -> None:
        now = self._clock()
        configs.check(config, now, scheduling=False)
        with self._store.transaction():
            job = self._require_job(job_id)
            self._store.put_job(transitions.update_job(job, description, config, now))

    def cancel_job(self, job_id: str, force: bool, reason_code: str | None, comment: str | None) -> Job:
        """The job becomes CANCELED with its QUEUED executions (and, with ``force``, IN_PROGRESS ones)."""
        now = self._clock()
        with self._store.transaction():
            previous = self._require_job(job_id)
            job = transitions.cancel_job(previous, force, reason_code, comment, now)
            self._job_status_changed(previous, job, now)
            canceled = transitions.cancel_for_job(self._store.pending_for_job(job_id), force, now)
            before = self._pending_many({e.thing_name for e in canceled})
            self._store.put_executions(canceled)
            self._store.put_job(job)
            self._store.delete_pacing(job_id)  # no more rollout, and a SCHEDULED job never starts
            changes = self._changes(before, self._without(before, canceled), now)
        self._emit(changes)
        return job

    def delete_job(self, job_id: str, force: bool) -> None:
        """Without ``force`` only a COMPLETED or CANCELED job with nothing IN_PROGRESS; with it, any job.

        The executions go at once (devices get their events now); the job stays
        DELETION_IN_PROGRESS for ``DELETION_SECONDS``, then the scheduler purges it
        (``FiringOps._wake_job``), and only then can its id be used again.
        """
        now = self._clock()
        changes: list[PendingChange] = []
        with self._store.transaction():
            previous = self._require_job(job_id)
            pending = self._store.pending_for_job(job_id)
            transitions.check_deletable(previous, pending, force)
            deleting = self._store.count_jobs_with_status(JobStatus.DELETION_IN_PROGRESS.value)
            job = transitions.start_deletion(previous, deleting, now)
            before = self._pending_many({e.thing_name for e in pending})
            self._store.delete_executions_of_job(job_id)
            self._store.delete_pacing(job_id)
            self._store.put_job(job)
            self._job_status_changed(previous, job, now)
            purge_at = now + transitions.DELETION_SECONDS
            self._store.put_pacing(rollout.Pacing(job_id, ended=True), purge_at)
            changes = self._changes(before, self._without(before, pending), now)
        self._emit(changes)
        self._deadline(purge_at)

    def associate_targets_with_job(self, job_id: str, targets: Any) -> Job:
        """Add targets to a CONTINUOUS job that is IN_PROGRESS; things they newly cover get an execution."""
        region, account = self.identity.region, self.identity.account
        added = creation.parse_targets(targets, region, account)
        now = self._clock()
        with self._store.transaction():
            job = self._require_job(job_id)
            transitions.check_associate(job)
            existing = creation.unique_targets(creation.parse_targets(list(job.targets), region, account))
            new = [t for t in creation.unique_targets(added) if t not in existing]
            creation.check_target_count(len(existing) + len(new))
            covered_before = set(self._resolve_targets(existing, strict=False))
            newly_covered = self._resolve_targets(new)
            arns = {t: arn for arn, t in zip(targets, added, strict=True)}
            job = replace(job, targets=(*job.targets, *(arns[t] for t in new)), last_updated_at=now)
            self._store.put_job(job)
            self._store.add_job_targets(job_id, ((t.kind, t.name) for t in new))
            joined = [name for name in newly_covered if name not in covered_before]
            changes = self._queue(job_id, joined, now, new_job=False)
        self._emit(changes)
        return job
