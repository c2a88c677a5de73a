"""The device data plane over HTTP (boto3 ``iot-jobs-data``) of iot-jobs-local.

It runs on the same engine as MQTT: the two planes agree on the same executions, and changes made
over HTTP still publish the thing's notify / notify-next events to MQTT devices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED
from support.api import check_error, error_of
from support.common import unique
from support.service import ServiceProcess


@pytest.fixture(scope="module")
def data(service: ServiceProcess) -> Iterator[Any]:
    """A boto3 ``iot-jobs-data`` client signed with the service's local credentials."""
    yield service.boto3_client("iot-jobs-data")


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def registered(iot: Any) -> str:
    name = unique("http")
    iot.create_thing(thingName=name)
    return name


def is_epoch_int(value: Any) -> bool:
    return isinstance(value, int) and 1_000_000_000 < value < 10_000_000_000


def test_get_pending_job_executions(service: ServiceProcess, iot: Any, data: Any) -> None:
    thing = registered(iot)
    assert body(data.get_pending_job_executions(thingName=thing)) == {"inProgressJobs": [], "queuedJobs": []}
    first = service.create_job(thing, {"a": 1})
    second = service.create_job(thing, {"b": 2})
    data.start_next_pending_job_execution(thingName=thing)
    pending = data.get_pending_job_executions(thingName=thing)
    assert [j["jobId"] for j in pending["inProgressJobs"]] == [first]
    assert [j["jobId"] for j in pending["queuedJobs"]] == [second]
    running = pending["inProgressJobs"][0]
    assert sorted(running) == sorted(
        ["jobId", "queuedAt", "startedAt", "lastUpdatedAt", "versionNumber", "executionNumber"]
    )
    assert all(is_epoch_int(running[k]) for k in ("queuedAt", "startedAt", "lastUpdatedAt"))
    assert "startedAt" not in pending["queuedJobs"][0]


def test_start_next_pending_job_execution(service: ServiceProcess, iot: Any, data: Any) -> None:
    thing = registered(iot)
    assert body(data.start_next_pending_job_execution(thingName=thing)) == {}
    job = service.create_job(thing, {"op": "install"})
    started = data.start_next_pending_job_execution(
        thingName=thing, statusDetails={"phase": "download"}, stepTimeoutInMinutes=5
    )["execution"]
    assert started["jobId"] == job
    assert started["thingName"] == thing
    assert started["status"] == "IN_PROGRESS"
    assert started["statusDetails"] == {"phase": "download"}
    assert started["versionNumber"] == 2 and started["executionNumber"] == 1
    assert isinstance(started["jobDocument"], str) and json.loads(started["jobDocument"]) == {"op": "install"}
    assert all(is_epoch_int(started[k]) for k in ("queuedAt", "startedAt", "lastUpdatedAt"))
    again = data.start_next_pending_job_execution(thingName=thing, statusDetails={"phase": "other"})["execution"]
    assert again["versionNumber"] == 2 and again["statusDetails"] == {"phase": "download"}
    error = error_of(data.start_next_pending_job_execution, thingName=thing, stepTimeoutInMinutes=10081)
    check_error(error, "InvalidRequestException", 400)


def test_describe_job_execution(service: ServiceProcess, iot: Any, data: Any) -> None:
    thing = registered(iot)
    assert body(data.describe_job_execution(thingName=thing, jobId="$next")) == {}
    job = service.create_job(thing, {"a": 1})
    described = data.describe_job_execution(thingName=thing, jobId=job)["execution"]
    assert described["status"] == "QUEUED" and described["thingName"] == thing
    assert described["jobDocument"] == json.dumps({"a": 1})  # included by default, as a string
    assert "statusDetails" not in described and "startedAt" not in described
    without = data.describe_job_execution(thingName=thing, jobId=job, includeJobDocument=False)["execution"]
    assert "jobDocument" not in without
    nxt = data.describe_job_execution(thingName=thing, jobId="$next")["execution"]
    assert nxt["jobId"] == job
    numbered = data.describe_job_execution(thingName=thing, jobId=job, executionNumber=1)["execution"]
    assert numbered["executionNumber"] == 1
    check_error(
        error_of(data.describe_job_execution, thingName=thing, jobId=job, executionNumber=2),
        "ResourceNotFoundException",
        404,
    )
    check_error(
        error_of(data.describe_job_execution, thingName=thing, jobId=unique("nope")), "ResourceNotFoundException", 404
    )
    check_error(error_of(data.describe_job_execution, thingName=thing, jobId="bad job"), "InvalidRequestException", 400)
    check_error(error_of(data.describe_job_execution, thingName="t" * 129, jobId=job), "InvalidRequestException", 400)


