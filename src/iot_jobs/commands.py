"""The command table: name, arguments, options, help and handler. Help and completion read it too."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import render, template_commands, watch_command
from .arguments import Arg, Option, Parsed, parse
from .errors import IotJobsError, UsageError
from .formatting import Formatter
from .state import ConsoleState

#: Statuses a device may set (AWS IoT device API); the others are the service's to set.
DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")
#: Every job execution status, for filters.
EXECUTION_STATUSES = ("QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED")
JOB_STATUSES = ("IN_PROGRESS", "CANCELED", "COMPLETED", "DELETION_IN_PROGRESS", "SCHEDULED")


class Quit(Exception):
    """Raised by ``quit``: leave the way Ctrl-D does."""


class DataPlaneApi(Protocol):
    def get_pending(self) -> Any: ...
    def start_next(self, status_details: dict[str, str] | None = None, step_timeout: int | None = None) -> Any: ...
    def describe(self, job_id: str, execution_number: int | None = None, include_document: bool = True) -> Any: ...
    def update(self, job_id: str, status: str, **options: Any) -> Any: ...


class ControlPlaneApi(Protocol):
    def create_job(self, job_id: str, document: Any) -> dict[str, Any]: ...
    def delete_job(self, job_id: str, force: bool = False) -> dict[str, Any]: ...
    def describe_job(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(self, status: str | None = None) -> dict[str, Any]: ...
    def cancel_job(
        self, job_id: str, force: bool = False, comment: str | None = None, reason_code: str | None = None
    ) -> dict[str, Any]: ...
    def list_executions(self, job_id: str, status: str | None = None) -> dict[str, Any]: ...
    def create_job_from_template(self, job_id: str, template_arn: str, params: dict[str, str]) -> dict[str, Any]: ...
    def list_managed_job_templates(self, name: str | None = None) -> dict[str, Any]: ...
    def describe_managed_job_template(self, name: str, version: str | None = None) -> dict[str, Any]: ...
    def iot_client(self) -> Any: ...


class Output(Protocol):
    def line(self, text: str) -> None: ...


@dataclass
class Context:
    data: DataPlaneApi
    control: ControlPlaneApi
    out: Output
    table: dict[str, Command]
    state: ConsoleState
    fmt: Formatter


Handler = Callable[[Context, Parsed], None]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    example: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    options: tuple[Option, ...] = ()
    #: The last argument is the rest of the line, verbatim (a JSON document with spaces).
    raw_tail: bool = False
    #: The usage line, when the one built from ``args`` and ``options`` would mislead (alternatives).
    usage_text: str | None = None

    @property
    def usage(self) -> str:
        if self.usage_text is not None:
            return self.usage_text
        parts = [self.name]
        for arg in self.args:
            parts.append(f"[{_arg_text(arg)}]" if arg.optional else f"<{_arg_text(arg)}>")
        for option in self.options:
            text = option.flag if option.value is None else f"{option.flag} {option.value}"
            parts.append(f"[{text}]")
        return " ".join(parts)


def _arg_text(arg: Arg) -> str:
    return " | ".join(DEVICE_STATUSES) if arg.kind == "status" else arg.name


def load_document(source: str) -> Any:
    """A job document from the line (JSON) or from a file (``@path``)."""
    text = source
    if source.startswith("@"):
        path = Path(source[1:]).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read the job document {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the job document is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(document, dict):
        raise UsageError('the job document must be a JSON object, e.g. {"ToDo":"Reboot"}')
    return document


def _status(value: str) -> str:
    status = value.upper()
    if status not in DEVICE_STATUSES:
        raise UsageError(f"a device cannot set status {value!r}; use one of {', '.join(DEVICE_STATUSES)}")
    return status


def _filter(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    if value.upper() not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}")
    return value.upper()


def _show(ctx: Context, operation: str, payload: Any) -> None:
    ctx.out.line(ctx.fmt.response(operation, payload))


def _show_boto(ctx: Context, operation: str, response: dict[str, Any]) -> None:
    _show(ctx, operation, render.boto3_response(response))


# control plane -------------------------------------------------------------------------------------
def _create_job(ctx: Context, p: Parsed) -> None:
    job_id = p.args[0]
    if len(p.args) < 2:
        raise UsageError("a job document (JSON, or @file) or --template NAME is required")
    if p.args[1].startswith("--"):  # a document never starts so: the managed-template form
        template_commands.create_job(ctx, job_id, p.args[1])
        return
    document = load_document(p.args[1])
    response = ctx.control.create_job(job_id, document)
    ctx.state.remember_jobs([job_id])
    _show_boto(ctx, "CreateJob", response)


def _delete_job(ctx: Context, p: Parsed) -> None:
    _show_boto(ctx, "DeleteJob", ctx.control.delete_job(p.args[0], bool(p.get("--force"))))


def _describe_job(ctx: Context, p: Parsed) -> None:
    _show_boto(ctx, "DescribeJob", ctx.control.describe_job(p.args[0]))


def _list_jobs(ctx: Context, p: Parsed) -> None:
    response = ctx.control.list_jobs(_filter(p.get("--status"), JOB_STATUSES, "--status"))
    ctx.state.remember_jobs(j.get("jobId", "") for j in response.get("jobs", []))
    _show_boto(ctx, "ListJobs", response)


def _cancel_job(ctx: Context, p: Parsed) -> None:
    response = ctx.control.cancel_job(p.args[0], bool(p.get("--force")), p.get("--comment"), p.get("--reason-code"))
    _show_boto(ctx, "CancelJob", response)


def _list_executions(ctx: Context, p: Parsed) -> None:
    status = _filter(p.get("--status"), EXECUTION_STATUSES, "--status")
    _show_boto(ctx, "ListJobExecutionsForJob", ctx.control.list_executions(p.args[0], status))


# data plane ----------------------------------------------------------------------------------------
def _get_pending(ctx: Context, _p: Parsed) -> None:
    wire = render.to_wire(ctx.data.get_pending())
    ctx.state.observe_pending(wire)
    _show(ctx, "GetPendingJobExecutions", wire)


def _execution_seen(ctx: Context, wire: dict[str, Any]) -> None:
    execution = wire.get("execution")
    if execution:
        ctx.state.observe_status(execution.get("jobId", ""), execution.get("status", ""))


def _start_next(ctx: Context, p: Parsed) -> None:
    wire = render.to_wire(ctx.data.start_next(p.get("--details"), p.get("--step-timeout")))
    _execution_seen(ctx, wire)
    _show(ctx, "StartNextPendingJobExecution", wire)


def _describe(ctx: Context, p: Parsed) -> None:
    wire = render.to_wire(
        ctx.data.describe(p.args[0], p.get("--execution-number"), include_document=not p.get("--no-document"))
    )
    _execution_seen(ctx, wire)
    _show(ctx, "DescribeJobExecution", wire)


def _update(ctx: Context, p: Parsed) -> None:
    job_id, status = p.args[0], _status(p.args[1])
    options: dict[str, Any] = {}
    for flag, name in (
        ("--details", "status_details"),
        ("--expected-version", "expected_version"),
        ("--step-timeout", "step_timeout_in_minutes"),
        ("--execution-number", "execution_number"),
    ):
        if p.get(flag) is not None:
            options[name] = p.get(flag)
    if p.get("--include-state"):
        options["include_job_execution_state"] = True
    if p.get("--include-document"):
        options["include_job_document"] = True
    wire = render.to_wire(ctx.data.update(job_id, status, **options))
    ctx.state.observe_status(job_id, status)
    _show(ctx, "UpdateJobExecution", wire)


# misc ----------------------------------------------------------------------------------------------
def _help(ctx: Context, p: Parsed) -> None:
    width = min(shutil.get_terminal_size().columns, 100) - 1  # never break mid-word, never touch the edge
    if p.args:
        command = ctx.table.get(p.args[0].lower())
        if command is None:
            raise UsageError(f"no command named {p.args[0]!r}")
        lines = textwrap.wrap(f"usage: {command.usage}", width, subsequent_indent="    ", break_on_hyphens=False)
        lines += textwrap.wrap(command.summary, width, initial_indent="  ", subsequent_indent="  ")
        for o in command.options:
            text = f"{o.flag}{' ' + o.value if o.value else ''}: {o.help}"
            lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
        lines.append(f"  example: {command.example}")
        ctx.out.line(ctx.fmt.text("\n".join(lines)))
        return
    name_width = max(len(c.name) for c in ctx.table.values())
    indent = " " * (name_width + 4)
    lines = ["Commands:"]
    for c in ctx.table.values():
        lines += textwrap.wrap(
            f"  {c.name.ljust(name_width)}  {c.summary}", width, subsequent_indent=indent, break_on_hyphens=False
        )
    lines.append("Type 'help <command>' for its arguments, options and an example.")
    ctx.out.line(ctx.fmt.text("\n".join(lines)))


def _quit(_ctx: Context, _p: Parsed) -> None:
    raise Quit


_DETAILS = Option("--details", "status details to record, as key=value pairs", "KEY=VALUE...", "pairs")
_STEP = Option("--step-timeout", "step timeout in minutes (-1 cancels the current one on update)", "MIN", "int")
_JOB = Arg("jobId", "job")


def build_table() -> dict[str, Command]:
    commands = [
        Command(
            "create-job",
            "create a job targeting this thing (control plane) from a document (@file reads one) "
            "or from an AWS managed template",
            'create-job Job1 {"ToDo":"Reboot"}  |  create-job Job2 --template AWS-Run-Command --param command=echo,ok',
            _create_job,
            # The document is checked in _create_job, so its absence names both forms.
            (_JOB, Arg("document-json", "document", optional=True)),
            template_commands.CREATE_OPTIONS,
            raw_tail=True,
            usage_text=template_commands.CREATE_USAGE,
        ),
        Command(
            "delete-job",
            "delete a job (AWS requires it COMPLETED or CANCELED unless --force)",
            "delete-job Job1",
            _delete_job,
            (_JOB,),
            (Option("--force", "delete even with executions running"),),
        ),
        Command(
            "describe-job",
            "show a job, with its per-status execution counts (control plane)",
            "describe-job Job1",
            _describe_job,
            (_JOB,),
        ),
        Command(
            "list-jobs",
            "list the account's jobs (control plane)",
            "list-jobs --status IN_PROGRESS",
            _list_jobs,
            (),
            (Option("--status", "only jobs in this status", "STATUS", "job-status"),),
        ),
        Command(
            "cancel-job",
            "cancel a job: its QUEUED executions (and IN_PROGRESS ones with --force)",
            "cancel-job Job1 --comment 'wrong image'",
            _cancel_job,
            (_JOB,),
            (
                Option("--force", "also cancel IN_PROGRESS executions"),
                Option("--comment", "why the job is canceled", "TEXT"),
                Option("--reason-code", "a code for the reason (upper case, digits, _)", "CODE"),
            ),
        ),
        Command(
            "list-executions",
            "list a job's executions on every thing (control plane)",
            "list-executions Job1",
            _list_executions,
            (_JOB,),
            (Option("--status", "only executions in this status", "STATUS", "execution-status"),),
        ),
        Command(
            "list-templates",
            "list the AWS managed job templates (control plane)",
            "list-templates --name AWS-Reboot",
            template_commands.list_templates,
            (),
            (Option("--name", "only the versions of this template", "NAME"),),
        ),
        Command(
            "describe-template",
            "show a managed job template: its documentParameters and document",
            "describe-template AWS-Download-File",
            template_commands.describe_template,
            (Arg("templateName"),),
            (Option("--version", "a particular version (default: AWS's default one)", "VERSION"),),
        ),
        Command(
            "watch-job",
            watch_command.SUMMARY,
            watch_command.EXAMPLE,
            watch_command.watch_job,
            (_JOB,),
            watch_command.OPTIONS,
            usage_text=watch_command.USAGE,
        ),
        Command(
            "get-pending-job-executions",
            "list this thing's IN_PROGRESS and QUEUED executions",
            "get-pending-job-executions",
            _get_pending,
        ),
        Command(
            "start-next-pending-job-execution",
            "move the next QUEUED execution to IN_PROGRESS and return it",
            "start-next-pending-job-execution --details step=download --step-timeout 5",
            _start_next,
            (),
            (_DETAILS, _STEP),
        ),
        Command(
            "describe-job-execution",
            "show this thing's execution of a job ($next: the next pending one)",
            "describe-job-execution Job1",
            _describe,
            (Arg("jobId|$next", "job"),),
            (
                Option("--execution-number", "a particular execution (default: the latest)", "N", "int"),
                Option("--no-document", "leave the job document out"),
            ),
        ),
        Command(
            "update-job-execution",
            "set the status of this thing's execution of a job",
            "update-job-execution Job1 IN_PROGRESS --details progress=50% --expected-version 2",
            _update,
            (_JOB, Arg("status", "status")),
            (
                _DETAILS,
                Option("--expected-version", "reject unless the execution is at this version", "N", "int"),
                _STEP,
                Option("--execution-number", "the execution to update (default: the latest)", "N", "int"),
                Option("--include-state", "return the execution's new state"),
                Option("--include-document", "return the job document"),
            ),
        ),
        Command(
            "help",
            "list the commands, or show one command's usage",
            "help update-job-execution",
            _help,
            (Arg("command", "command", optional=True),),
        ),
        Command("quit", "leave the console (Ctrl-D does the same)", "quit", _quit),
    ]
    return {c.name: c for c in commands}


def execute(ctx: Context, line: str) -> None:
    """Run one input line. Raises ``UsageError``/``IotJobsError`` (printed by the caller) or ``Quit``."""
    text = line.strip()
    if not text or text.startswith("#"):
        return
    name, _, rest = text.partition(" ")
    command = ctx.table.get(name.lower())
    if command is None:
        raise UsageError(f"unknown command {name!r}; type 'help' for the list of commands")
    try:
        parsed = parse(command.args, command.options, rest, command.raw_tail)
        command.handler(ctx, parsed)
    except UsageError as exc:
        raise UsageError(f"{command.name}: {exc.message}; usage: {command.usage}") from None


def error_line(exc: IotJobsError) -> str:
    line = exc.line()
    modeled = getattr(exc, "modeled", None)
    state = getattr(modeled, "execution_state", None)
    if state is not None:
        line += f" (executionState: {render.dumps(render.to_wire(state))})"
    return line
