"""Job executions seen from the control plane: describe, list, cancel, delete."""

from __future__ import annotations

from ..jobs import transitions
from ..jobs.errors import ResourceNotFound
from ..jobs.model import Execution
from ..store import Cursor, Page
from .core import EngineCore


class ExecutionOps(EngineCore):
    def describe_execution(self, job_id: str, thing_name: str, execution_number: int | None) -> Execution:
        """The given execution, or the latest one of the job on the thing."""
        execution = self._store.execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(f"No job execution of job {job_id} found for thing {thing_name}")
        return execution

    def list_executions_for_job(
        self, job_id: str, status: str | None, after: Cursor | None, limit: int
    ) -> Page[Execution]:
        self._require_job(job_id)
        return self._store.list_executions_for_job(job_id, status, after, limit)

    def list_executions_for_thing(
        self, thing_name: str, status: str | None, job_id: str | None, after: Cursor | None, limit: int
    ) -> Page[Execution]:
        return self._store.list_executions_for_thing(thing_name, status, job_id, after, limit)

    def cancel_execution(
        self,
        job_id: str,
        thing_name: str,
        force: bool,
        expected_version: int | None,
        status_details: dict[str, str] | None,
    ) -> None:
        """QUEUED -> CANCELED, IN_PROGRESS -> CANCELED with ``force``; the device can no longer update it."""
        now = self._clock()
        with self._store.transaction():
            self._require_job(job_id)
            before = self._pending(thing_name)
            current = self._store.execution(job_id, thing_name)
            canceled = transitions.cancel_execution(current, force, expected_version, status_details, now)
            self._store.put_execution(canceled)
            self._settle_job(job_id, now)
            changes = self._change(thing_name, before, now)
        self._emit(changes)

    def delete_execution(self, job_id: str, thing_name: str, execution_number: int, force: bool) -> None:
        now = self._clock()
        with self._store.transaction():
            execution = self._store.execution(job_id, thing_name, execution_number)
            if execution is None:
                raise ResourceNotFound(
                    f"Job execution {execution_number} of job {job_id} on thing {thing_name} cannot be found."
                )
            transitions.check_execution_deletable(execution, force)
            before = self._pending(thing_name)
            self._store.delete_execution(execution)
            self._settle_job(job_id, now)
            changes = self._change(thing_name, before, now)
        self._emit(changes)
