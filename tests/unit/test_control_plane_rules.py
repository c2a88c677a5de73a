"""Pure rules behind the control plane: service-side execution changes, the registry's attribute and
membership rules, model-driven input validation and page tokens. No service, no clock."""

from __future__ import annotations

import pytest

from iot_jobs_local.http_api import paging, validation
from iot_jobs_local.jobs import registry, transitions
from iot_jobs_local.jobs.errors import InvalidRequest, InvalidStateTransition, ResourceNotFound, VersionMismatch
from iot_jobs_local.jobs.model import Execution, ExecutionStatus, Job, JobStatus, TargetSelection, ThingGroup
from iot_jobs_local.store import Page

S = ExecutionStatus
NOW = 1_719_943_955.0


def ex(status: ExecutionStatus, version: int = 1, job_id: str = "J") -> Execution:
    return Execution(job_id, "thing1", 1, status, 1.0, 1.0, version_number=version)


def job(status: JobStatus = JobStatus.IN_PROGRESS, selection: TargetSelection = TargetSelection.SNAPSHOT) -> Job:
    return Job("J", "arn", "{}", (), selection, status, 1.0, 1.0)


# service-side execution changes ------------------------------------------------------------------


def test_cancel_execution_rules() -> None:
    canceled = transitions.cancel_execution(ex(S.QUEUED), False, None, {"why": "op"}, NOW)
    assert (canceled.status, canceled.version_number, canceled.force_canceled) == (S.CANCELED, 2, False)
    assert canceled.status_details == {"why": "op"} and canceled.last_updated_at == NOW
    forced = transitions.cancel_execution(ex(S.IN_PROGRESS, 2), True, 2, None, NOW)
    assert (forced.status, forced.version_number, forced.force_canceled) == (S.CANCELED, 3, True)
    with pytest.raises(InvalidStateTransition):
        transitions.cancel_execution(ex(S.IN_PROGRESS), False, None, None, NOW)
    with pytest.raises(InvalidStateTransition):
        transitions.cancel_execution(ex(S.SUCCEEDED), True, None, None, NOW)
    with pytest.raises(VersionMismatch):
        transitions.cancel_execution(ex(S.QUEUED, 3), False, 2, None, NOW)
    with pytest.raises(ResourceNotFound):
        transitions.cancel_execution(None, False, None, None, NOW)


def test_cancel_for_job_takes_in_progress_only_with_force() -> None:
    pending = [ex(S.QUEUED, job_id="A"), ex(S.IN_PROGRESS, 2, job_id="B")]
    assert [e.job_id for e in transitions.cancel_for_job(pending, False, NOW)] == ["A"]
    forced = transitions.cancel_for_job(pending, True, NOW)
    assert [(e.job_id, e.status, e.version_number, e.force_canceled) for e in forced] == [
        ("A", S.CANCELED, 2, True),
        ("B", S.CANCELED, 3, True),
    ]


@pytest.mark.parametrize(
    ("status", "force", "allowed"),
    [
        (S.SUCCEEDED, False, True),
        (S.REMOVED, False, True),
        (S.QUEUED, False, transitions.DELETE_QUEUED_EXECUTION_WITHOUT_FORCE),
        (S.IN_PROGRESS, False, False),
        (S.IN_PROGRESS, True, True),
    ],
)
def test_check_execution_deletable(status: ExecutionStatus, force: bool, allowed: bool) -> None:
    if allowed:
        transitions.check_execution_deletable(ex(status), force)
    else:
        with pytest.raises(InvalidStateTransition):
            transitions.check_execution_deletable(ex(status), force)


def test_cancel_job_and_associate_rules() -> None:
    canceled = transitions.cancel_job(job(), True, "R_1", "c", NOW)
    assert (canceled.status, canceled.force_canceled, canceled.reason_code, canceled.comment) == (
        JobStatus.CANCELED,
        True,
        "R_1",
        "c",
    )
    with pytest.raises(InvalidRequest):
        transitions.cancel_job(job(JobStatus.COMPLETED), False, None, None, NOW)
    with pytest.raises(InvalidRequest):
        transitions.check_associate(job())
    with pytest.raises(InvalidRequest):
        transitions.check_associate(job(JobStatus.CANCELED, TargetSelection.CONTINUOUS))
    transitions.check_associate(job(selection=TargetSelection.CONTINUOUS))


