"""The console's pure pieces: argument parsing, completion, rendering, formatting."""

from __future__ import annotations

import datetime

import pytest
from awsiot import iotjobs

from iot_jobs import render
from iot_jobs.arguments import parse
from iot_jobs.commands import build_table
from iot_jobs.completer import suggest
from iot_jobs.errors import UsageError
from iot_jobs.formatting import Formatter, colour_json
from iot_jobs.settings import region_from_endpoint

TABLE = build_table()
JOBS = ["Job1", "Job2", "firmware-7"]


def texts(line: str) -> list[str]:
    return [s.text for s in suggest(line, TABLE, JOBS)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", list(TABLE)),
        ("get", ["get-pending-job-executions"]),
        ("GET-P", ["get-pending-job-executions"]),
        ("up", ["update-job-execution"]),
        ("de", ["delete-job", "describe-job", "describe-template", "describe-job-execution"]),
        ("update-job-execution ", JOBS),
        ("update-job-execution j", ["Job1", "Job2"]),
        ("update-job-execution FIRM", ["firmware-7"]),
        ("describe-job-execution ", [*JOBS, "$next"]),
        ("describe-job-execution $", ["$next"]),
        ("update-job-execution Job1 ", ["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"]),
        ("update-job-execution Job1 s", ["SUCCEEDED"]),
        ("update-job-execution Job1 succeeded --ex", ["--expected-version", "--execution-number"]),
        ("update-job-execution Job1 SUCCEEDED --expected-version ", []),
        ("update-job-execution Job1 SUCCEEDED --details a=1 ", []),
        ("update-job-execution Job1 SUCCEEDED --details a=1 --inc", ["--include-state", "--include-document"]),
        ("update-job-execution Job1 SUCCEEDED --include-state --inc", ["--include-document"]),
        ("list-jobs --status ", ["IN_PROGRESS", "CANCELED", "COMPLETED", "DELETION_IN_PROGRESS", "SCHEDULED"]),
        ("list-executions Job1 --status t", ["TIMED_OUT"]),
        ("help upd", ["update-job-execution"]),
        ("nosuch ", []),
        ("get-pending-job-executions ", []),
        ("create-job Job1 ", []),
    ],
)
def test_suggest(line: str, expected: list[str]) -> None:
    assert texts(line) == expected


def test_suggestion_replaces_the_word_being_typed() -> None:
    (only,) = suggest("update-job-execution jo", TABLE, ["Job1"])
    assert (only.text, only.replace) == ("Job1", 2)


def _parse(command: str, rest: str) -> tuple[list[str], dict[str, object]]:
    c = TABLE[command]
    parsed = parse(c.args, c.options, rest, c.raw_tail)
    return parsed.args, parsed.options


def test_parse_update_options() -> None:
    args, options = _parse(
        "update-job-execution",
        'Job1 IN_PROGRESS --details step=2 "note=half way" --expected-version 3 --step-timeout -1 --include-state',
    )
    assert args == ["Job1", "IN_PROGRESS"]
    assert options == {
        "--details": {"step": "2", "note": "half way"},
        "--expected-version": 3,
        "--step-timeout": -1,
        "--include-state": True,
    }


def test_create_job_takes_the_rest_of_the_line_verbatim() -> None:
    args, _ = _parse("create-job", '  Job2   {"ToDo": "Delete Root User",  "n": 1}  ')
    assert args == ["Job2", '{"ToDo": "Delete Root User",  "n": 1}']


@pytest.mark.parametrize(
    ("command", "rest", "message"),
    [
        ("update-job-execution", "Job1", "takes 2 argument(s), got 1"),
        ("update-job-execution", "Job1 X Y", "takes 2 argument(s), got 3"),
        ("get-pending-job-executions", "x", "takes no arguments"),
        ("help", "a b", "takes 0 to 1 arguments, got 2"),
        ("update-job-execution", "J S --expected-version", "--expected-version needs a value (N)"),
        ("update-job-execution", "J S --expected-version x", "--expected-version expects an integer, got 'x'"),
        ("update-job-execution", "J S --details", "--details needs at least one key=value"),
        ("update-job-execution", 'J S "unterminated', "cannot parse the arguments"),
        ("describe-job-execution", "J --nope", "unknown option --nope"),
    ],
)
def test_parse_errors(command: str, rest: str, message: str) -> None:
    c = TABLE[command]
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(c.args, c.options, rest, c.raw_tail)


def _local(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch)  # what the SDK builds from the wire


def test_render_get_pending_matches_the_seed_shape() -> None:
    response = iotjobs.GetPendingJobExecutionsResponse(
        client_token="t",
        timestamp=_local(1719943627),
        in_progress_jobs=[
            iotjobs.JobExecutionSummary(
                job_id="Job1",
                queued_at=_local(1719940994),
                last_updated_at=_local(1719943388),
                started_at=_local(1719943388),
                execution_number=1,
                version_number=2,
            )
        ],
        queued_jobs=None,
    )
    assert render.dumps(render.to_wire(response)) == (
        '{"clientToken":"t","timestamp":1719943627,"inProgressJobs":[{"jobId":"Job1","queuedAt":1719940994,'
        '"lastUpdatedAt":1719943388,"startedAt":1719943388,"executionNumber":1,"versionNumber":2}],"queuedJobs":[]}'
    )


