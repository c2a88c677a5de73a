"""The simulated devices of the data-plane benchmark: MQTT5 connections made as the console makes
them (awsiot's ``mtls_from_path``, mutual TLS) with an ``IotJobsClientV2`` each."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from harness import Service


class Device:
    """One MQTT5 connection (awsiot builder, mutual TLS) and its IotJobsClientV2."""

    def __init__(
        self, service: Service, thing: str, port: int, client_id: str, flow_control: bool, streams: bool
    ) -> None:
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        self.thing = thing
        self._connected: Future[None] = Future()
        self._stopped = threading.Event()
        cert, key = service.device_files(thing)
        kwargs: dict[str, Any] = {
            "endpoint": "localhost",
            "port": port,
            "cert_filepath": cert,
            "pri_key_filepath": key,
            "ca_filepath": service.ca,
            "client_id": client_id,
            "on_lifecycle_connection_success": self._on_success,
            "on_lifecycle_connection_failure": self._on_failure,
            "on_lifecycle_stopped": lambda _data: self._stopped.set(),
        }
        if not flow_control:
            kwargs["extended_validation_and_flow_control_options"] = mqtt5.ExtendedValidationAndFlowControlOptions.NONE
        self.client = mqtt5_client_builder.mtls_from_path(**kwargs)
        self._want_streams = streams
        self.streams: list[Any] = []
        self.events = 0
        self.jobs: Any = None

    def _on_success(self, _data: Any) -> None:
        if not self._connected.done():
            self._connected.set_result(None)

    def _on_failure(self, data: Any) -> None:
        if not self._connected.done():
            self._connected.set_exception(RuntimeError(f"{self.thing}: connect failed: {data.exception}"))

    def start(self) -> None:
        self.client.start()

    def finish_connect(self, timeout: float = 20) -> None:
        from awsiot import iotjobs, mqtt_request_response

        self._connected.result(timeout)
        # The REPL's IotJobsClientV2 options (src/iot_jobs/data_plane.py).
        self.jobs = iotjobs.IotJobsClientV2(
            self.client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=2, max_streaming_subscriptions=2, operation_timeout_in_seconds=10
            ),
        )
        if self._want_streams:
            self._open_streams()

    def _open_streams(self) -> None:
        import awsiot
        from awsiot import iotjobs, mqtt_request_response

        established = [threading.Event(), threading.Event()]

        def options(index: int) -> Any:
            def status(event: Any) -> None:
                if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
                    established[index].set()

            def incoming(_event: Any) -> None:
                self.events += 1

            return awsiot.ServiceStreamOptions(incoming_event_listener=incoming, subscription_status_listener=status)

        self.streams = [
            self.jobs.create_job_executions_changed_stream(
                iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=self.thing), options(0)
            ),
            self.jobs.create_next_job_execution_changed_stream(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=self.thing), options(1)
            ),
        ]
        for stream in self.streams:
            stream.open()
        for event in established:
            if not event.wait(10):
                raise RuntimeError(f"{self.thing}: event stream not established")

    # requests (the REPL's calls, src/iot_jobs/data_plane.py)
    def get_pending(self) -> Future[Any]:
        from awsiot import iotjobs

        return self.jobs.get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(thing_name=self.thing))

    def start_next(self) -> Future[Any]:
        from awsiot import iotjobs

        return self.jobs.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=self.thing)
        )

    def describe(self, job_id: str) -> Future[Any]:
        from awsiot import iotjobs

        return self.jobs.describe_job_execution(
            iotjobs.DescribeJobExecutionRequest(thing_name=self.thing, job_id=job_id, include_job_document=True)
        )

    def update(self, job_id: str, status: str) -> Future[Any]:
        from awsiot import iotjobs

        return self.jobs.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(thing_name=self.thing, job_id=job_id, status=status)
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop()
        self._stopped.wait(5)
        self.streams.clear()


@contextlib.contextmanager
def connected(devices: list[Device]) -> Iterator[list[Device]]:
    try:
        for device in devices:
            device.start()
        for device in devices:
            device.finish_connect()
        yield devices
    finally:
        for device in devices:
            device.stop()
