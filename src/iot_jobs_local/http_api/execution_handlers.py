"""``iot`` operations on job executions (control-plane shapes): thin functions, in snake_case."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..jobs.requests import parse_status_details
from ..wire import control as control_wire
from . import paging
from .handler import Handler


def describe_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    e = engine.describe_execution(p["jobId"], p["thingName"], p.get("executionNumber"))
    return {"execution": control_wire.execution(e, engine.identity.thing_arn(e.thing_name), engine.now())}


def list_job_executions_for_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_executions_for_job(
        p["jobId"],
        p.get("status"),
        paging.decode("ListJobExecutionsForJob", p.get("nextToken"), 2),
        paging.limit(p),
    )
    summaries = [
        {"thingArn": engine.identity.thing_arn(e.thing_name), "jobExecutionSummary": control_wire.execution_summary(e)}
        for e in found.items
    ]
    return paging.output("ListJobExecutionsForJob", "executionSummaries", summaries, found)


def list_job_executions_for_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_executions_for_thing(
        p["thingName"],
        p.get("status"),
        p.get("jobId"),
        paging.decode("ListJobExecutionsForThing", p.get("nextToken"), 1),
        paging.limit(p),
    )
    summaries = [{"jobId": e.job_id, "jobExecutionSummary": control_wire.execution_summary(e)} for e in found.items]
    return paging.output("ListJobExecutionsForThing", "executionSummaries", summaries, found)


def cancel_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.cancel_execution(
        p["jobId"],
        p["thingName"],
        bool(p.get("force", False)),
        p.get("expectedVersion"),
        parse_status_details(p.get("statusDetails")),
    )
    return {}


def delete_job_execution(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_execution(p["jobId"], p["thingName"], p["executionNumber"], bool(p.get("force", False)))
    return {}


HANDLERS: dict[str, Handler] = {
    "DescribeJobExecution": describe_job_execution,
    "ListJobExecutionsForJob": list_job_executions_for_job,
    "ListJobExecutionsForThing": list_job_executions_for_thing,
    "CancelJobExecution": cancel_job_execution,
    "DeleteJobExecution": delete_job_execution,
}
