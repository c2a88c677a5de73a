#!/usr/bin/env python3
"""Control-plane benchmark of the local IoT Jobs service (``iot-jobs-local``) as boto3 sees it.

Run: ``.venv/bin/python benchmarks/control_plane.py [--quick] [--json PATH]``

It starts everything it needs in a temporary directory on free ports and stops all of it at the end
(also on error or Ctrl-C): the service (``python -m iot_jobs_local --state-dir TMP serve``, which
starts its own Mosquitto), and ``empty_http_server.py`` once per baseline.

(a) Requests per second of CreateThing, CreateJob (one thing target each) and DescribeJob, from one
    boto3 client calling back to back, and from 8 threads of this process with a client each.
    The same calls go, with the same clients, to do-nothing servers (``empty_http_server.py``):
    ``raw`` answers ``{}`` (what the client alone costs), ``ceiling`` answers each operation with a
    body like the service's (what the client costs parsing real answers: the best rate any server
    could reach; the report gives the service's rate as a share of it), and with ``--aiohttp`` an
    empty aiohttp handler (the web framework the service used until 7942d4f); with ``--ministack
    COMMAND``, MiniStack itself, the emulator the targets cite (``pip install ministack`` into a
    virtual environment of its own, then ``--ministack VENV/bin/ministack``). Also reported: CPU
    milliseconds per request of the server process and of this (client) process, from /proc.
(b) A SNAPSHOT job on a thing group of 10,000 things, on a fresh service holding only those things:
    the CreateJob call's latency; the time from the call until DescribeJob reports every thing
    QUEUED and until a subscriber has received both events (``notify`` and ``notify-next``) of
    every thing. The subscriber is a paho-mqtt MQTT5 client with a certificate made through the
    API (CreateKeysAndCertificate, CreatePolicy allowing iot:Receive on
    ``$aws/things/*/jobs/notify*``, AttachPolicy): it receives the events through the broker's
    ACL exactly as a device would. Then the service process's RSS (VmRSS, VmHWM) from /proc.

``--compare SRC`` also runs the service from another source tree (``git worktree add`` of an earlier
commit, then ``--compare WORKTREE/src``) as one more column, in the same interleaved rounds: the
speed of a shared 2-vCPU machine drifts by tens of per cent between runs, so before/after figures
are only comparable within one run. ``--profile DIR`` records py-spy profiles of the service under
each load after the measured rounds.

See benchmarks/README.md ("Control plane") for the results on the reference machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from procstat import CLK_TCK, cpu_seconds, die_with_parent, free_port

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
THREADS = 8
DOCUMENT = json.dumps({"operation": "benchmark"})
#: The targets of the issue, next to which the figures are printed.
TARGETS = {"CreateThing": 1200.0, "CreateJob": 700.0, "DescribeJob": 1200.0}
MINISTACK = {"CreateThing": 1208.0, "CreateJob": 594.0, "DescribeJob": 1010.0}
FANOUT_CREATE_TARGET = 0.5
FANOUT_DONE_TARGET = 3.0
RSS_TARGET_MB = 150.0


# ------------------------------------------------------------------------------------------------
# processes


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of all its descendants still running (the service and its Mosquitto)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile of a process, in KiB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[name] = int(value.split()[0])
    return out


class Child:
    """A child process whose output goes to ``log``; ``start`` returns once it printed a line
    starting with ``ready``, or (``ready`` None) once ``port`` on 127.0.0.1 accepts connections."""

    def __init__(
        self, command: list[str], log: Path, ready: str | None, env: dict[str, str] | None = None, port: int = 0
    ) -> None:
        self.command = command
        self._env = env or {}
        self.log = log
        self._ready = ready
        self._port = port
        self.process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        ready = threading.Event()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self._env},
            preexec_fn=die_with_parent,
        )
        process = self.process

        def copy() -> None:
            assert process.stdout is not None
            with open(self.log, "a", encoding="utf-8") as log:
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    if self._ready is not None and line.startswith(self._ready):
                        ready.set()
            ready.set()

        def listening() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self._port), 0.5):
                    ready.set()
                    return
                time.sleep(0.05)

        threading.Thread(target=copy, daemon=True).start()
        if self._ready is None:
            threading.Thread(target=listening, daemon=True).start()
        if not ready.wait(timeout) or process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.command[:3]} did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class Service:
    child: Child
    state_dir: Path
    http_port: int
    mqtt_port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def credentials(self) -> tuple[str, str]:
        stored = json.loads((self.state_dir / "credentials.json").read_text())
        return stored["accessKeyId"], stored["secretAccessKey"]


@contextlib.contextmanager
def running_service(directory: Path, source: Path | None = None) -> Iterator[Service]:
    """The service from this checkout, or from the ``src`` directory ``source`` (another commit's)."""
    directory.mkdir(parents=True)
    http_port, mqtt_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "iot_jobs_local", "--state-dir", str(directory / "state"), "serve",
        "--mqtt-port", str(mqtt_port), "--http-port", str(http_port),
    ]  # fmt: skip
    env = {"PYTHONPATH": str(source)} if source is not None else None
    child = Child(command, directory / "service.log", "iot-jobs-local ready:", env)
    try:
        child.start()
        yield Service(child, directory / "state", http_port, mqtt_port)
    finally:
        child.stop()


