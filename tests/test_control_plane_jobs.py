"""The jobs control plane of iot-jobs-local through the real boto3 ``iot`` client, with the MQTT events
its changes cause seen by real ``IotJobsClientV2`` devices.

Covers ListJobs, UpdateJob, CancelJob, DeleteJob, AssociateTargetsWithJob, GetJobDocument, the
control-plane execution operations, job templates, thing-group targets and CONTINUOUS jobs that
follow group membership.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED
from support.api import check_error, collect, error_of, group_arn, wait_job_gone
from support.common import unique
from support.service import ServiceProcess

DOC = json.dumps({"op": "reboot"})


def template_arn(service: ServiceProcess, template_id: str) -> str:
    return f"arn:aws:iot:{service.region}:{service.account}:jobtemplate/{template_id}"


def new_things(iot: Any, count: int, prefix: str = "th") -> list[str]:
    names = sorted(unique(prefix) for _ in range(count))
    for name in names:
        iot.create_thing(thingName=name)
    return names


def ids(summaries: Any) -> list[str]:
    return [s.job_id for s in summaries]


def counts(iot: Any, job_id: str) -> dict[str, int]:
    details = iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]
    return {k: v for k, v in details.items() if v}


# --------------------------------------------------------------------------------------------------
# CreateJob targets: things and groups
# --------------------------------------------------------------------------------------------------


def test_group_targets_cover_child_groups_and_a_thing_gets_one_execution(service: ServiceProcess, iot: Any) -> None:
    root, child, other = unique("root"), unique("child"), unique("other")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.create_thing_group(thingGroupName=other)
    in_root, in_child, in_both = new_things(iot, 3)
    iot.add_thing_to_thing_group(thingGroupName=root, thingName=in_root)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=in_child)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=in_both)
    iot.add_thing_to_thing_group(thingGroupName=other, thingName=in_both)

    job = unique("job")
    targets = [group_arn(service, root), group_arn(service, other), service.thing_arn(in_both)]
    created = iot.create_job(jobId=job, targets=targets, document=DOC)
    assert created["jobArn"] == service.job_arn(job) and created["jobId"] == job

    executions, _ = collect(iot.list_job_executions_for_job, "executionSummaries", jobId=job)
    assert sorted(e["thingArn"] for e in executions) == sorted(
        service.thing_arn(t) for t in (in_root, in_child, in_both)
    )
    assert all(e["jobExecutionSummary"]["executionNumber"] == 1 for e in executions)
    described = iot.describe_job(jobId=job)["job"]
    assert described["targets"] == targets
    assert described["jobProcessDetails"]["numberOfQueuedThings"] == 3


@pytest.mark.parametrize("kind", ["thing", "thinggroup"])
def test_a_missing_target_is_not_found_and_creates_nothing(service: ServiceProcess, iot: Any, kind: str) -> None:
    job = unique("job")
    arn = f"arn:aws:iot:{service.region}:{service.account}:{kind}/{unique('missing')}"
    check_error(error_of(iot.create_job, jobId=job, targets=[arn], document=DOC), "ResourceNotFoundException", 404)
    check_error(error_of(iot.describe_job, jobId=job), "ResourceNotFoundException", 404)


def test_create_job_validation(service: ServiceProcess, iot: Any) -> None:
    (thing,) = new_things(iot, 1)
    target = [service.thing_arn(thing)]
    cases: list[dict[str, Any]] = [
        {"jobId": "j" * 65, "targets": target, "document": DOC},
        {"jobId": "bad id", "targets": target, "document": DOC},
        {"jobId": unique("job"), "targets": target, "document": DOC, "description": "x" * 2029},
        {"jobId": unique("job"), "targets": target, "document": "not json"},
        {"jobId": unique("job"), "targets": target},
        {"jobId": unique("job"), "targets": ["arn:aws:iot:us-east-1:123456789012:job/x"], "document": DOC},
        {"jobId": unique("job"), "targets": [service.thing_arn(f"t{i}") for i in range(101)], "document": DOC},
    ]
    for kwargs in cases:
        check_error(error_of(iot.create_job, **kwargs), "InvalidRequestException", 400)
    job = service.create_job(thing, {"a": 1})
    error = error_of(iot.create_job, jobId=job, targets=target, document=DOC)
    check_error(error, "ResourceAlreadyExistsException", 409)


def test_snapshot_job_completes_when_every_execution_is_terminal(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    first, second = device(), device()
    job = service.create_job([first.thing, second.thing], {"a": 1})
    first.update(job, "SUCCEEDED")
    assert iot.describe_job(jobId=job)["job"]["status"] == "IN_PROGRESS"
    second.update(job, "IN_PROGRESS")
    assert counts(iot, job) == {"numberOfSucceededThings": 1, "numberOfInProgressThings": 1}
    second.update(job, "FAILED")
    described = iot.describe_job(jobId=job)["job"]
    assert described["status"] == "COMPLETED"
    assert described["completedAt"] >= described["createdAt"]
    assert counts(iot, job) == {"numberOfSucceededThings": 1, "numberOfFailedThings": 1}


# --------------------------------------------------------------------------------------------------
# ListJobs, UpdateJob, GetJobDocument
# --------------------------------------------------------------------------------------------------


def test_list_jobs_filters_and_pages_newest_first(service: ServiceProcess, iot: Any) -> None:
    group = unique("lj")
    created = iot.create_thing_group(thingGroupName=group)
    (thing,) = new_things(iot, 1)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    jobs = []
    for index in range(5):
        job = unique("lj")
        iot.create_job(
            jobId=job,
            targets=[group_arn(service, group)],
            document=DOC,
            targetSelection="CONTINUOUS" if index == 4 else "SNAPSHOT",
        )
        jobs.append(job)

    listed, pages = collect(iot.list_jobs, "jobs", thingGroupName=group, maxResults=2)
    assert [j["jobId"] for j in listed] == jobs[::-1] and pages == 3
    summary = listed[0]
    assert summary["jobArn"] == service.job_arn(jobs[4])
    assert summary["targetSelection"] == "CONTINUOUS" and summary["status"] == "IN_PROGRESS"
    assert summary["isConcurrent"] is False
    assert summary["createdAt"] and summary["lastUpdatedAt"]

    by_id = iot.list_jobs(thingGroupId=created["thingGroupId"])["jobs"]
    assert [j["jobId"] for j in by_id] == jobs[::-1]
    continuous = iot.list_jobs(thingGroupName=group, targetSelection="CONTINUOUS")["jobs"]
    assert [j["jobId"] for j in continuous] == [jobs[4]]
    iot.cancel_job(jobId=jobs[0])
    canceled = iot.list_jobs(thingGroupName=group, status="CANCELED")["jobs"]
    assert [j["jobId"] for j in canceled] == [jobs[0]]
    assert iot.list_jobs(thingGroupName=unique("nogroup"))["jobs"] == []
    assert iot.list_jobs(thingGroupId="0000-unknown")["jobs"] == []

    check_error(error_of(iot.list_jobs, nextToken="bm90IGEgdG9rZW4"), "InvalidRequestException", 400)
    check_error(error_of(iot.list_jobs, maxResults=251), "InvalidRequestException", 400)
    check_error(error_of(iot.list_jobs, status="RUNNING"), "InvalidRequestException", 400)


def test_update_job_and_get_job_document(service: ServiceProcess, iot: Any) -> None:
    (thing,) = new_things(iot, 1)
    job = unique("job")
    iot.create_job(jobId=job, targets=[service.thing_arn(thing)], document=DOC, description="before")
    assert iot.get_job_document(jobId=job)["document"] == DOC  # a string, not an object

    iot.update_job(
        jobId=job,
        description="after",
        timeoutConfig={"inProgressTimeoutInMinutes": 30},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
    )
    described = iot.describe_job(jobId=job)["job"]
    assert described["description"] == "after"
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert described["jobExecutionsRetryConfig"]["criteriaList"][0]["numberOfRetries"] == 2
    assert described["lastUpdatedAt"] >= described["createdAt"]
    assert iot.get_job_document(jobId=job)["document"] == DOC  # the document never changes

    check_error(error_of(iot.update_job, jobId=unique("missing"), description="x"), "ResourceNotFoundException", 404)
    check_error(error_of(iot.update_job, jobId=job, description="x" * 2029), "InvalidRequestException", 400)
    error = error_of(
        iot.update_job,
        jobId=job,
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 11}]},
    )
    check_error(error, "InvalidRequestException", 400)
    check_error(error_of(iot.get_job_document, jobId=unique("missing")), "ResourceNotFoundException", 404)


# --------------------------------------------------------------------------------------------------
# CancelJob and DeleteJob, with their events
# --------------------------------------------------------------------------------------------------


def test_cancel_job_cancels_queued_executions_and_leaves_in_progress_ones(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    running, waiting = device(), device()
    job = service.create_job([running.thing, waiting.thing], {"a": 1})
    for d in (running, waiting):
        d.next_event(JOBS_CHANGED)
        d.next_event(NEXT_CHANGED)
    running.start_next()

    response = iot.cancel_job(jobId=job, reasonCode="BAD_BUILD_7", comment="stop it")
    assert response["jobId"] == job and response["jobArn"] == service.job_arn(job)

    # the queued execution is canceled: the device hears that nothing is pending any more
    assert waiting.next_event(JOBS_CHANGED).jobs == {}
    assert waiting.next_event(NEXT_CHANGED).execution is None
    rejected = waiting.rejected("update", job, "IN_PROGRESS")
    assert rejected.code == "InvalidStateTransition"
    assert rejected.execution_state.status == "CANCELED"
    assert rejected.execution_state.version_number == 2  # the service's change bumped it

    # the in-progress one keeps running and can still finish
    running.assert_no_event()
    described = iot.describe_job(jobId=job)["job"]
    assert described["status"] == "CANCELED"
    assert described["forceCanceled"] is False
    assert described["reasonCode"] == "BAD_BUILD_7" and described["comment"] == "stop it"
    assert counts(iot, job) == {"numberOfCanceledThings": 1, "numberOfInProgressThings": 1}
    running.update(job, "SUCCEEDED")
    assert iot.describe_job(jobId=job)["job"]["status"] == "CANCELED"


def test_force_cancel_job_cancels_in_progress_executions(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    d.start_next()
    iot.cancel_job(jobId=job, force=True)
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None
    described = iot.describe_job(jobId=job)["job"]
    assert described["status"] == "CANCELED" and described["forceCanceled"] is True
    execution = iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]
    assert execution["status"] == "CANCELED" and execution["forceCanceled"] is True
    assert execution["versionNumber"] == 3
    assert d.rejected("update", job, "SUCCEEDED").code == "InvalidStateTransition"


def test_cancel_job_errors(service: ServiceProcess, iot: Any, device: Callable[..., Device]) -> None:
    check_error(error_of(iot.cancel_job, jobId=unique("missing")), "ResourceNotFoundException", 404)
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    check_error(error_of(iot.cancel_job, jobId=job, reasonCode="lower_case"), "InvalidRequestException", 400)
    check_error(error_of(iot.cancel_job, jobId=job, comment="x" * 2029), "InvalidRequestException", 400)
    d.update(job, "SUCCEEDED")
    assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"
    check_error(error_of(iot.cancel_job, jobId=job), "InvalidRequestException", 400)


def test_delete_job_rules(service: ServiceProcess, iot: Any, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    d.start_next()
    # an IN_PROGRESS job (and, once canceled, its IN_PROGRESS execution) needs force
    check_error(error_of(iot.delete_job, jobId=job), "InvalidStateTransitionException", 409)
    iot.cancel_job(jobId=job)
    check_error(error_of(iot.delete_job, jobId=job), "InvalidStateTransitionException", 409)
    d.update(job, "SUCCEEDED")
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    iot.delete_job(jobId=job)
    assert iot.describe_job(jobId=job)["job"]["status"] in ("DELETION_IN_PROGRESS",)
    # while it is being deleted, deleting it again is refused; then it is gone
    check_error(error_of(iot.delete_job, jobId=job, force=True), "InvalidStateTransitionException", 409)
    wait_job_gone(iot, job)
    d.assert_no_event()
    check_error(error_of(iot.delete_job, jobId=job), "ResourceNotFoundException", 404)


def test_force_delete_of_an_in_progress_job_publishes_events(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    d = device()
    doomed = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    survivor = service.create_job(d.thing, {"b": 2})
    d.next_event(JOBS_CHANGED)
    d.start_next()  # the doomed job is IN_PROGRESS, the survivor QUEUED

    iot.delete_job(jobId=doomed, force=True)
    changed = d.next_event(JOBS_CHANGED)
    assert list(changed.jobs) == ["QUEUED"] and ids(changed.jobs["QUEUED"]) == [survivor]
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == survivor and nxt.execution.job_document == {"b": 2}
    assert d.rejected("update", doomed, "SUCCEEDED").code == "ResourceNotFound"  # its executions went at once
    assert iot.describe_job_execution(jobId=survivor, thingName=d.thing)["execution"]["status"] == "QUEUED"
    check_error(error_of(iot.describe_job_execution, jobId=doomed, thingName=d.thing), "ResourceNotFoundException", 404)
    # the job itself is DELETION_IN_PROGRESS for a moment, and its id taken until it is gone
    job = iot.describe_job(jobId=doomed)["job"]
    assert job["status"] == "DELETION_IN_PROGRESS" and job["jobProcessDetails"].get("numberOfInProgressThings", 0) == 0
    listed = iot.list_jobs(status="DELETION_IN_PROGRESS")["jobs"]
    assert doomed in [j["jobId"] for j in listed]
    check_error(
        error_of(iot.create_job, jobId=doomed, targets=[service.thing_arn(d.thing)], document=DOC),
        "ResourceAlreadyExistsException",
        409,
    )
    wait_job_gone(iot, doomed)
    assert doomed not in [j["jobId"] for j in iot.list_jobs()["jobs"]]
    # the job id can be used again once the job is gone
    iot.create_job(jobId=doomed, targets=[service.thing_arn(d.thing)], document=DOC)


# --------------------------------------------------------------------------------------------------
# Control-plane job executions
# --------------------------------------------------------------------------------------------------


def test_describe_job_execution_has_the_control_plane_shape(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.start_next(status_details={"step": "download"})
    execution = iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]
    assert execution["jobId"] == job
    assert execution["status"] == "IN_PROGRESS"
    assert execution["thingArn"] == service.thing_arn(d.thing)
    assert execution["statusDetails"] == {"detailsMap": {"step": "download"}}
    assert execution["executionNumber"] == 1 and execution["versionNumber"] == 2
    assert execution["queuedAt"] <= execution["startedAt"] <= execution["lastUpdatedAt"]
    for absent in ("thingName", "jobDocument", "approximateSecondsBeforeTimedOut", "forceCanceled"):
        assert absent not in execution
    same = iot.describe_job_execution(jobId=job, thingName=d.thing, executionNumber=1)["execution"]
    assert same["versionNumber"] == 2
    check_error(
        error_of(iot.describe_job_execution, jobId=job, thingName=d.thing, executionNumber=2),
        "ResourceNotFoundException",
        404,
    )
    check_error(
        error_of(iot.describe_job_execution, jobId=unique("nope"), thingName=d.thing), "ResourceNotFoundException", 404
    )
    check_error(error_of(iot.describe_job_execution, jobId="$next", thingName=d.thing), "InvalidRequestException", 400)


def test_list_job_executions_for_job_and_for_thing(service: ServiceProcess, iot: Any) -> None:
    things = new_things(iot, 5)
    job = service.create_job(things, {"a": 1})
    listed, pages = collect(iot.list_job_executions_for_job, "executionSummaries", jobId=job, maxResults=2)
    assert pages == 3
    assert [e["thingArn"] for e in listed] == [service.thing_arn(t) for t in things]
    summary = listed[0]["jobExecutionSummary"]
    assert summary["status"] == "QUEUED" and summary["executionNumber"] == 1
    assert "startedAt" not in summary and summary["queuedAt"] and summary["lastUpdatedAt"]
    iot.cancel_job_execution(jobId=job, thingName=things[2])
    canceled = iot.list_job_executions_for_job(jobId=job, status="CANCELED")["executionSummaries"]
    assert [e["thingArn"] for e in canceled] == [service.thing_arn(things[2])]
    check_error(error_of(iot.list_job_executions_for_job, jobId=unique("nope")), "ResourceNotFoundException", 404)
    check_error(error_of(iot.list_job_executions_for_job, jobId=job, nextToken="xyz"), "InvalidRequestException", 400)

    thing = things[0]
    more = [service.create_job(thing, {"n": n}) for n in range(3)]
    for_thing, pages = collect(iot.list_job_executions_for_thing, "executionSummaries", thingName=thing, maxResults=3)
    assert [e["jobId"] for e in for_thing] == [*more[::-1], job] and pages == 2
    assert for_thing[0]["jobExecutionSummary"]["status"] == "QUEUED"
    only = iot.list_job_executions_for_thing(thingName=thing, jobId=more[1])["executionSummaries"]
    assert [e["jobId"] for e in only] == [more[1]]
    assert iot.list_job_executions_for_thing(thingName=thing, status="SUCCEEDED")["executionSummaries"] == []
    check_error(
        error_of(iot.list_job_executions_for_thing, thingName=thing, status="DONE"), "InvalidRequestException", 400
    )


def test_cancel_job_execution(service: ServiceProcess, iot: Any, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    d.start_next()
    check_error(
        error_of(iot.cancel_job_execution, jobId=job, thingName=d.thing), "InvalidStateTransitionException", 409
    )
    check_error(
        error_of(iot.cancel_job_execution, jobId=job, thingName=d.thing, force=True, expectedVersion=1),
        "VersionConflictException",
        409,
    )
    check_error(
        error_of(iot.cancel_job_execution, jobId=job, thingName=d.thing, force=True, statusDetails={"bad key": "v"}),
        "InvalidRequestException",
        400,
    )
    iot.cancel_job_execution(
        jobId=job, thingName=d.thing, force=True, expectedVersion=2, statusDetails={"reason": "operator"}
    )
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None
    execution = iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]
    assert execution["status"] == "CANCELED" and execution["forceCanceled"] is True
    assert execution["versionNumber"] == 3
    assert execution["statusDetails"] == {"detailsMap": {"reason": "operator"}}
    rejected = d.rejected("update", job, "SUCCEEDED")
    assert rejected.code == "InvalidStateTransition" and rejected.execution_state.status == "CANCELED"
    # the job had one thing: it is now COMPLETED
    assert iot.describe_job(jobId=job)["job"]["status"] == "COMPLETED"
    check_error(
        error_of(iot.cancel_job_execution, jobId=job, thingName=d.thing), "InvalidStateTransitionException", 409
    )
    check_error(
        error_of(iot.cancel_job_execution, jobId=job, thingName=unique("nope")), "ResourceNotFoundException", 404
    )


def test_cancel_queued_job_execution_that_is_not_the_head(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    d = device()
    head = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    second = service.create_job(d.thing, {"b": 2})
    d.next_event(JOBS_CHANGED)
    iot.cancel_job_execution(jobId=second, thingName=d.thing)
    changed = d.next_event(JOBS_CHANGED)
    assert ids(changed.jobs["QUEUED"]) == [head]
    d.assert_no_event(NEXT_CHANGED)


def test_delete_job_execution(service: ServiceProcess, iot: Any, device: Callable[..., Device]) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    check_error(
        error_of(iot.delete_job_execution, jobId=job, thingName=d.thing, executionNumber=1),
        "InvalidStateTransitionException",
        409,
    )
    d.start_next()
    check_error(
        error_of(iot.delete_job_execution, jobId=job, thingName=d.thing, executionNumber=1),
        "InvalidStateTransitionException",
        409,
    )
    check_error(
        error_of(iot.delete_job_execution, jobId=job, thingName=d.thing, executionNumber=2, force=True),
        "ResourceNotFoundException",
        404,
    )
    iot.delete_job_execution(jobId=job, thingName=d.thing, executionNumber=1, force=True)
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None
    check_error(error_of(iot.describe_job_execution, jobId=job, thingName=d.thing), "ResourceNotFoundException", 404)
    assert d.rejected("update", job, "SUCCEEDED").code == "ResourceNotFound"

    finished = service.create_job(d.thing, {"b": 2})
    d.update(finished, "SUCCEEDED")
    iot.delete_job_execution(jobId=finished, thingName=d.thing, executionNumber=1)
    assert iot.list_job_executions_for_job(jobId=finished)["executionSummaries"] == []


# --------------------------------------------------------------------------------------------------
# AssociateTargetsWithJob and CONTINUOUS jobs
# --------------------------------------------------------------------------------------------------


def test_continuous_job_follows_group_membership(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    group, child = unique("fleet"), unique("sub")
    iot.create_thing_group(thingGroupName=group)
    iot.create_thing_group(thingGroupName=child, parentGroupName=group)
    d = device()
    job = unique("cont")
    iot.create_job(jobId=job, targets=[group_arn(service, group)], document=DOC, targetSelection="CONTINUOUS")
    d.assert_no_event()

    # joining a child group of the target: a new QUEUED execution, and it is the head
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=d.thing)
    changed = d.next_event(JOBS_CHANGED)
    assert ids(changed.jobs["QUEUED"]) == [job]
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job and nxt.execution.status == "QUEUED"
    assert nxt.execution.execution_number == 1 and nxt.execution.job_document == {"op": "reboot"}

    # leaving: the pending execution is REMOVED, and the device hears that nothing is pending
    iot.remove_thing_from_thing_group(thingGroupName=child, thingName=d.thing)
    assert d.next_event(JOBS_CHANGED).jobs == {}
    assert d.next_event(NEXT_CHANGED).execution is None
    execution = iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]
    assert execution["status"] == "REMOVED" and execution["versionNumber"] == 1  # kept, as captured on AWS
    assert counts(iot, job) == {"numberOfRemovedThings": 1}
    assert d.rejected("update", job, "IN_PROGRESS").code == "InvalidStateTransition"

    # joining again: a new execution, numbered 2
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=d.thing)
    assert d.next_event(NEXT_CHANGED).execution.execution_number == 2
    assert ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [job]
    assert iot.describe_job(jobId=job)["job"]["status"] == "IN_PROGRESS"


def test_continuous_job_and_membership_as_captured_on_aws(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    """An IN_PROGRESS execution keeps running when its thing leaves the target group, and the device
    may finish it; a thing that finished and then joins another target group of the same job gets a
    new execution (number 2). UpdateThingGroupsForThing adds and removes in one call."""
    first, second = unique("fleet"), unique("fleet")
    iot.create_thing_group(thingGroupName=first)
    iot.create_thing_group(thingGroupName=second)
    d = device()
    job = unique("cont")
    iot.create_job(
        jobId=job,
        targets=[group_arn(service, first), group_arn(service, second)],
        document=DOC,
        targetSelection="CONTINUOUS",
    )
    iot.add_thing_to_thing_group(thingGroupName=first, thingName=d.thing)
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    assert d.start_next().execution.status == "IN_PROGRESS"

    iot.remove_thing_from_thing_group(thingGroupName=first, thingName=d.thing)
    running = iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]
    assert running["status"] == "IN_PROGRESS" and running["versionNumber"] == 2
    d.update(job, "SUCCEEDED")
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    assert iot.describe_job_execution(jobId=job, thingName=d.thing)["execution"]["status"] == "SUCCEEDED"

    # Back in the first group and into the second at once: one new execution, number 2.
    iot.update_thing_groups_for_thing(thingName=d.thing, thingGroupsToAdd=[first, second])
    assert d.next_event(NEXT_CHANGED).execution.execution_number == 2
    assert ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [job]
    assert d.update(job, "SUCCEEDED", execution_number=2) is not None
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)

    # Finished, and still in the first group: joining the other target group again queues number 3.
    iot.update_thing_groups_for_thing(thingName=d.thing, thingGroupsToRemove=[second])
    d.assert_no_event()
    iot.update_thing_groups_for_thing(thingName=d.thing, thingGroupsToAdd=[second])
    assert d.next_event(NEXT_CHANGED).execution.execution_number == 3
    groups = iot.list_thing_groups_for_thing(thingName=d.thing)["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == sorted([first, second])
    check_error(
        error_of(iot.update_thing_groups_for_thing, thingName=d.thing, thingGroupsToAdd=[unique("nope")]),
        "ResourceNotFoundException",
        404,
    )


def test_continuous_job_join_when_another_job_is_the_head(
    service: ServiceProcess, iot: Any, device: Callable[..., Device]
) -> None:
    group = unique("fleet")
    iot.create_thing_group(thingGroupName=group)
    d = device()
    first = service.create_job(d.thing, {"first": True})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    job = unique("cont")
    iot.create_job(jobId=job, targets=[group_arn(service, group)], document=DOC, targetSelection="CONTINUOUS")
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=d.thing)
    assert ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [first, job]
    d.assert_no_event(NEXT_CHANGED)
    # leaving a group does not touch a SNAPSHOT job or the head
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=d.thing)
    assert ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [first]
    d.assert_no_event(NEXT_CHANGED)


def test_deleting_a_target_group_removes_continuous_executions_of_things_no_longer_targeted(
    service: ServiceProcess, iot: Any
) -> None:
    doomed, other = unique("doomed"), unique("other")
    iot.create_thing_group(thingGroupName=doomed)
    iot.create_thing_group(thingGroupName=other)
    only_doomed, also_other, also_direct = new_things(iot, 3)
    for thing in (only_doomed, also_other, also_direct):
        iot.add_thing_to_thing_group(thingGroupName=doomed, thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=other, thingName=also_other)
    job = unique("cont")
    targets = [group_arn(service, doomed), group_arn(service, other), service.thing_arn(also_direct)]
    iot.create_job(jobId=job, targets=targets, document=DOC, targetSelection="CONTINUOUS")
    assert counts(iot, job) == {"numberOfQueuedThings": 3}

    iot.delete_thing_group(thingGroupName=doomed)
    statuses = {
        e["thingArn"]: e["jobExecutionSummary"]["status"]
        for e in iot.list_job_executions_for_job(jobId=job)["executionSummaries"]
    }
    assert statuses == {
        service.thing_arn(only_doomed): "REMOVED",
        service.thing_arn(also_other): "QUEUED",
        service.thing_arn(also_direct): "QUEUED",
    }


def test_snapshot_jobs_do_not_follow_membership(service: ServiceProcess, iot: Any) -> None:
    group = unique("fleet")
    iot.create_thing_group(thingGroupName=group)
    early, late = new_things(iot, 2)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=early)
    job = unique("snap")
    iot.create_job(jobId=job, targets=[group_arn(service, group)], document=DOC)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=late)
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=early)
    listed = iot.list_job_executions_for_job(jobId=job)["executionSummaries"]
    assert [(e["thingArn"], e["jobExecutionSummary"]["status"]) for e in listed] == [
        (service.thing_arn(early), "QUEUED")
    ]


def test_a_deleted_thing_has_its_pending_executions_removed(service: ServiceProcess, iot: Any) -> None:
    kept, deleted = new_things(iot, 2)
    job = service.create_job([kept, deleted], {"a": 1})
    iot.delete_thing(thingName=deleted)
    execution = iot.describe_job_execution(jobId=job, thingName=deleted)["execution"]
    assert execution["status"] == "REMOVED"
    assert counts(iot, job) == {"numberOfQueuedThings": 1, "numberOfRemovedThings": 1}


def test_associate_targets_with_job(service: ServiceProcess, iot: Any, device: Callable[..., Device]) -> None:
    group = unique("fleet")
    iot.create_thing_group(thingGroupName=group)
    (member,) = new_things(iot, 1)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=member)
    d = device()
    job = unique("cont")
    iot.create_job(
        jobId=job,
        targets=[group_arn(service, group)],
        document=DOC,
        targetSelection="CONTINUOUS",
        description="rolling",
    )

    response = iot.associate_targets_with_job(
        jobId=job, targets=[service.thing_arn(d.thing), group_arn(service, group)]
    )
    assert response == {
        "jobArn": service.job_arn(job),
        "jobId": job,
        "description": "rolling",
        "ResponseMetadata": response["ResponseMetadata"],
    }
    nxt = d.next_event(NEXT_CHANGED)
    assert nxt.execution.job_id == job
    assert ids(d.next_event(JOBS_CHANGED).jobs["QUEUED"]) == [job]
    assert iot.describe_job(jobId=job)["job"]["targets"] == [group_arn(service, group), service.thing_arn(d.thing)]
    assert counts(iot, job) == {"numberOfQueuedThings": 2}

    check_error(
        error_of(iot.associate_targets_with_job, jobId=job, targets=[service.thing_arn(unique("nope"))]),
        "ResourceNotFoundException",
        404,
    )
    too_many = [service.thing_arn(f"t-{i}") for i in range(99)]
    check_error(error_of(iot.associate_targets_with_job, jobId=job, targets=too_many), "InvalidRequestException", 400)
    check_error(
        error_of(iot.associate_targets_with_job, jobId=unique("nope"), targets=[service.thing_arn(member)]),
        "ResourceNotFoundException",
        404,
    )

    snapshot = service.create_job(member, {"a": 1})
    check_error(
        error_of(iot.associate_targets_with_job, jobId=snapshot, targets=[service.thing_arn(d.thing)]),
        "InvalidRequestException",
        400,
    )
    iot.cancel_job(jobId=job)
    check_error(
        error_of(iot.associate_targets_with_job, jobId=job, targets=[service.thing_arn(member)]),
        "InvalidRequestException",
        400,
    )


# --------------------------------------------------------------------------------------------------
# Job templates
# --------------------------------------------------------------------------------------------------


def test_job_templates(service: ServiceProcess, iot: Any) -> None:
    template = unique("tpl")
    created = iot.create_job_template(
        jobTemplateId=template,
        description="reboot template",
        document=DOC,
        timeoutConfig={"inProgressTimeoutInMinutes": 10},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "ALL", "numberOfRetries": 1}]},
    )
    assert created["jobTemplateId"] == template
    assert created["jobTemplateArn"] == template_arn(service, template)
    described = iot.describe_job_template(jobTemplateId=template)
    assert described["description"] == "reboot template"
    assert described["document"] == DOC
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 10}
    assert described["createdAt"]

    error = error_of(iot.create_job_template, jobTemplateId=template, description="again", document=DOC)
    check_error(error, "ConflictException", 409)
    check_error(
        error_of(iot.create_job_template, jobTemplateId=unique("tpl"), description="no document"),
        "InvalidRequestException",
        400,
    )
    check_error(
        error_of(iot.create_job_template, jobTemplateId="t" * 65, description="d", document=DOC),
        "InvalidRequestException",
        400,
    )

    # CreateJob from the template: its document and configuration; explicit blocks win
    (thing,) = new_things(iot, 1)
    job = unique("fromtpl")
    iot.create_job(
        jobId=job,
        targets=[service.thing_arn(thing)],
        jobTemplateArn=template_arn(service, template),
        timeoutConfig={"inProgressTimeoutInMinutes": 60},
    )
    job_described = iot.describe_job(jobId=job)["job"]
    assert job_described["jobTemplateArn"] == template_arn(service, template)
    assert job_described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert job_described["jobExecutionsRetryConfig"]["criteriaList"][0]["failureType"] == "ALL"
    assert iot.get_job_document(jobId=job)["document"] == DOC
    check_error(
        error_of(
            iot.create_job,
            jobId=unique("j"),
            targets=[service.thing_arn(thing)],
            jobTemplateArn=template_arn(service, unique("missing")),
        ),
        "ResourceNotFoundException",
        404,
    )

    # a template made from a job copies its document
    copied = unique("tpl")
    iot.create_job_template(jobTemplateId=copied, description="copy", jobArn=service.job_arn(job))
    copy = iot.describe_job_template(jobTemplateId=copied)
    assert copy["document"] == DOC and copy["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}

    listed, _ = collect(iot.list_job_templates, "jobTemplates", maxResults=1)
    mine = [t for t in listed if t["jobTemplateId"] in (template, copied)]
    assert [t["jobTemplateId"] for t in mine] == [copied, template]  # newest first
    assert mine[1]["jobTemplateArn"] == template_arn(service, template) and mine[1]["description"]

    iot.delete_job_template(jobTemplateId=copied)
    check_error(error_of(iot.describe_job_template, jobTemplateId=copied), "ResourceNotFoundException", 404)
    check_error(error_of(iot.delete_job_template, jobTemplateId=copied), "ResourceNotFoundException", 404)


def test_at_most_ten_jobs_can_be_deleting_at_once(service_factory: Callable[..., ServiceProcess]) -> None:
    """AWS allows 10 jobs in DELETION_IN_PROGRESS at a time; an 11th DeleteJob gets LimitExceeded (410)."""
    svc = service_factory("--time-scale", "0.01")  # a deletion then lasts 100 s of real time
    iot = svc.iot()
    thing = unique("thing")
    iot.create_thing(thingName=thing)
    jobs = [svc.create_job(thing, {"n": i}) for i in range(11)]
    for job in jobs[:10]:
        iot.delete_job(jobId=job, force=True)
    check_error(error_of(iot.delete_job, jobId=jobs[10], force=True), "LimitExceededException", 410)
    assert iot.describe_job(jobId=jobs[10])["job"]["status"] == "IN_PROGRESS"
    assert sorted(j["jobId"] for j in iot.list_jobs(status="DELETION_IN_PROGRESS")["jobs"]) == sorted(jobs[:10])
    # the job that could not be deleted is untouched: its execution is still queued
    assert iot.describe_job_execution(jobId=jobs[10], thingName=thing)["execution"]["status"] == "QUEUED"


# --------------------------------------------------------------------------------------------------
# Shapes captured on AWS
# --------------------------------------------------------------------------------------------------


def test_empty_configs_and_details_have_aws_shape(service: ServiceProcess, iot: Any) -> None:
    """DescribeJob carries ``timeoutConfig: {}`` and ``schedulingConfig: {}`` when none was set (a
    published capture); DescribeJobExecution without details has ``statusDetails: {}`` (the AWS CLI
    reference's example), not ``{"detailsMap": {}}``. Raw JSON, as boto3 would hide an empty dict."""
    thing = unique("shape")
    iot.create_thing(thingName=thing)
    job = service.create_job(thing, {"a": 1})
    raw: dict[str, Any] = {}

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        raw["body"] = json.loads(response_dict["body"])

    iot.meta.events.register("before-parse.iot.*", keep)
    try:
        iot.describe_job(jobId=job)
        assert raw["body"]["job"]["timeoutConfig"] == {} and raw["body"]["job"]["schedulingConfig"] == {}
        iot.describe_job_execution(jobId=job, thingName=thing)
        assert raw["body"]["execution"]["statusDetails"] == {}
    finally:
        iot.meta.events.unregister("before-parse.iot.*", keep)
