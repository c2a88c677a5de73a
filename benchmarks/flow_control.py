#!/usr/bin/env python3
"""The MQTT5 builder's client-side flow control, shown with plain awsiotsdk (none of our device code).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/flow_control.py [--jobs 30]``

Against a fresh ``iot-jobs-local``: ``--jobs`` queued jobs for one thing, then, on one
``mqtt5_client_builder.mtls_from_path`` client and ``IotJobsClientV2``, what the agent does per job,
back to back: UpdateJobExecution IN_PROGRESS, then a second update (the step's progress), each on
that job's own ``.../jobs/<jobId>/update/+`` response subscription, which the request-response client
subscribes before each request and unsubscribes after it (SUBSCRIBE, PUBLISH, UNSUBSCRIBE). Timed per
job (the two updates), once with the builder's default (``AWS_IOT_CORE_DEFAULTS``: a 100 operations/s
token bucket) and once with ``ExtendedValidationAndFlowControlOptions.NONE``, each on its own thing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Children, iot_client, provision, start_service, thing_arn


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(service: Any, thing: str, job_ids: list[str], flow_control: bool) -> list[float]:
    from concurrent.futures import Future

    from awscrt import mqtt5, mqtt_request_response
    from awsiot import iotjobs, mqtt5_client_builder

    connected: Future[None] = Future()
    cert, key = service.device_files(thing)
    extra: dict[str, Any] = {}
    if not flow_control:
        extra["extended_validation_and_flow_control_options"] = mqtt5.ExtendedValidationAndFlowControlOptions.NONE
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost",
        port=service.mqtt_port,
        cert_filepath=cert,
        pri_key_filepath=key,
        ca_filepath=service.ca,
        client_id=f"{thing}-fc",
        clean_start=True,
        on_lifecycle_connection_success=lambda _data: connected.done() or connected.set_result(None),
        **extra,
    )
    jobs = iotjobs.IotJobsClientV2(
        client,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2, max_streaming_subscriptions=2, operation_timeout_in_seconds=10
        ),
    )
    client.start()
    try:
        connected.result(10)
        took = []
        for job_id in job_ids:
            began = time.perf_counter()
            for details in (None, {"step": "1/1 mark"}):
                jobs.update_job_execution(
                    iotjobs.UpdateJobExecutionRequest(
                        thing_name=thing, job_id=job_id, status="IN_PROGRESS", status_details=details
                    )
                ).result(10)
            took.append(time.perf_counter() - began)
        return took
    finally:
        client.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()
    children = Children()
    result: dict[str, Any] = {"jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="flow-control-") as tmp_name:
        try:
            service = start_service(children, Path(tmp_name))
            provision(service.state, ["fc-default", "fc-none"])
            iot = iot_client(service.endpoint, service.keys)
            document = json.dumps({"operation": "mark"})
            for thing, flow_control in (("fc-default", True), ("fc-none", False)):
                job_ids = [f"{thing}-{i}" for i in range(args.jobs)]
                for job_id in job_ids:
                    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=document)
                took = run(service, thing, job_ids, flow_control)
                result["AWS_IOT_CORE_DEFAULTS" if flow_control else "NONE"] = {
                    "two_updates_ms": {"median": statistics.median(took) * 1000, "p95": p95(took) * 1000}
                }
        finally:
            children.stop_all()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
