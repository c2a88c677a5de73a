"""boto3 helpers shared by the control-plane, identity and HTTP data-plane tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.common import unique
from support.service import ServiceProcess


def error_of(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    """The ClientError ``call(**kwargs)`` raises (the test fails if it succeeds)."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


def collect(call: Callable[..., Any], member: str, **kwargs: Any) -> tuple[list[Any], int]:
    """Every item of a paginated listing, following nextToken; also how many pages it took."""
    items: list[Any] = []
    pages = 0
    token = None
    while True:
        response = call(**kwargs, **({"nextToken": token} if token else {}))
        pages += 1
        items.extend(response[member])
        token = response.get("nextToken")
        if not token:
            return items, pages


def thing_with_policy(
    service: ServiceProcess, thing: str, statements: list[dict[str, Any]], directory: Path
) -> tuple[Path, Path]:
    """Register ``thing`` with a new ACTIVE certificate whose only policy holds ``statements``, all
    through boto3 as on AWS; return the certificate and key files (written into ``directory``)."""
    iot = service.iot()
    policy = unique("policy")
    iot.create_policy(policyName=policy, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    made = iot.create_keys_and_certificate(setAsActive=True)
    cert, key = directory / f"{thing}.crt", directory / f"{thing}.key"
    cert.write_text(made["certificatePem"])
    key.write_text(made["keyPair"]["PrivateKey"])
    iot.attach_policy(policyName=policy, target=made["certificateArn"])
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    return cert, key


def wait_job_gone(iot: Any, job_id: str, timeout: float = 15.0) -> None:
    """DeleteJob leaves the job DELETION_IN_PROGRESS for a moment (``DELETION_SECONDS`` of the service's
    clock): poll DescribeJob until it answers ResourceNotFoundException, checking the status meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = iot.describe_job(jobId=job_id)["job"]["status"]
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ResourceNotFoundException", exc.response
            return
        assert status == "DELETION_IN_PROGRESS", status
        assert time.monotonic() < deadline, f"job {job_id} still DELETION_IN_PROGRESS after {timeout} s"
        time.sleep(0.05)


def check_error(error: ClientError, code: str, status: int) -> None:
    """AWS's code, HTTP status and a non-empty message."""
    assert error.response["Error"]["Code"] == code, error.response
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status, error.response
    assert error.response["Error"]["Message"], error.response


def group_arn(service: ServiceProcess, name: str) -> str:
    return f"arn:aws:iot:{service.region}:{service.account}:thinggroup/{name}"
