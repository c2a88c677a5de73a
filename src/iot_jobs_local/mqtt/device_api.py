"""The device data plane over MQTT: topic -> operation -> engine -> accepted/rejected payload.

Request topics are ``$aws/things/<thing>/jobs/...``; the reply goes to ``<request topic>/accepted`` or
``/rejected`` and always echoes the request's ``clientToken`` (the SDK correlates on it alone).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..engine import MAX_PENDING_LISTED, Engine, PendingChange
from ..jobs import errors, strict_json
from ..jobs.lifecycle_events import JobEvent, LifecycleEvent
from ..jobs.requests import JOB_ID_RE, THING_NAME_RE, parse_describe, parse_start_next, parse_update
from ..wire import executions as device_wire
from . import wire as mqtt_wire

log = logging.getLogger(__name__)

#: The four request topics of the Jobs MQTT API, exactly: none of them matches a reply
#: (``.../accepted``, ``.../rejected``) or an event (``.../notify``, ``.../notify-next``), so the
#: service never receives its own publishes without needing MQTT 5's noLocal.
REQUEST_FILTERS = (
    "$aws/things/+/jobs/get",
    "$aws/things/+/jobs/start-next",
    "$aws/things/+/jobs/+/get",
    "$aws/things/+/jobs/+/update",
)

#: One table from domain failure to the MQTT API's error code.
ERROR_CODES: dict[type[errors.JobsError], str] = {
    errors.InvalidRequest: "InvalidRequest",
    errors.ResourceNotFound: "ResourceNotFound",
    errors.InvalidStateTransition: "InvalidStateTransition",
    errors.VersionMismatch: "VersionMismatch",
    errors.LimitExceeded: "RequestThrottled",
    errors.ResourceAlreadyExists: "InvalidRequest",
}


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: dict[str, Any]


class _Rejection(Exception):
    """A rejection decided by the adapter itself (topic or JSON), not by the domain."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Operation = Callable[[str, "str | None", dict[str, Any]], dict[str, Any]]


class MqttApi:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def batch(self) -> AbstractContextManager[None]:
        """What the requests of one read from the broker are answered inside: one transaction, so
        they share one commit (a commit cost more than the rest of a start-next); the connection
        writes their replies only after it, so an accepted update is still durable before its reply."""
        return self._engine.batch()

    # requests ----------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> Outgoing | None:
        """Answer one publish under ``$aws/things/+/jobs/``; None for topics that are not requests."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[3] != "jobs":
            return None
        thing, rest = parts[2], parts[4:]
        if rest[-1] in ("accepted", "rejected") or rest in (["notify"], ["notify-next"]):
            return None  # our own replies and events (never sent back to us, but be safe)
        client_token: Any = None
        try:
            request = self._parse_payload(payload)
            client_token = request.get("clientToken")
            operation, job_id = self._route(rest)
            if not THING_NAME_RE.match(thing):
                raise _Rejection("InvalidTopic", f"Invalid thing name {thing!r} in topic")
            body = operation(thing, job_id, request)
            out = {"clientToken": client_token} if client_token is not None else {}
            out["timestamp"] = device_wire.seconds(self._engine.now())
            out.update(body)
            return Outgoing(topic + "/accepted", out)
        except _Rejection as exc:
            return self._rejected(topic, exc.code, exc.message, client_token, None)
        except errors.JobsError as exc:
            execution = getattr(exc, "execution", None)
            state = device_wire.execution_state(execution) if execution is not None else None
            return self._rejected(topic, ERROR_CODES[type(exc)], exc.message, client_token, state)
        except Exception:  # the service never dies on a bad message
            log.exception("internal error handling %s", topic)
            return self._rejected(topic, "InternalError", "Internal error", client_token, None)

    @staticmethod
    def _parse_payload(payload: bytes) -> dict[str, Any]:
        if not payload.strip():
            return {}  # UNCONFIRMED: AWS's answer to an empty payload; we treat it as {}.
        try:
            value = strict_json.loads(payload)
        except ValueError as exc:
            raise _Rejection("InvalidJson", f"The request payload is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(value, dict):
            raise _Rejection("InvalidJson", "The request payload must be a JSON object")
        return value

    def _route(self, rest: list[str]) -> tuple[Operation, str | None]:
        if rest == ["get"]:
            return self._get_pending, None
        if rest == ["start-next"]:
            return self._start_next, None
        if len(rest) == 2 and rest[1] in ("get", "update"):
            job_id = rest[0]
            if rest[1] == "get" and job_id == "$next":
                return self._describe, job_id
            if not JOB_ID_RE.match(job_id):
                raise _Rejection("InvalidTopic", f"Invalid job id {job_id!r} in topic")
            return (self._describe if rest[1] == "get" else self._update), job_id
        raise _Rejection("InvalidTopic", "The topic does not map to a Jobs API")

    def _rejected(
        self, topic: str, code: str, message: str, client_token: Any, state: dict[str, Any] | None
    ) -> Outgoing:
        out: dict[str, Any] = {"code": code, "message": message}
        if client_token is not None:
            out["clientToken"] = client_token
        out["timestamp"] = device_wire.seconds(self._engine.now())
        if state is not None:
            out["executionState"] = state
        return Outgoing(topic + "/rejected", out)

    def _get_pending(self, thing: str, _job: str | None, _request: dict[str, Any]) -> dict[str, Any]:
        return device_wire.pending_jobs(*self._engine.get_pending(thing))

    def _start_next(self, thing: str, _job: str | None, request: dict[str, Any]) -> dict[str, Any]:
        located = self._engine.start_next(thing, parse_start_next(request))
        return {} if located is None else {"execution": device_wire.execution_data(located)}

    def _describe(self, thing: str, job_id: str | None, request: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_describe(request)
        located = self._engine.describe(thing, job_id or "$next", parsed)
        if located is None:
            return {}
        return {"execution": device_wire.execution_data(located, parsed.include_job_document)}

    def _update(self, thing: str, job_id: str | None, request: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_update(request)
        located = self._engine.update(thing, job_id or "", parsed)
        out: dict[str, Any] = {}
        if parsed.include_job_execution_state:
            out["executionState"] = device_wire.execution_state(located.execution)
        if parsed.include_job_document:
            out["jobDocument"] = json.loads(located.document)
        return out

    # events ------------------------------------------------------------------------------------
    def lifecycle(self, event: LifecycleEvent) -> Outgoing:
        """A registry event on ``$aws/events/job/<jobId>/<op>`` or ``$aws/events/jobExecution/<jobId>/<op>``."""
        if isinstance(event, JobEvent):
            return Outgoing(f"$aws/events/job/{event.job.job_id}/{event.operation}", mqtt_wire.job_event(event))
        execution = event.execution
        topic = f"$aws/events/jobExecution/{execution.job_id}/{event.operation}"
        return Outgoing(topic, mqtt_wire.execution_event(event, self._engine.identity.thing_arn(execution.thing_name)))

    @staticmethod
    def events(change: PendingChange) -> list[Outgoing]:
        base = f"$aws/things/{change.thing_name}/jobs/"
        out: list[Outgoing] = []
        if change.notify:
            out.append(Outgoing(base + "notify", mqtt_wire.jobs_changed(change, MAX_PENDING_LISTED)))
        if change.notify_next:
            out.append(Outgoing(base + "notify-next", mqtt_wire.next_changed(change)))
        return out
