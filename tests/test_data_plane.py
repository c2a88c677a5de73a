"""The MQTT device data plane of iot-jobs-local, through the real ``IotJobsClientV2`` and boto3.

Jobs are created with boto3 ``iot.create_job``; devices talk to the service with the AWS IoT Device
SDK v2 (``Device``), or with paho (``RawDevice``) where the exact bytes matter or the SDK cannot send
the request (bad JSON, unmapped topics, chosen clientTokens).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED, modeled
from support.api import thing_with_policy, wait_job_gone
from support.common import unique
from support.raw_device import RawDevice
from support.service import ServiceProcess

WITH_STATE = {"InvalidStateTransition", "VersionMismatch"}


def _ids(summaries: Any) -> list[str]:
    return [s.job_id for s in summaries]


def _check_rejection(device: Device, error: Any, code: str) -> None:
    """A rejection as AWS sends it: the code, a message, the request's clientToken, a timestamp, and an
    ``executionState`` exactly for InvalidStateTransition and VersionMismatch."""
    assert error.code == code, f"expected {code}, got {error.code}: {error.message}"
    assert isinstance(error.message, str) and error.message.strip()
    assert error.client_token == device.last_client_token
    assert error.timestamp is not None
    assert (error.execution_state is not None) == (code in WITH_STATE), modeled(error)


def uuid_hex() -> str:
    return unique("x")[2:]


def _is_epoch_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1_000_000_000 < value < 10_000_000_000


# --------------------------------------------------------------------------------------------------
# The seed walkthrough
# --------------------------------------------------------------------------------------------------


def test_seed_walkthrough(
    service: ServiceProcess, device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    d = device()
    raw = raw_device(d.thing)  # watches the thing's topics to check exact payloads
    iot = service.iot()
    job1, job2 = unique("Job1"), unique("Job2")

    # Nothing pending: both arrays present and empty.
    pending = d.get_pending()
    assert pending.in_progress_jobs == [] and pending.queued_jobs == []
    assert pending.client_token == d.last_client_token
    body = raw.expect(f"$aws/things/{d.thing}/jobs/get/accepted").json()
    assert body["inProgressJobs"] == [] and body["queuedJobs"] == []

    # Job1: JobExecutionsChanged with [Job1] QUEUED, NextJobExecutionChanged with Job1 and its document.
    created = iot.create_job(jobId=job1, targets=[service.thing_arn(d.thing)], document=json.dumps({"ToDo": "Reboot"}))
    assert created["jobId"] == job1 and created["jobArn"] == service.job_arn(job1)
    changed = d.next_event(JOBS_CHANGED)
    assert list(changed.jobs) == ["QUEUED"]
    assert _ids(changed.jobs["QUEUED"]) == [job1]
    summary = changed.jobs["QUEUED"][0]
    assert (summary.execution_number, summary.version_number, summary.started_at) == (1, 1, None)
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job1
    assert nxt.execution.status == "QUEUED"
    assert nxt.execution.job_document == {"ToDo": "Reboot"}
    assert nxt.execution.version_number == 1 and nxt.execution.execution_number == 1

    # Job2: JobExecutionsChanged with both, and no NextJobExecutionChanged (the head is still Job1).
    iot.create_job(jobId=job2, targets=[service.thing_arn(d.thing)], document=json.dumps({"ToDo": "Delete Root User"}))
    changed = d.next_event(JOBS_CHANGED)
    assert list(changed.jobs) == ["QUEUED"]
    assert _ids(changed.jobs["QUEUED"]) == [job1, job2]
    d.assert_no_event(NEXT_CHANGED)

    # start-next: Job1 IN_PROGRESS, version 2, with its document; no events at all.
    started = d.start_next()
    assert started.execution.job_id == job1
    assert started.execution.status == "IN_PROGRESS"
    assert started.execution.version_number == 2
    assert started.execution.execution_number == 1
    assert started.execution.job_document == {"ToDo": "Reboot"}
    assert started.execution.started_at is not None
    d.assert_no_event()

    # get-pending: Job1 in progress (with startedAt), Job2 queued.
    pending = d.get_pending()
    assert _ids(pending.in_progress_jobs) == [job1]
    assert pending.in_progress_jobs[0].started_at == started.execution.started_at
    assert pending.in_progress_jobs[0].version_number == 2
    assert _ids(pending.queued_jobs) == [job2]
    assert pending.queued_jobs[0].started_at is None

    # Job1 SUCCEEDED: a bare response; then only Job2 pending, and Job2 is next.
    updated = d.update(job1, "SUCCEEDED")
    assert updated.client_token == d.last_client_token
    assert updated.timestamp is not None
    assert updated.execution_state is None and updated.job_document is None
    body = raw.expect(f"$aws/things/{d.thing}/jobs/{job1}/update/accepted").json()
    assert sorted(body) == ["clientToken", "timestamp"]
    changed = d.next_event(JOBS_CHANGED)
    assert list(changed.jobs) == ["QUEUED"]
    assert _ids(changed.jobs["QUEUED"]) == [job2]
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job2
    assert nxt.execution.status == "QUEUED"
    assert nxt.execution.job_document == {"ToDo": "Delete Root User"}

    started = d.start_next()
    assert started.execution.job_id == job2 and started.execution.status == "IN_PROGRESS"
    assert started.execution.version_number == 2

    # Job2 FAILED: nothing pending, and the events say so in their empty forms.
    d.update(job2, "FAILED")
    changed = d.next_event(JOBS_CHANGED)
    assert changed.jobs == {}
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution is None
    raw_changed = raw.expect(f"$aws/things/{d.thing}/jobs/notify").json()
    while raw_changed["jobs"]:  # skip the earlier notifications of this walkthrough
        raw_changed = raw.expect(f"$aws/things/{d.thing}/jobs/notify").json()
    assert sorted(raw_changed) == ["jobs", "timestamp"]
    raw_next = raw.expect(lambda m: m.topic.endswith("/notify-next") and "execution" not in m.json())
    assert sorted(raw_next.json()) == ["timestamp"]

    pending = d.get_pending()
    assert pending.in_progress_jobs == [] and pending.queued_jobs == []

    # The control plane agrees, and Job1 (COMPLETED) can be deleted, after which it is gone.
    described = iot.describe_job(jobId=job1)["job"]
    assert described["status"] == "COMPLETED"
    assert described["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert iot.describe_job(jobId=job2)["job"]["jobProcessDetails"]["numberOfFailedThings"] == 1
    iot.delete_job(jobId=job1)
    wait_job_gone(iot, job1)
    # Deleting a job whose executions are all terminal publishes nothing.
    d.assert_no_event()
    error = d.rejected("describe", job1)
    _check_rejection(d, error, "ResourceNotFound")


# --------------------------------------------------------------------------------------------------
# start-next, describe and update: the accepted paths
# --------------------------------------------------------------------------------------------------


def test_start_next_with_nothing_queued_is_accepted_without_execution(
    device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    d = device()
    raw = raw_device(d.thing)
    response = d.start_next()
    assert response.execution is None
    assert response.client_token == d.last_client_token
    body = raw.expect(f"$aws/things/{d.thing}/jobs/start-next/accepted").json()
    assert sorted(body) == ["clientToken", "timestamp"]
    d.assert_no_event()


def test_start_next_twice_returns_the_same_in_progress_execution_unchanged(
    service: ServiceProcess, device: Callable[..., Device]
) -> None:
    d = device()
    job_a = service.create_job(d.thing, {"step": 1})
    job_b = service.create_job(d.thing, {"step": 2})
    first = d.start_next(status_details={"phase": "one"})
    second = d.start_next(status_details={"phase": "two"})
    assert first.execution.job_id == second.execution.job_id == job_a
    assert first.execution.status == second.execution.status == "IN_PROGRESS"
    assert first.execution.version_number == second.execution.version_number == 2
    assert second.execution.started_at == first.execution.started_at
    assert second.execution.last_updated_at == first.execution.last_updated_at
    # start-next on an IN_PROGRESS head changes nothing, not even its statusDetails.
    assert second.execution.status_details == {"phase": "one"}
    described = d.describe(job_b)
    assert described.execution.status == "QUEUED" and described.execution.version_number == 1


def test_two_queued_executions_moved_to_in_progress_by_update(
    service: ServiceProcess, device: Callable[..., Device]
) -> None:
    d = device()
    job_a = service.create_job(d.thing, {"step": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    job_b = service.create_job(d.thing, {"step": 2})
    d.next_event(JOBS_CHANGED)

    # B (not the head) goes IN_PROGRESS: it now sorts first, so it becomes the next execution.
    d.update(job_b, "IN_PROGRESS")
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job_b and nxt.execution.status == "IN_PROGRESS"
    assert nxt.execution.job_document == {"step": 2}
    d.assert_no_event(JOBS_CHANGED)  # the membership of the pending set did not change

    # A goes IN_PROGRESS too: both in progress, A (queued first) is the head again.
    d.update(job_a, "IN_PROGRESS")
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job_a and nxt.execution.status == "IN_PROGRESS"
    pending = d.get_pending()
    assert _ids(pending.in_progress_jobs) == [job_a, job_b]
    assert pending.queued_jobs == []
    assert all(s.started_at is not None and s.version_number == 2 for s in pending.in_progress_jobs)

    # start-next returns the earliest IN_PROGRESS one and never starts a third.
    assert d.start_next().execution.job_id == job_a
    described = d.describe(job_b)
    assert described.execution.status == "IN_PROGRESS"
    assert described.execution.job_document == {"step": 2}


def test_expected_version_right_is_accepted_and_versions_count_every_update(
    service: ServiceProcess, device: Callable[..., Device]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": "b"})
    assert d.start_next().execution.version_number == 2
    response = d.update(job, "IN_PROGRESS", expected_version=2, include_job_execution_state=True)
    assert response.execution_state.version_number == 3
    response = d.update(job, "SUCCEEDED", expected_version=3, include_job_execution_state=True)
    assert response.execution_state.status == "SUCCEEDED"
    assert response.execution_state.version_number == 4
    described = d.describe(job)
    assert described.execution.status == "SUCCEEDED" and described.execution.version_number == 4


def test_update_include_flags_return_state_and_document(
    service: ServiceProcess, device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    d = device()
    raw = raw_device(d.thing)
    job = service.create_job(d.thing, {"operation": "install", "files": ["a", "b"], "nested": {"n": 1}})
    response = d.update(
        job, "IN_PROGRESS", status_details={"step": "1"}, include_job_execution_state=True, include_job_document=True
    )
    assert response.execution_state.status == "IN_PROGRESS"
    assert response.execution_state.status_details == {"step": "1"}
    assert response.execution_state.version_number == 2
    assert response.job_document == {"operation": "install", "files": ["a", "b"], "nested": {"n": 1}}
    body = raw.expect(f"$aws/things/{d.thing}/jobs/{job}/update/accepted").json()
    assert sorted(body) == ["clientToken", "executionState", "jobDocument", "timestamp"]
    assert body["executionState"] == {"status": "IN_PROGRESS", "statusDetails": {"step": "1"}, "versionNumber": 2}

    # Only one of the two flags: only that field.
    response = d.update(job, "IN_PROGRESS", include_job_execution_state=True, include_job_document=False)
    assert response.execution_state.version_number == 3 and response.job_document is None
    response = d.update(job, "IN_PROGRESS", include_job_document=True)
    assert response.execution_state is None and response.job_document["operation"] == "install"


def test_status_details_are_stored_and_returned(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"x": 1})
    started = d.start_next(status_details={"stage": "download"})
    assert started.execution.status_details == {"stage": "download"}
    assert d.describe(job).execution.status_details == {"stage": "download"}

    details = {f"key_{i}:x-y": "v" * (100 * i + 1) for i in range(10)}  # ten entries is the limit
    details["key_9:x-y"] = "é" * 1024  # 1024 characters is the longest value
    d.update(job, "IN_PROGRESS", status_details=details)
    assert d.describe(job).execution.status_details == details

    # An update without statusDetails keeps them; a new map replaces them.
    d.update(job, "IN_PROGRESS")
    assert d.describe(job).execution.status_details == details
    d.update(job, "SUCCEEDED", status_details={"result": "ok"})
    described = d.describe(job)
    assert described.execution.status == "SUCCEEDED"
    assert described.execution.status_details == {"result": "ok"}
    assert d.get_pending().in_progress_jobs == []


def test_describe_next_and_include_job_document(
    service: ServiceProcess, device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    d = device()
    raw = raw_device(d.thing)
    # $next with nothing pending: accepted, no execution.
    assert d.describe("$next").execution is None
    body = raw.expect(f"$aws/things/{d.thing}/jobs/$next/get/accepted").json()
    assert sorted(body) == ["clientToken", "timestamp"]

    job_a = service.create_job(d.thing, {"doc": "A"})
    job_b = service.create_job(d.thing, {"doc": "B"})
    nxt = d.describe("$next")
    assert nxt.execution.job_id == job_a and nxt.execution.status == "QUEUED"
    assert nxt.execution.job_document == {"doc": "A"}
    assert nxt.execution.version_number == 1  # describing never changes anything
    d.update(job_b, "IN_PROGRESS")
    assert d.describe("$next").execution.job_id == job_b  # IN_PROGRESS sorts first

    # includeJobDocument defaults to true; false leaves jobDocument out.
    assert d.describe(job_a).execution.job_document == {"doc": "A"}
    assert d.describe(job_a, include_job_document=True).execution.job_document == {"doc": "A"}
    without = d.describe(job_a, include_job_document=False)
    assert without.execution.job_id == job_a and without.execution.job_document is None
    body = raw.expect(
        lambda m: (
            m.topic == f"$aws/things/{d.thing}/jobs/{job_a}/get/accepted"
            and m.json()["clientToken"] == d.last_client_token
        )
    ).json()
    assert "jobDocument" not in body["execution"]
    assert d.describe("$next", include_job_document=False).execution.job_document is None

    # executionNumber 1 is the first (and only) execution.
    assert d.describe(job_a, execution_number=1).execution.execution_number == 1


def test_timestamps_are_integer_epoch_seconds(service: ServiceProcess, raw_device: Callable[..., RawDevice]) -> None:
    raw = raw_device()
    base = f"$aws/things/{raw.thing}/jobs"
    job = service.create_job(raw.thing, {"t": 1})
    notify = raw.expect(f"{base}/notify").json()
    notify_next = raw.expect(f"{base}/notify-next").json()
    started = raw.request(f"{base}/start-next", {"clientToken": "ts-1"}).json()
    pending = raw.request(f"{base}/get", {"clientToken": "ts-2"}).json()
    described = raw.request(f"{base}/{job}/get", {"clientToken": "ts-3"}).json()
    updated = raw.request(
        f"{base}/{job}/update", {"clientToken": "ts-4", "status": "IN_PROGRESS", "includeJobExecutionState": True}
    ).json()
    rejected = raw.request(
        f"{base}/{job}/update", {"clientToken": "ts-5", "status": "IN_PROGRESS", "expectedVersion": 99}
    ).json()

    stamps = {
        "notify": [
            notify["timestamp"],
            *(v for s in notify["jobs"]["QUEUED"] for k, v in s.items() if k.endswith("At")),
        ],
        "notify-next": [
            notify_next["timestamp"],
            *(v for k, v in notify_next["execution"].items() if k.endswith("At")),
        ],
        "start-next": [started["timestamp"], *(v for k, v in started["execution"].items() if k.endswith("At"))],
        "get": [
            pending["timestamp"],
            *(v for s in pending["inProgressJobs"] for k, v in s.items() if k.endswith("At")),
        ],
        "describe": [described["timestamp"], *(v for k, v in described["execution"].items() if k.endswith("At"))],
        "update": [updated["timestamp"]],
        "rejected": [rejected["timestamp"]],
    }
    assert len(stamps["start-next"]) == 4  # timestamp, queuedAt, startedAt, lastUpdatedAt
    assert len(stamps["notify"]) == 3  # timestamp, queuedAt, lastUpdatedAt
    for where, values in stamps.items():
        assert all(_is_epoch_int(v) for v in values), (where, values)
    for where, body in (("start-next", started), ("describe", described), ("notify-next", notify_next)):
        execution = body["execution"]
        assert isinstance(execution["versionNumber"], int) and isinstance(execution["executionNumber"], int), where
        assert "thingName" not in execution, where
    assert started["execution"]["queuedAt"] <= started["execution"]["startedAt"] <= started["timestamp"]


# --------------------------------------------------------------------------------------------------
# Every rejection the data plane produces
# --------------------------------------------------------------------------------------------------


def test_invalid_json_is_rejected(raw_device: Callable[..., RawDevice]) -> None:
    raw = raw_device()
    base = f"$aws/things/{raw.thing}/jobs"
    for topic, payload in [
        (f"{base}/get", b"garbage{"),
        (f"{base}/start-next", b'{"clientToken": "unterminated'),
        (f"{base}/some-job/update", b"\xff\xfe not utf-8"),
        (f"{base}/some-job/get", b"[1, 2, 3]"),  # JSON, but not an object
    ]:
        reply = raw.request(topic, payload)
        assert reply.topic == f"{topic}/rejected"
        body = reply.json()
        assert body["code"] == "InvalidJson"
        assert isinstance(body["message"], str) and body["message"].strip()
        assert _is_epoch_int(body["timestamp"])
        assert "executionState" not in body
        assert "clientToken" not in body  # there is no token to recover from an unparseable payload


def test_invalid_topic_with_a_malformed_job_id_is_rejected(raw_device: Callable[..., RawDevice]) -> None:
    raw = raw_device()
    base = f"$aws/things/{raw.thing}/jobs"
    for topic in (f"{base}/bad.job/get", f"{base}/$next/update", f"{base}/{'j' * 65}/update"):
        reply = raw.request(topic, {"clientToken": "topic-1", "status": "IN_PROGRESS"})
        assert reply.topic == f"{topic}/rejected"
        body = reply.json()
        assert body["code"] == "InvalidTopic", body
        assert body["message"].strip()
        assert body["clientToken"] == "topic-1"
        assert "executionState" not in body


def test_unmapped_jobs_topic_is_refused_by_the_default_policy(raw_device: Callable[..., RawDevice]) -> None:
    """A publish under ``$aws/things/T/jobs/`` that maps to no API (``J/foo``), from a provisioned device.

    The default device policy (``policies/device-policy.json``) allows publishing only the four request
    topic shapes, so the broker refuses it, as AWS would under that policy: PUBACK "not authorized".
    """
    raw = raw_device()
    topic = f"$aws/things/{raw.thing}/jobs/J/foo"
    assert raw.publish(topic, {"clientToken": "topic-2"}) == 135
    raw.assert_no_message(lambda m: m.topic.startswith(f"{topic}/"), within=0.5)
    # The connection is still usable.
    assert raw.request(f"$aws/things/{raw.thing}/jobs/get", {"clientToken": "after"}).topic.endswith("/accepted")


def test_unmapped_jobs_topic_is_refused_even_when_the_policy_allows_it(
    service: ServiceProcess, raw_device: Callable[..., RawDevice], tmp_path: Path
) -> None:
    """Even a policy that allows publishing anywhere under the thing's jobs topics does not open
    ``$aws`` topics that are no request: AWS lets devices publish only on the reserved topics it lists
    ("unsupported publish operations to reserved topics can result in a terminated connection"), and
    the local broker cuts every ``$`` write down to those. So no device reaches the service's
    InvalidTopic for an unknown operation; it gets PUBACK "not authorized" and stays connected."""
    thing = unique("thing")
    arn = f"arn:aws:iot:{service.region}:{service.account}"
    cert, key = thing_with_policy(
        service,
        thing,
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": f"{arn}:topic/$aws/things/{thing}/jobs/*",
            },
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/$aws/things/{thing}/jobs/*"},
        ],
        tmp_path,
    )
    raw = raw_device(thing, cert=cert, key=key)

    base = f"$aws/things/{thing}/jobs"
    # The policy works for the request topics, which reach the service...
    assert raw.request(f"{base}/get", {"clientToken": "ok"}).topic.endswith("/get/accepted")
    reply = raw.request(f"{base}/bad.job/get", {"clientToken": "topic-3"}).json()
    assert reply["code"] == "InvalidTopic" and reply["clientToken"] == "topic-3"
    # ...but not for what is no request, nor for the service's own topics.
    for topic in (f"{base}/J/foo", f"{base}/foo", f"{base}/start-next/extra", f"{base}/get/accepted", f"{base}/notify"):
        assert raw.publish(topic, {"clientToken": "topic-4"}) == 135, topic
    raw.assert_no_message(lambda m: m.topic.endswith("/rejected") or m.topic.endswith("/notify"), within=0.5)
    assert raw.request(f"{base}/get", {"clientToken": "still"}).topic.endswith("/get/accepted")


def test_client_token_is_echoed_verbatim_by_raw_requests(
    service: ServiceProcess, raw_device: Callable[..., RawDevice]
) -> None:
    raw = raw_device()
    base = f"$aws/things/{raw.thing}/jobs"
    job = service.create_job(raw.thing, {"a": 1})
    token = "my token: ünïcödé / " + "x" * 40
    cases = [
        (f"{base}/get", {"clientToken": token}, "accepted"),
        (f"{base}/{job}/get", {"clientToken": token}, "accepted"),
        (f"{base}/start-next", {"clientToken": token}, "accepted"),
        (f"{base}/{job}/update", {"clientToken": token, "status": "IN_PROGRESS"}, "accepted"),
        (f"{base}/{job}/update", {"clientToken": token, "status": "BOGUS"}, "rejected"),
        (f"{base}/no-such-job/get", {"clientToken": token}, "rejected"),
    ]
    for topic, payload, outcome in cases:
        reply = raw.request(topic, payload)
        assert reply.topic == f"{topic}/{outcome}", reply
        assert reply.json()["clientToken"] == token
    # Without a clientToken the reply simply has none.
    body = raw.request(f"{base}/get", {}).json()
    assert "clientToken" not in body and "queuedJobs" in body


@pytest.mark.parametrize("status", ["CANCELED", "QUEUED", "TIMED_OUT", "REMOVED"])
def test_update_to_a_status_only_the_service_sets(
    service: ServiceProcess, device: Callable[..., Device], status: str
) -> None:
    """Captured on AWS: refused as InvalidStateTransition before the execution is looked up (so no
    executionState, and an unknown job gets the same answer)."""
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    for job_id in (job, unique("nojob")):
        error = d.rejected("update", job_id, status=status)
        assert error.code == "InvalidStateTransition", modeled(error)
        assert error.message == f"The status of job execution cannot be changed to be {status}"
        assert error.client_token == d.last_client_token and error.execution_state is None
    described = d.describe(job)
    assert described.execution.status == "QUEUED" and described.execution.version_number == 1


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("missing status", {"status": None}),
        ("unknown status", {"status": "DONE"}),
        ("11 statusDetails", {"status_details": {f"k{i}": "v" for i in range(11)}}),
        ("bad statusDetails key", {"status_details": {"bad key!": "v"}}),
        ("empty statusDetails key", {"status_details": {"": "v"}}),
        ("129-char statusDetails key", {"status_details": {"k" * 129: "v"}}),
        ("non-string statusDetails value", {"status_details": {"k": 1}}),
        ("object statusDetails value", {"status_details": {"k": {"nested": "v"}}}),
        ("1025-char statusDetails value", {"status_details": {"k": "v" * 1025}}),
        ("empty statusDetails value", {"status_details": {"k": ""}}),
        ("control character in value", {"status_details": {"k": "line\nbreak"}}),
        ("statusDetails not an object", {"status_details": ["k", "v"]}),
        ("stepTimeoutInMinutes 0", {"step_timeout_in_minutes": 0}),
        ("stepTimeoutInMinutes 10081", {"step_timeout_in_minutes": 10081}),
        ("stepTimeoutInMinutes -2", {"step_timeout_in_minutes": -2}),
        ("stepTimeoutInMinutes string", {"step_timeout_in_minutes": "5"}),
        ("expectedVersion string", {"expected_version": "1"}),
        ("expectedVersion float", {"expected_version": 1.5}),
        ("executionNumber string", {"execution_number": "1"}),
        ("includeJobDocument string", {"include_job_document": "yes"}),
        ("includeJobExecutionState number", {"include_job_execution_state": 1}),
        ("status not a string", {"status": 3}),
    ],
)
def test_update_invalid_request(
    service: ServiceProcess, device: Callable[..., Device], case: str, kwargs: dict[str, Any]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    arguments = {"status": "IN_PROGRESS", **kwargs}
    error = d.rejected("update", job, **arguments)
    _check_rejection(d, error, "InvalidRequest")
    # Nothing changed.
    described = d.describe(job)
    assert described.execution.status == "QUEUED" and described.execution.version_number == 1
    assert described.execution.status_details is None


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("start_next", {"step_timeout_in_minutes": 0}),
        ("start_next", {"step_timeout_in_minutes": 10081}),
        ("start_next", {"step_timeout_in_minutes": -1}),  # -1 (cancel the timer) is for updates only
        ("start_next", {"status_details": {f"k{i}": "v" for i in range(11)}}),
        ("start_next", {"status_details": {"k": 2}}),
        ("describe", {"execution_number": "1"}),
        ("describe", {"include_job_document": "false"}),
    ],
)
def test_start_next_and_describe_invalid_request(
    service: ServiceProcess, device: Callable[..., Device], operation: str, kwargs: dict[str, Any]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    args = (job,) if operation == "describe" else ()
    error = d.rejected(operation, *args, **kwargs)
    _check_rejection(d, error, "InvalidRequest")
    described = d.describe(job)
    assert described.execution.status == "QUEUED" and described.execution.version_number == 1


def test_step_timeout_limits_are_accepted(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    assert d.start_next(step_timeout_in_minutes=1).execution.status == "IN_PROGRESS"
    assert d.update(job, "IN_PROGRESS", step_timeout_in_minutes=10080, include_job_execution_state=True)
    assert d.update(job, "IN_PROGRESS", step_timeout_in_minutes=-1, include_job_execution_state=True)
    assert d.describe(job).execution.version_number == 4


def test_invalid_state_transition_after_a_terminal_status(
    service: ServiceProcess, device: Callable[..., Device]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.start_next()
    d.update(job, "SUCCEEDED", status_details={"result": "done"})
    for status in ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"):
        error = d.rejected("update", job, status)
        _check_rejection(d, error, "InvalidStateTransition")
        assert error.execution_state.status == "SUCCEEDED"
        assert error.execution_state.version_number == 3
        assert error.execution_state.status_details == {"result": "done"}
    assert d.describe(job).execution.version_number == 3

    # The same from REJECTED straight out of QUEUED.
    other = service.create_job(d.thing, {"b": 2})
    d.update(other, "REJECTED")
    error = d.rejected("update", other, "IN_PROGRESS")
    _check_rejection(d, error, "InvalidStateTransition")
    assert error.execution_state.status == "REJECTED" and error.execution_state.version_number == 2


def test_resource_not_found(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    missing = unique("missing")
    _check_rejection(d, d.rejected("update", missing, "IN_PROGRESS"), "ResourceNotFound")
    _check_rejection(d, d.rejected("describe", missing), "ResourceNotFound")
    _check_rejection(d, d.rejected("describe", missing, include_job_document=False), "ResourceNotFound")

    # A job that exists but does not target this thing.
    elsewhere = device()
    foreign = service.create_job(elsewhere.thing, {"a": 1})
    _check_rejection(d, d.rejected("describe", foreign), "ResourceNotFound")
    _check_rejection(d, d.rejected("update", foreign, "SUCCEEDED"), "ResourceNotFound")
    assert elsewhere.describe(foreign).execution.status == "QUEUED"

    # The right job with a wrong executionNumber.
    job = service.create_job(d.thing, {"a": 1})
    _check_rejection(d, d.rejected("describe", job, execution_number=2), "ResourceNotFound")
    _check_rejection(d, d.rejected("update", job, "IN_PROGRESS", execution_number=2), "ResourceNotFound")
    assert d.update(job, "IN_PROGRESS", execution_number=1, include_job_execution_state=True)
    assert d.describe(job).execution.version_number == 2


def test_version_mismatch(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.start_next(status_details={"s": "1"})
    for wrong in (1, 3, 0):
        error = d.rejected("update", job, "SUCCEEDED", expected_version=wrong)
        _check_rejection(d, error, "VersionMismatch")
        assert error.execution_state.status == "IN_PROGRESS"
        assert error.execution_state.version_number == 2
        assert error.execution_state.status_details == {"s": "1"}
    described = d.describe(job)
    assert described.execution.status == "IN_PROGRESS" and described.execution.version_number == 2


def test_rejected_payloads_on_the_wire(service: ServiceProcess, raw_device: Callable[..., RawDevice]) -> None:
    """The exact rejected payloads: keys, and executionState only where AWS includes it."""
    raw = raw_device()
    base = f"$aws/things/{raw.thing}/jobs"
    job = service.create_job(raw.thing, {"a": 1})
    mismatch = raw.request(f"{base}/{job}/update", {"clientToken": "c1", "status": "FAILED", "expectedVersion": 7})
    assert mismatch.topic.endswith("/update/rejected")
    body = mismatch.json()
    assert sorted(body) == ["clientToken", "code", "executionState", "message", "timestamp"]
    assert body["code"] == "VersionMismatch"
    assert body["executionState"] == {"status": "QUEUED", "versionNumber": 1}

    invalid = raw.request(f"{base}/{job}/update", {"clientToken": "c2", "status": "DONE"}).json()
    assert sorted(invalid) == ["clientToken", "code", "message", "timestamp"]
    assert invalid["code"] == "InvalidRequest"

    assert raw.request(f"{base}/{job}/update", {"clientToken": "c3", "status": "FAILED"}).topic.endswith("/accepted")
    transition = raw.request(f"{base}/{job}/update", {"clientToken": "c4", "status": "FAILED"}).json()
    assert transition["code"] == "InvalidStateTransition"
    assert transition["executionState"] == {"status": "FAILED", "versionNumber": 2}

    missing = raw.request(f"{base}/nope/get", {"clientToken": "c5"}).json()
    assert sorted(missing) == ["clientToken", "code", "message", "timestamp"]
    assert missing["code"] == "ResourceNotFound"


# --------------------------------------------------------------------------------------------------
# Events: when notify / notify-next are published
# --------------------------------------------------------------------------------------------------


def test_progress_updates_and_non_head_completions(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    head = service.create_job(d.thing, {"n": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    other = service.create_job(d.thing, {"n": 2})
    d.next_event(JOBS_CHANGED)
    d.start_next()
    # IN_PROGRESS -> IN_PROGRESS (progress report): no event.
    d.update(head, "IN_PROGRESS", status_details={"progress": "50%"})
    d.assert_no_event(within=0.3)
    # A non-head execution reaching a terminal state: JobExecutionsChanged only.
    d.update(other, "REJECTED", status_details={"reason": "incompatible"})
    changed = d.next_event(JOBS_CHANGED)
    assert list(changed.jobs) == ["IN_PROGRESS"] and _ids(changed.jobs["IN_PROGRESS"]) == [head]
    d.assert_no_event(NEXT_CHANGED)
    described = d.describe(other)
    assert described.execution.status == "REJECTED"
    assert described.execution.status_details == {"reason": "incompatible"}


def test_a_job_targeting_two_things(service: ServiceProcess, device: Callable[..., Device]) -> None:
    a, b = device(), device()
    job = service.create_job([a.thing, b.thing], {"fleet": True})
    for d in (a, b):
        assert _ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [job]
        assert d.next_event(NEXT_CHANGED).execution.job_id == job
    a.start_next()
    a.update(job, "SUCCEEDED")
    assert a.next_event(JOBS_CHANGED).jobs == {}
    assert a.next_event(NEXT_CHANGED).execution is None
    b.assert_no_event()  # a's progress is not b's business
    assert b.describe(job).execution.status == "QUEUED"
    iot = service.iot()
    details = iot.describe_job(jobId=job)["job"]
    assert details["status"] == "IN_PROGRESS"
    assert details["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert details["jobProcessDetails"]["numberOfQueuedThings"] == 1
    b.update(job, "FAILED")
    assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"


def test_force_deleting_a_job_in_progress_notifies_the_device(
    service: ServiceProcess, device: Callable[..., Device]
) -> None:
    d = device()
    iot = service.iot()
    job = service.create_job(d.thing, {"n": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    d.start_next()
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.delete_job(jobId=job)  # IN_PROGRESS: only with force
    d.assert_no_event(within=0.2)
    iot.delete_job(jobId=job, force=True)
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None
    _check_rejection(d, d.rejected("update", job, "SUCCEEDED"), "ResourceNotFound")
    _check_rejection(d, d.rejected("describe", job), "ResourceNotFound")
    assert d.get_pending().in_progress_jobs == []


def test_pending_lists_are_capped_at_ten(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    jobs = [service.create_job(d.thing, {"i": i}, job_id=f"{unique('cap')}-{i:02d}") for i in range(12)]
    changed = [d.next_event(JOBS_CHANGED) for _ in jobs]
    assert _ids(changed[-1].jobs["QUEUED"]) == jobs[:10]
    pending = d.get_pending()
    assert _ids(pending.queued_jobs) == jobs[:10] and pending.in_progress_jobs == []
    d.update(jobs[11], "IN_PROGRESS")  # IN_PROGRESS sorts first, so it is listed
    pending = d.get_pending()
    assert _ids(pending.in_progress_jobs) == [jobs[11]]
    assert _ids(pending.queued_jobs) == jobs[:9]


# --------------------------------------------------------------------------------------------------
# Thing names
# --------------------------------------------------------------------------------------------------


def test_thing_name_with_colons_and_underscores(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device(f"site:{uuid_hex()}:pump_2")
    job = service.create_job(d.thing, {"a": 1})
    assert d.next_event(NEXT_CHANGED).execution.job_id == job
    assert d.start_next().execution.job_id == job
    d.update(job, "SUCCEEDED")
    assert d.describe(job).execution.status == "SUCCEEDED"


def test_a_thing_with_a_128_character_name_can_use_jobs(service: ServiceProcess, device: Callable[..., Device]) -> None:
    """AWS thing names are 1-128 characters, and the service registers such a thing; its device must
    get a certificate and be able to use the Jobs API like any other."""
    thing = f"long-{uuid_hex()}-".ljust(128, "x")
    assert len(thing) == 128
    d = device(thing)
    job = service.create_job(d.thing, {"a": 1})
    assert d.next_event(NEXT_CHANGED).execution.job_id == job
    assert d.start_next().execution.job_id == job
