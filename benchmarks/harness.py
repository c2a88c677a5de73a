"""What every benchmark script shares: its children, the service's start-up, provisioning, and the
CPU and memory figures read from /proc (Linux).

Imported as a sibling module: the scripts run as ``python benchmarks/<script>.py``, which puts
this directory first on ``sys.path``.

Every process a benchmark starts goes through ``Children`` (or ``Child`` for a server that says
it is ready on stdout) and is stopped by it, also on error or Ctrl-C; children ask the kernel to
be sent SIGTERM if the benchmark dies (``die_with_parent``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------
# /proc


def die_with_parent() -> None:
    """preexec_fn: SIGTERM the child if this benchmark dies (even by SIGKILL); own session."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    os.setsid()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    return machine_cpu()[0] / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(p) for p in handle.read().split()]
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of all its descendants still running (the service and its Mosquitto)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(current)
            pending += child_pids(current)
    return total


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile of a process, in KiB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[name] = int(value.split()[0])
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------------
# children


class Children:
    """Every process a benchmark starts, stopped in reverse order by ``stop_all``."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._adopted: list[tuple[str, int, str]] = []  # grandchildren: (name, pid, cmdline at adoption)

    def start(
        self, name: str, argv: list[str], log: Path, tied: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a child; ``tied`` children die with the benchmark (needs fork before any CRT thread)."""
        extra: dict[str, Any] = {"preexec_fn": die_with_parent} if tied else {"start_new_session": True}
        if env:
            extra["env"] = {**os.environ, **env}
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


@contextlib.contextmanager
def children_stopped() -> Iterator[Children]:
    children = Children()
    try:
        yield children
    finally:
        children.stop_all()


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


class Child:
    """A server whose output goes to ``log``; ``start`` returns once it printed a line starting
    with ``ready``, or (``ready`` None) once ``port`` on 127.0.0.1 accepts connections."""

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


# ------------------------------------------------------------------------------------------------
# the service


def source_env(source: Path | None) -> dict[str, str] | None:
    """The environment that makes a child import ``iot_jobs_local`` from ``source`` (a ``src`` dir)."""
    return {"PYTHONPATH": str(source)} if source is not None else None


def service_source(source: Path | None = None) -> dict[str, Any]:
    """Which ``iot_jobs_local`` the service runs: ``source`` (a ``src`` directory), else the one
    this interpreter imports; with a hash of its sources and its git commit."""
    if source is not None:
        package = source / "iot_jobs_local"
    else:
        spec = importlib.util.find_spec("iot_jobs_local")
        if spec is None or spec.origin is None:
            raise RuntimeError("iot_jobs_local is not importable; run with the project's venv")
        package = Path(spec.origin).parent
    if not (package / "__init__.py").exists():
        raise RuntimeError(f"no iot_jobs_local package in {package.parent}")
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


def provision(state: Path, things: list[str], parallel: int = 4, source: Path | None = None) -> None:
    """Register each thing and issue its certificate with ``iot-jobs-local provision`` (the CLI)."""
    env = {**os.environ, **(source_env(source) or {})}

    def run(thing: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state), "provision", thing],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
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


@dataclass
class Service:
    """A running ``iot-jobs-local serve`` and its Mosquitto."""

    name: str
    directory: Path
    state: Path
    mqtt_port: int
    http_port: int
    pid: int
    broker_pid: int
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def keys(self) -> tuple[str, str]:
        return self.credentials["accessKeyId"], self.credentials["secretAccessKey"]

    @property
    def ca(self) -> str:
        return str(self.state / "pki" / "ca.crt")

    def device_files(self, thing: str) -> tuple[str, str]:
        d = self.state / "devices" / thing
        return str(d / "device.crt"), str(d / "device.key")


def start_service(
    children: Children, directory: Path, name: str = "service", source: Path | None = None,
    log_level: str | None = None,
) -> Service:  # fmt: skip
    """``python -m iot_jobs_local --state-dir DIR/state serve`` on free ports, from this checkout or
    from the ``src`` directory ``source``; returns once it printed its ready line."""
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    mqtt_port, http_port = free_port(), free_port()
    log = directory / "service.log"
    argv = [
        sys.executable, "-m", "iot_jobs_local", "--state-dir", str(state), "serve",
        "--mqtt-port", str(mqtt_port), "--http-port", str(http_port),
        *(["--log-level", log_level] if log_level else []),
    ]  # fmt: skip
    proc = children.start(name, argv, log, env={"PYTHONUNBUFFERED": "1", **(source_env(source) or {})})
    wait_for_line(proc, log, "iot-jobs-local ready:", 60, name)
    brokers = [p for p in child_pids(proc.pid) if "mosquitto" in cmdline(p)]
    if len(brokers) != 1:
        raise RuntimeError(f"expected one Mosquitto child of {name}, found {brokers}")
    children.adopt(f"{name}'s Mosquitto", brokers[0])
    creds = json.loads((state / "credentials.json").read_text())
    return Service(name, directory, state, mqtt_port, http_port, proc.pid, brokers[0], creds)


@contextlib.contextmanager
def running_service(directory: Path, source: Path | None = None, name: str = "service") -> Iterator[Service]:
    """The service (and its Mosquitto) for the duration of a ``with`` block."""
    with children_stopped() as children:
        yield start_service(children, directory, name, source)


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
