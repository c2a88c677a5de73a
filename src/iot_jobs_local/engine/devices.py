"""The device data plane (MQTT and ``iot-jobs-data`` over HTTP share it)."""

from __future__ import annotations

from ..jobs import transitions
from ..jobs.errors import ResourceNotFound
from ..jobs.model import Execution, ExecutionStatus
from ..jobs.requests import DescribeRequest, StartNextRequest, UpdateRequest
from .core import MAX_PENDING_LISTED, EngineCore, Located


class DeviceOps(EngineCore):
    def get_pending(self, thing_name: str) -> tuple[list[Execution], list[Execution]]:
        listed = self._pending(thing_name)[:MAX_PENDING_LISTED]
        in_progress = [e for e in listed if e.status is ExecutionStatus.IN_PROGRESS]
        queued = [e for e in listed if e.status is ExecutionStatus.QUEUED]
        return in_progress, queued

    def start_next(self, thing_name: str, request: StartNextRequest) -> Located | None:
        with self._store.transaction():
            pending = self._pending(thing_name)
            execution, changed = transitions.start_next(pending, request, self._clock())
            if execution is None:
                return None
            if changed:
                self._store.put_execution(execution)
            located = self._locate(execution)
        # QUEUED -> IN_PROGRESS of the head changes neither membership nor head: no events.
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
            updated = transitions.update(current, request, now)
            self._store.put_execution(updated)
            if updated.status.is_terminal:
                self._settle_job(job_id, now)
            changes = self._change(thing_name, before, now)
            located = self._locate(updated)
        self._emit(changes)
        return located
