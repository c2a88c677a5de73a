"""The device data plane: MQTT5 via ``awsiot.mqtt5_client_builder`` and ``IotJobsClientV2``.

The only module that imports awsiot/awscrt. Callbacks arrive on CRT threads; they are handed to
the caller's ``on_event`` / ``on_status`` functions, which must be thread-safe.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import awsiot
from awscrt import http, mqtt5, mqtt_request_response
from awsiot import iotjobs, mqtt5_client_builder

from .errors import IotJobsError
from .settings import Settings

EventSink = Callable[[str, Any], None]
StatusSink = Callable[[str], None]

_STREAMS = ("JobExecutionsChanged", "NextJobExecutionChanged")


def preflight(settings: Settings) -> None:
    """Fail in milliseconds, with a precise reason, where the CRT would retry or stall for 20 s.

    Checks that the certificate files exist, that the port accepts TCP connections and that the
    server's certificate is trusted by the CA we will use (an untrusted CA looks like a hang to s2n).
    """
    for flag, path in (("--cert", settings.cert), ("--key", settings.key), ("--ca_file", settings.ca_file)):
        if path is not None and not path.is_file():
            raise IotJobsError(f"{flag} file not found: {path}", "FileNotFound", "Connect")
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    try:
        context.load_cert_chain(str(settings.cert), str(settings.key))
    except (ssl.SSLError, ValueError) as exc:
        raise IotJobsError(f"cannot use --cert/--key: {exc}", "InvalidCertificate", "Connect") from exc
    if settings.proxy_host:
        return  # the TCP and TLS checks would go around the proxy
    if settings.port == 443:
        context.set_alpn_protocols(["x-amzn-mqtt-ca"])
    where = f"{settings.endpoint}:{settings.port}"
    try:
        with (
            socket.create_connection((settings.endpoint, settings.port), timeout=settings.connect_timeout) as raw,
            context.wrap_socket(raw, server_hostname=settings.endpoint),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        hint = (
            "pass the CA that signed it with --ca_file"
            if settings.ca_file is None
            else f"it is not signed by {settings.ca_file}"
        )
        raise IotJobsError(
            f"the server certificate of {where} is not trusted ({exc.verify_message}); {hint}", "TlsError", "Connect"
        ) from exc
    except ssl.SSLError as exc:
        raise IotJobsError(f"TLS handshake with {where} failed: {exc.reason or exc}", "TlsError", "Connect") from exc
    except ConnectionRefusedError as exc:
        raise IotJobsError(
            f"connection refused by {where} (wrong --port, or no broker running?)", "ConnectionRefused", "Connect"
        ) from exc
    except socket.gaierror as exc:
        raise IotJobsError(f"cannot resolve {settings.endpoint}: {exc.strerror}", "DnsError", "Connect") from exc
    except OSError as exc:
        raise IotJobsError(f"cannot connect to {where}: {exc}", "ConnectError", "Connect") from exc


def _crt_error_name(exc: BaseException | None) -> str:
    return getattr(exc, "name", None) or (type(exc).__name__ if exc else "unknown")


class DataPlane:
    """An MQTT5 connection, an ``IotJobsClientV2`` and its two event streams."""

    def __init__(
        self,
        settings: Settings,
        on_event: EventSink,
        on_status: StatusSink,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_event = on_event
        self._on_status = on_status
        self._on_state = on_state or (lambda _state: None)
        self._connected = threading.Event()
        self._first: Future[None] = Future()
        self._ever_connected = False
        self._streams: list[Any] = []
        self.connection_state = "connecting"
        proxy = http.HttpProxyOptions(settings.proxy_host, settings.proxy_port) if settings.proxy_host else None
        self._client = mqtt5_client_builder.mtls_from_path(
            endpoint=settings.endpoint,
            port=settings.port,
            cert_filepath=str(settings.cert),
            pri_key_filepath=str(settings.key),
            ca_filepath=str(settings.ca_file) if settings.ca_file else None,
            client_id=settings.client_id,
            clean_start=True,
            keep_alive_secs=30,
            min_reconnect_delay_ms=200,
            max_reconnect_delay_ms=3000,
            on_lifecycle_connection_success=self._connection_success,
            on_lifecycle_connection_failure=self._connection_failure,
            on_lifecycle_disconnection=self._disconnection,
            http_proxy_options=proxy,
        )
        self.jobs = iotjobs.IotJobsClientV2(
            self._client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=2,
                max_streaming_subscriptions=2,
                operation_timeout_in_seconds=settings.operation_timeout,
            ),
        )

    # lifecycle ---------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.connection_state = state
        self._on_state(state)

    def _connection_success(self, _data: mqtt5.LifecycleConnectSuccessData) -> None:
        self._set_state("connected")
        self._connected.set()
        if not self._first.done():
            self._first.set_result(None)
        elif self._ever_connected:
            self._on_status(f"Reconnected to {self._settings.endpoint}:{self._settings.port}")
        self._ever_connected = True

    def _connection_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        reason = _crt_error_name(data.exception)
        if data.connack_packet is not None and data.connack_packet.reason_code:
            reason = f"CONNACK {data.connack_packet.reason_code.name}"
        if not self._first.done():
            self._first.set_exception(IotJobsError(f"MQTT connection refused: {reason}", "ConnectFailed", "Connect"))

    def _disconnection(self, data: mqtt5.LifecycleDisconnectData) -> None:
        if self.connection_state == "connected":
            self._set_state("reconnecting")
            self._connected.clear()
            self._on_status(f"Disconnected from the broker ({_crt_error_name(data.exception)}); reconnecting...")

    # context manager ---------------------------------------------------------------------------
    def __enter__(self) -> DataPlane:
        self._client.start()
        try:
            self._first.result(timeout=self._settings.connect_timeout)
        except TimeoutError:
            self._client.stop()
            raise IotJobsError(
                f"no MQTT connection to {self._settings.endpoint}:{self._settings.port} within "
                f"{self._settings.connect_timeout:g} s",
                "ConnectTimeout",
                "Connect",
            ) from None
        except IotJobsError:
            self._client.stop()
            raise
        self._open_streams()
        return self

    def __exit__(self, *_exc: object | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the client; the streams end with it (they have no close of their own)."""
        self._set_state("stopped")
        self._streams.clear()
        self._client.stop()

    def _open_streams(self) -> None:
        established: dict[str, threading.Event] = {name: threading.Event() for name in _STREAMS}

        def options(name: str) -> awsiot.ServiceStreamOptions[Any]:
            def status(event: mqtt_request_response.SubscriptionStatusEvent) -> None:
                if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
                    established[name].set()
                elif event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_HALTED:
                    self._on_status(f"{name} stream halted: the policy does not allow subscribing to its topic")

            return awsiot.ServiceStreamOptions(
                incoming_event_listener=lambda event: self._on_event(name, event),
                subscription_status_listener=status,
                deserialization_failure_listener=lambda failure: self._on_status(
                    f"Received an undecodable {name} event: {failure.cause}"
                ),
            )

        thing = self._settings.thing_name
        self._streams = [
            self.jobs.create_job_executions_changed_stream(
                iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing), options(_STREAMS[0])
            ),
            self.jobs.create_next_job_execution_changed_stream(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), options(_STREAMS[1])
            ),
        ]
        for stream in self._streams:
            stream.open()
        for name, event in established.items():
            if not event.wait(self._settings.connect_timeout):
                raise IotJobsError(f"could not subscribe to the {name} stream", "SubscribeFailed", "Connect")

    # requests ----------------------------------------------------------------------------------
    def _result(self, operation: str, future: Future[Any]) -> Any:
        try:
            return future.result(timeout=self._settings.operation_timeout + 5)
        except TimeoutError:
            raise IotJobsError("no response (timed out)", "Timeout", operation) from None
        except awsiot.V2ServiceException as exc:
            raise _service_error(operation, exc) from exc

    def get_pending(self) -> Any:
        request = iotjobs.GetPendingJobExecutionsRequest(thing_name=self._settings.thing_name)
        return self._result("GetPendingJobExecutions", self.jobs.get_pending_job_executions(request))

    def start_next(self, status_details: dict[str, str] | None = None, step_timeout: int | None = None) -> Any:
        request = iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=self._settings.thing_name, status_details=status_details, step_timeout_in_minutes=step_timeout
        )
        return self._result("StartNextPendingJobExecution", self.jobs.start_next_pending_job_execution(request))

    def describe(self, job_id: str, execution_number: int | None = None, include_document: bool = True) -> Any:
        request = iotjobs.DescribeJobExecutionRequest(
            thing_name=self._settings.thing_name,
            job_id=job_id,
            execution_number=execution_number,
            include_job_document=include_document,
        )
        return self._result("DescribeJobExecution", self.jobs.describe_job_execution(request))

    def update(self, job_id: str, status: str, **options: Any) -> Any:
        request = iotjobs.UpdateJobExecutionRequest(
            thing_name=self._settings.thing_name, job_id=job_id, status=status, **options
        )
        return self._result("UpdateJobExecution", self.jobs.update_job_execution(request))