def test_render_events_in_their_empty_forms() -> None:
    assert render.event_line(
        "JobExecutionsChanged", iotjobs.JobExecutionsChangedEvent(jobs={}, timestamp=_local(5))
    ) == ('Received JobExecutionsChanged event: {"timestamp":5,"jobs":{}}')
    assert render.event_line("NextJobExecutionChanged", iotjobs.NextJobExecutionChangedEvent(timestamp=_local(7))) == (
        'Received NextJobExecutionChanged event: {"timestamp":7}'
    )


def test_render_next_event_execution_order() -> None:
    event = iotjobs.NextJobExecutionChangedEvent(
        timestamp=_local(9),
        execution=iotjobs.JobExecutionData(
            job_id="Job2",
            status="QUEUED",
            queued_at=_local(1),
            last_updated_at=_local(1),
            version_number=1,
            execution_number=1,
            job_document={"ToDo": "Delete Root User"},
        ),
    )
    assert render.dumps(render.to_wire(event)) == (
        '{"timestamp":9,"execution":{"jobId":"Job2","status":"QUEUED","queuedAt":1,"lastUpdatedAt":1,'
        '"versionNumber":1,"executionNumber":1,"jobDocument":{"ToDo":"Delete Root User"}}}'
    )


def test_boto3_response_keeps_metadata_first_without_headers() -> None:
    response = {
        "jobArn": "arn:aws:iot:us-east-1:123456789012:job/J",
        "jobId": "J",
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200, "HTTPHeaders": {"a": "b"}, "RetryAttempts": 0},
    }
    assert render.dumps(render.boto3_response(response)) == (
        '{"ResponseMetadata":{"RequestId":"r","HTTPStatusCode":200,"RetryAttempts":0},'
        '"jobArn":"arn:aws:iot:us-east-1:123456789012:job/J","jobId":"J"}'
    )


def test_pretty_output_is_indented_and_coloured_only_when_asked() -> None:
    plain = Formatter(pretty=True, colour=False).response("X", {"a": 1})
    assert plain == 'X Response:\n{\n  "a": 1\n}'
    coloured = Formatter(pretty=True, colour=True).response("X", {"a": "b"})
    assert "\x1b[" in coloured and '"a"' in coloured
    assert "\x1b[" not in Formatter(pretty=False, colour=False).response("X", {"a": 1})
    assert colour_json('{"k": true}') == '{\x1b[34m"k"\x1b[0m: \x1b[35mtrue\x1b[0m}'


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("a1b2c3-ats.iot.eu-west-1.amazonaws.com", "eu-west-1"),
        ("a1b2c3-ats.iot.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("a1b2c3.iot.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("localhost", None),
        (None, None),
    ],
)
def test_region_from_endpoint(endpoint: str | None, region: str | None) -> None:
    assert region_from_endpoint(endpoint) == region


@pytest.mark.parametrize(
    ("script", "lines"),
    [
        ("a; b", ["a", "b"]),
        ("a;;\n b \n", ["a", "b"]),
        ('create-job J {"ToDo":"a; b"}; next', ['create-job J {"ToDo":"a; b"}', "next"]),
        ("update X IN_PROGRESS --details 'note=a;b'; q", ["update X IN_PROGRESS --details 'note=a;b'", "q"]),
        ('c J {"k":"say \\"hi;\\""}; d', ['c J {"k":"say \\"hi;\\""}', "d"]),
        ("", []),
    ],
)
def test_split_commands(script: str, lines: list[str]) -> None:
    from iot_jobs.script import split_commands

    assert split_commands(script) == lines


def test_a_quoted_job_id_keeps_its_spaces_before_a_raw_document() -> None:
    command = build_table()["create-job"]
    parsed = parse(command.args, command.options, '"bad id!" {"a": 1}', command.raw_tail)
    assert parsed.args == ["bad id!", '{"a": 1}']


def test_json_output_lines_carry_their_kind() -> None:
    import json

    from iot_jobs.errors import IotJobsError

    fmt = Formatter(json_lines=True)
    assert json.loads(fmt.response("CreateJob", {"jobId": "J"})) == {
        "kind": "response",
        "operation": "CreateJob",
        "response": {"jobId": "J"},
    }
    assert json.loads(fmt.event("JobExecutionsChanged", {"jobs": {}}))["kind"] == "event"
    error = json.loads(fmt.failure(IotJobsError("gone", "ResourceNotFoundException", "DescribeJob"), "line"))
    assert (error["kind"], error["code"], error["operation"]) == ("error", "ResourceNotFoundException", "DescribeJob")
    assert json.loads(fmt.text("Commands:\n  x")) == {"kind": "text", "text": "Commands:\n  x"}
