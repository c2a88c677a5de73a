"""The fleet's signed provisioning client against a small real HTTP server on a free port: the
requests it sends (paths, query, JSON bodies, the SigV4 headers, one keep-alive connection), how it
maps error answers to boto3's error shape, and its retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from iot_jobs_fleet.signed_client import SignedIot, SignedIotError, aws_endpoint, backoff, error_of, retryable


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []  # queued; default 200 {}
        self.ports: set[int] = set()
        self.drop = False  # close the connection after the next answer, without saying so


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            recorder.ports.add(self.client_address[1])
            status, headers, payload = recorder.answers.pop(0) if recorder.answers else (200, {}, b"{}")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if recorder.drop:
                recorder.drop = False
                self.close_connection = True

        do_GET = do_POST = do_PUT = _any

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def client(endpoint: str, **kwargs: Any) -> SignedIot:
    return SignedIot(endpoint, "eu-west-1", Credentials("AKIDEXAMPLE", "secret", "token-1"), **kwargs)


def test_the_four_calls_follow_the_iot_model_signed_on_one_connection(server: tuple[str, Recorder]) -> None:
    endpoint, seen = server
    seen.answers = [
        (200, {}, b'{"thingName": "t-1", "thingArn": "arn:t"}'),
        (200, {}, b'{"certificateArn": "arn:c", "certificateId": "c", "certificatePem": "PEM"}'),
    ]
    iot = client(endpoint)
    assert iot.create_thing(thingName="t-1")["thingArn"] == "arn:t"
    assert iot.create_certificate_from_csr(certificateSigningRequest="CSR", setAsActive=True)["certificatePem"] == "PEM"
    assert iot.attach_thing_principal(thingName="t-1", principal="arn:aws:iot:eu-west-1:1:cert/c") == {}
    assert iot.add_thing_to_thing_group(thingGroupName="g", thingName="t-1") == {}
    iot.close()
    got = [(r["method"], r["path"], json.loads(r["body"]) if r["body"] else None) for r in seen.requests]
    assert got == [
        ("POST", "/things/t-1", {}),
        ("POST", "/certificates?setAsActive=true", {"certificateSigningRequest": "CSR"}),
        ("PUT", "/things/t-1/principals", None),
        ("PUT", "/thing-groups/addThingToThingGroup", {"thingGroupName": "g", "thingName": "t-1"}),
    ]
    assert seen.requests[2]["headers"]["x-amzn-principal"] == "arn:aws:iot:eu-west-1:1:cert/c"
    for request in seen.requests:
        headers = request["headers"]
        auth = headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/iot/aws4_request" in auth
        assert "SignedHeaders=" in auth and "Signature=" in auth
        assert headers["X-Amz-Date"] and headers["X-Amz-Security-Token"] == "token-1"
    assert "x-amzn-principal" in seen.requests[2]["headers"]["Authorization"]
    assert len(seen.ports) == 1  # one keep-alive connection for all four


def test_error_answers_get_boto3s_code_and_message(server: tuple[str, Recorder]) -> None:
    endpoint, seen = server
    seen.answers = [
        (
            400,
            {"x-amzn-ErrorType": "InvalidRequestException:http://internal.amazon.com/"},
            b'{"message": "thingName is invalid"}',
        )
    ]
    with pytest.raises(SignedIotError) as caught:
        client(endpoint).create_thing(thingName="bad")
    assert caught.value.response["Error"] == {"Code": "InvalidRequestException", "Message": "thingName is invalid"}
    assert len(seen.requests) == 1  # a client error is not retried


def test_error_mapping_without_the_header() -> None:
    body = error_of("X", 404, {}, b'{"__type": "com.amazonaws#ResourceNotFoundException", "Message": "no group"}')
    assert (body.code, body.response["Error"]["Message"]) == ("ResourceNotFoundException", "no group")
    assert (
        error_of("X", 409, {}, b'{"code": "ResourceAlreadyExistsException"}').code == "ResourceAlreadyExistsException"
    )
    bare = error_of("X", 503, {}, b"<html>")
    assert (bare.code, bare.response["Error"]["Message"]) == ("503", "Service Unavailable")
    assert retryable(bare) and retryable(error_of("X", 400, {}, b'{"__type": "ThrottlingException"}'))
    assert not retryable(error_of("X", 400, {}, b'{"__type": "InvalidRequestException"}'))
    assert backoff(1, lambda: 1.0) == 1.0 and backoff(3, lambda: 0.5) == 2.0 and backoff(9, lambda: 1.0) == 20.0


def test_throttling_and_5xx_are_retried_up_to_max_attempts(
    server: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iot_jobs_fleet.signed_client.backoff", lambda attempt: 0.0)
    endpoint, seen = server
    throttled = (429, {"x-amzn-ErrorType": "ThrottlingException"}, b'{"message": "Rate exceeded"}')
    seen.answers = [throttled, (503, {}, b""), (200, {}, b'{"thingName": "t"}')]
    assert client(endpoint).create_thing(thingName="t") == {"thingName": "t"}
    assert len(seen.requests) == 3
    seen.requests.clear()
    seen.answers = [throttled] * 3
    with pytest.raises(SignedIotError) as caught:
        client(endpoint, max_attempts=3).create_thing(thingName="t")
    assert caught.value.code == "ThrottlingException" and len(seen.requests) == 3


def test_a_connection_the_server_closed_is_reopened_once(
    server: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_retry(attempt: int) -> float:
        raise AssertionError("the reconnection is immediate, not a retry after back-off")

    monkeypatch.setattr("iot_jobs_fleet.signed_client.backoff", no_retry)
    endpoint, seen = server
    iot = client(endpoint)
    seen.drop = True  # as a server does with a keep-alive connection idle too long
    iot.create_thing(thingName="a")
    iot.create_thing(thingName="b")
    assert [r["path"] for r in seen.requests] == ["/things/a", "/things/b"]
    assert len(seen.ports) == 2


def test_nothing_listening_is_an_error_with_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("iot_jobs_fleet.signed_client.backoff", lambda attempt: 0.0)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SignedIotError) as caught:
        client(f"http://127.0.0.1:{port}", max_attempts=2).create_thing(thingName="t")
    assert caught.value.code == "ConnectionRefusedError" and f"127.0.0.1:{port}" in str(caught.value)


def test_against_aws_the_endpoint_is_the_regions_https_one_verified() -> None:
    iot = SignedIot(aws_endpoint("eu-west-1"), "eu-west-1", Credentials("a", "b"))
    assert aws_endpoint("eu-west-1") == "https://iot.eu-west-1.amazonaws.com"
    assert iot._context is not None and iot._context.verify_mode.name == "CERT_REQUIRED"
    assert iot._context.check_hostname
