"""Who a job runs on: resolving targets to things, queuing executions, CONTINUOUS membership changes.

A thing group target covers the things in the group and in all its descendants; a thing targeted
several times (directly, through several groups) gets one execution. SNAPSHOT jobs fix their things
at creation. CONTINUOUS jobs follow group membership: a thing that becomes a target gets a new
QUEUED execution, a thing that stops being one has its pending execution REMOVED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..jobs import creation, transitions
from ..jobs.creation import Target
from ..jobs.errors import ResourceNotFound
from ..jobs.model import ExecutionStatus
from .core import EngineCore, PendingChange


class TargetOps(EngineCore):
    def _resolve_targets(self, targets: Sequence[Target], *, strict: bool = True) -> list[str]:
        """The things the targets cover, each once. ``strict``: a missing thing or group is an error."""
        thing_names = [t.name for t in targets if t.kind == "thing"]
        group_names = [t.name for t in targets if t.kind == "thinggroup"]
        things = self._store.existing_things(thing_names) if thing_names else set()
        groups = self._store.existing_groups(group_names) if group_names else set()
        if strict:
            # UNCONFIRMED: AWS's answer to a target that does not exist (404 is modeled for CreateJob).
            for name in thing_names:
                if name not in things:
                    raise ResourceNotFound(f"Thing {name} cannot be found.")
            for name in group_names:
                if name not in groups:
                    raise ResourceNotFound(f"Thing group {name} cannot be found.")
        covered = dict.fromkeys(n for n in thing_names if n in things)
        if groups:
            covered.update(dict.fromkeys(self._store.things_in_groups(groups)))
        return list(covered)

    def _queue(self, job_id: str, thing_names: Iterable[str], now: float, *, new_job: bool) -> list[PendingChange]:
        """Give each thing a new QUEUED execution of the job (unless one is pending) in one batch insert.

        A thing that ran the job before gets the next execution number.
        """
        names = list(thing_names)
        if not names:
            return []
        before = self._pending_many(names)
        latest = {} if new_job else self._store.latest_execution_numbers(job_id, names)
        queued = []
        for name in names:
            if any(e.job_id == job_id for e in before[name]):
                continue
            number = latest.get(name, 0) + 1
            queued.append(creation.new_execution(job_id, name, number, self._store.next_seq(), now))
        self._store.put_executions(queued)
        after = {e.thing_name: transitions.pending_order([*before[e.thing_name], e]) for e in queued}
        return self._changes(before, after, now)

    def _reconcile(
        self,
        targeted_before: Mapping[str, set[str]],
        now: float,
        entered: Mapping[str, set[str]] | None = None,
    ) -> list[PendingChange]:
        """After group membership changed: make the things follow the CONTINUOUS jobs that target them.

        ``targeted_before`` maps each affected thing to ``continuous_jobs_for_things`` read before the
        change. A thing that became a target, or ``entered`` a target group of the job (though another
        one held it already), gets a new QUEUED execution (the next execution number) unless one is
        pending. A thing that stopped being one has its QUEUED execution REMOVED, its versionNumber
        kept; an IN_PROGRESS one runs on and the device may still finish it (both captured on AWS).
        Set queries throughout, so a group of thousands of things costs a handful of queries.
        """
        targeted_after = self._store.continuous_jobs_for_things(targeted_before)
        entered = entered or {}
        joined = {
            t: new
            for t, jobs in targeted_before.items()
            if (new := (targeted_after[t] - jobs) | (entered.get(t, set()) & targeted_after[t]))
        }
        left = {t: jobs - targeted_after[t] for t, jobs in targeted_before.items() if jobs - targeted_after[t]}
        affected = [*joined, *(t for t in left if t not in joined)]
        if not affected:
            return []
        before = self._pending_many(affected)
        latest: dict[str, dict[str, int]] = {}
        for job_id in sorted({j for jobs in joined.values() for j in jobs}):
            latest[job_id] = self._store.latest_execution_numbers(
                job_id, [t for t, js in joined.items() if job_id in js]
            )
        changed = []
        for thing, jobs in joined.items():
            pending_jobs = {e.job_id for e in before[thing]}
            for job_id in sorted(jobs - pending_jobs):
                number = latest[job_id].get(thing, 0) + 1
                changed.append(creation.new_execution(job_id, thing, number, self._store.next_seq(), now))
        removed = [
            transitions.service_update(e, ExecutionStatus.REMOVED, now, bump_version=False)
            for thing, jobs in left.items()
            for e in before[thing]
            if e.job_id in jobs and e.status is ExecutionStatus.QUEUED
        ]
        self._store.put_executions([*changed, *removed])
        return self._changes(before, self._pending_many(affected), now)
