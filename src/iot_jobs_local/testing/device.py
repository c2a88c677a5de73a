"""``Device``: a device as on AWS: an MQTT5 mutual-TLS connection (``mtls_from_path``), an
``IotJobsClientV2`` and both of its event streams, ready when the constructor returns."""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import LocalService

#: Event kinds of :meth:`Device.next_event`; the AWS names and topic suffixes are accepted too.
JOBS_CHANGED = "jobs_changed"
NEXT_CHANGED = "next_changed"
_KIND_ALIASES = {
    "JobExecutionsChanged": JOBS_CHANGED,
    "notify": JOBS_CHANGED,
    "NextJobExecutionChanged": NEXT_CHANGED,
    "notify-next": NEXT_CHANGED,
}

#: The longest :meth:`Device.assert_no_event` waits: a test proving an absence should not idle.
MAX_ABSENCE_WAIT = 1.0


def event_kind(kind: str) -> str:
    """``jobs_changed`` or ``next_changed`` for ``kind`` or one of its aliases; ValueError otherwise."""
    kind = _KIND_ALIASES.get(kind, kind)
    if kind not in (JOBS_CHANGED, NEXT_CHANGED):
        raise ValueError(f"unknown event kind {kind!r} (jobs_changed or next_changed)")
    return kind


def modeled(value: Any) -> Any:
    """A plain-data view of an SDK modeled object (for assertion messages): dicts of its slots."""
    if isinstance(value, list):
        return [modeled(v) for v in value]
    if isinstance(value, dict):
        return {k: modeled(v) for k, v in value.items()}
    slots = getattr(type(value), "__slots__", None)
    if slots and type(value).__module__.startswith("awsiot"):
        return {s: modeled(getattr(value, s)) for s in slots if getattr(value, s, None) is not None}
    return value


