"""The console's ``watch-job`` without a service: its options, completion and help line."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot_jobs import watch_command
from iot_jobs.arguments import parse
from iot_jobs.commands import build_table
from iot_jobs.completer import suggest
from iot_jobs.errors import UsageError

TABLE = build_table()


def test_completion_offers_the_command_its_job_ids_and_options() -> None:
    assert [s.text for s in suggest("watch", TABLE, [])] == ["watch-job"]
    assert [s.text for s in suggest("watch-job Fi", TABLE, ["Firmware-7", "Other"])] == ["Firmware-7"]
    assert [s.text for s in suggest("watch-job Firmware-7 --", TABLE, [])] == ["--report", "--interval"]
    assert suggest("watch-job Firmware-7 --interval ", TABLE, ["Firmware-7"]) == []  # a free value


def test_the_usage_line_and_the_options_parse() -> None:
    command = TABLE["watch-job"]
    assert command.usage == "watch-job <jobId> [--report FILE] [--interval S]"
    parsed = parse(command.args, command.options, "J1 --report r.html --interval 0.25", command.raw_tail)
    assert parsed.args == ["J1"] and parsed.get("--report") == "r.html"
    assert watch_command.interval(parsed.get("--interval")) == 0.25
    assert watch_command.interval(None) == 0.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "--interval expects seconds, got 'soon'"),
        ("0", "--interval must be between 0.1 and 3600 seconds, got 0"),
        ("nan", "--interval must be between 0.1 and 3600 seconds, got nan"),
    ],
)
def test_a_bad_interval_is_one_line(value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        watch_command.interval(value)
    assert caught.value.message == message


def test_the_report_path_is_checked_before_the_watch(tmp_path: Path) -> None:
    assert watch_command.report_path(str(tmp_path / "r.html")) == tmp_path / "r.html"
    assert watch_command.report_path(None) is None
    with pytest.raises(UsageError, match="no directory"):
        watch_command.report_path(str(tmp_path / "missing" / "r.html"))
    with pytest.raises(UsageError, match="is a directory"):
        watch_command.report_path(str(tmp_path))
