"""``Device``: a device as on AWS: an MQTT5 mutual-TLS connection (``mtls_from_path``), an
``IotJobsClientV2`` and both of its event streams, ready when the constructor returns."""

from __future__ import annotations

import contextlib
import queue
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import LocalService

JOBS_CHANGED = "jobs_changed"
NEXT_CHANGED = "next_changed"


def _settle(future: Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    with contextlib.suppress(Exception):  # already settled (a later attempt, or a race)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class Device:
    """``device.jobs`` is the SDK's ``IotJobsClientV2`` (call it as your device code does),
    ``device.client`` the MQTT5 client; ``next_event("jobs_changed" | "next_changed")`` returns the
    next ``JobExecutionsChangedEvent`` / ``NextJobExecutionChangedEvent`` received."""

    def __init__(
        self,
        service: LocalService,
        thing: str,
        cert: Path,
        key: Path,
        *,
        client_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        from awscrt import mqtt_request_response
        from awsiot import ServiceStreamOptions, iotjobs, mqtt5_client_builder

        self.service = service
        self.thing = thing
        self.cert, self.key = cert, key
        self.client_id = client_id or f"{thing[:60]}-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self.events: dict[str, queue.Queue[Any]] = {JOBS_CHANGED: queue.Queue(), NEXT_CHANGED: queue.Queue()}
        connected: Future[Any] = Future()
        self._stopped: Future[Any] = Future()
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint=service.mqtt_endpoint,
            port=service.mqtt_port,
            cert_filepath=str(cert),
            pri_key_filepath=str(key),
            ca_filepath=str(service.ca_file),
            client_id=self.client_id,
            on_lifecycle_connection_success=lambda data: _settle(connected, data),
            on_lifecycle_connection_failure=lambda data: _settle(
                connected, error=ConnectionError(f"MQTT connect failed: {data.exception!r}")
            ),
            on_lifecycle_stopped=lambda data: _settle(self._stopped, data),
        )
        self.client.start()
        try:
            connected.result(timeout)
            self.jobs = iotjobs.IotJobsClientV2(
                self.client,
                mqtt_request_response.ClientOptions(
                    max_request_response_subscriptions=2,
                    max_streaming_subscriptions=2,
                    operation_timeout_in_seconds=int(timeout),
                ),
            )
            established: dict[str, Future[Any]] = {JOBS_CHANGED: Future(), NEXT_CHANGED: Future()}

            def on_status(kind: str) -> Callable[[Any], None]:
                def listen(event: Any) -> None:
                    name = mqtt_request_response.SubscriptionStatusEventType(event.type).name
                    if name == "SUBSCRIPTION_ESTABLISHED":
                        _settle(established[kind], event)
                    elif name == "SUBSCRIPTION_HALTED":
                        _settle(established[kind], error=RuntimeError(f"{kind} stream halted: {event.error!r}"))

                return listen

            self.streams = [
                self.jobs.create_job_executions_changed_stream(
                    iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
                    ServiceStreamOptions(self.events[JOBS_CHANGED].put, on_status(JOBS_CHANGED)),
                ),
                self.jobs.create_next_job_execution_changed_stream(
                    iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                    ServiceStreamOptions(self.events[NEXT_CHANGED].put, on_status(NEXT_CHANGED)),
                ),
            ]
            for stream in self.streams:
                stream.open()
            for future in established.values():
                future.result(timeout)
        except BaseException:
            self.stop()
            raise

    def next_event(self, kind: str, timeout: float | None = None) -> Any:
        """The next event of ``kind`` (``"jobs_changed"`` or ``"next_changed"``); AssertionError if
        none arrives within ``timeout`` seconds."""
        try:
            return self.events[kind].get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            raise AssertionError(f"{self.thing}: no {kind} event within {timeout or self.timeout} s") from None

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect (idempotent)."""
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