def _settle(future: Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    with contextlib.suppress(Exception):  # already settled (a later attempt, or a race)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _drain(q: queue.Queue[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class Device:
    """``device.jobs`` is the SDK's ``IotJobsClientV2`` (call it as your device code does),
    ``device.client`` the MQTT5 client; ``next_event("jobs_changed" | "next_changed")`` returns the
    next ``JobExecutionsChangedEvent`` / ``NextJobExecutionChangedEvent`` received.

    The constructor connects and opens both streams, returning once both report
    SUBSCRIPTION_ESTABLISHED; a refused connection raises ``ConnectionError``. ``client_options`` go
    to ``mtls_from_path`` (e.g. ``min_reconnect_delay_ms``).

    Shortcuts for the requests (``get_pending``, ``start_next``, ``describe``, ``update``) return the
    SDK's modeled response or raise ``awsiot.V2ServiceException`` (``exc.modeled_error``: the
    service's rejection); ``rejected(...)`` expects a rejection and returns it. After each
    ``last_client_token`` is the token the SDK generated. For tests of reconnection, connection
    lifecycle events (``"connected"``, ``"connection_failure"``, ``"disconnected"``) and stream statuses
    (``"SUBSCRIPTION_ESTABLISHED"``, ``"SUBSCRIPTION_LOST"``, ...) after the device was ready are
    queued: :meth:`wait_lifecycle`, :meth:`wait_streams`.
    """

    def __init__(
        self,
        service: LocalService,
        thing: str,
        cert: Path,
        key: Path,
        *,
        client_id: str | None = None,
        timeout: float = 10.0,
        operation_timeout: int = 5,
        **client_options: Any,
    ) -> None:
        """``timeout``: for the connection, the streams and each request's answer; ``operation_timeout``:
        the SDK's own request timeout (``operation_timeout_in_seconds``)."""
        from awscrt import mqtt_request_response
        from awsiot import ServiceStreamOptions, iotjobs, mqtt5_client_builder

        self._iotjobs = iotjobs
        self.service = service
        self.thing = thing
        self.cert, self.key = cert, key
        self.client_id = client_id or f"{thing[:60]}-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self.last_client_token: str | None = None
        self.events: dict[str, queue.Queue[Any]] = {JOBS_CHANGED: queue.Queue(), NEXT_CHANGED: queue.Queue()}
        self.deserialization_failures: queue.Queue[Any] = queue.Queue()
        self.lifecycle: queue.Queue[str] = queue.Queue()
        self.stream_status: dict[str, queue.Queue[str]] = {JOBS_CHANGED: queue.Queue(), NEXT_CHANGED: queue.Queue()}
        connected: Future[Any] = Future()
        self._stopped: Future[Any] = Future()

        def on_success(data: Any) -> None:
            _settle(connected, data)
            self.lifecycle.put("connected")

        def on_failure(data: Any) -> None:
            _settle(connected, error=ConnectionError(f"MQTT connect failed: {data.exception!r}"))
            self.lifecycle.put("connection_failure")

        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint=service.mqtt_endpoint,
            port=service.mqtt_port,
            cert_filepath=str(cert),
            pri_key_filepath=str(key),
            ca_filepath=str(service.ca_file),
            client_id=self.client_id,
            on_lifecycle_connection_success=on_success,
            on_lifecycle_connection_failure=on_failure,
            on_lifecycle_disconnection=lambda data: self.lifecycle.put("disconnected"),
            on_lifecycle_stopped=lambda data: _settle(self._stopped, data),
            **client_options,
        )
        self.client.start()
        try:
            connected.result(timeout)
            self.jobs = iotjobs.IotJobsClientV2(
                self.client,
                mqtt_request_response.ClientOptions(
                    max_request_response_subscriptions=2,
                    max_streaming_subscriptions=2,
                    operation_timeout_in_seconds=operation_timeout,
                ),
            )
            established: dict[str, Future[Any]] = {JOBS_CHANGED: Future(), NEXT_CHANGED: Future()}

            def on_status(kind: str) -> Callable[[Any], None]:
                def listen(event: Any) -> None:
                    name = mqtt_request_response.SubscriptionStatusEventType(event.type).name
                    self.stream_status[kind].put(name)
                    if name == "SUBSCRIPTION_ESTABLISHED":
                        _settle(established[kind], event)
                    elif name == "SUBSCRIPTION_HALTED":
                        _settle(established[kind], error=RuntimeError(f"{kind} stream halted: {event.error!r}"))

                return listen

            def options(kind: str) -> Any:
                return ServiceStreamOptions(
                    incoming_event_listener=self.events[kind].put,
                    subscription_status_listener=on_status(kind),
                    deserialization_failure_listener=self.deserialization_failures.put,
                )

            self.streams = [
                self.jobs.create_job_executions_changed_stream(
                    iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing), options(JOBS_CHANGED)
                ),
                self.jobs.create_next_job_execution_changed_stream(
                    iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), options(NEXT_CHANGED)
                ),
            ]
            for stream in self.streams:
                stream.open()
            for future in established.values():
                future.result(timeout)
            # From here on these queues hold only what happens after the device was ready.
            for q in (self.lifecycle, *self.stream_status.values()):
                _drain(q)
        except BaseException:
            self.stop()
            raise

    # lifecycle -------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect and wait until the client reports it stopped (idempotent)."""
        self.service.forget(self)
        if self._stopped.done():
            return
        self.client.stop()
        with contextlib.suppress(Exception):
            self._stopped.result(timeout)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_lifecycle(self, name: str, timeout: float | None = None) -> None:
        """Wait for the connection lifecycle event ``name`` (skipping others), e.g. ``"connected"``."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                event = self.lifecycle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.thing}: no {name!r} within {timeout} s (saw {seen})") from None
            if event == name:
                return
            seen.append(event)

    def wait_streams(self, status: str = "SUBSCRIPTION_ESTABLISHED", timeout: float | None = None) -> None:
        """Wait until both streams report ``status`` (skipping other statuses)."""
        timeout = self.timeout if timeout is None else timeout
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
        """GetPendingJobExecutions -> ``GetPendingJobExecutionsResponse`` (``thing``: another's topics)."""
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
        """Run ``getattr(self, operation)(*args, **kwargs)``, which the service must reject; return
        the ``V2ErrorResponse`` (``code``, ``message``, ``client_token``, ``timestamp``,
        ``execution_state``). AssertionError if it was accepted or failed without a rejection."""
        from awsiot import V2ServiceException

        try:
            response = getattr(self, operation)(*args, **kwargs)
        except V2ServiceException as exc:
            if exc.modeled_error is None:
                raise AssertionError(f"{operation} failed without a rejection: {exc.inner_error!r}") from exc
            return exc.modeled_error
        raise AssertionError(f"{operation} was accepted, expected a rejection: {modeled(response)}")

    # events ----------------------------------------------------------------------------------
    def next_event(self, kind: str, timeout: float | None = None) -> Any:
        """The next event of ``kind`` (``"jobs_changed"`` or ``"next_changed"``); AssertionError if
        none arrives within ``timeout`` seconds (default: the device's)."""
        timeout = self.timeout if timeout is None else timeout
        try:
            return self.events[event_kind(kind)].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.thing}: no {kind} event within {timeout} s") from None

    def assert_no_event(self, *kinds: str, within: float = 0.5) -> None:
        """AssertionError if an event of any of ``kinds`` (default: both) is already queued or arrives
        within ``within`` seconds (at most :data:`MAX_ABSENCE_WAIT`)."""
        if within > MAX_ABSENCE_WAIT:
            raise ValueError(f"an absence is waited for at most {MAX_ABSENCE_WAIT:g} s")
        selected = [event_kind(k) for k in kinds] or [JOBS_CHANGED, NEXT_CHANGED]
        deadline = time.monotonic() + within
        for kind in selected:
            try:
                event = self.events[kind].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                continue
            raise AssertionError(f"{self.thing}: unexpected {kind} event: {modeled(event)}")

    def drain_events(self) -> list[Any]:
        """Remove and return every event queued so far (both kinds)."""
        return [event for q in self.events.values() for event in _drain(q)]
