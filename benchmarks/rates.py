"""(a) of the control-plane benchmark: boto3 calls per second (CreateThing, CreateJob, DescribeJob)
from one client and from ``THREADS`` threads, against each target in interleaved rounds, with the
CPU time per request of the server and of the client; and py-spy profiles under the same loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import cpu_seconds, iot_client, machine_busy_seconds, thing_arn, tree_cpu_seconds

THREADS = 8
DOCUMENT = json.dumps({"operation": "benchmark"})


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
