"""One job execution on this device: start it, validate its document, run its steps, report.

statusDetails while it runs: ``{"step": "2/3 install"}`` (step number, count, action name), sent with
``expectedVersion`` and the service's step timer before each step. At the end: SUCCEEDED or FAILED
with ``step``, ``reason`` ("step 2/3 install exited with status 3"), ``exitCode`` or ``signal``,
and with ``includeStdOut`` the last 1,024 characters of ``stdout`` and ``stderr``. An invalid
document or a refused handler: REJECTED with ``reason``. If the execution is found terminal (an
update refused as such) the job stops and reports nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iot_jobs.errors import IotJobsError

from . import documents, handlers, runner
from .link import RETRYABLE, Link

log = logging.getLogger("iot_jobs_agent")

#: Codes meaning the execution is no longer ours to run.
GONE = {"TerminalStateReached", "InvalidStateTransition", "ResourceNotFound"}
RESTARTED = "agent restarted"


@dataclass(frozen=True)
class Options:
    policy: handlers.Policy
    thing_name: str
    max_concurrent: int = 1
    #: Seconds a step may run (a document's ``timeoutSeconds`` wins).
    step_timeout: float = 3600.0
    grace: float = 5.0


class Gone(Exception):
    """The execution is terminal or removed: stop, report nothing more."""


@dataclass
class Job:
    link: Link
    options: Options
    job_id: str
    version: int | None
    execution_number: int | None
    recovering: bool
    reporting_final: bool = False
    #: Moved to IN_PROGRESS by this agent (or found so at start-up).
    taken: bool = False
    stdout: runner.Tail = field(default_factory=runner.Tail)
    stderr: runner.Tail = field(default_factory=runner.Tail)
    #: Documents already seen in events, by job id (the executor's): see ``_run``.
    known_documents: Mapping[str, Any] = field(default_factory=dict)

    # reporting -------------------------------------------------------------------------------
    def _service_timer(self, seconds: float) -> int:
        """The service's step timer: the local timeout plus a minute, so our own FAILED comes first."""
        return max(1, min(10080, math.ceil(seconds / 60) + 1))

    async def update(self, status: str, details: dict[str, str] | None, **extra: Any) -> Any:
        """UpdateJobExecution with expectedVersion; retried while transient; ``Gone`` if terminal."""
        delay = 0.5
        while True:
            try:
                response = await self.link.call(
                    "update",
                    self.job_id,
                    status,
                    status_details=details,
                    expected_version=self.version,
                    include_job_execution_state=True,
                    **extra,
                )
            except IotJobsError as exc:
                if exc.code in GONE:
                    raise Gone(exc.line()) from None
                if exc.code == "VersionMismatch":
                    await self._reread(exc)
                    continue
                if exc.code in RETRYABLE:
                    log.info("%s: update %s failed (%s); retrying in %.1f s", self.job_id, status, exc.code, delay)
                    await asyncio.sleep(delay)  # back-off between retries
                    delay = min(delay * 2, 5.0)
                    continue
                raise
            state = getattr(response, "execution_state", None)
            if state is not None and state.version_number is not None:
                self.version = state.version_number
            return response

    async def _reread(self, exc: IotJobsError) -> None:
        """VersionMismatch: someone else changed the execution. Still IN_PROGRESS -> carry on from its version."""
        described = await self.link.call("describe", self.job_id, None, False)
        execution = described.execution
        # Before the job is taken, a QUEUED execution whose version moved on (statusDetails changed) is still ours.
        ours = ("IN_PROGRESS",) if self.taken else ("IN_PROGRESS", "QUEUED")
        if execution is None or execution.status not in ours:
            raise Gone(f"{exc.line()}; the execution is now {execution.status if execution else 'gone'}")
        log.info(
            "%s: the execution changed concurrently (version %s); continuing", self.job_id, execution.version_number
        )
        self.version = execution.version_number

    # the run ---------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        except Gone as exc:
            log.info("%s: the execution is no longer ours (%s); reporting nothing more", self.job_id, exc)

    async def _run(self) -> None:
        # A document known from NextJobExecutionChanged is checked before the job is taken: if it is
        # valid, one update takes the job and reports its first step (a round trip less before the
        # handler starts); if not, the usual path below rejects it with the document the service sends.
        early = None
        known = None if self.recovering else self.known_documents.get(self.job_id)
        if known is not None:
            try:
                early = _prepare(self.options.policy, known)
            except (documents.DocumentError, handlers.Refused):
                early = None
            if early is not None and not early[0].actions:
                early = None
        document = await self._begin(early)
        if document is None:
            return
        if early is not None:
            plan, prepared = early
        else:
            try:
                plan, prepared = _prepare(self.options.policy, document)
            except (documents.DocumentError, handlers.Refused) as exc:
                log.info("%s: REJECTED: %s", self.job_id, exc)
                await self._final("REJECTED", {"reason": _clip(str(exc))})
                return
        if self.recovering:
            handlers_say = all(p.safe_to_repeat for p in prepared)
            if not (plan.safe_to_repeat or handlers_say):
                log.info("%s: was IN_PROGRESS before this agent started; FAILED (%s)", self.job_id, RESTARTED)
                await self._final("FAILED", {"reason": RESTARTED})
                return
            why = "safeToRepeat" if plan.safe_to_repeat else "its handlers are safe to repeat (e.g. reboot.sh)"
            log.info("%s: was IN_PROGRESS before this agent started; %s: running it again", self.job_id, why)
        await self._steps(plan, prepared, first_reported=early is not None)

    async def _begin(self, early: tuple[documents.Plan, list[handlers.Prepared]] | None) -> Any:
        """Move the execution to IN_PROGRESS (setting the service's step timer) and get its document.

        With ``early`` (the document known and valid) the same update reports the first step."""
        if self.recovering:
            described = await self.link.call("describe", self.job_id, None, True)
            execution = described.execution
            if execution is None or execution.status != "IN_PROGRESS":
                return None
            self.version = execution.version_number
            self.taken = True
            return execution.job_document
        details, timeout = None, self.options.step_timeout
        if early is not None:
            first = early[0].actions[0]
            details = {"step": _clip(_label(1, len(early[0].actions), first))}
            timeout = first.timeout_seconds or self.options.step_timeout
        response = await self.update(
            "IN_PROGRESS",
            details,
            include_job_document=early is None,
            step_timeout_in_minutes=self._service_timer(timeout),
        )
        self.taken = True
        log.info("%s: IN_PROGRESS (version %s)", self.job_id, self.version)
        if early is not None:
            return True  # the document is ``early``'s, already checked
        return getattr(response, "job_document", None)

    async def _steps(
        self, plan: documents.Plan, prepared: list[handlers.Prepared], first_reported: bool = False
    ) -> None:
        """Run the steps in order; ``first_reported``: the taking update already reported step 1."""
        total = len(plan.actions)
        for index, (action, ready) in enumerate(zip(plan.actions, prepared, strict=True), start=1):
            if action is plan.final_step:
                log.info("%s: every step succeeded; running the finalStep", self.job_id)
            label = _label(index, total, action)
            timeout = action.timeout_seconds or self.options.step_timeout
            if not (index == 1 and first_reported):
                await self.update(
                    "IN_PROGRESS", {"step": _clip(label)}, step_timeout_in_minutes=self._service_timer(timeout)
                )
            outcome, why = await self._step(label, ready, timeout)
            if outcome is not None and outcome.ok:
                continue
            if action.ignore_step_failure:
                log.info("%s: step %s failed (%s); ignoreStepFailure: continuing", self.job_id, label, why)
                continue
            await self._finish(plan, "FAILED", label, f"step {label} {why}", outcome)
            return
        await self._finish(plan, "SUCCEEDED", f"{total}/{total} {plan.actions[-1].name}", "every step succeeded", None)

    async def _step(self, label: str, ready: handlers.Prepared, timeout: float) -> tuple[runner.Outcome | None, str]:
        if ready.failure:
            log.info("%s: step %s cannot run: %s", self.job_id, label, ready.failure)
            return None, f"cannot run: {ready.failure}"
        policy = self.options.policy
        env = handlers.environment(policy, self.options.thing_name, self.job_id, label.split(" ", 1)[0])

        def started(pid: int) -> None:
            log.info("%s: step %s started pid %d: %s", self.job_id, label, pid, list(ready.argv))

        outcome = await runner.run(
            ready.argv,
            env,
            str(policy.handler_dir),
            timeout,
            self.options.grace,
            self.stdout,
            self.stderr,
            started,
        )
        why = outcome.describe()
        if outcome.timed_out:
            why = f"timed out after {timeout:g} s and was stopped"
        log.info("%s: step %s %s", self.job_id, label, why)
        return outcome, why

    async def _finish(
        self, plan: documents.Plan, status: str, label: str, reason: str, outcome: runner.Outcome | None
    ) -> None:
        details = {"step": _clip(label), "reason": _clip(reason)}
        if outcome is not None and outcome.signal is not None:
            details["signal"] = runner.signal_name(outcome.signal)
        elif outcome is not None and outcome.exit_code is not None:
            details["exitCode"] = str(outcome.exit_code)
        if plan.include_stdout:
            for key, tail in (("stdout", self.stdout), ("stderr", self.stderr)):
                if text := tail.value():
                    details[key] = text
        log.info("%s: %s (%s)", self.job_id, status, reason)
        await self._final(status, details)

    async def _final(self, status: str, details: dict[str, str]) -> None:
        self.reporting_final = True
        await self.update(status, details)
        log.info("%s: reported %s", self.job_id, status)


def _prepare(policy: handlers.Policy, document: Any) -> tuple[documents.Plan, list[handlers.Prepared]]:
    """The document's plan and each action's handler, checked (DocumentError / Refused if not)."""
    plan = documents.parse(document)
    return plan, [handlers.prepare(policy, a) for a in plan.actions]


def _label(index: int, total: int, action: Any) -> str:
    return f"{index}/{total} {action.name}"


def _clip(text: str) -> str:
    clean = "".join(" " if not c.isprintable() else c for c in text).strip()
    return clean[:1024] or "-"
