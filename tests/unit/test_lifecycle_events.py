"""Registry event settings and which execution writes become events (pure)."""

from __future__ import annotations

import pytest

from iot_jobs_local.jobs import lifecycle_events
from iot_jobs_local.jobs.errors import InvalidRequest
from iot_jobs_local.jobs.model import Execution, ExecutionStatus


def _execution(status: ExecutionStatus) -> Execution:
    return Execution(
        job_id="J",
        thing_name="T",
        execution_number=1,
        status=status,
        queued_at=1.0,
        last_updated_at=2.0,
        version_number=2,
        seq=1,
    )


def test_parse_configurations() -> None:
    assert lifecycle_events.parse_configurations({"JOB": {"Enabled": True}, "THING": {"Enabled": False}}) == {
        "JOB": True,
        "THING": False,
    }
    for bad in ({"JOBS": {"Enabled": True}}, {"JOB": {"Enabled": "yes"}}, {"JOB": {}}, ["JOB"]):
        with pytest.raises(InvalidRequest):
            lifecycle_events.parse_configurations(bad)


@pytest.mark.parametrize("status", list(ExecutionStatus))
def test_only_terminal_writes_are_execution_events(status: ExecutionStatus) -> None:
    event = lifecycle_events.execution_event(_execution(status), 5.0)
    if status.is_pending:
        assert event is None
    else:
        assert event is not None and event.operation == status.value.lower() and event.timestamp == 5.0
