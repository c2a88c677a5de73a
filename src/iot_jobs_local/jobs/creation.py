"""CreateJob and CreateThing rules: validation AWS does server-side (boto3 checks only ``min``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import strict_json
from .errors import InvalidRequest, ResourceNotFound
from .model import Execution, ExecutionStatus, Job, JobStatus, JobTemplate, TargetSelection
from .requests import JOB_ID_RE, THING_NAME_RE

MAX_DOCUMENT_BYTES = 32768
MAX_DESCRIPTION = 2028
MAX_TARGETS = 100
_TARGET_RE = re.compile(r"^arn:aws[a-z-]*:iot:([a-z0-9-]+):(\d{12}):(thing|thinggroup)/([a-zA-Z0-9:_-]{1,128})\Z")
_TEMPLATE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iot:([a-z0-9-]+):(\d{12})?:jobtemplate/([a-zA-Z0-9_-]{1,64})(:[0-9.]+)?\Z"
)
_JOB_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iot:([a-z0-9-]+):(\d{12}):job/([a-zA-Z0-9_-]{1,64})\Z")

#: The configuration blocks a job template carries into CreateJob (wire names). A block given
#: explicitly in CreateJob overrides the template's.
TEMPLATE_CONFIG_MEMBERS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
)


@dataclass(frozen=True)
class Target:
    kind: str  # "thing" or "thinggroup"
    name: str


def check_job_id(job_id: str) -> None:
    if not JOB_ID_RE.match(job_id):
        raise InvalidRequest(f"jobId {job_id!r} must be 1-64 characters of [a-zA-Z0-9_-]")


def check_thing_name(name: str) -> None:
    if not THING_NAME_RE.match(name):
        raise InvalidRequest(f"thingName {name!r} must be 1-128 characters of [a-zA-Z0-9:_-]")


def parse_targets(targets: Any, region: str, account: str) -> list[Target]:
    if not isinstance(targets, list) or not targets:
        raise InvalidRequest("targets must be a non-empty list of thing or thing group ARNs")
    if len(targets) > MAX_TARGETS:
        raise InvalidRequest(f"A job may have at most {MAX_TARGETS} targets")
    parsed: list[Target] = []
    for arn in targets:
        match = _TARGET_RE.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise InvalidRequest(f"Target {arn!r} is not a thing or thing group ARN")
        if match.group(1) != region or match.group(2) != account:
            raise InvalidRequest(f"Target {arn!r} is not in region {region} of account {account}")
        parsed.append(Target(match.group(3), match.group(4)))
    return parsed


def unique_targets(targets: Sequence[Target]) -> list[Target]:
    """The targets without repeats, in their first order."""
    return list(dict.fromkeys(targets))


def check_target_count(count: int) -> None:
    # UNCONFIRMED: the code for more than 100 targets (also AssociateTargetsWithJob's running total);
    # InvalidRequestException rather than the retried LimitExceededException.
    if count > MAX_TARGETS:
        raise InvalidRequest(f"A job may have at most {MAX_TARGETS} targets, got {count}")


def template_id_from_arn(arn: str, region: str, account: str) -> str:
    """The id of one of this account's job templates (managed templates are looked up before this)."""
    match = _TEMPLATE_ARN_RE.match(arn)
    if match is None:
        raise InvalidRequest(f"jobTemplateArn {arn!r} is not a job template ARN")
    if match.group(2) is None:
        raise ResourceNotFound(f"Job template {arn} cannot be found.")  # no account: not a template we have
    if match.group(1) != region or match.group(2) != account:
        raise ResourceNotFound(f"Job template {arn} cannot be found.")
    return match.group(3)


def job_id_from_arn(arn: str, region: str, account: str) -> str:
    match = _JOB_ARN_RE.match(arn)
    if match is None:
        raise InvalidRequest(f"jobArn {arn!r} is not a job ARN")
    if match.group(1) != region or match.group(2) != account:
        raise ResourceNotFound(f"Job {arn} cannot be found.")
    return match.group(3)


def from_template(template: JobTemplate, document: Any, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """CreateJob with ``jobTemplateArn``: the template's document, its configuration under the request's.

    UNCONFIRMED: a request that also carries its own document is refused rather than overriding it.
    """
    if document is not None:
        raise InvalidRequest("Specify either a document or a jobTemplateArn, not both")
    merged = {k: v for k, v in template.config.items() if k in TEMPLATE_CONFIG_MEMBERS}
    merged.update(config)
    return template.document, merged


def check_document(document: str) -> None:
    """A job document is a UTF-8 JSON object of at most 32 KiB."""
    if len(document.encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidRequest(f"The job document exceeds the maximum size of {MAX_DOCUMENT_BYTES} bytes")
    try:
        parsed = strict_json.loads(document)
    except ValueError as exc:
        raise InvalidRequest(f"The job document is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("The job document must be a JSON object")


def check_description(description: Any) -> None:
    if description is None:
        return
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description must be a string of at most {MAX_DESCRIPTION} characters")


def new_job(
    job_id: str,
    job_arn: str,
    document: str,
    targets: Sequence[str],
    target_selection: TargetSelection,
    description: str | None,
    config: dict[str, Any],
    now: float,
) -> Job:
    return Job(
        job_id=job_id,
        job_arn=job_arn,
        document=document,
        targets=tuple(targets),
        target_selection=target_selection,
        status=JobStatus.IN_PROGRESS,
        created_at=now,
        last_updated_at=now,
        description=description,
        config=config,
    )


def new_execution(job_id: str, thing_name: str, execution_number: int, seq: int, now: float) -> Execution:
    return Execution(
        job_id=job_id,
        thing_name=thing_name,
        execution_number=execution_number,
        status=ExecutionStatus.QUEUED,
        queued_at=now,
        last_updated_at=now,
        seq=seq,
    )