_CRT_REASONS = {
    "AWS_ERROR_MQTT_REQUEST_RESPONSE_TIMEOUT": ("Timeout", "no response from the service (timed out)"),
    "AWS_ERROR_MQTT_REQUEST_RESPONSE_PUBLISH_FAILURE": (
        "PublishFailed",
        "the broker refused the request (not authorized by the policy, or disconnected)",
    ),
    "AWS_ERROR_MQTT_REQUEST_RESPONSE_SUBSCRIBE_FAILURE": (
        "SubscribeFailed",
        "the broker refused the response subscription (not authorized by the policy?)",
    ),
    "AWS_ERROR_MQTT5_OPERATION_FAILED_DUE_TO_OFFLINE_QUEUE_POLICY": (
        "Offline",
        "not connected to the broker; reconnecting, try again",
    ),
}


def _service_error(operation: str, exc: awsiot.V2ServiceException) -> IotJobsError:
    modeled = exc.modeled_error
    if modeled is not None and getattr(modeled, "code", None):
        error = IotJobsError(modeled.message or "", modeled.code, operation)
        error.modeled = modeled  # type: ignore[attr-defined]
        return error
    name = _crt_error_name(exc.inner_error)
    code, message = _CRT_REASONS.get(name, (name, str(exc.inner_error or exc.message)))
    return IotJobsError(message, code, operation)
