"""(a) of the data-plane benchmark: the latency of the console's four data-plane commands on one
device with the SDK's default settings, back to back and paced, and the statistics both parts use."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from devices import Device, connected
from harness import Service

JOB_DOCUMENT = {"operation": "benchmark", "n": 0}
PACED_GAP_S = 0.1  # the pause before each request in the "paced" pass (a person typing is far slower)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summarize(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "min_ms": round(min(samples_ms), 3),
        "max_ms": round(max(samples_ms), 3),
        "mean_ms": round(statistics.fmean(samples_ms), 3),
    }


def timed(call: Callable[[], Future[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call().result(30)
    return (time.perf_counter() - start) * 1000.0, result


def create_jobs(iot: Any, prefix: str, count: int, thing_arns: list[str]) -> list[str]:
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    for job_id in ids:
        iot.create_job(jobId=job_id, targets=thing_arns, document=json.dumps(JOB_DOCUMENT))
    return ids


def latency_phase(
    certs: Service, iot: Any, thing: str, port: int, label: str, n: int, n_paced: int, log: Callable[[str], None],
    real: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """The four REPL commands on one device with the SDK's default settings.

    First each command runs ``n`` times back to back (the figure the target applies to); then
    ``n_paced`` times with a ``PACED_GAP_S`` pause before every request, which is what a person at the
    REPL gets (the SDK's token bucket is full and no earlier packet is still waiting for an ACK).

    ``certs`` is the service whose certificates the device uses. Against a service (``real=True``)
    the jobs are real: get-pending lists 3 queued jobs, describe
    reads the first of them; then ``count`` jobs are created and each start-next takes the next queued
    job, which update then completes (3 jobs stay queued for the next pass).
    Against the echo responder the same calls are made; its replies are canned.
    """
    arn = iot.describe_thing(thingName=thing)["thingArn"]
    if real:
        create_jobs(iot, f"lat-queued-{label}", 3, [arn])
    device = Device(certs, thing, port, f"bench-{label}-{thing}", flow_control=True, streams=True)
    results: dict[str, Any] = {}

    def measure(call: Callable[[], Future[Any]], gap: float) -> tuple[float, Any]:
        if gap:
            time.sleep(gap)
        return timed(call)

    def drain_bucket() -> None:
        """Untimed requests that empty the SDK's token bucket, so back-to-back figures are steady state.

        A pause of a second refills the bucket (100 operations/s), and the next ~30 requests then
        run unthrottled, which would flatter whichever command comes first after a pause.
        """
        for _ in range(40):
            device.get_pending().result(30)

    def run_pass(count: int, gap: float, suffix: str) -> None:
        if not gap:
            drain_bucket()
        samples: list[float] = []
        for _ in range(count):
            ms, response = measure(device.get_pending, gap)
            assert not real or len(response.queued_jobs) == 3, response.queued_jobs
            samples.append(ms)
        results["get_pending_job_executions" + suffix] = summarize(samples)

        target = response.queued_jobs[0].job_id if real else "echo-job"
        samples = []
        for _ in range(count):
            ms, response = measure(lambda: device.describe(target), gap)
            assert response.execution.job_id == target and response.execution.job_document == JOB_DOCUMENT
            samples.append(ms)
        results["describe_job_execution" + suffix] = summarize(samples)

        if real:  # work for start-next; it takes the 3 older queued jobs first, so 3 new ones stay queued
            create_jobs(iot, f"lat{suffix}-{label}", count, [arn])
        time.sleep(1.0)  # let the notify events of the new jobs reach the device before timing
        if not gap:
            drain_bucket()

        start_samples: list[float] = []
        update_samples: list[float] = []
        for _ in range(count):
            ms, response = measure(device.start_next, gap)
            assert response.execution is not None and response.execution.status == "IN_PROGRESS"
            start_samples.append(ms)
            job_id = response.execution.job_id
            ms, response = measure(lambda job_id=job_id: device.update(job_id, "SUCCEEDED"), gap)
            assert response.execution_state is None or response.execution_state.status == "SUCCEEDED"
            update_samples.append(ms)
        results["start_next_pending_job_execution" + suffix] = summarize(start_samples)
        results["update_job_execution" + suffix] = summarize(update_samples)
        for kind in COMMANDS:
            log(f"  {label:7} {kind + suffix:40} {fmt_latency(results[kind + suffix])}")

    with connected([device]):
        run_pass(n, 0.0, "")
        run_pass(n_paced, PACED_GAP_S, "_paced")
        results["events_received"] = device.events
        if real:
            left = device.get_pending().result(30)
            assert not left.in_progress_jobs and len(left.queued_jobs) == 3, left
    return results


COMMANDS = (
    "get_pending_job_executions",
    "describe_job_execution",
    "start_next_pending_job_execution",
    "update_job_execution",
)


def fmt_latency(s: dict[str, float]) -> str:
    return f"median {s['median_ms']:7.2f} ms   p99 {s['p99_ms']:7.2f} ms   (n={s['n']})"
