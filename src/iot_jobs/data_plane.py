"""The device data plane: ``IotJobsClientV2`` and its two event streams on the connection that
``connection`` builds.

With ``connection``, the only module that imports awsiot/awscrt. Callbacks arrive on CRT threads; they are handed to
the caller's ``on_event`` / ``on_status`` functions, which must be thread-safe.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import awsiot
from awscrt import mqtt_request_response
from awsiot import iotjobs

from . import connection
from .errors import IotJobsError
from .settings import Settings

#: (stream name, event, arrival number): arrival numbers order events and responses as they came.
EventSink = Callable[[str, Any, int], None]
StatusSink = Callable[[str], None]

#: A connection lost within QUICK_DROP_S of being made, QUICK_DROPS times in a row: a client-id clash.
QUICK_DROP_S = 10.0
QUICK_DROPS = 3

_STREAMS = ("JobExecutionsChanged", "NextJobExecutionChanged")


class DataPlane:
    """An MQTT connection (``mqtt`` "5" or "3.1.1"), an ``IotJobsClientV2`` and its two event streams.

    ``flow_control=False``: without the MQTT5 builder's client-side limiter (``connection``).
    """

    def __init__(
        self,
        settings: Settings,
        on_event: EventSink,
        on_status: StatusSink,
        on_state: Callable[[str], None] | None = None,
        on_response: Callable[[int], None] | None = None,
        mqtt: str = "5",
        flow_control: bool = True,
    ) -> None:
        self._settings = settings
        self._on_event = on_event
        self._on_status = on_status
        self._on_state = on_state or (lambda _state: None)
        #: Told a response's arrival number before the response is returned, so that the events
        #: that came before it can be shown before it.
        self._on_response = on_response or (lambda _number: None)
        self._arrivals = itertools.count()
        self._arrivals_lock = threading.Lock()
        self._connected = threading.Event()
        self._first: Future[None] = Future()
        self._ever_connected = False
        self._streams: list[Any] = []
        self._connected_at = 0.0
        self._quick_drops = 0
        self.connection_state = "connecting"
        self._client = connection.Transport(
            settings, self._connection_success, self._connection_failure, self._disconnection, mqtt, flow_control
        )
        self.jobs = connection.jobs_client(self._client.client, settings)

    # lifecycle ---------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.connection_state = state
        self._on_state(state)

    def _connection_success(self) -> None:
        self._connected_at = time.monotonic()
        self._set_state("connected")
        self._connected.set()
        if not self._first.done():
            self._first.set_result(None)
        elif self._ever_connected:
            self._on_status(f"Reconnected to {self._settings.endpoint}:{self._settings.port}")
        self._ever_connected = True

    def _connection_failure(self, reason: str) -> None:
        if not self._first.done():
            self._first.set_exception(IotJobsError(f"MQTT connection refused: {reason}", "ConnectFailed", "Connect"))

    def _disconnection(self, error: str, taken_over: bool) -> None:
        if taken_over:
            # AWS IoT says so in its MQTT5 DISCONNECT (reason 0x8E).
            self._stop_taken_over("another client connected with client id {id} (session taken over)")
            return
        now = time.monotonic()
        quick = now - self._connected_at < QUICK_DROP_S
        self._quick_drops = self._quick_drops + 1 if quick else 0
        if self._quick_drops >= QUICK_DROPS:
            # Mosquitto (and any broker over MQTT 3.1.1) just closes the socket of the client it
            # takes over from; dropped again and again right after connecting is what two clients
            # sharing one id look like.
            self._stop_taken_over(
                f"dropped {self._quick_drops} times right after connecting: another client most likely uses "
                "client id {id} (each connection takes the session over)"
            )
            return
        if self.connection_state == "connected":
            self._set_state("reconnecting")
            self._connected.clear()
            self._on_status(f"Disconnected from the broker ({error}); reconnecting...")

    def _stop_taken_over(self, why: str) -> None:
        """Reconnecting would take the session back from the other client, which would do the same:
        an endless loop. Stop, and say why once (off the CRT thread, which ``stop`` waits for)."""
        if self.connection_state == "stopped":
            return
        self._connected.clear()
        self._set_state("stopped")
        self._on_status(
            f"Disconnected: {why.format(id=repr(self._settings.client_id))}; not reconnecting. "
            "Restart with another --client_id."
        )
        threading.Thread(target=self._client.stop, name="mqtt-stop", daemon=True).start()

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
                incoming_event_listener=lambda event: self._on_event(name, event, self._arrival()),
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
    def _arrival(self) -> int:
        with self._arrivals_lock:
            return next(self._arrivals)

    def _result(self, operation: str, future: Future[Any], report: bool = True) -> Any:
        """The response; ``report``: tell ``on_response`` when it came (not for background requests)."""
        # Stamped on the CRT thread that completes it, the one that also delivers the events.
        arrived: list[int] = []
        if report:
            future.add_done_callback(lambda _done: arrived.append(self._arrival()))
        try:
            value = future.result(timeout=self._settings.operation_timeout + 5)
            if arrived:
                self._on_response(arrived[0])
            return value
        except TimeoutError:
            raise IotJobsError("no response (timed out)", "Timeout", operation) from None
        except awsiot.V2ServiceException as exc:
            if arrived:
                self._on_response(arrived[0])
            raise _service_error(operation, exc) from exc

    def get_pending(self, report: bool = True) -> Any:
        request = iotjobs.GetPendingJobExecutionsRequest(thing_name=self._settings.thing_name)
        return self._result("GetPendingJobExecutions", self.jobs.get_pending_job_executions(request), report)

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
    name = connection.crt_error_name(exc.inner_error)
    code, message = _CRT_REASONS.get(name, (name, str(exc.inner_error or exc.message)))
    return IotJobsError(message, code, operation)
