"""SigV4 verification (``iot_jobs_local.http_api.sigv4``) against requests signed by botocore itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iot_jobs_local.http_api.sigv4 import INVALID, AuthFailure, Caller, Verifier

KEY, SECRET = "AKIAEXAMPLE000000000", "secret/secret+secret"
HOST = "127.0.0.1:8088"


def signed(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    service: str = "iot",
    region: str = "us-east-1",
    secret: str = SECRET,
    key: str = KEY,
) -> AWSRequest:
    request = AWSRequest(method=method, url=f"http://{HOST}{path_and_query}", data=body)
    if body:
        request.headers["Content-Type"] = "application/json"
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return request


def verify(request: AWSRequest, verifier: Verifier | None = None, body: bytes | None = None) -> Caller:
    verifier = verifier or Verifier({KEY: SECRET}, "us-east-1", frozenset({"iot", "iot-jobs-data"}))
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers.setdefault("host", HOST)
    values: Callable[[str], list[str]] = lambda name: [headers[name]] if name in headers else []  # noqa: E731
    url = urlsplit(request.url)
    raw_body = (request.body or b"") if body is None else body
    assert isinstance(raw_body, bytes)
    return verifier.verify(request.method, url.path, url.query, values, raw_body)


def failure(request: AWSRequest, **kwargs: object) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        verify(request, **kwargs)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("method", "path", "body", "service"),
    [
        ("GET", "/things/t1/jobs/%24next?includeJobDocument=true&executionNumber=1", b"", "iot-jobs-data"),
        ("PUT", "/things/t1/jobs/$next", b"{}", "iot-jobs-data"),
        ("POST", "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A1%3Acert%2Fabc?pageSize=3", b"", "iot"),
        ("GET", "/things?attributeName=a%20b&maxResults=2", b"", "iot"),
        ("PUT", "/jobs/job-1", b'{"document": "{\\"x\\": 1}"}', "iot"),
    ],
)
def test_requests_signed_by_botocore_verify(method: str, path: str, body: bytes, service: str) -> None:
    assert verify(signed(method, path, body, service)) == Caller(KEY, "us-east-1", service)


def test_unsigned() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/things", data=b"")
    assert failure(request).code == "MissingAuthenticationTokenException"


def test_unknown_access_key() -> None:
    assert failure(signed("GET", "/things", key="AKIAUNKNOWN000000000")).code == "UnrecognizedClientException"


def test_wrong_secret() -> None:
    caught = failure(signed("GET", "/things", secret="not-the-secret"))
    assert caught.code == "InvalidSignatureException"
    assert caught.message.startswith("The request signature we calculated does not match")


def test_tampered_body_path_and_query() -> None:
    assert failure(signed("PUT", "/jobs/j", b'{"a": 1}'), body=b'{"a": 2}').code == "InvalidSignatureException"
    request = signed("GET", "/things?maxResults=2")
    request.url = f"http://{HOST}/things?maxResults=3"
    assert failure(request).code == "InvalidSignatureException"


def test_wrong_region_and_service_scopes() -> None:
    assert "region" in failure(signed("GET", "/things", region="eu-west-1")).message
    assert "service" in failure(signed("GET", "/things", service="s3")).message


@pytest.mark.parametrize(
    ("offset", "start"), [(16 * 60, "Signature expired: "), (-16 * 60, "Signature not yet current: ")]
)
def test_clock_skew_beyond_15_minutes(offset: float, start: str) -> None:
    skewed = Verifier({KEY: SECRET}, "us-east-1", frozenset({"iot"}), clock=lambda: time.time() + offset)
    caught = failure(signed("GET", "/things"), verifier=skewed)
    assert caught.code == "InvalidSignatureException"
    assert caught.message.startswith(start)
    tolerated = Verifier({KEY: SECRET}, "us-east-1", frozenset({"iot"}), clock=lambda: time.time() + offset * 0.8)
    assert verify(signed("GET", "/things"), verifier=tolerated).service == "iot"


def test_a_remembered_scope_still_checks_every_signature() -> None:
    verifier = Verifier({KEY: SECRET}, "us-east-1", frozenset({"iot"}))
    assert verify(signed("GET", "/things"), verifier=verifier).service == "iot"
    # Same access key, date, region, service and signed headers: only the signature differs.
    assert failure(signed("GET", "/things", secret="not-the-secret"), verifier=verifier).code == INVALID
    tampered = signed("GET", "/things")
    auth = tampered.headers["Authorization"]
    tampered.headers.replace_header("Authorization", auth[:-1] + ("0" if auth[-1] != "0" else "1"))
    assert failure(tampered, verifier=verifier).code == INVALID
    assert verify(signed("PUT", "/jobs/j", b"{}"), verifier=verifier).service == "iot"


def test_parameters_in_another_order_are_parsed_too() -> None:
    request = signed("GET", "/things")
    algorithm, _, rest = request.headers["Authorization"].partition(" ")
    parameters = dict(part.strip().split("=", 1) for part in rest.split(","))
    reordered = ", ".join(f"{k}={parameters[k]}" for k in ("Signature", "SignedHeaders", "Credential"))
    request.headers.replace_header("Authorization", f"{algorithm} {reordered}")
    assert verify(request).service == "iot"
    request.headers.replace_header("Authorization", f"{algorithm} {reordered.replace('Signature=', 'Signature=0')}")
    assert failure(request).code == INVALID
