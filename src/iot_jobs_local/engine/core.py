"""The jobs service layer: load state, apply the pure rules, commit, then hand events to publishers.

Every operation runs in one SQLite transaction. Events (a thing's pending set changed) are computed
inside the transaction and passed to the subscribers only after the commit, so no client ever hears
of a change that a crash could undo.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .jobs import creation, transitions
from .jobs.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from .jobs.model import Execution, ExecutionStatus, Job, JobStatus, TargetSelection, Thing
from .jobs.requests import DescribeRequest, StartNextRequest, UpdateRequest
from .store import Store

#: AWS documents that GetPendingJobExecutions and notify list at most 10 pending executions.
#: UNCONFIRMED: how the cap is split; we keep IN_PROGRESS first, then QUEUED, 10 in all.
MAX_PENDING_LISTED = 10


@dataclass(frozen=True)
class PendingChange:
    """A thing's pending set after a change, and which of AWS's two events the change calls for."""

    thing_name: str
    pending: tuple[Execution, ...]
    head_document: str | None
    notify: bool
    notify_next: bool
    timestamp: float


@dataclass(frozen=True)
class Located:
    """An execution with its job document (the device API returns them together)."""

    execution: Execution
    document: str


@dataclass(frozen=True)
class Identity:
    region: str
    account: str

    def thing_arn(self, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:thing/{name}"

    def job_arn(self, job_id: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}"


Listener = Callable[[Sequence[PendingChange]], None]


class Engine:
    def __init__(self, store: Store, identity: Identity, clock: Callable[[], float]) -> None:
        self._store = store
        self.identity = identity
        self._clock = clock
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with the pending-set changes of each committed operation."""
        self._listeners.append(listener)

    def now(self) -> float:
        return self._clock()

    # device data plane -------------------------------------------------------------------------
    def _pending(self, thing_name: str) -> list[Execution]:
        return transitions.pending_order(self._store.pending_for_thing(thing_name))

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
            change = self._change(thing_name, before, now)
            located = self._locate(updated)
        self._emit([change])
        return located

    def _locate(self, execution: Execution) -> Located:
        job = self._store.get_job(execution.job_id)
        return Located(execution, job.document if job else "{}")

    def _settle_job(self, job_id: str, now: float) -> None:
        job = self._store.get_job(job_id)
        if job is None:
            return
        settled = transitions.settle_job(job, self._store.executions_for_job(job_id), now)
        if settled is not job:
            self._store.put_job(settled)

    def _change(self, thing_name: str, before: Sequence[Execution], now: float) -> PendingChange:
        after = self._pending(thing_name)
        notify, notify_next = transitions.events_for_change(before, after)
        head_document = None
        if notify_next and after:
            head_document = self._store.job_documents({after[0].job_id}).get(after[0].job_id, "{}")
        return PendingChange(thing_name, tuple(after), head_document, notify, notify_next, now)

    def _emit(self, changes: Iterable[PendingChange]) -> None:
        relevant = [c for c in changes if c.notify or c.notify_next]
        if relevant:
            for listener in self._listeners:
                listener(relevant)

    # control plane: things ---------------------------------------------------------------------
    def create_thing(self, name: str, attributes: dict[str, str] | None = None) -> Thing:
        creation.check_thing_name(name)
        attributes = attributes or {}
        with self._store.transaction():
            existing = self._store.get_thing(name)
            if existing is not None:
                if existing.attributes == attributes:
                    return existing  # CreateThing is idempotent for an identical request.
                raise ResourceAlreadyExists(
                    f"Thing {name} already exists with different attributes", name, existing.thing_arn
                )
            thing = Thing(name, str(uuid.uuid4()), self.identity.thing_arn(name), attributes)
            self._store.put_thing(thing)
        return thing

    def describe_thing(self, name: str) -> Thing:
        thing = self._store.get_thing(name)
        if thing is None:
            raise ResourceNotFound(f"Thing {name} cannot be found.")
        return thing

    # control plane: jobs -----------------------------------------------------------------------
    def create_job(
        self,
        job_id: str,
        targets: Any,
        document: Any,
        description: Any = None,
        target_selection: Any = None,
        config: dict[str, Any] | None = None,
    ) -> Job:
        creation.check_job_id(job_id)
        if not isinstance(document, str):
            raise InvalidRequest("document is required (documentSource is not supported by this service)")
        creation.check_document(document)
        creation.check_description(description)
        try:
            selection = TargetSelection(target_selection or "SNAPSHOT")
        except ValueError:
            raise InvalidRequest(f"targetSelection {target_selection!r} is not SNAPSHOT or CONTINUOUS") from None
        parsed = creation.parse_targets(targets, self.identity.region, self.identity.account)
        now = self._clock()
        changes: list[PendingChange] = []
        with self._store.transaction():
            if self._store.get_job(job_id) is not None:
                raise ResourceAlreadyExists(f"Job {job_id} already exists.", job_id, self.identity.job_arn(job_id))
            thing_names: list[str] = []
            for target in parsed:
                if target.kind != "thing":
                    raise InvalidRequest("Thing group targets are not supported by this service yet")
                if self._store.get_thing(target.name) is None:
                    raise ResourceNotFound(f"Thing {target.name} cannot be found.")
                if target.name not in thing_names:
                    thing_names.append(target.name)
            job = creation.new_job(
                job_id, self.identity.job_arn(job_id), document, targets, selection, description, config or {}, now
            )
            self._store.put_job(job)
            for name in thing_names:
                before = self._pending(name)
                self._store.put_execution(creation.new_execution(job_id, name, 1, self._store.next_seq(), now))
                changes.append(self._change(name, before, now))
        self._emit(changes)
        return job

    def describe_job(self, job_id: str) -> tuple[Job, list[Execution]]:
        job = self._store.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} cannot be found.")
        return job, self._store.executions_for_job(job_id)

    def delete_job(self, job_id: str, force: bool) -> None:
        now = self._clock()
        changes: list[PendingChange] = []
        with self._store.transaction():
            job = self._store.get_job(job_id)
            if job is None:
                raise ResourceNotFound(f"Job {job_id} cannot be found.")
            executions = self._store.executions_for_job(job_id)
            transitions.check_deletable(job, executions, force)
            affected = sorted({e.thing_name for e in executions if e.status.is_pending})
            befores = {name: self._pending(name) for name in affected}
            self._store.put_job(replace(job, status=JobStatus.DELETION_IN_PROGRESS, last_updated_at=now))
            self._store.delete_job(job_id)
            changes = [self._change(name, befores[name], now) for name in affected]
        self._emit(changes)


def document_object(document: str) -> Any:
    """The stored document as the JSON value the MQTT API sends (an object, not a string)."""
    return json.loads(document)