def test_settle_job_status() -> None:
    assert transitions.settle_job_status(job(), False, NOW).status is JobStatus.COMPLETED
    assert transitions.settle_job_status(job(), True, NOW).status is JobStatus.IN_PROGRESS
    continuous = job(selection=TargetSelection.CONTINUOUS)
    assert transitions.settle_job_status(continuous, False, NOW) is continuous


# registry ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, {"a": "1", "b": "2"}),
        ({"attributes": {"c": "3"}}, {"c": "3"}),
        ({"attributes": {"c": "3"}, "merge": True}, {"a": "1", "b": "2", "c": "3"}),
        ({"attributes": {"a": ""}, "merge": True}, {"b": "2"}),
        ({"attributes": {"a": "9", "z": ""}}, {"a": "9"}),
    ],
)
def test_new_attributes(payload: object, expected: dict[str, str]) -> None:
    assert registry.new_attributes({"a": "1", "b": "2"}, payload) == expected


def test_membership_rules() -> None:
    group = ThingGroup("child", "id", "arn", 1.0, parent_name="root")
    registry.check_membership("t", group, "root", {"other": "other-root"})
    registry.check_membership("t", group, "root", {"child": "root"})  # already a member
    with pytest.raises(InvalidRequest):
        registry.check_membership("t", group, "root", {"root": "root"})
    with pytest.raises(InvalidRequest):
        registry.check_membership("t", group, "root", {f"g{i}": f"r{i}" for i in range(10)})


def test_name_or_arn() -> None:
    arn = "arn:aws:iot:us-east-1:123456789012:thinggroup/fleet"
    assert registry.name_or_arn("thinggroup", None, arn, "us-east-1", "123456789012") == "fleet"
    assert registry.name_or_arn("thinggroup", "named", arn, "us-east-1", "123456789012") == "named"
    with pytest.raises(InvalidRequest):
        registry.name_or_arn("thing", None, arn, "us-east-1", "123456789012")
    with pytest.raises(ResourceNotFound):
        registry.name_or_arn("thinggroup", None, arn, "eu-west-1", "123456789012")


# validation and paging -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "ok"),
    [
        (r"[^\p{C}]+", "plain text é", True),
        (r"[^\p{C}]+", "tab\there", False),
        (r"[^\p{C}]+", "", False),
        (r"[\p{Upper}\p{Digit}_]+", "CODE_42", True),
        (r"[\p{Upper}\p{Digit}_]+", "Code", False),
        (r"[\p{Graph}\x20]*", "a b!", True),
        (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", "clé 1-@", True),
        (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", "a#b", False),
        (r"[a-zA-Z0-9_-]+|^\$next", "$next", True),
        (r"[a-zA-Z0-9_-]+", "job\n", False),
    ],
)
def test_model_patterns_match_whole_values(pattern: str, value: str, ok: bool) -> None:
    check = validation.matcher(pattern)
    assert check is not None and check(value) is ok


def test_page_tokens_round_trip_and_are_bound_to_their_operation() -> None:
    token = paging.encode("ListJobs", (1.5, "job-1"))
    assert paging.decode("ListJobs", token, 2) == (1.5, "job-1")
    assert paging.decode("ListJobs", None, 2) is None
    for bad in ("", "!!!", paging.encode("ListThings", ("a",)), paging.encode("ListJobs", ("a",))):
        with pytest.raises(InvalidRequest):
            paging.decode("ListJobs", bad, 2)
    out = paging.output("ListThings", "things", ["a"], Page(["a"], ("a",)))
    assert out["things"] == ["a"] and paging.decode("ListThings", out["nextToken"], 1) == ("a",)
    assert "nextToken" not in paging.output("ListThings", "things", [], Page([]))
