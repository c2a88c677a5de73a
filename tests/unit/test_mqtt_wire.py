"""MQTT payload builders (``iot_jobs_local.mqtt.wire``, ``iot_jobs_local.wire.executions``) against the live service's captures, byte for byte.

The golden strings are the payloads the AWS IoT Device SDK sample README captured from the real
service (reference sections 1.3 and 1.5), compact-serialized, in the service's key order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from iot_jobs_local.engine import Located, PendingChange
from iot_jobs_local.jobs.model import Execution, ExecutionStatus
from iot_jobs_local.mqtt.wire import jobs_changed, next_changed
from iot_jobs_local.wire.executions import execution_data, execution_state, pending_jobs, seconds, summary

Q, IP = ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def ex(
    job_id: str,
    status: ExecutionStatus,
    queued_at: float,
    last_updated_at: float,
    *,
    started_at: float | None = None,
    version: int = 1,
    execution_number: int = 1,
    details: dict[str, str] | None = None,
) -> Execution:
    return Execution(
        job_id=job_id,
        thing_name="MyThing",
        execution_number=execution_number,
        status=status,
        queued_at=queued_at,
        last_updated_at=last_updated_at,
        version_number=version,
        started_at=started_at,
        status_details=dict(details or {}),
    )


# The live walkthrough's two executions, at each stage it captured.
JOB1_QUEUED = ex("Job1", Q, 1719940994, 1719940994)
JOB1_STARTED = ex("Job1", IP, 1719940994, 1719943388, started_at=1719943388, version=2)
JOB2_QUEUED = ex("Job2", Q, 1719941716, 1719941716)
DOC1 = '{"ToDo":"Reboot"}'
DOC2 = '{"ToDo":"Delete Root User"}'


def change(pending: list[Execution], timestamp: float, head_document: str | None = None) -> PendingChange:
    return PendingChange(
        thing_name="MyThing",
        pending=tuple(pending),
        head_document=head_document,
        notify=True,
        notify_next=True,
        timestamp=timestamp,
    )


# --- summary --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("execution", "golden"),
    [
        pytest.param(
            JOB2_QUEUED,
            '{"jobId":"Job2","queuedAt":1719941716,"lastUpdatedAt":1719941716,"executionNumber":1,"versionNumber":1}',
            id="queued",
        ),
        pytest.param(
            JOB1_STARTED,
            '{"jobId":"Job1","queuedAt":1719940994,"lastUpdatedAt":1719943388,"startedAt":1719943388,'
            '"executionNumber":1,"versionNumber":2}',
            id="in-progress",
        ),
        pytest.param(
            ex("Job3", IP, 1719940994.999, 1719943388.5, started_at=1719943388.01, version=7, details={"a": "b"}),
            '{"jobId":"Job3","queuedAt":1719940994,"lastUpdatedAt":1719943388,"startedAt":1719943388,'
            '"executionNumber":1,"versionNumber":7}',
            id="fractional-times-truncated-no-status-details",
        ),
    ],
)
def test_summary(execution: Execution, golden: str) -> None:
    assert compact(summary(execution)) == golden


def test_seconds_is_integer_epoch_seconds() -> None:
    assert seconds(1719948116.9) == 1719948116
    assert type(seconds(1719948116.9)) is int


# --- execution_data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("located", "include_document", "golden"),
    [
        pytest.param(
            Located(JOB1_STARTED, DOC1),
            True,
            '{"jobId":"Job1","status":"IN_PROGRESS","queuedAt":1719940994,"startedAt":1719943388,'
            '"lastUpdatedAt":1719943388,"versionNumber":2,"executionNumber":1,"jobDocument":{"ToDo":"Reboot"}}',
            id="start-next-accepted",
        ),
        pytest.param(
            Located(JOB2_QUEUED, DOC2),
            True,
            '{"jobId":"Job2","status":"QUEUED","queuedAt":1719941716,"lastUpdatedAt":1719941716,'
            '"versionNumber":1,"executionNumber":1,"jobDocument":{"ToDo":"Delete Root User"}}',
            id="queued",
        ),
        pytest.param(
            Located(JOB2_QUEUED, DOC2),
            False,
            '{"jobId":"Job2","status":"QUEUED","queuedAt":1719941716,"lastUpdatedAt":1719941716,'
            '"versionNumber":1,"executionNumber":1}',
            id="without-document",
        ),
    ],
)
def test_execution_data(located: Located, include_document: bool, golden: str) -> None:
    assert compact(execution_data(located, include_document)) == golden


def test_execution_data_document_is_an_object_not_a_string() -> None:
    data = execution_data(Located(JOB1_QUEUED, '{"steps":[{"a":1}],"n":null}'))
    assert data["jobDocument"] == {"steps": [{"a": 1}], "n": None}


def test_execution_data_status_details_only_when_non_empty() -> None:
    with_details = ex("Job1", IP, 1719940994, 1719943388, started_at=1719943388, version=3, details={"step": "2"})
    assert execution_data(Located(with_details, DOC1))["statusDetails"] == {"step": "2"}
    assert "statusDetails" not in execution_data(Located(JOB1_STARTED, DOC1))


def test_execution_data_has_no_thing_name() -> None:
    assert "thingName" not in execution_data(Located(JOB1_STARTED, DOC1))


# --- execution_state (rejected / includeJobExecutionState) ----------------------------------------


@pytest.mark.parametrize(
    ("execution", "golden"),
    [
        pytest.param(
            ex("Job1", IP, 1, 2, started_at=2, version=3, details={"step": "2"}),
            '{"status":"IN_PROGRESS","statusDetails":{"step":"2"},"versionNumber":3}',
            id="with-details",
        ),
        pytest.param(JOB1_QUEUED, '{"status":"QUEUED","versionNumber":1}', id="without-details"),
    ],
)
def test_execution_state(execution: Execution, golden: str) -> None:
    assert compact(execution_state(execution)) == golden


# --- GetPendingJobExecutions lists ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_progress", "queued", "golden"),
    [
        pytest.param([], [], '{"inProgressJobs":[],"queuedJobs":[]}', id="empty-lists-present"),
        pytest.param(
            [JOB1_STARTED],
            [JOB2_QUEUED],
            '{"inProgressJobs":[{"jobId":"Job1","queuedAt":1719940994,"lastUpdatedAt":1719943388,'
            '"startedAt":1719943388,"executionNumber":1,"versionNumber":2}],'
            '"queuedJobs":[{"jobId":"Job2","queuedAt":1719941716,"lastUpdatedAt":1719941716,'
            '"executionNumber":1,"versionNumber":1}]}',
            id="live-capture",
        ),
    ],
)
def test_pending_jobs(in_progress: list[Execution], queued: list[Execution], golden: str) -> None:
    assert compact(pending_jobs(in_progress, queued)) == golden


# --- JobExecutionsChanged (notify) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "timestamp", "golden"),
    [
        pytest.param([], 1719948116, '{"timestamp":1719948116,"jobs":{}}', id="empty"),
        pytest.param([], 1719948116.75, '{"timestamp":1719948116,"jobs":{}}', id="empty-fractional-timestamp"),
        pytest.param(
            [JOB1_QUEUED],
            1719940994,
            '{"timestamp":1719940994,"jobs":{"QUEUED":[{"jobId":"Job1","queuedAt":1719940994,'
            '"lastUpdatedAt":1719940994,"executionNumber":1,"versionNumber":1}]}}',
            id="job1-created",
        ),
        pytest.param(
            [JOB1_QUEUED, JOB2_QUEUED],
            1719941716,
            '{"timestamp":1719941716,"jobs":{"QUEUED":[{"jobId":"Job1","queuedAt":1719940994,'
            '"lastUpdatedAt":1719940994,"executionNumber":1,"versionNumber":1},{"jobId":"Job2",'
            '"queuedAt":1719941716,"lastUpdatedAt":1719941716,"executionNumber":1,"versionNumber":1}]}}',
            id="job2-created",
        ),
        pytest.param(
            [JOB2_QUEUED],
            1719943955,
            '{"timestamp":1719943955,"jobs":{"QUEUED":[{"jobId":"Job2","queuedAt":1719941716,'
            '"lastUpdatedAt":1719941716,"executionNumber":1,"versionNumber":1}]}}',
            id="job1-succeeded",
        ),
        pytest.param(
            [JOB1_STARTED, JOB2_QUEUED],
            1719941716,
            '{"timestamp":1719941716,"jobs":{"IN_PROGRESS":[{"jobId":"Job1","queuedAt":1719940994,'
            '"lastUpdatedAt":1719943388,"startedAt":1719943388,"executionNumber":1,"versionNumber":2}],'
            '"QUEUED":[{"jobId":"Job2","queuedAt":1719941716,"lastUpdatedAt":1719941716,'
            '"executionNumber":1,"versionNumber":1}]}}',
            id="in-progress-key-first",
        ),
        pytest.param(
            [JOB1_STARTED],
            1719943388,
            '{"timestamp":1719943388,"jobs":{"IN_PROGRESS":[{"jobId":"Job1","queuedAt":1719940994,'
            '"lastUpdatedAt":1719943388,"startedAt":1719943388,"executionNumber":1,"versionNumber":2}]}}',
            id="only-in-progress-no-queued-key",
        ),
    ],
)
def test_jobs_changed(pending: list[Execution], timestamp: float, golden: str) -> None:
    assert compact(jobs_changed(change(pending, timestamp), cap=10)) == golden


@pytest.mark.parametrize(
    ("n_in_progress", "n_queued", "cap", "expected"),
    [
        pytest.param(0, 10, 10, {"QUEUED": 10}, id="at-cap"),
        pytest.param(0, 11, 10, {"QUEUED": 10}, id="one-over-cap"),
        pytest.param(1, 11, 10, {"IN_PROGRESS": 1, "QUEUED": 9}, id="cap-counts-in-progress-first"),
        pytest.param(12, 3, 10, {"IN_PROGRESS": 10}, id="cap-filled-by-in-progress"),
        pytest.param(2, 13, 15, {"IN_PROGRESS": 2, "QUEUED": 13}, id="cap-15"),
    ],
)
def test_jobs_changed_cap(n_in_progress: int, n_queued: int, cap: int, expected: dict[str, int]) -> None:
    in_progress = [ex(f"P{i:02}", IP, 1000 + i, 2000, started_at=2000, version=2) for i in range(n_in_progress)]
    queued = [ex(f"Q{i:02}", Q, 1100 + i, 1100 + i) for i in range(n_queued)]
    payload = jobs_changed(change(in_progress + queued, 3000), cap=cap)
    assert {status: len(entries) for status, entries in payload["jobs"].items()} == expected
    listed = [entry["jobId"] for entries in payload["jobs"].values() for entry in entries]
    assert listed == [e.job_id for e in (in_progress + queued)[:cap]]


# --- NextJobExecutionChanged (notify-next) --------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "document", "timestamp", "golden"),
    [
        pytest.param([], None, 1719948116, '{"timestamp":1719948116}', id="empty"),
        pytest.param([], None, 1719948116.5, '{"timestamp":1719948116}', id="empty-fractional-timestamp"),
        pytest.param(
            [JOB1_QUEUED],
            DOC1,
            1719940994,
            '{"timestamp":1719940994,"execution":{"jobId":"Job1","status":"QUEUED","queuedAt":1719940994,'
            '"lastUpdatedAt":1719940994,"versionNumber":1,"executionNumber":1,"jobDocument":{"ToDo":"Reboot"}}}',
            id="job1-created",
        ),
        pytest.param(
            [JOB2_QUEUED],
            DOC2,
            1719943955,
            '{"timestamp":1719943955,"execution":{"jobId":"Job2","status":"QUEUED","queuedAt":1719941716,'
            '"lastUpdatedAt":1719941716,"versionNumber":1,"executionNumber":1,'
            '"jobDocument":{"ToDo":"Delete Root User"}}}',
            id="job1-succeeded-job2-next",
        ),
        pytest.param(
            [JOB1_STARTED, JOB2_QUEUED],
            DOC1,
            1719943388,
            '{"timestamp":1719943388,"execution":{"jobId":"Job1","status":"IN_PROGRESS","queuedAt":1719940994,'
            '"startedAt":1719943388,"lastUpdatedAt":1719943388,"versionNumber":2,"executionNumber":1,'
            '"jobDocument":{"ToDo":"Reboot"}}}',
            id="in-progress-head-only",
        ),
    ],
)
def test_next_changed(pending: list[Execution], document: str | None, timestamp: float, golden: str) -> None:
    assert compact(next_changed(change(pending, timestamp, document))) == golden
