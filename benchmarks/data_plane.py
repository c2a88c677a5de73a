#!/usr/bin/env python3
"""Data-plane benchmark of the local IoT Jobs service (``iot-jobs-local``) as devices see it.

Run: ``.venv/bin/python benchmarks/data_plane.py [--quick] [--json PATH]``

It starts everything it needs in a temporary directory on free ports and stops all of it at the end
(also on error or Ctrl-C):

* the service: ``python -m iot_jobs_local --state-dir TMP serve`` (which starts its own Mosquitto);
* a second, plain Mosquitto with the service's generated config on other ports, and
  ``echo_responder.py`` (a stateless paho-mqtt responder) on its service listener: the baseline.

(a) Latency, one device, SDK defaults (``mqtt5_client_builder.mtls_from_path`` with only the port
    set, so the builder's default AWS IoT Core flow control is on), ``IotJobsClientV2`` with the
    REPL's options and its two event streams open, like ``iot-jobs`` itself. Each of the four REPL
    data-plane commands runs N times back to back; median and p99 are reported. Then each runs
    min(N, 50) times with a 100 ms pause before every request (what a person at the REPL sees), and
    the same two passes run against the echo responder for reference.
(b) Throughput, 50 devices (50 provisioned things, 50 TLS connections, flow control NONE), each
    keeping a window of requests in flight for a fixed time, against the service and against the
    echo responder on the second broker, in alternating rounds (ABBA order; medians reported).
    Reported: requests/s, service/echo, CPU time per request of every process involved.

See benchmarks/README.md for what each figure means and the results on the reference machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procstat import CLK_TCK, cpu_seconds, die_with_parent, free_port

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
JOB_DOCUMENT = {"operation": "benchmark", "n": 0}


# ------------------------------------------------------------------------------------------------
# processes


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(p) for p in handle.read().split()]
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Children:
    """Every process the benchmark starts, stopped in reverse order by pid."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._adopted: list[tuple[str, int, str]] = []  # grandchildren: (name, pid, cmdline at adoption)

    def start(self, name: str, argv: list[str], log: Path, tied: bool = True) -> subprocess.Popen[bytes]:
        """Start a child; ``tied`` children die with the benchmark (needs fork before any CRT thread)."""
        extra: dict[str, Any] = {"preexec_fn": die_with_parent} if tied else {"start_new_session": True}
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **extra)
        self._procs.append((name, proc))
        return proc

    def adopt(self, name: str, pid: int) -> None:
        """Remember a grandchild (the service's Mosquitto) so it is stopped even if the service is not."""
        self._adopted.append((name, pid, cmdline(pid)))

    def stop_all(self) -> None:
        for name, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    print(f"  {name} (pid {proc.pid}) ignored SIGTERM; killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        for name, pid, line in self._adopted:
            if line and cmdline(pid) == line:  # still the same process: it outlived its parent
                print(f"  {name} (pid {pid}) outlived its parent; stopping it", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if cmdline(pid) != line:
                        break
                    time.sleep(0.05)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        self._procs.clear()
        self._adopted.clear()


def wait_for_line(proc: subprocess.Popen[bytes], log: Path, marker: str, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if marker in line:
                return line
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before it was ready:\n{text[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not open port {port} within {timeout} s")


# ------------------------------------------------------------------------------------------------
# environment: service, echo broker, echo responder


@dataclass
class Env:
    tmp: Path
    state: Path
    mqtt_port: int
    http_port: int
    service_pid: int
    service_broker_pid: int
    echo_device_port: int = 0
    echo_pid: int = 0
    echo_broker_pid: int = 0
    credentials: dict[str, str] = field(default_factory=dict)

    def device_files(self, thing: str) -> tuple[str, str]:
        d = self.state / "devices" / thing
        return str(d / "device.crt"), str(d / "device.key")

    @property
    def ca(self) -> str:
        return str(self.state / "pki" / "ca.crt")


def service_source() -> dict[str, Any]:
    """Which ``iot_jobs_local`` the service runs (the same interpreter and environment as this script)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("iot_jobs_local")
    if spec is None or spec.origin is None:
        raise RuntimeError("iot_jobs_local is not importable; run with the project's venv")
    package = Path(spec.origin).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    info: dict[str, Any] = {"package": str(package), "sources_sha256": digest.hexdigest()[:16]}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            info["git_head"] = head.stdout.strip()
            info["uncommitted_changes"] = bool(dirty.stdout.strip())
    return info


def provision(state: Path, things: list[str], parallel: int = 4) -> None:
    """Register each thing and issue its certificate with ``iot-jobs-local provision`` (the CLI)."""

    def run(thing: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state), "provision", thing],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def check(thing: str, proc: subprocess.Popen[bytes]) -> None:
        output = proc.communicate()[0]
        if proc.returncode != 0:
            raise RuntimeError(f"provisioning {thing} failed ({proc.returncode}):\n{output.decode(errors='replace')}")

    rest = things[1:]
    batches = [[things[0]]] + [rest[i : i + parallel] for i in range(0, len(rest), parallel)]
    for names in batches:  # the first batch (one thing) creates the CA and the database alone
        batch = [(thing, run(thing)) for thing in names]
        try:
            for thing, proc in batch:
                check(thing, proc)
        finally:  # interrupted or failed: no provisioning process outlives this call
            for _thing, proc in batch:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def start_service(children: Children, tmp: Path, state: Path) -> Env:
    mqtt_port, http_port = free_port(), free_port()
    log = tmp / "service.log"
    proc = children.start(
        "service",
        [
            sys.executable,
            "-m",
            "iot_jobs_local",
            "--state-dir",
            str(state),
            "serve",
            "--mqtt-port",
            str(mqtt_port),
            "--http-port",
            str(http_port),
            "--log-level",
            "WARNING",
        ],
        log,
    )
    wait_for_line(proc, log, "iot-jobs-local ready:", 30, "the service")
    brokers = [p for p in child_pids(proc.pid) if "mosquitto" in cmdline(p)]
    if len(brokers) != 1:
        raise RuntimeError(f"expected one Mosquitto child of the service, found {brokers}")
    children.adopt("service's Mosquitto", brokers[0])
    creds = json.loads((state / "credentials.json").read_text())
    return Env(tmp, state, mqtt_port, http_port, proc.pid, brokers[0], credentials=creds)


def start_echo(children: Children, env: Env, request_qos: int) -> None:
    """A second Mosquitto from the service's generated config (other ports), plus the echo responder."""
    conf = (env.state / "broker" / "mosquitto.conf").read_text()
    device_port, service_port = free_port(), free_port()
    ports = iter([device_port, service_port])
    conf, count = re.subn(r"^listener \d+", lambda _m: f"listener {next(ports)}", conf, flags=re.M)
    if count != 2:
        raise RuntimeError(f"expected two listener lines in the service's mosquitto.conf, found {count}")
    echo_dir = env.tmp / "echo-broker"
    echo_dir.mkdir()
    (echo_dir / "mosquitto.conf").write_text(conf)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = children.start(
        "echo Mosquitto", [mosquitto, "-c", str(echo_dir / "mosquitto.conf")], echo_dir / "mosquitto.log"
    )
    wait_for_port(device_port, 10, "echo Mosquitto")
    wait_for_port(service_port, 10, "echo Mosquitto")
    password_file = echo_dir / "password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(env.credentials["brokerPassword"])
    log = env.tmp / "echo.log"
    responder = children.start(
        "echo responder",
        [
            sys.executable,
            str(HERE / "echo_responder.py"),
            "--port",
            str(service_port),
            "--username",
            "jobs-service",
            "--password-file",
            str(password_file),
            "--request-qos",
            str(request_qos),
        ],
        log,
    )
    wait_for_line(responder, log, "echo ready", 15, "the echo responder")
    env.echo_device_port, env.echo_pid, env.echo_broker_pid = device_port, responder.pid, broker.pid


# ------------------------------------------------------------------------------------------------
# devices


class Device:
    """One MQTT5 connection (awsiot builder, mutual TLS) and its IotJobsClientV2."""

    def __init__(self, env: Env, thing: str, port: int, client_id: str, flow_control: bool, streams: bool) -> None:
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        self.thing = thing
        self._connected: Future[None] = Future()
        self._stopped = threading.Event()
        cert, key = env.device_files(thing)
        kwargs: dict[str, Any] = {
            "endpoint": "localhost",
            "port": port,
            "cert_filepath": cert,
            "pri_key_filepath": key,
            "ca_filepath": env.ca,
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


# ------------------------------------------------------------------------------------------------
# statistics


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


# ------------------------------------------------------------------------------------------------
# (a) latency


def iot_client(env: Env) -> Any:
    import boto3

    return boto3.client(
        "iot",
        endpoint_url=f"http://127.0.0.1:{env.http_port}",
        region_name=REGION,
        aws_access_key_id=env.credentials["accessKeyId"],
        aws_secret_access_key=env.credentials["secretAccessKey"],
    )


def create_jobs(iot: Any, prefix: str, count: int, thing_arns: list[str]) -> list[str]:
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    for job_id in ids:
        iot.create_job(jobId=job_id, targets=thing_arns, document=json.dumps(JOB_DOCUMENT))
    return ids


OTHER_CPU_WARN_PCT = 20  # CPU not used by the measured processes (other sessions' work) that spoils a run
PACED_GAP_S = 0.1  # the pause before each request in the "paced" pass (a person typing is far slower)


def latency_phase(
    env: Env, iot: Any, thing: str, port: int, label: str, n: int, n_paced: int, log: Callable[[str], None],
    service: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """The four REPL commands on one device with the SDK's default settings.

    First each command runs ``n`` times back to back (the figure the target applies to); then
    ``n_paced`` times with a ``PACED_GAP_S`` pause before every request, which is what a person at the
    REPL gets (the SDK's token bucket is full and no earlier packet is still waiting for an ACK).

    Against the service (``service=True``) the jobs are real: get-pending lists 3 queued jobs, describe
    reads the first of them; then ``count`` jobs are created and each start-next takes the next queued
    job, which update then completes (3 jobs stay queued for the next pass).
    Against the echo responder the same calls are made; its replies are canned.
    """
    arn = iot.describe_thing(thingName=thing)["thingArn"]
    if service:
        create_jobs(iot, f"lat-queued-{label}", 3, [arn])
    device = Device(env, thing, port, f"bench-{label}-{thing}", flow_control=True, streams=True)
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
            assert not service or len(response.queued_jobs) == 3, response.queued_jobs
            samples.append(ms)
        results["get_pending_job_executions" + suffix] = summarize(samples)

        target = response.queued_jobs[0].job_id if service else "echo-job"
        samples = []
        for _ in range(count):
            ms, response = measure(lambda: device.describe(target), gap)
            assert response.execution.job_id == target and response.execution.job_document == JOB_DOCUMENT
            samples.append(ms)
        results["describe_job_execution" + suffix] = summarize(samples)

        if service:  # work for start-next; it takes the 3 older queued jobs first, so 3 new ones stay queued
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
        if service:
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


# ------------------------------------------------------------------------------------------------
# (b) throughput


class LoadGenerator:
    """Each device keeps ``window`` requests in flight; a completion issues the next request."""

    def __init__(self, devices: list[Device], request: Callable[[Device], Future[Any]], window: int) -> None:
        self._devices = devices
        self._request = request
        self._window = window
        self._lock = threading.Lock()
        self._stopping = False
        self._outstanding = 0
        self.completions: list[tuple[float, float, bool]] = []  # (time done, latency s, ok)
        self.errors: list[str] = []
        self._drained = threading.Event()

    def _issue(self, device: Device) -> None:
        with self._lock:
            if self._stopping:
                return
            self._outstanding += 1
        started = time.perf_counter()
        try:
            future = self._request(device)
        except Exception as exc:  # the device is gone (stopping): count it, end this device's chain
            self._done(device, started, None, exc, reissue=False)
            return
        future.add_done_callback(lambda f: self._done(device, started, f, None))

    def _done(
        self,
        device: Device,
        started: float,
        future: Future[Any] | None,
        exc: BaseException | None,
        reissue: bool = True,
    ) -> None:
        now = time.perf_counter()
        if exc is None and future is not None:
            exc = future.exception()
        ok = exc is None
        self.completions.append((now, now - started, ok))
        if not ok and len(self.errors) < 20:
            self.errors.append(repr(exc))
        with self._lock:
            self._outstanding -= 1
            stopping = self._stopping
            if stopping and self._outstanding == 0:
                self._drained.set()
        if reissue and not stopping:
            self._issue(device)

    def _stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._outstanding == 0:
                self._drained.set()

    def run(self, warmup: float, duration: float, cpu_pids: dict[str, int]) -> dict[str, Any]:
        try:
            for device in self._devices:
                for _ in range(self._window):
                    self._issue(device)
            time.sleep(warmup)
            cpu0 = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
            busy0, total0 = machine_cpu()
            t0 = time.perf_counter()
            time.sleep(duration)
            t1 = time.perf_counter()
            cpu1 = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
            busy1, total1 = machine_cpu()
        finally:  # also on Ctrl-C/SIGTERM: issue nothing more, so the devices can be stopped
            self._stop()
        drained = self._drained.wait(30)
        window = [c for c in self.completions if t0 <= c[0] < t1]
        ok = [c for c in window if c[2]]
        latencies = [c[1] * 1000.0 for c in ok]
        rate = len(ok) / (t1 - t0)
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu_pids}
        # everything else: the kernel's own work (softirq, loopback) and other processes on the machine
        cpu["other"] = max(0.0, (busy1 - busy0) / CLK_TCK - sum(cpu.values()))
        cpu["machine"] = (busy1 - busy0) / CLK_TCK
        machine_pct = 100 * (busy1 - busy0) / max(1, total1 - total0)  # of all CPUs together
        return {
            "devices": len(self._devices),
            "window_per_device": self._window,
            "seconds": round(t1 - t0, 3),
            "completed": len(ok),
            "errors_in_window": len(window) - len(ok),
            "errors_total": sum(1 for c in self.completions if not c[2]),
            "error_samples": self.errors[:5],
            "drained": drained,
            "requests_per_s": round(rate, 1),
            "latency_under_load": summarize(latencies) if latencies else None,
            "cpu_seconds": {name: round(v, 3) for name, v in cpu.items()},
            "cpu_utilisation_pct": {name: round(100 * v / (t1 - t0), 1) for name, v in cpu.items()},
            "cpu_ms_per_request": {name: round(1000 * v / len(ok), 4) if ok else None for name, v in cpu.items()},
            "machine_busy_pct_of_all_cpus": round(machine_pct, 1),
        }


def throughput_target(
    env: Env,
    things: list[str],
    port: int,
    describe_job: str,
    label: str,
    window: int,
    warmup: float,
    duration: float,
    cpu_pids: dict[str, int],
    log: Callable[[str], None],
    profile: tuple[Children, int, Path] | None = None,
) -> dict[str, Any]:
    devices = [Device(env, t, port, f"bench-{label}-{t}", flow_control=False, streams=False) for t in things]
    out: dict[str, Any] = {}
    with connected(devices):
        for device in devices:  # sanity: the target answers both request kinds for every device
            device.get_pending().result(15)
            device.describe(describe_job).result(15)
        spy = None
        if profile is not None:  # py-spy on the target process for the whole load period
            children, pid, path = profile
            spy = children.start(
                "py-spy",
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--idle",
                    "--format",
                    "raw",
                    "--output",
                    str(path),
                ],
                path.with_suffix(".log"),
                tied=False,
            )
            time.sleep(1.0)
        for kind, request in (
            ("get_pending_job_executions", lambda d: d.get_pending()),
            ("describe_job_execution", lambda d: d.describe(describe_job)),
        ):
            result = LoadGenerator(devices, request, window).run(warmup, duration, cpu_pids)
            out[kind] = result
            log(
                f"  {label:7} {kind:28} {result['requests_per_s']:9.1f} req/s"
                f"   (errors {result['errors_total']}, cpu {fmt_cpu(result)})"
            )
            time.sleep(0.5)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    return out


def summarize_throughput(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per request kind: the median over rounds of each target's rate, CPU cost and latency under load."""
    out: dict[str, Any] = {}
    for kind in rounds[0]["service"]:
        entry: dict[str, Any] = {}
        for target, process in (("service", "service"), ("echo", "echo")):
            runs = [r[target][kind] for r in rounds]
            entry[target] = {
                "requests_per_s": round(statistics.median(x["requests_per_s"] for x in runs), 1),
                "requests_per_s_rounds": [x["requests_per_s"] for x in runs],
                "errors": sum(x["errors_total"] for x in runs),
                "cpu_ms_per_request": {
                    name: round(statistics.median(x["cpu_ms_per_request"][name] or 0 for x in runs), 4)
                    for name in (process, "mosquitto", "loadgen", "other", "machine")
                },
                "cpu_utilisation_pct": {
                    name: round(statistics.median(x["cpu_utilisation_pct"][name] for x in runs), 1)
                    for name in (process, "mosquitto", "loadgen", "other", "machine")
                },
                "latency_under_load_median_ms": round(
                    statistics.median(x["latency_under_load"]["median_ms"] for x in runs if x["latency_under_load"]), 1
                ),
                "latency_under_load_p99_ms": round(
                    statistics.median(x["latency_under_load"]["p99_ms"] for x in runs if x["latency_under_load"]), 1
                ),
            }
        entry["ratio_rounds"] = [
            round(r["service"][kind]["requests_per_s"] / max(r["echo"][kind]["requests_per_s"], 1e-9), 3)
            for r in rounds
        ]
        # The machine's speed drifts between rounds, so the headline ratio is the median of the
        # per-round ratios (service and echo measured back to back), not the ratio of the medians.
        entry["ratio_service_over_echo"] = round(statistics.median(entry["ratio_rounds"]), 3)
        entry["ratio_of_medians"] = round(
            entry["service"]["requests_per_s"] / max(entry["echo"]["requests_per_s"], 1e-9), 3
        )
        out[kind] = entry
    return out


def fmt_cpu(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}%" for k, v in result["cpu_utilisation_pct"].items())


# ------------------------------------------------------------------------------------------------
# main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N=30 latency samples, one round of 3 s throughput runs")
    parser.add_argument("-n", type=int, default=None, help="latency samples per command (default 200; 30 quick)")
    parser.add_argument("--devices", type=int, default=50, help="simulated devices for throughput (default 50)")
    parser.add_argument("--window", type=int, default=16, help="requests in flight per device (default 16)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per throughput run (default 10; 3 quick)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of load before counting (default 2; 1 quick)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="throughput rounds, alternating which target goes first; medians are reported (default 3; 1 quick)",
    )
    parser.add_argument(
        "--echo-request-qos",
        type=int,
        choices=(0, 1),
        default=0,
        help="QoS of the echo responder's request subscription (default 0, the cheapest)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help="record the service with py-spy (collapsed stacks) during its throughput runs; "
        "sampling slows the service, so do not quote that run's figures",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    parser.add_argument(
        "--no-latency-baseline", action="store_true", help="skip (a) against the echo responder (reference only)"
    )
    parser.add_argument("--skip-latency", action="store_true", help="skip (a)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip (b)")
    args = parser.parse_args()
    n = args.n or (30 if args.quick else 200)
    n_paced = min(n, 50)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.rounds = args.rounds or (1 if args.quick else 3)

    def log(message: str) -> None:
        print(message, flush=True)

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)

    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="iot-jobs-bench-"))
    state = tmp / "state"
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "n": n,
            "n_paced": n_paced,
            "paced_gap_s": PACED_GAP_S,
            "devices": args.devices,
            "window": args.window,
            "duration_s": duration,
            "warmup_s": warmup,
            "rounds": args.rounds,
            "echo_request_qos": args.echo_request_qos,
        },
    }
    try:
        import awscrt
        import awsiot  # noqa: F401

        results["machine"]["awscrt"] = getattr(awscrt, "__version__", "?")
        results["service_source"] = source = service_source()
        log(f"service code: {source}")
        things = [f"bench-dev-{i:02d}" for i in range(args.devices)]
        latency_thing = "bench-latency"
        log(f"setting up in {tmp}: provisioning {len(things) + 1} things ...")
        provision(state, [latency_thing, *things])
        # Start every child process before the first awscrt client exists (no fork with CRT threads running).
        env = start_service(children, tmp, state)
        log(
            f"service pid {env.service_pid} (Mosquitto pid {env.service_broker_pid}): "
            f"mqtts://localhost:{env.mqtt_port}, http://127.0.0.1:{env.http_port}"
        )
        need_echo = not args.skip_throughput or not (args.skip_latency or args.no_latency_baseline)
        if need_echo:
            start_echo(children, env, args.echo_request_qos)
            log(
                f"echo responder pid {env.echo_pid} on a second Mosquitto (pid {env.echo_broker_pid}), "
                f"device port {env.echo_device_port}"
            )
        iot = iot_client(env)

        if not args.skip_latency:
            log(f"\n(a) latency, 1 device, SDK defaults (flow control on), {n} sequential requests each")
            results["latency"] = latency_phase(env, iot, latency_thing, env.mqtt_port, "service", n, n_paced, log)
            if need_echo and not args.no_latency_baseline:
                results["latency_echo_baseline"] = latency_phase(
                    env, iot, latency_thing, env.echo_device_port, "echo", n, n_paced, log, service=False
                )

        if not args.skip_throughput:
            log(
                f"\n(b) throughput, {len(things)} devices x {args.window} in flight, flow control NONE, "
                f"{duration:g} s per run after {warmup:g} s warm-up"
            )
            arns = [iot.describe_thing(thingName=t)["thingArn"] for t in things]
            (describe_job,) = create_jobs(iot, "tp-describe", 1, arns)
            targets = {
                "service": (env.mqtt_port, {"service": env.service_pid, "mosquitto": env.service_broker_pid}),
                "echo": (env.echo_device_port, {"echo": env.echo_pid, "mosquitto": env.echo_broker_pid}),
            }
            rounds: list[dict[str, Any]] = []
            for r in range(args.rounds):
                order = ["service", "echo"] if r % 2 == 0 else ["echo", "service"]  # ABBA: no order bias
                log(f"  round {r + 1}/{args.rounds}")
                this: dict[str, Any] = {"order": order}
                for label in order:
                    port, pids = targets[label]
                    profiling = args.profile is not None and label == "service" and r == 0
                    this[label] = throughput_target(
                        env, things, port, describe_job, label, args.window, warmup, duration,
                        {**pids, "loadgen": os.getpid()}, log,
                        (children, env.service_pid, args.profile.resolve()) if profiling else None,
                    )  # fmt: skip
                rounds.append(this)
            results["throughput"] = {"rounds": rounds, "summary": summarize_throughput(rounds)}
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        children.stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"\nwrote {args.json}")
    return 0


def print_summary(results: dict[str, Any]) -> None:
    print("\n" + "=" * 78)
    print(
        f"SUMMARY   ({results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"awscrt {results['machine'].get('awscrt')})"
    )
    print("=" * 78)
    latency = results.get("latency")
    if latency:
        baseline = results.get("latency_echo_baseline")
        settings = results["settings"]
        print(
            f"(a) latency, 1 device, SDK defaults (flow control on); back to back x{settings['n']}, "
            f"paced ({1000 * settings['paced_gap_s']:g} ms pause) x{settings['n_paced']}"
        )
        print(
            "                                       back to back: median     p99  <=30ms?   paced: median     p99"
            + ("   | echo b2b: median  paced" if baseline else "")
        )
        for kind in COMMANDS:
            s, p = latency[kind], latency[kind + "_paced"]
            verdict = "ok    " if s["median_ms"] <= 30 else "MISSED"
            line = (
                f"    {kind:32}  {s['median_ms']:7.2f} ms {s['p99_ms']:7.2f}  {verdict}"
                f"        {p['median_ms']:7.2f} ms {p['p99_ms']:7.2f}"
            )
            if baseline:
                line += f"   |   {baseline[kind]['median_ms']:7.2f} ms {baseline[kind + '_paced']['median_ms']:7.2f} ms"
            print(line)
    tp = results.get("throughput")
    if tp:
        settings = results["settings"]
        print(
            f"(b) throughput, {settings['devices']} devices x {settings['window']} in flight, flow control NONE, "
            f"median of {settings['rounds']} round(s) of {settings['duration_s']:g} s"
        )
        print(
            "                                       service/s     echo/s   ratio*  target >= 0.60   (ratio per round)"
        )
        for kind, entry in tp["summary"].items():
            ratio = entry["ratio_service_over_echo"]
            verdict = "ok    " if ratio >= 0.6 else "MISSED"
            print(
                f"    {kind:32} {entry['service']['requests_per_s']:9.1f} {entry['echo']['requests_per_s']:10.1f}"
                f"   {ratio:5.2f}   {verdict}           ({', '.join(f'{x:.2f}' for x in entry['ratio_rounds'])})"
            )
        print("    * median of the per-round ratios (rates: medians over the rounds; machine speed drifts)")
        print(
            "    CPU ms per request [% of one CPU]:   responder       mosquitto       loadgen         "
            "other (kernel, other processes)   whole machine"
        )
        for kind, entry in tp["summary"].items():
            for target, process in (("service", "service"), ("echo", "echo")):
                per, pct = entry[target]["cpu_ms_per_request"], entry[target]["cpu_utilisation_pct"]
                cells = "  ".join(
                    f"{per[name]:6.3f} [{pct[name]:5.1f}]"
                    for name in (process, "mosquitto", "loadgen", "other", "machine")
                )
                print(f"      {target:7} {kind:27} {cells}")
        disturbed = [
            f"{target} {kind} round {i + 1}: {r[target][kind]['cpu_utilisation_pct']['other']:.0f}%"
            for i, r in enumerate(tp["rounds"])
            for kind in tp["summary"]
            for target in ("service", "echo")
            if r[target][kind]["cpu_utilisation_pct"]["other"] > OTHER_CPU_WARN_PCT
        ]
        if disturbed:
            print(
                f"    WARNING: other processes used > {OTHER_CPU_WARN_PCT}% of a CPU during: {'; '.join(disturbed)}."
                " Those rates are disturbed; rerun on a quiet machine."
            )
        print("    latency under load (median / p99):")
        for kind, entry in tp["summary"].items():
            for target in ("service", "echo"):
                e = entry[target]
                print(
                    f"      {target:7} {kind:27} {e['latency_under_load_median_ms']:7.1f} ms / "
                    f"{e['latency_under_load_p99_ms']:7.1f} ms   errors: {e['errors']}"
                )


if __name__ == "__main__":
    sys.exit(main())
