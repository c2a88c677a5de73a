"""The seed's job executor, literally: (1) open both event streams at start-up, (2) get and cache
the pending executions, (3) keep the cache current from the events, (4) execute them one at a time
(or ``max_concurrent`` at once), otherwise wait for new work. Every decision is logged.

The cache maps jobId -> the latest summary seen. A job runs in one ``asyncio.Task`` (``job.Job``);
``running`` holds them by jobId, so one job never runs twice at once, and ``finished`` remembers
(jobId, executionNumber) pairs done here so that a stale cache entry does not start them again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from .job import Job, Options
from .link import Link

log = logging.getLogger("iot_jobs_agent")


@dataclass
class Pending:
    job_id: str
    status: str
    queued_at: float
    version: int | None
    execution_number: int | None


def _summary(item: Any, status: str) -> Pending:
    queued = getattr(item, "queued_at", None)
    return Pending(
        job_id=item.job_id,
        status=status,
        queued_at=queued.timestamp() if queued is not None else 0.0,
        version=getattr(item, "version_number", None),
        execution_number=getattr(item, "execution_number", None),
    )


class Executor:
    def __init__(self, link: Link, options: Options) -> None:
        self.link = link
        self.options = options
        self.cache: dict[str, Pending] = {}
        self.running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self.finished: set[tuple[str, int | None]] = set()
        #: Job documents carried by NextJobExecutionChanged (a job's document never changes), so a job
        #: whose document is known when it starts is taken and its first step reported in one update.
        self.documents: dict[str, Any] = {}
        self._checks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await self.link.open()
        log.info(
            "step 1: connected as %s over MQTT %s; both event streams are open",
            self.link.settings.thing_name,
            self.link.mqtt,
        )
        await self.refresh("start-up")
        while True:
            self.schedule()
            name, event = await self.link.events.get()
            await self.on_event(name, event)

    # step 2 ----------------------------------------------------------------------------------
    async def refresh(self, why: str) -> None:
        """Get the pending set and replace the cache with it."""
        from iot_jobs.errors import IotJobsError

        while True:
            try:
                response = await self.link.call("get_pending")
                break
            except IotJobsError as exc:
                log.warning("GetPendingJobExecutions failed (%s); retrying in 1 s", exc.line())
                await asyncio.sleep(1)  # back-off before a retry, not synchronisation
        self._replace(
            [_summary(i, "IN_PROGRESS") for i in response.in_progress_jobs or []]
            + [_summary(q, "QUEUED") for q in response.queued_jobs or []]
        )
        log.info(
            "step 2 (%s): %d pending: %s",
            why,
            len(self.cache),
            ", ".join(f"{p.job_id}={p.status}" for p in self.cache.values()) or "none",
        )
        for pending in list(self.cache.values()):
            if pending.status == "IN_PROGRESS" and pending.job_id not in self.running:
                self._start(pending, recovering=True)

    def _replace(self, items: list[Pending]) -> None:
        self.cache = {p.job_id: p for p in items}

    # step 3 ----------------------------------------------------------------------------------
    async def on_event(self, name: str, event: Any) -> None:
        if name == "reconnected":
            log.info("step 3: reconnected; re-reading the pending set")
            await self.refresh("after reconnecting")
        elif name == "JobExecutionsChanged":
            jobs = event.jobs or {}
            items = [_summary(s, status) for status in ("IN_PROGRESS", "QUEUED") for s in jobs.get(status) or []]
            self._replace(items)
            log.info(
                "step 3: JobExecutionsChanged: %s", ", ".join(f"{p.job_id}={p.status}" for p in items) or "none pending"
            )
            for job_id in [j for j in self.running if j not in self.cache]:
                check = asyncio.create_task(self._check_gone(job_id))
                self._checks.add(check)
                check.add_done_callback(self._checks.discard)
        elif name == "NextJobExecutionChanged":
            execution = event.execution
            if execution is None:
                log.info("step 3: NextJobExecutionChanged: nothing next")
                return
            log.info("step 3: NextJobExecutionChanged: next is %s (%s)", execution.job_id, execution.status)
            if execution.job_document is not None:
                self.documents[execution.job_id] = execution.job_document
            if execution.job_id not in self.cache:
                self.cache[execution.job_id] = _summary(execution, execution.status or "QUEUED")
        elif name == "finished":
            job_id = event
            self.running.pop(job_id, None)
            self.cache.pop(job_id, None)
            self.documents.pop(job_id, None)

    async def _check_gone(self, job_id: str) -> None:
        """A running job left the pending set: canceled or removed? (Ask; an old event may just be late.)"""
        from iot_jobs.errors import IotJobsError

        entry = self.running.get(job_id)
        if entry is None or entry[0].reporting_final:
            return
        try:
            described = await self.link.call("describe", job_id, None, False)
            status = described.execution.status if described.execution else None
        except IotJobsError as exc:
            status = "gone" if exc.code == "ResourceNotFound" else None
            if status is None:
                log.info("%s: cannot confirm its status (%s); it keeps running", job_id, exc.line())
                return
        entry = self.running.get(job_id)
        if entry is None or entry[0].reporting_final or status == "IN_PROGRESS":
            return
        log.info("%s: the execution is %s while it runs: stopping its handler, reporting nothing more", job_id, status)
        entry[1].cancel()

    # step 4 ----------------------------------------------------------------------------------
    def schedule(self) -> None:
        free = self.options.max_concurrent - len(self.running)
        queued = sorted(
            (
                p
                for p in self.cache.values()
                if p.status == "QUEUED"
                and p.job_id not in self.running
                and (p.job_id, p.execution_number) not in self.finished
            ),
            key=lambda p: p.queued_at,
        )
        if not queued:
            if not self.running:
                log.info("step 4: no queued work; waiting for events")
            return
        if free <= 0:
            log.info("step 4: %d queued, %d running (the limit); waiting", len(queued), len(self.running))
            return
        for pending in queued[:free]:
            self._start(pending, recovering=False)

    def _start(self, pending: Pending, recovering: bool) -> None:
        job = Job(
            self.link,
            self.options,
            pending.job_id,
            pending.version,
            pending.execution_number,
            recovering,
            known_documents=self.documents,
        )
        log.info("step 4: %s %s", "recovering" if recovering else "starting", pending.job_id)
        task = asyncio.create_task(self._run_job(job))
        self.running[pending.job_id] = (job, task)

    async def _run_job(self, job: Job) -> None:
        try:
            await job.run()
        except asyncio.CancelledError:
            log.info("%s: stopped", job.job_id)
        except Exception:
            log.exception("%s: the agent failed while running it", job.job_id)
        finally:
            self.finished.add((job.job_id, job.execution_number))
            self.link.events.put_nowait(("finished", job.job_id))
