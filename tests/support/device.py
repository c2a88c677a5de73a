"""A device on the AWS IoT Device SDK v2: ``IotJobsClientV2`` over MQTT5 with mutual TLS."""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from support.common import MAX_ABSENCE_WAIT, RESPONSE_TIMEOUT
from support.events import JOBS_CHANGED, NEXT_CHANGED, event_kind, modeled
from support.service import ServiceProcess


class Device:
    """A device using ``IotJobsClientV2`` over an MQTT5 mTLS connection (``mtls_from_path``).

    The constructor provisions the thing, connects, opens both streams (JobExecutionsChanged and
    NextJobExecutionChanged) and returns only once both report SUBSCRIPTION_ESTABLISHED.

    The request methods return the SDK's modeled response, or raise ``awsiot.V2ServiceException``
    (``exc.modeled_error`` is the ``V2ErrorResponse`` of a rejection, ``exc.inner_error`` a transport
    failure). ``thing=`` sends the request for another thing's topics. After each request
    ``last_client_token`` is the token the SDK generated for it.

    Connection lifecycle events ("connected", "connection_failure", "disconnected") and stream
    status changes ("SUBSCRIPTION_ESTABLISHED", "SUBSCRIPTION_LOST", ...) are queued too, for tests of
    reconnection: see :meth:`wait_lifecycle` and :meth:`wait_streams`. Extra keyword arguments go to
    ``mtls_from_path`` (e.g. ``min_reconnect_delay_ms``). A refused connection raises
    ``ConnectionError`` from the constructor.
    """

    def __init__(
        self,
        service: ServiceProcess,
        thing: str,
        *,
        client_id: str | None = None,
        timeout: float = RESPONSE_TIMEOUT,
        files: tuple[Path, Path] | None = None,
        **client_options: Any,
    ) -> None:
        from awscrt import mqtt_request_response
        from awsiot import ServiceStreamOptions, iotjobs, mqtt5_client_builder

        self.service = service
        self.thing = thing
        self.timeout = timeout
        self.client_id = client_id or f"test-sdk-{thing[:40]}-{uuid.uuid4().hex[:12]}"
        # ``files``: a certificate and key made by the test (else the thing is provisioned).
        self.cert, self.key = files if files is not None else service.device_files(thing)
        self.last_client_token: str | None = None
        self._events: dict[str, queue.Queue[Any]] = {JOBS_CHANGED: queue.Queue(), NEXT_CHANGED: queue.Queue()}
        self.deserialization_failures: queue.Queue[Any] = queue.Queue()
        self.lifecycle: queue.Queue[str] = queue.Queue()
        self.stream_status: dict[str, queue.Queue[str]] = {JOBS_CHANGED: queue.Queue(), NEXT_CHANGED: queue.Queue()}
        self._connected: Future[Any] = Future()
        self._stopped: Future[Any] = Future()

        def settle(future: Future[Any], value: Any = None, error: BaseException | None = None) -> None:
            with contextlib.suppress(Exception):  # already settled (a later attempt or a race)
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)

        def on_success(data: Any) -> None:
            settle(self._connected, data)
            self.lifecycle.put("connected")

        def on_failure(data: Any) -> None:
            settle(self._connected, error=ConnectionError(f"MQTT connect failed: {data.exception!r}"))
            self.lifecycle.put("connection_failure")

        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint="localhost",
            port=service.mqtt_port,
            cert_filepath=str(self.cert),
            pri_key_filepath=str(self.key),
            ca_filepath=str(service.ca_path),
            client_id=self.client_id,
            on_lifecycle_connection_success=on_success,
            on_lifecycle_connection_failure=on_failure,
            on_lifecycle_disconnection=lambda data: self.lifecycle.put("disconnected"),
            on_lifecycle_stopped=lambda data: settle(self._stopped, data),
            **client_options,
        )
        self.client.start()
        try:
            self._connected.result(timeout)
            self.jobs = iotjobs.IotJobsClientV2(
                self.client,
                mqtt_request_response.ClientOptions(
                    max_request_response_subscriptions=2,
                    max_streaming_subscriptions=2,
                    operation_timeout_in_seconds=5,
                ),
            )
            self._iotjobs = iotjobs
            established: dict[str, Future[Any]] = {JOBS_CHANGED: Future(), NEXT_CHANGED: Future()}

            def status_listener(kind: str) -> Callable[[Any], None]:
                def listen(event: Any) -> None:
                    kind_name = mqtt_request_response.SubscriptionStatusEventType(event.type).name
                    self.stream_status[kind].put(kind_name)
                    if kind_name == "SUBSCRIPTION_ESTABLISHED":
                        settle(established[kind], event)
                    elif kind_name == "SUBSCRIPTION_HALTED":
                        settle(established[kind], error=RuntimeError(f"{kind} stream halted: {event.error!r}"))

                return listen

            self.streams = [
                self.jobs.create_job_executions_changed_stream(
                    iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
                    ServiceStreamOptions(
                        incoming_event_listener=self._events[JOBS_CHANGED].put,
                        subscription_status_listener=status_listener(JOBS_CHANGED),
                        deserialization_failure_listener=self.deserialization_failures.put,
                    ),
                ),
                self.jobs.create_next_job_execution_changed_stream(
                    iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                    ServiceStreamOptions(
                        incoming_event_listener=self._events[NEXT_CHANGED].put,
                        subscription_status_listener=status_listener(NEXT_CHANGED),
                        deserialization_failure_listener=self.deserialization_failures.put,
                    ),
                ),
            ]
            for stream in self.streams:
                stream.open()
            for future in established.values():
                future.result(timeout)
            # From here on the queues hold only what happens after the device was ready.
            for q in (self.lifecycle, *self.stream_status.values()):
                while not q.empty():
                    q.get_nowait()
        except BaseException:
            self.stop()
            raise

    # lifecycle -------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect and wait until the client reports it stopped."""
        if self._stopped.done():
            return
        self.client.stop()
        with contextlib.suppress(Exception):
            self._stopped.result(timeout)

    def wait_lifecycle(self, name: str, timeout: float = RESPONSE_TIMEOUT) -> None:
        """Wait for the connection lifecycle event ``name`` (skipping others), e.g. ``"connected"``."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                event = self.lifecycle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.thing}: no {name!r} within {timeout} s (saw {seen})") from None
            if event == name:
                return
            seen.append(event)

    def wait_streams(self, status: str = "SUBSCRIPTION_ESTABLISHED", timeout: float = RESPONSE_TIMEOUT) -> None:
        """Wait until both streams report ``status`` (skipping other statuses)."""
        deadline = time.monotonic() + timeout
        for kind, statuses in self.stream_status.items():
            while True:
                try:
                    got = statuses.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise AssertionError(f"{self.thing}: {kind} stream not {status} within {timeout} s") from None
                if got == status:
                    break

    # requests --------------------------------------------------------------------------------
    def _call(self, send: Callable[[Any], Future[Any]], request: Any, timeout: float | None) -> Any:
        future = send(request)
        self.last_client_token = request.client_token  # the SDK writes its generated token back
        return future.result(self.timeout if timeout is None else timeout)

    def get_pending(self, *, thing: str | None = None, timeout: float | None = None) -> Any:
        """GetPendingJobExecutions -> ``GetPendingJobExecutionsResponse``."""
        request = self._iotjobs.GetPendingJobExecutionsRequest(thing_name=thing or self.thing)
        return self._call(self.jobs.get_pending_job_executions, request, timeout)

    def start_next(
        self,
        *,
        status_details: Any = None,
        step_timeout_in_minutes: Any = None,
        thing: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """StartNextPendingJobExecution -> ``StartNextJobExecutionResponse``."""
        request = self._iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=thing or self.thing,
            status_details=status_details,
            step_timeout_in_minutes=step_timeout_in_minutes,
        )
        return self._call(self.jobs.start_next_pending_job_execution, request, timeout)

    def describe(
        self,
        job_id: str,
        *,
        execution_number: Any = None,
        include_job_document: Any = None,
        thing: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """DescribeJobExecution (``job_id`` may be ``$next``) -> ``DescribeJobExecutionResponse``."""
        request = self._iotjobs.DescribeJobExecutionRequest(
            thing_name=thing or self.thing,
            job_id=job_id,
            execution_number=execution_number,
            include_job_document=include_job_document,
        )
        return self._call(self.jobs.describe_job_execution, request, timeout)

    def update(
        self,
        job_id: str,
        status: Any,
        *,
        status_details: Any = None,
        expected_version: Any = None,
        execution_number: Any = None,
        include_job_execution_state: Any = None,
        include_job_document: Any = None,
        step_timeout_in_minutes: Any = None,
        thing: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """UpdateJobExecution -> ``UpdateJobExecutionResponse``. Any field may be None (left out)."""
        request = self._iotjobs.UpdateJobExecutionRequest(
            thing_name=thing or self.thing,
            job_id=job_id,
            status=status,
            status_details=status_details,
            expected_version=expected_version,
            execution_number=execution_number,
            include_job_execution_state=include_job_execution_state,
            include_job_document=include_job_document,
            step_timeout_in_minutes=step_timeout_in_minutes,
        )
        return self._call(self.jobs.update_job_execution, request, timeout)

    def rejected(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``getattr(self, operation)(*args, **kwargs)``, which must be rejected by the service.

        Returns the ``V2ErrorResponse`` (``code``, ``message``, ``client_token``, ``timestamp``,
        ``execution_state``); fails the test if it was accepted or failed without a rejection.
        """
        from awsiot import V2ServiceException

        try:
            response = getattr(self, operation)(*args, **kwargs)
        except V2ServiceException as exc:
            assert exc.modeled_error is not None, f"{operation} failed without a rejection: {exc.inner_error!r}"
            return exc.modeled_error
        raise AssertionError(f"{operation} was accepted, expected a rejection: {modeled(response)}")

    # events ----------------------------------------------------------------------------------
    def next_event(self, kind: str, timeout: float = RESPONSE_TIMEOUT) -> Any:
        """The next ``JobExecutionsChangedEvent`` (``"jobs_changed"``) or ``NextJobExecutionChangedEvent``
        (``"next_changed"``) received, waiting up to ``timeout`` seconds."""
        try:
            return self._events[event_kind(kind)].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.thing}: no {kind} event within {timeout} s") from None

    def assert_no_event(self, *kinds: str, within: float = 0.5) -> None:
        """Fail if an event of any of ``kinds`` (default: both) is already queued or arrives within
        ``within`` seconds (at most :data:`MAX_ABSENCE_WAIT`)."""
        assert within <= MAX_ABSENCE_WAIT, "absence waits are capped at 1 s"
        selected = [event_kind(k) for k in kinds] or [JOBS_CHANGED, NEXT_CHANGED]
        deadline = time.monotonic() + within
        for kind in selected:
            try:
                event = self._events[kind].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                continue
            raise AssertionError(f"{self.thing}: unexpected {kind} event: {modeled(event)}")

    def drain_events(self) -> list[Any]:
        """Remove and return every event queued so far (both kinds)."""
        out = []
        for q in self._events.values():
            while True:
                try:
                    out.append(q.get_nowait())
                except queue.Empty:
                    break
        return out
