"""The command table: name, usage, help, example and handler; help and completion read it too."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import render
from .errors import IotJobsError, UsageError

#: Statuses a device may set (AWS IoT device API); the others are the service's to set.
DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")


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


class Output(Protocol):
    def line(self, text: str) -> None: ...


@dataclass
class Context:
    data: DataPlaneApi
    control: ControlPlaneApi
    out: Output
    table: dict[str, Command]
    #: Job ids this session has seen (created, or named in a response or event); for completion.
    known_jobs: set[str]


Handler = Callable[[Context, list[str], str], None]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    example: str
    handler: Handler
    min_args: int = 0
    max_args: int | None = 0


def _args(rest: str) -> list[str]:
    return rest.split()


def parse_document(text: str) -> Any:
    if not text:
        raise UsageError("a job document (JSON) is required")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the job document is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(document, dict):
        raise UsageError('the job document must be a JSON object, e.g. {"ToDo":"Reboot"}')
    return document


def _print(ctx: Context, operation: str, payload: Any) -> None:
    ctx.out.line(render.response_line(operation, payload))


def _create_job(ctx: Context, args: list[str], rest: str) -> None:
    job_id = args[0]
    document = parse_document(rest.strip()[len(job_id) :].strip())
    ctx.known_jobs.add(job_id)
    _print(ctx, "CreateJob", render.boto3_response(ctx.control.create_job(job_id, document)))


def _delete_job(ctx: Context, args: list[str], _rest: str) -> None:
    _print(ctx, "DeleteJob", render.boto3_response(ctx.control.delete_job(args[0])))


def _get_pending(ctx: Context, _args: list[str], _rest: str) -> None:
    _print(ctx, "GetPendingJobExecutions", render.to_wire(ctx.data.get_pending()))


def _start_next(ctx: Context, _args: list[str], _rest: str) -> None:
    _print(ctx, "StartNextPendingJobExecution", render.to_wire(ctx.data.start_next()))


def _describe(ctx: Context, args: list[str], _rest: str) -> None:
    _print(ctx, "DescribeJobExecution", render.to_wire(ctx.data.describe(args[0])))


def _update(ctx: Context, args: list[str], _rest: str) -> None:
    job_id, status = args[0], args[1].upper()
    if status not in DEVICE_STATUSES:
        raise UsageError(f"a device cannot set status {args[1]!r}; use one of {', '.join(DEVICE_STATUSES)}")
    _print(ctx, "UpdateJobExecution", render.to_wire(ctx.data.update(job_id, status)))


def _help(ctx: Context, args: list[str], _rest: str) -> None:
    if args:
        command = ctx.table.get(args[0].lower())
        if command is None:
            raise UsageError(f"no command named {args[0]!r}")
        ctx.out.line(f"usage: {command.usage}\n  {command.summary}\n  example: {command.example}")
        return
    width = max(len(c.usage) for c in ctx.table.values())
    ctx.out.line("Commands:")
    for command in ctx.table.values():
        ctx.out.line(f"  {command.usage.ljust(width)}  {command.summary}")
    ctx.out.line("Type 'help <command>' for an example.")


def _quit(_ctx: Context, _args: list[str], _rest: str) -> None:
    raise Quit


def build_table() -> dict[str, Command]:
    commands = [
        Command(
            "create-job",
            "create-job <jobId> <document-json>",
            "create a job targeting this thing (control plane)",
            'create-job Job1 {"ToDo":"Reboot"}',
            _create_job,
            1,
            None,
        ),
        Command(
            "delete-job",
            "delete-job <jobId>",
            "delete a job whose executions are all finished (control plane)",
            "delete-job Job1",
            _delete_job,
            1,
            1,
        ),
        Command(
            "get-pending-job-executions",
            "get-pending-job-executions",
            "list this thing's IN_PROGRESS and QUEUED executions",
            "get-pending-job-executions",
            _get_pending,
        ),
        Command(
            "start-next-pending-job-execution",
            "start-next-pending-job-execution",
            "move the next QUEUED execution to IN_PROGRESS and return it",
            "start-next-pending-job-execution",
            _start_next,
        ),
        Command(
            "describe-job-execution",
            "describe-job-execution <jobId>",
            "show this thing's execution of a job ($next for the next pending one)",
            "describe-job-execution Job1",
            _describe,
            1,
            1,
        ),
        Command(
            "update-job-execution",
            f"update-job-execution <jobId> <{' | '.join(DEVICE_STATUSES)}>",
            "set the status of this thing's execution of a job",
            "update-job-execution Job1 SUCCEEDED",
            _update,
            2,
            2,
        ),
        Command(
            "help", "help [command]", "list the commands, or show one command's usage", "help create-job", _help, 0, 1
        ),
        Command("quit", "quit", "leave the console (Ctrl-D does the same)", "quit", _quit),
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
    args = _args(rest)
    too_many = command.max_args is not None and len(args) > command.max_args
    if len(args) < command.min_args or too_many:
        raise UsageError(f"{command.name} takes {_count(command)}; usage: {command.usage}")
    try:
        command.handler(ctx, args, rest)
    except UsageError as exc:
        if "usage:" not in exc.message:
            exc.message += f"; usage: {command.usage}"
        raise


def _count(command: Command) -> str:
    if command.max_args is None:
        return f"at least {command.min_args} argument(s)"
    if command.min_args == command.max_args:
        return "no arguments" if command.max_args == 0 else f"{command.max_args} argument(s)"
    return f"{command.min_args} to {command.max_args} arguments"


def error_line(exc: IotJobsError) -> str:
    line = exc.line()
    modeled = getattr(exc, "modeled", None)
    state = getattr(modeled, "execution_state", None)
    if state is not None:
        line += f" (executionState: {render.dumps(render.to_wire(state))})"
    return line