@contextlib.contextmanager
def empty_server(directory: Path, kind: str) -> Iterator[tuple[str, Child]]:
    port = free_port()
    command = [sys.executable, str(HERE / "empty_http_server.py"), "--port", str(port), "--kind", kind]
    child = Child(command, directory / f"empty-{kind}.log", "ready")
    try:
        child.start()
        yield f"http://127.0.0.1:{port}", child
    finally:
        child.stop()


@contextlib.contextmanager
def ministack_server(directory: Path, command: str) -> Iterator[tuple[str, Child]]:
    """MiniStack (``pip install ministack``, best in a virtual environment of its own), the emulator
    whose figures the targets cite, on a free port and with our account id in its ARNs."""
    port = free_port()
    env = {"GATEWAY_PORT": str(port), "MINISTACK_ACCOUNT_ID": ACCOUNT, "LOG_LEVEL": "WARNING"}
    child = Child([command], directory / "ministack.log", None, env, port)
    try:
        child.start()
        yield f"http://127.0.0.1:{port}", child
    finally:
        child.stop()


# ------------------------------------------------------------------------------------------------
# clients and rates


def iot_client(endpoint: str, credentials: tuple[str, str]) -> Any:
    """A boto3 ``iot`` client of its own session (boto3 sessions are not thread-safe), no retries."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "iot",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60),
    )


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


@dataclass
class Rate:
    operation: str
    threads: int
    requests: int
    seconds: float
    server_cpu_ms: float  # per request
    client_cpu_ms: float  # per request
    #: CPUs' worth of work done meanwhile by processes other than the client and the server's tree.
    foreign_load: float = 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


Call = Callable[[Any, int], None]


def wait_for_quiet(limit: float = 120.0, window: float = 0.5) -> None:
    """Wait (at most ``limit`` seconds) for a ``window`` during which the machine is nearly idle.

    Called between measurements, when neither the client nor the servers work: any load then is
    another program's, which would slow down whatever is measured next.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = machine_busy_seconds()
        time.sleep(window)
        if (machine_busy_seconds() - before) / window <= MAX_FOREIGN_LOAD:
            return


#: Measurements during which other processes kept more than this share of a CPU busy are repeated.
MAX_FOREIGN_LOAD = 0.1
MAX_TRIES = 4


def measure(
    operation: str, call: Call, clients: list[Any], seconds: float, server_pid: int, counter: Iterator[int]
) -> Rate:
    """``_measure_once``, repeated (up to ``MAX_TRIES`` times) while something else loaded the machine."""
    for _ in range(MAX_TRIES):
        wait_for_quiet()
        rate = _measure_once(operation, call, clients, seconds, server_pid, counter)
        if rate.foreign_load <= MAX_FOREIGN_LOAD:
            break
        print(f"  {operation} x{len(clients)}: other processes used {rate.foreign_load:.2f} CPU; again",
              file=sys.stderr, flush=True)  # fmt: skip
    return rate


