"""One simulated device: one MQTT connection and one asyncio task running the agent's rules.

The rules are those of ``iot_jobs_agent.executor`` and ``job`` (docs/agent.md): (1) open the
streams (subscribe to notify-next and the request replies) at every connection, (2) get the
pending executions and carry on with one found IN_PROGRESS, (3) keep the latest head from
notify-next (a latest-seen slot; a (jobId, executionNumber) done here is never started again),
(4) execute one at a time: start-next (with the step timer), progress updates and the final
status, each with ``expectedVersion``; only throttled or internal errors are retried, and an
update refused because the execution is terminal ends it with nothing more reported.

Why not the agent's ``Executor`` itself: it is built around handler documents and processes
(``documents.parse``, ``handlers.prepare``, ``runner.run``), logs every decision, and talks to the
CRT ``DataPlane`` through worker threads with the SDK's response objects. Here a step is a
profile-driven sleep, and a device must cost a few kilobytes: a ``__slots__`` object, its
``Wire`` and one task, with no thread, logger or history of its own.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iot_jobs_local.mqtt import codec

from .profiles import Share, execution_rng
from .stats import FleetStats
from .wire import Disconnected, Tls, Wire

#: Real seconds a request waits for its reply before it is sent again (doubling each time: a broker
#: busy with a connection storm answers late, and resending adds to its work), and before the
#: connection is taken for broken.
RESEND_S, REPLY_TIMEOUT_S = 5.0, 30.0
#: Reconnect back-off (real seconds): the first wait, x1.5 per failed attempt, the longest; jittered
#: (half to all of it), so a fleet that lost its broker does not come back all in the same second.
BACKOFF_FIRST_S, BACKOFF_GROWTH, BACKOFF_MAX_S = 0.5, 1.5, 30.0
#: Update rejections worth retrying (as the agent: ``iot_jobs_agent.link.RETRYABLE``).
RETRYABLE = {"RequestThrottled", "InternalError"}
FINAL = {"succeed": "SUCCEEDED", "fail": "FAILED", "reject": "REJECTED"}


@dataclass
class Fleet:
    """What every device shares: where the broker is, the clock, the gates and the counts."""

    host: str
    port: int
    tls: Tls
    seed: int
    time_scale: float
    stats: FleetStats
    handshakes: asyncio.Semaphore
    started: float
    keepalive: int = 60

    def real(self, service_seconds: float) -> float:
        """Service-clock seconds (the profile's) as real seconds."""
        return service_seconds / self.time_scale


class Gone(Exception):
    """The execution is terminal or removed: report nothing more."""


@dataclass
class Run:
    """The execution this device is running (kept across a reconnection, so it resumes)."""

    job_id: str
    execution_number: int | None
    version: int | None
    outcome: str
    #: Real monotonic time the simulated work ends, and when each progress update is due.
    ends: float
    progress: list[float]
    drop_at: float | None


class Device:
    __slots__ = (
        "_token",
        "cert",
        "finished",
        "fleet",
        "head",
        "index",
        "key",
        "run",
        "runs",
        "share",
        "state",
        "thing",
        "waiting",
        "wake",
        "wire",
    )

    def __init__(self, fleet: Fleet, index: int, thing: str, share: Share, cert: Path, key: Path) -> None:
        self.fleet = fleet
        self.index = index
        self.thing = thing
        self.share = share
        self.cert = cert
        self.key = key
        self.wire: Wire | None = None
        self.waiting: dict[str, asyncio.Future[tuple[bool, dict[str, Any]]]] = {}
        self.head: tuple[str, int | None] | None = None
        self.wake = asyncio.Event()
        self.finished: set[tuple[str, int | None]] = set()
        self.run: Run | None = None
        self.runs = 0
        self.state = "offline"
        self._token = 0
        fleet.stats.move(None, "offline")

    def _set(self, state: str) -> None:
        if state != self.state:
            self.fleet.stats.move(self.state, state)
            self.state = state

    # the connection --------------------------------------------------------------------------
    async def live(self, delay: float) -> None:
        """The device's whole life: wait for its ramp slot (and offline time), then stay connected."""
        await asyncio.sleep(delay)  # its slot in the ramp: the fleet's schedule, not synchronisation
        backoff = BACKOFF_FIRST_S
        first = True
        while True:
            drop_for = 0.0
            try:
                await self._connect()
                if not first:
                    self.fleet.stats.count("reconnected")
                if first:
                    first = False
                    stats = self.fleet.stats
                    stats.connected_once += 1
                    if stats.connected_once == stats.total:
                        stats.all_connected_at = time.monotonic() - self.fleet.started
                backoff = BACKOFF_FIRST_S
                drop_for = await self._session()
            except _Dropped as dropped:
                drop_for = dropped.seconds
            except Refused:
                self.fleet.stats.count("refused")
            except (Disconnected, OSError, ssl.SSLError, asyncio.TimeoutError):
                self.fleet.stats.count("errors")
            finally:
                self._close()
            self._set("offline")
            if drop_for:
                await asyncio.sleep(drop_for)  # the simulated time off the network
                continue
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # reconnect back-off
            backoff = min(backoff * BACKOFF_GROWTH, BACKOFF_MAX_S)

    async def _connect(self) -> None:
        self._set("connecting")
        fleet = self.fleet
        loop = asyncio.get_running_loop()
        async with fleet.handshakes:  # a cap on handshakes in flight (the broker's listen queue)
            tls = await fleet.tls.prepare(self.cert, self.key)
            _transport, wire = await asyncio.wait_for(
                loop.create_connection(lambda: Wire(self._deliver, self._lost, tls), fleet.host, fleet.port),
                REPLY_TIMEOUT_S,
            )
            self.wire = wire
            await asyncio.wait_for(wire.handshake, REPLY_TIMEOUT_S)
            wire.write(codec.connect(self.thing, username=None, password=None, keepalive=fleet.keepalive))
            code = await asyncio.wait_for(wire.connack, REPLY_TIMEOUT_S)
        if code:
            raise Refused(codec.CONNACK_CODES.get(code, str(code)))
        base = f"$aws/things/{self.thing}/jobs/"
        wire.subscribe(
            base + t
            for t in (
                "notify-next",
                "get/accepted",
                "get/rejected",
                "start-next/accepted",
                "start-next/rejected",
                "+/update/accepted",
                "+/update/rejected",
            )
        )
        granted = await asyncio.wait_for(wire.suback, REPLY_TIMEOUT_S)
        if 0x80 in granted:
            raise Refused("subscription refused")
        self._set("idle")

    def _close(self) -> None:
        wire, self.wire = self.wire, None
        if wire is not None:
            wire.disconnect()
        self._fail_waiting()

    def _lost(self, wire: Wire) -> None:
        if wire is not self.wire:
            return  # an earlier connection of this device, closed already
        self._fail_waiting()
        self.wake.set()

    def _fail_waiting(self) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(Disconnected("connection lost"))
                future.exception()
        self.waiting.clear()

    def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if topic.endswith("/notify-next"):
            execution = body.get("execution")
            self.head = (execution["jobId"], execution.get("executionNumber")) if execution else None
            self.wake.set()
            return
        future = self.waiting.pop(str(body.get("clientToken")), None)
        if future is not None and not future.done():
            future.set_result((topic.endswith("/accepted"), body))

    async def request(self, suffix: str, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Publish a request (QoS 1) and wait for its accepted/rejected reply, matched by clientToken.

        Asked again after ``RESEND_S`` without a reply, then after twice as long, and so on (a
        request the broker had nobody to route to is lost: a local service that just restarted may
        not have subscribed yet); the connection is taken for broken after ``REPLY_TIMEOUT_S``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_TIMEOUT_S
        wait = RESEND_S
        while True:
            wire = self.wire
            if wire is None or not wire.is_open:
                raise Disconnected("not connected")
            self._token += 1
            token = str(self._token)
            future: asyncio.Future[tuple[bool, dict[str, Any]]] = loop.create_future()
            self.waiting[token] = future
            payload = json.dumps({**body, "clientToken": token}).encode()
            wire.publish(f"$aws/things/{self.thing}/jobs/{suffix}", payload)
            try:
                return await asyncio.wait_for(future, min(wait, max(0.0, deadline - loop.time())))
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    raise
                self.fleet.stats.count("resent")
                wait *= 2
            finally:
                self.waiting.pop(token, None)

    # the agent's four steps ------------------------------------------------------------------
    async def _session(self) -> float:
        ok, pending = await self.request("get", {})
        if not ok:
            raise Disconnected(f"GetPendingJobExecutions rejected: {pending.get('code')}")
        for summary in pending.get("inProgressJobs") or []:
            await self._resume(summary)
        if pending.get("queuedJobs"):
            first = pending["queuedJobs"][0]
            self.head = (first["jobId"], first.get("executionNumber"))
        while True:
            head = self.head
            if head is not None and head not in self.finished:
                ok, reply = await self.request("start-next", self._start_body())
                execution = reply.get("execution") if ok else None
                if execution is None:
                    if self.head == head:
                        self.head = None
                    continue
                await self._execute(execution)
                continue
            self.wake.clear()
            if self.wire is None or not self.wire.is_open:
                raise Disconnected("connection lost")
            await self.wake.wait()
            if self.wire is None or not self.wire.is_open:
                raise Disconnected("connection lost")

    def _start_body(self) -> dict[str, Any]:
        timeout = self.share.step_timeout
        return {"stepTimeoutInMinutes": timeout} if timeout else {}

    async def _resume(self, summary: dict[str, Any]) -> None:
        key = (summary["jobId"], summary.get("executionNumber"))
        run = self.run
        self.head = key  # it is the head (IN_PROGRESS sorts first): a hang waits for that to change
        if run is None or (run.job_id, run.execution_number) != key:
            # IN_PROGRESS from before this fleet started: simulated handlers are safe to repeat.
            run = self._plan(key[0], key[1], summary.get("versionNumber"))
        else:
            run.version = summary.get("versionNumber", run.version)
        await self._work(run)

    async def _execute(self, execution: dict[str, Any]) -> None:
        run = self._plan(execution["jobId"], execution.get("executionNumber"), execution.get("versionNumber"))
        self.head = (run.job_id, run.execution_number)  # IN_PROGRESS now, so the head until it ends
        await self._work(run)

    def _plan(self, job_id: str, number: int | None, version: int | None) -> Run:
        self.runs += 1
        rng = execution_rng(self.fleet.seed, self.index, self.runs)
        share, fleet = self.share, self.fleet
        now = time.monotonic()
        seconds = fleet.real(share.duration.draw(rng))
        outcome = share.draw_outcome(rng)
        steps = share.progress
        progress = [now + seconds * (i + 1) / (steps + 1) for i in range(steps)]
        drop_at = now + seconds / 2 if rng.random() < share.drop else None
        self.run = Run(job_id, number, version, outcome, now + seconds, progress, drop_at)
        return self.run

    async def _work(self, run: Run) -> None:
        """Run the execution to its end; a lost connection leaves ``self.run`` to resume after reconnecting."""
        self._set("busy")
        key = (run.job_id, run.execution_number)
        try:
            await self._report(run)
        except Gone:
            self.fleet.stats.count("gone")
        # Done with it (reported, timed out or found terminal). On Disconnected or a drop, the
        # exception leaves ``run`` in place and the state to ``live``.
        self.finished.add(key)
        if self.run is run:
            self.run = None
        self._set("idle")

    async def _report(self, run: Run) -> None:
        if run.outcome == "reject":
            await self._update(run, "REJECTED", {"reason": "simulated: the device refused this job"})
            self.fleet.stats.count("REJECTED")
            return
        while run.progress:
            await self._until(run, run.progress[0])
            done = self.share.progress - len(run.progress) + 1
            await self._update(run, "IN_PROGRESS", {"progress": f"{done}/{self.share.progress + 1}"})
            run.progress.pop(0)
        if run.outcome == "hang":
            await self._hang(run)
            return
        await self._until(run, run.ends)
        status = FINAL[run.outcome]
        details = {"reason": "simulated: step 1/1 exited with status 1" if status == "FAILED" else "simulated"}
        await self._update(run, status, details)
        self.fleet.stats.count(status)

    async def _until(self, run: Run, when: float) -> None:
        """Sleep to ``when`` (real monotonic); drop the connection on the way if this run does."""
        if run.drop_at is not None and run.drop_at <= when:
            await asyncio.sleep(max(0.0, run.drop_at - time.monotonic()))  # the simulated work
            run.drop_at = None
            self.fleet.stats.count("dropped")
            if self.wire is not None:
                self.wire.abort()
            raise _Dropped(
                self.fleet.real(self.share.reconnect_after.draw(execution_rng(self.fleet.seed, self.index, -self.runs)))
            )
        await asyncio.sleep(max(0.0, when - time.monotonic()))  # the simulated work

    async def _hang(self, run: Run) -> None:
        """Never report: wait until the head moves off this execution (the service timed it out, or it
        was canceled)."""
        self.fleet.stats.count("hung")
        key = (run.job_id, run.execution_number)
        while self.head == key:
            self.wake.clear()
            if self.wire is None or not self.wire.is_open:
                raise Disconnected("connection lost")
            await self.wake.wait()

    async def _update(self, run: Run, status: str, details: dict[str, str]) -> None:
        """UpdateJobExecution with expectedVersion; throttling retried; ``Gone`` when terminal."""
        delay = 0.5
        expect = True
        while True:
            body: dict[str, Any] = {"status": status, "statusDetails": details, "includeJobExecutionState": True}
            if expect and run.version is not None:
                body["expectedVersion"] = run.version
            if run.execution_number is not None:
                body["executionNumber"] = run.execution_number
            ok, reply = await self.request(f"{run.job_id}/update", body)
            if ok:
                state = reply.get("executionState") or {}
                run.version = state.get("versionNumber", run.version)
                return
            code = reply.get("code")
            if code == "VersionMismatch" and expect:
                expect = False  # only this device updates its execution: carry on without the check
                continue
            if code in RETRYABLE:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # back-off between retries
                delay = min(delay * 2, 10.0)
                continue
            raise Gone(str(code))


class Refused(Exception):
    """CONNACK or SUBACK refused (the policy or the CONNECT gate said no)."""


class _Dropped(Exception):
    """The profile drops this device's connection for ``seconds`` (real)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds
