"""The HTTP API authenticates every request with SigV4 against the credentials the service issued.

Refusals carry AWS's codes in ``x-amzn-ErrorType`` (HTTP 403), so boto3 raises ``ClientError`` with
them: MissingAuthenticationTokenException (unsigned), UnrecognizedClientException (unknown access
key), InvalidSignatureException (wrong secret, tampered request, clock more than 15 minutes off).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from support.common import unique
from support.service import ServiceProcess


def client(service: ServiceProcess, name: str = "iot", **overrides: Any) -> Any:
    import boto3
    from botocore.config import Config

    key_id, secret = service.credentials.access_key_id, service.credentials.secret_access_key
    options: dict[str, Any] = {
        "endpoint_url": service.http_endpoint,
        "region_name": service.region,
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "config": Config(retries={"max_attempts": 1}),
    }
    options.update(overrides)
    return boto3.session.Session().client(name, **options)


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    response: dict[str, Any] = caught.value.response
    return {
        "code": response["Error"]["Code"],
        "message": response["Error"]["Message"],
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


def test_a_correctly_signed_request_is_served(service: ServiceProcess) -> None:
    thing = unique("sig")
    assert client(service).create_thing(thingName=thing)["thingName"] == thing
    # The data-plane client signs for another service (iot-jobs-data) on the same endpoint.
    pending = client(service, "iot-jobs-data").get_pending_job_executions(thingName=thing)
    assert pending["inProgressJobs"] == [] and pending["queuedJobs"] == []


def test_an_unsigned_request_is_refused(service: ServiceProcess) -> None:
    from botocore import UNSIGNED
    from botocore.config import Config

    unsigned = client(service, config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    assert error_of(lambda: unsigned.list_things()) == {
        "code": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
        "status": 403,
    }


def test_a_raw_unsigned_request_gets_the_error_header(service: ServiceProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{service.http_endpoint}/things", timeout=10)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(caught.value.read()) == {"message": "Missing Authentication Token"}


def test_an_unknown_access_key_is_refused(service: ServiceProcess) -> None:
    stranger = client(service, aws_access_key_id="AKIAIOSFODNN7EXAMPLE")
    found = error_of(lambda: stranger.list_things())
    assert (found["code"], found["status"]) == ("UnrecognizedClientException", 403)


def test_a_wrong_secret_is_refused(service: ServiceProcess) -> None:
    wrong = client(service, aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    found = error_of(lambda: wrong.describe_thing(thingName=unique("sig")))
    assert (found["code"], found["status"]) == ("InvalidSignatureException", 403)
    assert found["message"].startswith("The request signature we calculated does not match")
    found = error_of(
        lambda: client(service, "iot-jobs-data", aws_secret_access_key="x" * 40).get_pending_job_executions(
            thingName=unique("sig")
        )
    )
    assert found["code"] == "InvalidSignatureException"


def test_a_body_changed_after_signing_is_refused(service: ServiceProcess) -> None:
    iot = client(service)

    def tamper(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b'"a"', b'"b"')

    iot.meta.events.register("before-send.iot.CreateThing", tamper)
    thing = unique("sig")
    found = error_of(lambda: iot.create_thing(thingName=thing, attributePayload={"attributes": {"k": "a"}}))
    assert found["code"] == "InvalidSignatureException"
    assert error_of(lambda: client(service).describe_thing(thingName=thing))["code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(("minutes", "accepted"), [(-16, False), (16, False), (-14, True), (14, True)])
def test_clock_skew_of_15_minutes_is_tolerated(service: ServiceProcess, minutes: int, accepted: bool) -> None:
    """The client's clock is moved. botocore signs with awscrt when it is installed (it is: the device
    SDK needs it), else in Python; both read the time through ``get_current_datetime``."""
    skewed = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)

    def clock(remove_tzinfo: bool = True) -> datetime.datetime:
        return skewed.replace(tzinfo=None) if remove_tzinfo else skewed

    iot = client(service)
    with (
        mock.patch("botocore.auth.get_current_datetime", clock),
        mock.patch("botocore.crt.auth.get_current_datetime", clock),
    ):
        if accepted:
            assert "things" in iot.list_things(maxResults=1)
            return
        found = error_of(lambda: iot.list_things(maxResults=1))
    assert found["code"] == "InvalidSignatureException"
    expected = "Signature expired: " if minutes < 0 else "Signature not yet current: "
    assert found["message"].startswith(expected), found["message"]


def test_describe_endpoint(service: ServiceProcess) -> None:
    iot = client(service)
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "localhost"
    assert iot.describe_endpoint(endpointType="iot:Data")["endpointAddress"] == "localhost"
    assert iot.describe_endpoint()["endpointAddress"] == "localhost"
    assert iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"] == f"127.0.0.1:{service.http_port}"
    for kind in ("iot:CredentialProvider", "iot:Nonsense"):
        assert error_of(lambda kind=kind: iot.describe_endpoint(endpointType=kind))["code"] == "InvalidRequestException"


def _aws_cli() -> str:
    venv = Path(sys.executable).parent / "aws"
    found = str(venv) if venv.exists() else shutil.which("aws")
    if found is None:
        pytest.fail("the AWS CLI is needed by this test: .venv/bin/pip install awscli")
    return found


def test_the_aws_cli_works_with_the_exports_of_env(service: ServiceProcess) -> None:
    thing = unique("cli")
    exports = service.cli_env(thing)  # what the CLI prints, as a user pastes it
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(exports)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    aws = _aws_cli()

    def run(*args: str) -> Any:
        done = subprocess.run([aws, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    things = run("iot", "list-things")["things"]
    assert thing in [t["thingName"] for t in things]
    assert run("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS") == {"endpointAddress": "localhost"}
    principals = run("iot", "list-thing-principals", "--thing-name", thing)["principals"]
    assert len(principals) == 1 and ":cert/" in principals[0]
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    refused = subprocess.run([aws, "iot", "list-things"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr
