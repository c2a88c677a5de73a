"""``iot`` control-plane operations: one thin function per operation, named after it in snake_case.

Each reads its already-parsed input, calls the engine and returns the output members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import Engine
from . import control_wire

Handler = Callable[[Engine, dict[str, Any]], dict[str, Any]]

#: CreateJob members stored verbatim and returned by DescribeJob.
_JOB_CONFIG_MEMBERS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "schedulingConfig",
    "documentParameters",
    "jobTemplateArn",
    "namespaceId",
)


def create_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    attributes = (p.get("attributePayload") or {}).get("attributes") or {}
    t = engine.create_thing(p["thingName"], attributes)
    return {"thingName": t.thing_name, "thingArn": t.thing_arn, "thingId": t.thing_id}


def describe_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return control_wire.thing(engine.describe_thing(p["thingName"]))


def create_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    config = {k: p[k] for k in _JOB_CONFIG_MEMBERS if k in p}
    job = engine.create_job(
        p["jobId"], p.get("targets"), p.get("document"), p.get("description"), p.get("targetSelection"), config
    )
    out: dict[str, Any] = {"jobArn": job.job_arn, "jobId": job.job_id}
    if job.description is not None:
        out["description"] = job.description
    return out


def describe_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    job, executions = engine.describe_job(p["jobId"])
    return {"job": control_wire.job(job, executions)}


def delete_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_job(p["jobId"], bool(p.get("force", False)))
    return {}


HANDLERS: dict[str, Handler] = {
    "CreateThing": create_thing,
    "DescribeThing": describe_thing,
    "CreateJob": create_job,
    "DescribeJob": describe_job,
    "DeleteJob": delete_job,
}