def _measure_once(
    operation: str, call: Call, clients: list[Any], seconds: float, server_pid: int, counter: Iterator[int]
) -> Rate:
    """Every client calls ``call(client, unique index)`` back to back, each on its own thread, for ``seconds``."""
    threads = len(clients)
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    failures: list[BaseException] = []
    deadline = [0.0]

    def work(slot: int) -> None:
        client = clients[slot]
        barrier.wait()
        done = 0
        try:
            while time.perf_counter() < deadline[0]:
                call(client, next(counter))
                done += 1
        except BaseException as exc:  # reported below, on the main thread
            failures.append(exc)
        counts[slot] = done

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    tree_before, machine_before = tree_cpu_seconds(server_pid), machine_busy_seconds()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    server_cpu, client_cpu = cpu_seconds(server_pid) - server_before, time.process_time() - client_before
    ours = tree_cpu_seconds(server_pid) - tree_before + client_cpu
    foreign = max(0.0, machine_busy_seconds() - machine_before - ours) / elapsed
    if failures:
        raise RuntimeError(f"{operation} failed: {failures[0]!r}") from failures[0]
    total = sum(counts)
    return Rate(operation, threads, total, elapsed, 1000 * server_cpu / total, 1000 * client_cpu / total, foreign)


@dataclass
class Workload:
    """The three calls, over things and jobs that the earlier calls created (on the service)."""

    run: str
    things: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def create_thing(self, client: Any, i: int) -> None:
        name = f"{self.run}-t{i}"
        client.create_thing(thingName=name)
        with self.lock:
            self.things.append(name)

    def create_job(self, client: Any, i: int) -> None:
        job_id = f"{self.run}-j{i}"
        target = self.things[i % len(self.things)]
        client.create_job(jobId=job_id, targets=[thing_arn(target)], document=DOCUMENT)
        with self.lock:
            self.jobs.append(job_id)

    def describe_job(self, client: Any, i: int) -> None:
        client.describe_job(jobId=self.jobs[i % len(self.jobs)])


OPERATIONS = ("CreateThing", "CreateJob", "DescribeJob")


@dataclass
class Target:
    """One server under test, with its clients and the things and jobs created on it so far."""

    name: str
    pid: int
    workload: Workload
    one: list[Any]
    many: list[Any]

    def call(self, operation: str) -> Call:
        return {
            "CreateThing": self.workload.create_thing,
            "CreateJob": self.workload.create_job,
            "DescribeJob": self.workload.describe_job,
        }[operation]


def prepare(name: str, endpoint: str, credentials: tuple[str, str], pid: int, counter: Iterator[int]) -> Target:
    """Clients (one, and one per thread), warmed up: a thing and a job exist, each client called once."""
    workload = Workload(name)
    target = Target(name, pid, workload, [iot_client(endpoint, credentials)],
                    [iot_client(endpoint, credentials) for _ in range(THREADS)])  # fmt: skip
    clients = [*target.one, *target.many]
    for client in clients:
        workload.create_thing(client, next(counter))
    for client in clients:
        workload.create_job(client, next(counter))
    for client in clients:
        workload.describe_job(client, 0)
    return target


