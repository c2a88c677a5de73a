"""The console's AWS managed job template commands: ``create-job <jobId> --template NAME [--param
KEY=VALUE ...]``, ``list-templates`` and ``describe-template``.

``create-job`` hands its tail here when it starts with an option (a JSON document never does).
The template's ARN comes from DescribeManagedJobTemplate, so the same line works on AWS and on
iot-jobs-local; the job targets the console's thing, as every create-job does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import render
from .arguments import Option, Parsed, split
from .errors import UsageError

if TYPE_CHECKING:
    from .commands import Context

TEMPLATE = Option("--template", "an AWS managed job template instead of a document (see list-templates)", "NAME")
PARAM = Option("--param", "the template's documentParameters, one or more key=value pairs", "KEY=VALUE...", "pairs")
CREATE_OPTIONS = (TEMPLATE, PARAM)
CREATE_USAGE = "create-job <jobId> <document-json> | create-job <jobId> --template NAME [--param KEY=VALUE...]"


def parse_template_options(tail: str) -> tuple[str, dict[str, str]]:
    """``--template NAME`` and the ``--param`` pairs (repeatable, several after one flag), each
    mistake in one line. Quotes group words: ``--param packages="nginx curl"``."""
    name: str | None = None
    params: dict[str, str] = {}
    tokens = split(tail)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == TEMPLATE.flag:
            if i >= len(tokens) or tokens[i].startswith("--"):
                raise UsageError("--template needs a template name (list-templates shows them)")
            if name is not None:
                raise UsageError("--template given twice")
            name = tokens[i]
            i += 1
        elif token == PARAM.flag:
            start = i
            while i < len(tokens) and not tokens[i].startswith("--"):
                key, value = _pair(tokens[i])
                if key in params:
                    raise UsageError(f"--param {key} given twice")
                params[key] = value
                i += 1
            if i == start:
                raise UsageError("--param needs at least one KEY=VALUE")
        elif token.startswith("--"):
            raise UsageError(f"unknown option {token} (options: {TEMPLATE.flag}, {PARAM.flag})")
        else:
            raise UsageError(f"unexpected {token!r}: a document cannot follow the template options")
    if name is None:
        raise UsageError("--param needs --template NAME")
    return name, params


def _pair(token: str) -> tuple[str, str]:
    key, sep, value = token.partition("=")
    if not sep or not key:
        raise UsageError(f"--param expects KEY=VALUE, got {token!r}")
    if not value:
        raise UsageError(f"--param {key}= has no value (a document parameter needs at least one character)")
    return key, value


def create_job(ctx: Context, job_id: str, tail: str) -> None:
    name, params = parse_template_options(tail)
    arn = name if name.startswith("arn:") else str(ctx.control.describe_managed_job_template(name)["templateArn"])
    response = ctx.control.create_job_from_template(job_id, arn, params)
    ctx.state.remember_jobs([job_id])
    _show(ctx, "CreateJob", response)


def list_templates(ctx: Context, p: Parsed) -> None:
    _show(ctx, "ListManagedJobTemplates", ctx.control.list_managed_job_templates(p.get("--name")))


def describe_template(ctx: Context, p: Parsed) -> None:
    _show(ctx, "DescribeManagedJobTemplate", ctx.control.describe_managed_job_template(p.args[0], p.get("--version")))


def _show(ctx: Context, operation: str, response: dict[str, Any]) -> None:
    ctx.out.line(ctx.fmt.response(operation, render.boto3_response(response)))
