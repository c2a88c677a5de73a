"""The console's managed-template pieces without a service: ``--template``/``--param`` parsing,
completion and help."""

from __future__ import annotations

import pytest

from iot_jobs.commands import build_table
from iot_jobs.completer import suggest
from iot_jobs.errors import UsageError
from iot_jobs.template_commands import parse_template_options

TABLE = build_table()


@pytest.mark.parametrize(
    ("tail", "name", "params"),
    [
        ("--template AWS-Reboot", "AWS-Reboot", {}),
        ("--template AWS-Download-File --param downloadUrl=https://x/y?a=b filePath=/tmp/f", "AWS-Download-File",
         {"downloadUrl": "https://x/y?a=b", "filePath": "/tmp/f"}),
        ('--param packages="nginx curl" --template AWS-Install-Application --param runAsUser=root',
         "AWS-Install-Application", {"packages": "nginx curl", "runAsUser": "root"}),
        ("--template AWS-Run-Command --param command=a=b,c", "AWS-Run-Command", {"command": "a=b,c"}),
    ],
)  # fmt: skip
def test_parses(tail: str, name: str, params: dict[str, str]) -> None:
    assert parse_template_options(tail) == (name, params)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("--template", "--template needs a template name (list-templates shows them)"),
        ("--template --param a=b", "--template needs a template name (list-templates shows them)"),
        ("--template A --template B", "--template given twice"),
        ("--template A --param", "--param needs at least one KEY=VALUE"),
        ("--template A --param --frob", "--param needs at least one KEY=VALUE"),
        ("--template A --param a", "--param expects KEY=VALUE, got 'a'"),
        ("--template A --param =a", "--param expects KEY=VALUE, got '=a'"),
        ("--template A --param a=", "--param a= has no value (a document parameter needs at least one character)"),
        ("--template A --param a=1 a=2", "--param a given twice"),
        ("--param a=1", "--param needs --template NAME"),
        ("--template A --frob", "unknown option --frob (options: --template, --param)"),
        ("--template A extra", "unexpected 'extra': a document cannot follow the template options"),
        ("--template 'A", "cannot parse the arguments: No closing quotation"),
    ],
)
def test_refuses(tail: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_template_options(tail)
    assert caught.value.message == message


def test_completion_and_help() -> None:
    assert [s.text for s in suggest("create-job Job1 --", TABLE, [])] == ["--template", "--param"]
    assert [s.text for s in suggest("list-t", TABLE, [])] == ["list-templates"]
    assert [s.text for s in suggest("list-templates --", TABLE, [])] == ["--name"]
    assert [s.text for s in suggest("describe-template AWS-Reboot --", TABLE, [])] == ["--version"]
    assert TABLE["create-job"].usage.startswith("create-job <jobId> <document-json> | create-job <jobId> --template")
