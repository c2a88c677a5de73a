"""``iot-jobs-data``: the device data plane over HTTP, on the same engine as MQTT.

Shapes differ from MQTT's: the execution carries ``thingName`` and its ``jobDocument`` is a string.
Changes made here still publish the thing's MQTT notify / notify-next events.
"""

from __future__ import annotations

from typing import Any

from ..engine import Engine, Located
from ..jobs import errors, timers
from ..jobs.requests import parse_describe, parse_start_next, parse_update
from ..wire import executions as device_wire
from .handler import Handler

#: UNCONFIRMED: the model has no VersionConflictException for UpdateJobExecution; an
#: ``expectedVersion`` mismatch is answered with this code (HTTP 409).
VERSION_MISMATCH_ERROR = errors.InvalidStateTransition


def _execution(located: Located, now: float, include_document: bool = True) -> dict[str, Any]:
    e = located.execution
    out: dict[str, Any] = {"jobId": e.job_id, "thingName": e.thing_name, "status": e.status.value}
    if e.status_details:
        out["statusDetails"] = dict(e.status_details)
    out["queuedAt"] = device_wire.seconds(e.queued_at)
    if e.started_at is not None:
        out["startedAt"] = device_wire.seconds(e.started_at)
    out["lastUpdatedAt"] = device_wire.seconds(e.last_updated_at)
    seconds = timers.seconds_left(e, now)
    if seconds is not None:
        out["approximateSecondsBeforeTimedOut"] = seconds
    out["versionNumber"] = e.version_number
    out["executionNumber"] = e.execution_number
    if include_document:
        out["jobDocument"] = located.document
    return out


def get_pending_job_executions(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return device_wire.pending_jobs(*engine.get_pending(p["thingName"]))


def start_next_pending_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    located = engine.start_next(p["thingName"], parse_start_next(p))
    return {} if located is None else {"execution": _execution(located, engine.now())}


def describe_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    request = parse_describe(p)
    located = engine.describe(p["thingName"], p["jobId"], request)
    return {} if located is None else {"execution": _execution(located, engine.now(), request.include_job_document)}


def update_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    request = parse_update(p)
    try:
        located = engine.update(p["thingName"], p["jobId"], request)
    except errors.VersionMismatch as exc:
        raise VERSION_MISMATCH_ERROR(exc.message, exc.execution) from None
    out: dict[str, Any] = {}
    if request.include_job_execution_state:
        out["executionState"] = device_wire.execution_state(located.execution)
    if request.include_job_document:
        out["jobDocument"] = located.document
    return out


HANDLERS: dict[str, Handler] = {
    "GetPendingJobExecutions": get_pending_job_executions,
    "StartNextPendingJobExecution": start_next_pending_job_execution,
    "DescribeJobExecution": describe_job_execution,
    "UpdateJobExecution": update_job_execution,
}