def test_update_job_execution(service: ServiceProcess, iot: Any, data: Any) -> None:
    thing = registered(iot)
    job = service.create_job(thing, {"a": 1})
    assert body(data.update_job_execution(thingName=thing, jobId=job, status="IN_PROGRESS")) == {}
    updated = data.update_job_execution(
        thingName=thing,
        jobId=job,
        status="IN_PROGRESS",
        statusDetails={"percent": "50"},
        expectedVersion=2,
        includeJobExecutionState=True,
        includeJobDocument=True,
    )
    assert body(updated) == {
        "executionState": {"status": "IN_PROGRESS", "statusDetails": {"percent": "50"}, "versionNumber": 3},
        "jobDocument": json.dumps({"a": 1}),
    }
    # a version mismatch is InvalidStateTransitionException (409): the model has no VersionConflict here
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId=job, status="SUCCEEDED", expectedVersion=2),
        "InvalidStateTransitionException",
        409,
    )
    for status in ("CANCELED", "QUEUED", "TIMED_OUT", "REMOVED"):
        for job_id in (job, unique("nojob")):  # checked before the execution is looked up
            refused = error_of(data.update_job_execution, thingName=thing, jobId=job_id, status=status)
            check_error(refused, "InvalidStateTransitionException", 409)
            assert (
                refused.response["Error"]["Message"] == f"The status of job execution cannot be changed to be {status}"
            )
    too_many = {f"k{i}": "v" for i in range(11)}
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId=job, status="IN_PROGRESS", statusDetails=too_many),
        "InvalidRequestException",
        400,
    )
    check_error(
        error_of(
            data.update_job_execution, thingName=thing, jobId=job, status="IN_PROGRESS", statusDetails={"k": "x" * 1025}
        ),
        "InvalidRequestException",
        400,
    )
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId=job, status="IN_PROGRESS", stepTimeoutInMinutes=0),
        "InvalidRequestException",
        400,
    )
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId="j" * 65, status="IN_PROGRESS"),
        "InvalidRequestException",
        400,
    )
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId=unique("nope"), status="IN_PROGRESS"),
        "ResourceNotFoundException",
        404,
    )
    data.update_job_execution(thingName=thing, jobId=job, status="SUCCEEDED")
    check_error(
        error_of(data.update_job_execution, thingName=thing, jobId=job, status="IN_PROGRESS"),
        "InvalidStateTransitionException",
        409,
    )
    assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"


def test_http_and_mqtt_agree_on_the_same_executions(
    service: ServiceProcess, data: Any, device: Callable[..., Device]
) -> None:
    d = device()
    first = service.create_job(d.thing, {"first": 1})
    second = service.create_job(d.thing, {"second": 2})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    d.next_event(JOBS_CHANGED)

    # started over HTTP, seen over MQTT
    started = data.start_next_pending_job_execution(thingName=d.thing, statusDetails={"via": "http"})["execution"]
    over_mqtt = d.describe(first).execution
    assert (over_mqtt.status, over_mqtt.version_number, over_mqtt.status_details) == (
        "IN_PROGRESS",
        started["versionNumber"],
        {"via": "http"},
    )
    assert int(over_mqtt.started_at.timestamp()) == started["startedAt"]
    assert over_mqtt.job_document == json.loads(started["jobDocument"])

    # updated over MQTT, seen over HTTP
    d.update(first, "IN_PROGRESS", status_details={"via": "mqtt"})
    over_http = data.describe_job_execution(thingName=d.thing, jobId=first)["execution"]
    assert over_http["versionNumber"] == 3 and over_http["statusDetails"] == {"via": "mqtt"}
    mqtt_pending = d.get_pending()
    http_pending = data.get_pending_job_executions(thingName=d.thing)
    assert [j.job_id for j in mqtt_pending.in_progress_jobs] == [j["jobId"] for j in http_pending["inProgressJobs"]]
    assert [j.job_id for j in mqtt_pending.queued_jobs] == [j["jobId"] for j in http_pending["queuedJobs"]]
    assert [j.version_number for j in mqtt_pending.in_progress_jobs] == [
        j["versionNumber"] for j in http_pending["inProgressJobs"]
    ]

    # a change over HTTP publishes the MQTT events
    data.update_job_execution(thingName=d.thing, jobId=first, status="SUCCEEDED")
    changed = d.next_event(JOBS_CHANGED)
    assert [j.job_id for j in changed.jobs["QUEUED"]] == [second]
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == second and nxt.execution.job_document == {"second": 2}

    # and a version mismatch over MQTT is still VersionMismatch there
    rejected = d.rejected("update", second, "IN_PROGRESS", expected_version=5)
    assert rejected.code == "VersionMismatch"
