"""What every part of the engine shares: the store, the clock, and turning changes into events.

Every operation runs in one SQLite transaction. Events (a thing's pending set changed) are computed
inside the transaction and passed to the subscribers only after the commit, so no client ever hears
of a change that a crash could undo. Changes touching many things are computed from one query for
all their pending sets, never one query per thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from ..jobs import configs, lifecycle_events, transitions
from ..jobs.errors import ResourceNotFound
from ..jobs.lifecycle_events import JobEvent, LifecycleEvent
from ..jobs.model import Execution, ExecutionStatus, Job, Thing
from ..store import Store

#: AWS documents that GetPendingJobExecutions and notify list at most 10 pending executions.
#: UNCONFIRMED: how the cap is split; we keep IN_PROGRESS first, then QUEUED, 10 in all.
MAX_PENDING_LISTED = 10


class JobView(NamedTuple):
    """What DescribeJob shows of a job."""

    job: Job
    #: How many things' latest execution of the job is in each status.
    counts: Mapping[ExecutionStatus, int]
    #: The targets whose things still wait for their rollout (``processingTargets``).
    processing: tuple[str, ...]


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

    def _arn(self, resource: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:{resource}"

    def thing_arn(self, name: str) -> str:
        return self._arn(f"thing/{name}")

    def group_arn(self, name: str) -> str:
        return self._arn(f"thinggroup/{name}")

    def job_arn(self, job_id: str) -> str:
        return self._arn(f"job/{job_id}")

    def template_arn(self, template_id: str) -> str:
        return self._arn(f"jobtemplate/{template_id}")


Listener = Callable[[Sequence[PendingChange]], None]
#: Told of the registry events (``$aws/events/...``) of each committed operation, enabled ones only.
LifecycleListener = Callable[[Sequence[LifecycleEvent]], None]
#: Told, after the commit, that thing-group membership changed; with the groups that were deleted
#: (the identity service re-evaluates thing group policies and drops the deleted groups' ones)
#: and the things whose membership changed (None: possibly any).
RegistryListener = Callable[[Sequence[str], "Sequence[str] | None"], None]
#: Told of each new deadline (virtual epoch seconds) that something must happen at.
DeadlineListener = Callable[[float], None]
Pending = Mapping[str, Sequence[Execution]]


class EngineCore:
    def __init__(self, store: Store, identity: Identity, clock: Callable[[], float]) -> None:
        self._store = store
        self.identity = identity
        self._clock = clock
        self._listeners: list[Listener] = []
        self._deadline_listeners: list[DeadlineListener] = []
        self._lifecycle_listeners: list[LifecycleListener] = []
        self._registry_listeners: list[RegistryListener] = []
        self._job_views: dict[str, tuple[int, JobView]] = {}  # JobOps.job_view's memo, by store changes
        self._job_events: list[JobEvent] = []
        self._event_settings = store.event_configurations()[0]
        store.after_commit(self._flush_lifecycle, on_rollback=self._job_events.clear)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with the pending-set changes of each committed operation."""
        self._listeners.append(listener)

    def watch_deadlines(self, listener: DeadlineListener) -> None:
        """Call ``listener`` with each deadline an operation sets (a timer, a batch, a scheduled time)."""
        self._deadline_listeners.append(listener)

    def _deadline(self, at: float | None) -> None:
        if at is not None:
            for listener in self._deadline_listeners:
                listener(at)

    def now(self) -> float:
        return self._clock()

    def batch(self) -> AbstractContextManager[None]:
        """Operations run inside share one commit (the store's ``batch``); their events follow it."""
        return self._store.batch()

    # lookups ----------------------------------------------------------------------------------
    def _require_job(self, job_id: str) -> Job:
        job = self._store.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} cannot be found.")
        return job

    def _require_thing(self, name: str) -> Thing:
        thing = self._store.get_thing(name)
        if thing is None:
            raise ResourceNotFound(f"Thing {name} cannot be found.")
        return thing

    def _locate(self, execution: Execution) -> Located:
        job = self._store.get_job(execution.job_id)
        return Located(execution, job.document if job else "{}")

    # pending sets and events ------------------------------------------------------------------
    def _pending(self, thing_name: str) -> list[Execution]:
        return transitions.pending_order(self._store.pending_for_thing(thing_name))

    def _pending_many(self, thing_names: Iterable[str]) -> dict[str, list[Execution]]:
        """Each thing's pending set in AWS's order, from one query."""
        names = list(thing_names)
        if len(names) == 1:  # a device's update: the plain query is cheaper than one over json_each
            return {names[0]: self._pending(names[0])}
        found = self._store.pending_for_things(names) if names else {}
        return {name: transitions.pending_order(found.get(name, ())) for name in names}

    @staticmethod
    def _without(before: Pending, gone: Iterable[Execution]) -> dict[str, list[Execution]]:
        """The pending sets once ``gone`` left them (canceled, removed, deleted), without a query."""
        keys = {(e.thing_name, e.key) for e in gone}
        return {name: [e for e in pending if (name, e.key) not in keys] for name, pending in before.items()}

    def _changes(self, before: Pending, after: Pending, now: float) -> list[PendingChange]:
        """The events of each thing whose pending set went from ``before`` to ``after``."""
        flags: dict[str, tuple[bool, bool]] = {}
        for name, pending in after.items():
            notify, notify_next = transitions.events_for_change(before.get(name, ()), pending)
            if notify or notify_next:
                flags[name] = (notify, notify_next)
        heads = {after[name][0].job_id for name, (_, nn) in flags.items() if nn and after[name]}
        documents = self._store.job_documents(heads) if heads else {}
        changes = []
        for name, (notify, notify_next) in flags.items():
            pending = tuple(after[name])
            document = documents.get(pending[0].job_id, "{}") if notify_next and pending else None
            changes.append(PendingChange(name, pending, document, notify, notify_next, now))
        return changes

    def _change(self, thing_name: str, before: Sequence[Execution], now: float) -> list[PendingChange]:
        """The events of one thing whose pending set was ``before``, reading it again now."""
        return self._changes({thing_name: before}, {thing_name: self._pending(thing_name)}, now)

    def _settle_job(self, job_id: str, now: float) -> None:
        """A SNAPSHOT job whose executions are all terminal, with no thing waiting for its rollout,
        becomes COMPLETED."""
        job = self._store.get_job(job_id)
        if job is None:
            return
        unfinished = self._store.job_has_pending(job_id) or (
            configs.is_paced(job.config) and bool(self._store.rolling_out([job_id]))
        )
        settled = self._settle_job_status(job, unfinished, now)
        if settled is not job:
            self._store.put_job(settled)

    def watch_membership(self, listener: RegistryListener) -> None:
        """Call ``listener`` after each committed change of group membership (or group deletion)."""
        self._registry_listeners.append(listener)

    def _membership_changed(self, deleted_groups: Sequence[str] = (), things: Sequence[str] | None = None) -> None:
        def tell() -> None:
            for listener in self._registry_listeners:
                listener(deleted_groups, things)

        self._store.when_committed(tell)

    # registry events ($aws/events/...) -------------------------------------------------------
    def watch_lifecycle(self, listener: LifecycleListener) -> None:
        """Call ``listener`` with the enabled registry events of each committed transaction."""
        self._lifecycle_listeners.append(listener)

    def _enabled(self, event_type: str) -> bool:
        return self._event_settings.get(event_type, False)

    def _job_event(self, operation: str, job: Job, now: float) -> None:
        """Note a job event; it goes out after the commit (and is forgotten on a rollback)."""
        if self._enabled(lifecycle_events.JOB):
            self._job_events.append(JobEvent(operation, job, now))

    def _job_status_changed(self, before: Job, after: Job, now: float) -> None:
        """Note the JOB event of a status change (completed, canceled, deletion_in_progress), if any."""
        operation = lifecycle_events.JOB_OPERATIONS.get(after.status)
        if operation is not None and before.status is not after.status:
            self._job_event(operation, after, now)

    def _flush_lifecycle(self) -> None:
        ended, self._store.ended = self._store.ended, []
        jobs = list(self._job_events)
        self._job_events.clear()  # in place: the rollback hook holds this list
        events: list[LifecycleEvent] = []
        if self._enabled(lifecycle_events.JOB_EXECUTION):  # stamped with the moment each one ended
            found = (lifecycle_events.execution_event(x, x.last_updated_at) for x in ended)
            events.extend(e for e in found if e is not None)
        for event in jobs:
            if event.operation in ("completed", "canceled"):
                event = replace(event, counts=self._store.latest_status_counts(event.job.job_id))
            events.append(event)
        if events:
            self._store.when_committed(lambda: self._tell(self._lifecycle_listeners, events))

    def _settle_job_status(self, job: Job, unfinished: bool, now: float) -> Job:
        """``transitions.settle_job_status``, noting the ``completed`` event when it completes the job."""
        settled = transitions.settle_job_status(job, unfinished, now)
        self._job_status_changed(job, settled, now)
        return settled

    def _emit(self, changes: Iterable[PendingChange]) -> None:
        relevant = [c for c in changes if c.notify or c.notify_next]
        if relevant:
            self._store.when_committed(lambda: self._tell(self._listeners, relevant))

    @staticmethod
    def _tell(listeners: Sequence[Callable[[Any], None]], what: Any) -> None:
        for listener in listeners:
            listener(what)


def document_object(document: str) -> Any:
    """The stored document as the JSON value the MQTT API sends (an object, not a string)."""
    return json.loads(document)
