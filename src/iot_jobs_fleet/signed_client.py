"""A lean ``iot`` client for the four per-device provisioning calls (issue 15).

boto3 spends ~2 ms of client CPU per call under one GIL, which on a small machine is what bounds
provisioning a large fleet. This client does the same calls with botocore's SigV4 signer and
``http.client`` on one keep-alive connection (one client per thread). Requests follow the botocore
``iot`` model (rest-json): CreateThing ``POST /things/{thingName}``, CreateCertificateFromCsr
``POST /certificates?setAsActive=``, AttachThingPrincipal ``PUT /things/{thingName}/principals``
with the principal in ``x-amzn-principal``, AddThingToThingGroup ``PUT
/thing-groups/addThingToThingGroup``. Errors carry boto3's ``response["Error"]`` shape (code from
``x-amzn-ErrorType`` or the body's ``__type``/``code``, and its message), so callers report them as
they do boto3's. Throttling, 5xx and broken connections are retried with boto3's standard-mode
back-off. Everything else the fleet calls stays on boto3.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

#: boto3 standard mode: these codes and statuses are retried (botocore/retries/standard.py).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
MAX_BACKOFF = 20.0  # seconds, as boto3's standard mode


class SignedIotError(Exception):
    """An error answer (or no answer) of the service, shaped like botocore's ``ClientError``."""

    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: {message}")
        self.operation = operation
        self.status = status
        self.response: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    @property
    def code(self) -> str:
        return str(self.response["Error"]["Code"])


def error_of(operation: str, status: int, headers: Mapping[str, str], payload: bytes) -> SignedIotError:
    """What botocore's rest-json parser makes of an error answer: the code from the
    ``x-amzn-ErrorType`` header (before any ``:``), else the body's ``code``/``__type`` (after
    any ``#``); the message from ``message``/``Message``; the HTTP status when there is neither."""
    try:
        body = json.loads(payload) if payload else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = ""
    for name, value in headers.items():
        if name.lower() == "x-amzn-errortype":
            code = value.split(":", 1)[0]
    if not code:
        code = str(body.get("code") or body.get("__type") or "").rsplit("#", 1)[-1]
    message = str(body.get("message") or body.get("Message") or "")
    if not code:
        code = str(status)
        message = message or http.client.responses.get(status, "")
    return SignedIotError(operation, status, code, message)


def retryable(error: SignedIotError) -> bool:
    return error.code in THROTTLING_CODES or error.code in TRANSIENT_CODES or error.status in TRANSIENT_STATUSES


def backoff(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds before retry ``attempt`` (1-based): full jitter on 2^attempt, capped (standard mode)."""
    return min(draw() * 2.0 ** (attempt - 1), MAX_BACKOFF)


def aws_endpoint(region: str) -> str:
    return f"https://iot.{region}.amazonaws.com"


class SignedIot:
    """The per-device ``iot`` calls on one keep-alive connection; one instance per thread.

    ``credentials`` is a botocore credentials object (a boto3 session's ``get_credentials()``):
    each request is signed with a frozen copy, so refreshing credentials stay consistent.
    ``ca_bundle`` verifies an ``https`` endpoint (boto3 uses certifi's bundle by default).
    """

    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Any,
        ca_bundle: str | None = None,
        max_attempts: int = 5,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint}")
        self._endpoint = f"{parts.scheme}://{parts.netloc}"
        self._host, self._port, self._https = parts.hostname, parts.port, parts.scheme == "https"
        self._region = region
        self._credentials = credentials
        self._context = ssl.create_default_context(cafile=ca_bundle) if self._https else None
        self._max_attempts = max(1, max_attempts)
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    # the four operations (argument names as boto3's) -------------------------------------------
    def create_thing(self, thingName: str) -> dict[str, Any]:
        return self.call("CreateThing", "POST", f"/things/{thingName}", body={})

    def create_certificate_from_csr(self, certificateSigningRequest: str, setAsActive: bool = False) -> dict[str, Any]:
        query = {"setAsActive": "true" if setAsActive else "false"}
        body = {"certificateSigningRequest": certificateSigningRequest}
        return self.call("CreateCertificateFromCsr", "POST", "/certificates", query, body)

    def attach_thing_principal(
        self, thingName: str, principal: str, thingPrincipalType: str | None = None
    ) -> dict[str, Any]:
        query = {"thingPrincipalType": thingPrincipalType} if thingPrincipalType else None
        path = f"/things/{thingName}/principals"
        return self.call("AttachThingPrincipal", "PUT", path, query, headers={"x-amzn-principal": principal})

    def add_thing_to_thing_group(self, thingGroupName: str, thingName: str) -> dict[str, Any]:
        body = {"thingGroupName": thingGroupName, "thingName": thingName}
        return self.call("AddThingToThingGroup", "PUT", "/thing-groups/addThingToThingGroup", body=body)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # the wire ------------------------------------------------------------------------------------
    def call(
        self,
        operation: str,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One operation, retried as boto3's standard mode: throttling, 5xx and connection errors,
        up to ``max_attempts`` attempts in all, with jittered exponential back-off."""
        target = quote(path, safe="/") + ("?" + urlencode(sorted(query.items())) if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        attempt = 1
        while True:
            try:
                status, answer, payload = self._send(method, target, data, body is not None, headers or {})
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= self._max_attempts:
                    raise SignedIotError(operation, 0, type(exc).__name__, f"{self._endpoint}: {exc}") from None
            else:
                if status < 300:
                    result = json.loads(payload) if payload else {}
                    return result if isinstance(result, dict) else {}
                error = error_of(operation, status, answer, payload)
                if not retryable(error) or attempt >= self._max_attempts:
                    raise error
            time.sleep(backoff(attempt))
            attempt += 1

    def _send(
        self, method: str, target: str, data: bytes, is_json: bool, extra: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        headers = self._signed(method, target, data, is_json, extra)
        try:
            return self._exchange(method, target, data, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # A keep-alive connection the server closed while idle: one fresh connection, at once.
            self.close()
            return self._exchange(method, target, data, headers)

    def _exchange(
        self, method: str, target: str, data: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self._connect()
        try:
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, dict(response.getheaders()), payload

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._connection.connect()
            if self._connection.sock is not None:
                self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._connection

    def _signed(self, method: str, target: str, data: bytes, is_json: bool, extra: Mapping[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import NoCredentialsError

        if self._credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(method, self._endpoint + target, data=data, headers=dict(extra))
        if is_json:
            request.headers["Content-Type"] = "application/json"
        SigV4Auth(self._credentials.get_frozen_credentials(), "iot", self._region).add_auth(request)
        return dict(request.headers.items())