def rates(targets: list[Target], seconds: float, rounds: int, counter: Iterator[int]) -> dict[str, list[Rate]]:
    """Each operation sequentially (one client) then from ``THREADS`` threads, on each target in turn,
    ``rounds`` times over (interleaved, so that a noisy moment of the machine hits every target);
    for each figure the round with the median rate is kept."""
    measured: dict[tuple[str, str, int], list[Rate]] = {}
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds} ...", file=sys.stderr, flush=True)
        for operation in OPERATIONS:
            for threads in (1, THREADS):
                for target in targets:
                    clients = target.one if threads == 1 else target.many
                    rate = measure(operation, target.call(operation), clients, seconds, target.pid, counter)
                    measured.setdefault((target.name, operation, threads), []).append(rate)
    out: dict[str, list[Rate]] = {}
    for (name, _, _), found in measured.items():
        ranked = sorted(found, key=lambda r: r.per_second)
        out.setdefault(name, []).append(ranked[len(ranked) // 2])
    return out


def profile(target: Target, directory: Path, seconds: float, counter: Iterator[int]) -> None:
    """Record ``py-spy`` profiles (raw collapsed stacks, idle samples included) of the server under each load.

    Apart from the measured rounds: sampling slows the server down. Summarise a file with
    ``benchmarks/profile_summary.py`` or load it into a flame graph viewer.
    """
    import shutil

    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if spy is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    directory.mkdir(parents=True, exist_ok=True)
    for operation in OPERATIONS:
        for threads in (1, THREADS):
            path = directory / f"{operation}-{threads}.raw"
            command = [spy, "record", "--pid", str(target.pid), "--format", "raw", "--idle", "--rate", "250",
                       "--duration", str(round(seconds) + 2), "--output", str(path)]  # fmt: skip
            recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # py-spy attaches before the load starts
            clients = target.one if threads == 1 else target.many
            rate = measure(operation, target.call(operation), clients, seconds, target.pid, counter)
            recorder.wait()
            print(f"profiled {operation} x{threads} ({rate.requests} requests) -> {path}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# the 10,000-thing fan-out


class EventCounter:
    """A paho-mqtt MQTT5 subscriber on ``$aws/things/+/jobs/notify`` and ``.../notify-next``.

    Records, per topic, the first arrival (monotonic clock) of each (thing, event) pair it is told
    to expect; ``wait`` returns once all of them arrived.
    """

    FILTERS = ("$aws/things/+/jobs/notify", "$aws/things/+/jobs/notify-next")

    def __init__(self, port: int, ca: Path, cert: Path, key: Path) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._expected: set[str] = set()
        self._seen: set[str] = set()
        self.messages = 0
        self.last = 0.0
        self._done = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="benchmark-events", protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self._subscribed.set()
        self._client = client
        self._port = port

    def __enter__(self) -> EventCounter:
        self._client.connect("localhost", self._port, keepalive=60)
        self._client.loop_start()
        self._client.subscribe([(f, 0) for f in self.FILTERS])
        if not self._subscribed.wait(10):
            raise RuntimeError("the event subscriber got no SUBACK")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def expect(self, things: list[str]) -> None:
        with self._lock:
            self._expected = {f"$aws/things/{t}/jobs/{kind}" for t in things for kind in ("notify", "notify-next")}
            self._seen = set()
            self.messages = 0
            self._done.clear()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self.messages += 1
            if message.topic in self._expected and message.topic not in self._seen:
                self._seen.add(message.topic)
                self.last = now
                if len(self._seen) == len(self._expected):
                    self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    @property
    def received(self) -> int:
        return len(self._seen)


def _subscriber_identity(client: Any, directory: Path) -> tuple[Path, Path]:
    """A certificate whose policy lets it connect and receive every thing's jobs events."""
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/benchmark-events"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/$aws/things/*/jobs/*"},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{arn}:topic/$aws/things/*/jobs/*"},
        ],
    }
    keys = client.create_keys_and_certificate(setAsActive=True)
    client.create_policy(policyName="benchmark-events", policyDocument=json.dumps(policy))
    client.attach_policy(policyName="benchmark-events", target=keys["certificateArn"])
    cert, key = directory / "events.crt", directory / "events.key"
    cert.write_text(keys["certificatePem"])
    key.write_text(keys["keyPair"]["PrivateKey"])
    return cert, key


@dataclass
class FanOut:
    things: int
    setup_seconds: float
    create_job_seconds: float
    queued_seconds: float
    events_seconds: float
    events_expected: int
    events_received: int
    done_seconds: float
    rss_idle_kib: dict[str, int]
    rss_kib: dict[str, int]
    foreign_load: float


def _parallel(clients: list[Any], items: list[str], call: Callable[[Any, str], None]) -> None:
    failures: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            for item in items[slot :: len(clients)]:
                call(clients[slot], item)
        except BaseException as exc:  # reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def fan_out(service: Service, count: int, directory: Path) -> FanOut:
    credentials = service.credentials()
    client = iot_client(service.endpoint, credentials)
    rss_idle = memory_kib(service.child.pid)
    group = "benchmark-group"
    client.create_thing_group(thingGroupName=group)
    things = [f"g{i:05d}" for i in range(count)]
    clients = [iot_client(service.endpoint, credentials) for _ in range(THREADS)]
    start = time.perf_counter()

    def add(c: Any, name: str) -> None:
        c.create_thing(thingName=name)
        c.add_thing_to_thing_group(thingGroupName=group, thingName=name)

    _parallel(clients, things, add)
    setup = time.perf_counter() - start

    cert, key = _subscriber_identity(client, directory)
    with EventCounter(service.mqtt_port, service.state_dir / "pki" / "ca.crt", cert, key) as events:
        # Check the subscriber sees events at all (and warm the path up) with a one-thing job.
        client.create_thing(thingName="warm-up")
        events.expect(["warm-up"])
        client.create_job(jobId="warm-up", targets=[thing_arn("warm-up")], document=DOCUMENT)
        if not events.wait(10):
            raise RuntimeError("the subscriber did not receive the warm-up job's events")

        events.expect(things)
        wait_for_quiet()
        tree_before, machine_before, client_before = (
            tree_cpu_seconds(service.child.pid),
            machine_busy_seconds(),
            time.process_time(),
        )
        t0 = time.monotonic()
        client.create_job(jobId="fan-out", targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"],
                          document=DOCUMENT, targetSelection="SNAPSHOT")  # fmt: skip
        created = time.monotonic() - t0
        while True:
            details = client.describe_job(jobId="fan-out")["job"]["jobProcessDetails"]
            if details["numberOfQueuedThings"] == count:
                queued = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"not all things QUEUED after 60 s: {details}")
            time.sleep(0.01)  # polling the control plane is what the measurement is about
        complete = events.wait(120)
        events_at = (events.last - t0) if complete else float("nan")
        received, expected = events.received, 2 * count
        elapsed = time.monotonic() - t0
        ours = tree_cpu_seconds(service.child.pid) - tree_before + time.process_time() - client_before
        foreign = max(0.0, machine_busy_seconds() - machine_before - ours) / elapsed
    return FanOut(
        things=count,
        setup_seconds=setup,
        create_job_seconds=created,
        queued_seconds=queued,
        events_seconds=events_at,
        events_expected=expected,
        events_received=received,
        done_seconds=max(queued, events_at),
        rss_idle_kib=rss_idle,
        rss_kib=memory_kib(service.child.pid),
        foreign_load=foreign,
    )


# ------------------------------------------------------------------------------------------------
# report


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(results: dict[str, list[Rate]], fans: dict[str, FanOut]) -> str:
    lines = ["Control plane: requests/s (server CPU ms/request, client CPU ms/request)", ""]
    header = f"{'operation':<12} {'clients':>7}"
    for name in results:
        header += f" {name:>26}"
    ceiling = results.get("empty ceiling", [])
    lines.append(header + "   target  MiniStack" + ("  of ceiling" if ceiling else ""))
    service = results.get("service", [])
    for index, rate in enumerate(next(iter(results.values()))):
        row = f"{rate.operation:<12} {rate.threads:>7}"
        for measured in results.values():
            r = measured[index]
            row += f" {r.per_second:>9.0f} ({r.server_cpu_ms:5.2f}, {r.client_cpu_ms:5.2f})"
        if rate.threads == 1 and service:
            ok = service[index].per_second >= TARGETS[rate.operation]
            row += f"   {TARGETS[rate.operation]:>6.0f} {MINISTACK[rate.operation]:>7.0f}  {_mark(ok):<6}"
            if ceiling:
                row += f"  {service[index].per_second / ceiling[index].per_second:6.0%}"
        lines.append(row)
    if results:
        worst = max(r.foreign_load for measured in results.values() for r in measured)
        lines.append(f"(other processes' load during the kept measurements: at most {worst:.2f} CPU)")
    for name, fan in fans.items():
        rss_mb = fan.rss_kib["VmRSS"] / 1024
        lines += [
            "",
            f"{name}: SNAPSHOT job on a group of {fan.things} things (setup: {fan.setup_seconds:.1f} s for "
            f"CreateThing + AddThingToThingGroup of each, 8 threads; other processes' load meanwhile: "
            f"{fan.foreign_load:.2f} CPU)",
            f"  CreateJob call                    {fan.create_job_seconds:7.3f} s   target < {FANOUT_CREATE_TARGET} s  "
            f"{_mark(fan.create_job_seconds < FANOUT_CREATE_TARGET)}",
            f"  all QUEUED (DescribeJob)          {fan.queued_seconds:7.3f} s",
            f"  all events received ({fan.events_received}/{fan.events_expected})  {fan.events_seconds:7.3f} s",
            f"  QUEUED and events published       {fan.done_seconds:7.3f} s   target < {FANOUT_DONE_TARGET} s  "
            f"{_mark(fan.done_seconds < FANOUT_DONE_TARGET)}",
            f"  service RSS                       {rss_mb:7.1f} MB  target < {RSS_TARGET_MB:.0f} MB  "
            f"{_mark(rss_mb < RSS_TARGET_MB)}   (peak {fan.rss_kib['VmHWM'] / 1024:.1f} MB, "
            f"idle at start {fan.rss_idle_kib['VmRSS'] / 1024:.1f} MB)",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and a 1,000-thing group")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--seconds", type=float, help="duration of each rate measurement")
    parser.add_argument("--rounds", type=int, help="rounds of rate measurements (the median is kept)")
    parser.add_argument("--things", type=int, help="size of the thing group")
    parser.add_argument("--profile", type=Path, help="then profile the service (py-spy) under each load into DIR")
    parser.add_argument(
        "--compare", type=Path, help="also measure the service from this src directory (an earlier commit's worktree)"
    )
    parser.add_argument("--only", choices=("rates", "service-rates", "fan-out"), help="run one part")
    parser.add_argument("--aiohttp", action="store_true", help="also measure an empty aiohttp server")
    parser.add_argument(
        "--ministack", metavar="COMMAND", help="also measure MiniStack, started by this command (its ministack script)"
    )
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    rounds = args.rounds or (1 if args.quick else 3)
    count = args.things or (1000 if args.quick else 10_000)

    results: dict[str, list[Rate]] = {}
    fans: dict[str, FanOut] = {}
    sources: dict[str, Path | None] = {"service": None}
    if args.compare is not None:
        sources["compared"] = args.compare.resolve()
    counter = itertools.count()
    with tempfile.TemporaryDirectory(prefix="control-plane-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        if args.only in (None, "rates", "service-rates"):
            targets = []
            for name, source in sources.items():
                service = stack.enter_context(running_service(root / f"rates-{name}", source))
                credentials = service.credentials()
                targets.append(prepare(name, service.endpoint, credentials, service.child.pid, counter))
            if args.only != "service-rates":
                kinds = ["raw", "ceiling"]
                if args.aiohttp and importlib.util.find_spec("aiohttp") is not None:
                    kinds.append("aiohttp")
                elif args.aiohttp:
                    print("aiohttp is not installed (pip install -e '.[bench]'): no aiohttp baseline", file=sys.stderr)
                for kind in kinds:
                    endpoint, child = stack.enter_context(empty_server(root, kind))
                    targets.append(prepare(f"empty {kind}", endpoint, credentials, child.pid, counter))
            if args.ministack is not None:
                endpoint, child = stack.enter_context(ministack_server(root, args.ministack))
                targets.append(prepare("MiniStack", endpoint, credentials, child.pid, counter))
            results = rates(targets, seconds, rounds, counter)
            if args.profile is not None:
                profile(targets[0], args.profile, seconds, counter)
            stack.close()
        if args.only in (None, "fan-out"):
            for name, source in sources.items():
                with running_service(root / f"fan-out-{name}", source) as service:
                    print(f"{name}: fan-out to {count} things ...", file=sys.stderr, flush=True)
                    fans[name] = fan_out(service, count, root / f"fan-out-{name}")
    text = report(results, fans)
    print(text)
    if args.json is not None:
        payload = {
            "rates": {
                name: [{**asdict(r), "per_second": r.per_second} for r in measured]
                for name, measured in results.items()
            },
            "fan_out": {name: asdict(fan) for name, fan in fans.items()},
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
