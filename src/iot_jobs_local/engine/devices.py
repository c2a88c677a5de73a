"""The device data plane (MQTT and ``iot-jobs-data`` over HTTP share it)."""

from __future__ import annotations

from ..jobs import configs, transitions
from ..jobs.errors import ResourceNotFound
from ..jobs.model import Execution, ExecutionStatus
from ..jobs.requests import DescribeRequest, StartNextRequest, UpdateRequest
from .core import MAX_PENDING_LISTED, Located
from .lifecycle import LifecycleOps


class DeviceOps(LifecycleOps):
    def get_pending(self, thing_name: str) -> tuple[list[Execution], list[Execution]]:
        listed = self._pending(thing_name)[:MAX_PENDING_LISTED]
        in_progress = [e for e in listed if e.status is ExecutionStatus.IN_PROGRESS]
        queued = [e for e in listed if e.status is ExecutionStatus.QUEUED]
        return in_progress, queued

    def start_next(self, thing_name: str, request: StartNextRequest) -> Located | None:
        with self._store.transaction():
            pending = self._pending(thing_name)
            if not pending:
                return None
            job = self._store.get_job(pending[0].job_id)
            timeout = configs.in_progress_timeout(job.config) if job is not None else None
            execution, changed = transitions.start_next(pending, request, self._clock(), timeout)
            if execution is None:
                return None
            if changed:
                self._store.put_execution(execution)
            located = Located(execution, job.document if job is not None else "{}")
        # QUEUED -> IN_PROGRESS of the head changes neither membership nor head: no events.
        if changed:
            self._deadline(execution.deadline)
        return located

    def describe(self, thing_name: str, job_id: str, request: DescribeRequest) -> Located | None:
        """The execution, or None for ``$next`` with nothing pending."""
        if job_id == "$next":
            pending = self._pending(thing_name)
            return self._locate(pending[0]) if pending else None
        execution = self._store.execution(job_id, thing_name, request.execution_number)
        if execution is None:
            raise ResourceNotFound(f"No job execution of job {job_id} found for thing {thing_name}")
        return self._locate(execution)

    def update(self, thing_name: str, job_id: str, request: UpdateRequest) -> Located:
        now = self._clock()
        with self._store.transaction():
            before = self._pending(thing_name)
            current = self._store.execution(job_id, thing_name, request.execution_number)
            job = self._store.get_job(job_id) if current is not None else None
            timeout = configs.in_progress_timeout(job.config) if job is not None else None
            updated = transitions.update(current, request, now, timeout)
            self._store.put_execution(updated)
            others = self._after_end(updated, now, job) if updated.status.is_terminal else {}
            changes = self._events_since({**others, thing_name: before}, now)
            located = Located(updated, job.document if job is not None else "{}")
        self._emit(changes)
        self._deadline(updated.deadline)
        return located
