"""Shared fixtures for the integration tests of the local AWS IoT Jobs service (``iot_jobs_local``).

Everything here talks to the REAL service: ``python -m iot_jobs_local --state-dir DIR serve`` runs as a
subprocess (Mosquitto with mutual TLS, the jobs engine on SQLite, the boto3-compatible HTTP API), and
tests reach it the way real clients do:

* :class:`ServiceProcess` - one running service (state dir, ports, log) with helpers to provision
  things, build a boto3 ``iot`` client, and stop / restart / ``kill -9`` it.
* :class:`Device` - a device on the AWS IoT Device SDK v2: an MQTT5 mTLS client plus ``IotJobsClientV2``
  with both event streams open; events are collected in thread-safe queues.
* :class:`RawDevice` - a device on paho-mqtt 2.x (MQTT 5, same certificate) that publishes arbitrary
  payloads on arbitrary topics and records every message it receives, for what the SDK cannot send.

Fixtures:

* ``service`` (session) - the service shared by most tests. Tests must use unique thing and job
  names (:func:`unique`) so that they never see each other's state.
* ``service_factory`` (function) - starts extra, private services (own state dir, own ports), e.g. for
  durability tests that kill the service; ``service_factory("--time-scale", "600")`` passes extra
  ``serve`` arguments. Every one is stopped at the end of the test.
* ``device`` / ``raw_device`` (function) - factories: ``device()`` provisions a fresh thing and
  returns a connected :class:`Device`; ``device(thing)`` / ``raw_device(thing)`` connect for a given thing.
  Everything they create is disconnected at the end of the test.
* ``iot`` (function) - ``service.iot()``.

Rules the helpers follow (and tests should too): no fixed sleeps to synchronise - wait for a line,
a future or an event with a deadline; the only bounded waits are the "nothing arrives" assertions
(:meth:`Device.assert_no_event`, :meth:`RawDevice.assert_no_message`), kept at or below one second.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

#: Region and account the service uses in ARNs unless told otherwise (``serve --region/--account``).
REGION = "us-east-1"
ACCOUNT = "123456789012"

READY_PREFIX = "iot-jobs-local ready:"
#: How long a service may take to print its ready line.
START_TIMEOUT = 30.0
#: Default deadline for a request's response or an expected event.
RESPONSE_TIMEOUT = 10.0
#: The longest a test may wait to assert that something does NOT happen.
MAX_ABSENCE_WAIT = 1.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind ``host:0`` and read the port back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "t") -> str:
    """A name unique to this test run, valid as a thing name and as a job id (``[a-zA-Z0-9_-]``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ExitWatch:
    """Watch a process that need not be our child, so that we can wait for its exit without polling.

    Open it while the process runs (``ExitWatch(pid)``); ``wait(timeout)`` returns True once the process
    has terminated. It holds a pidfd, which becomes readable when the process exits (a zombie counts:
    in a container an orphan's new parent may never reap it), and which is immune to pid reuse.
    Falls back to reading ``/proc/<pid>/stat`` where pidfds are unavailable.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)

    def wait(self, timeout: float) -> bool:
        if self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            return bool(readable)
        deadline = time.monotonic() + timeout
        while process_state(self.pid) not in (None, "Z", "X"):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)  # fallback polling of a foreign process, not test synchronisation
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def process_parent(pid: int) -> int | None:
    """The parent pid of ``pid`` (from ``/proc``), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from ``/proc`` (``R``, ``S``, ``Z``...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pids_with_cmdline(fragment: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and process_state(int(entry.name)) not in (None, "Z", "X"):
            found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------

#: Services currently running, so that a failing test's report can show their logs.
_RUNNING: list[ServiceProcess] = []


@dataclass(eq=False)
class ServiceProcess:
    """One ``iot_jobs_local serve`` subprocess and everything a test needs to reach it.

    ``start()`` launches it and returns once it printed its ready line (or raises with the log).
    Its stdout and stderr are copied line by line into ``log_path`` (appended across restarts).
    ``stop()`` is SIGTERM, then SIGKILL if it does not exit in time; ``kill9()`` is ``kill -9``;
    ``restart()`` stops and starts it again on the same state dir and ports.
    """

    state_dir: Path
    mqtt_port: int
    http_port: int
    log_path: Path
    process: subprocess.Popen[str] | None = None
    region: str = REGION
    account: str = ACCOUNT
    #: Extra ``serve`` arguments (e.g. ``("--time-scale", "600")``), kept across restarts.
    extra_args: tuple[str, ...] = ()
    _reader: threading.Thread | None = field(default=None, repr=False)
    _iot: Any = field(default=None, repr=False)
    _provisioned: dict[str, tuple[Path, Path]] = field(default_factory=dict, repr=False)

    # paths and names -------------------------------------------------------------------------
    @property
    def http_endpoint(self) -> str:
        """``endpoint_url`` for boto3 (``iot`` and ``iot-jobs-data``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ca_path(self) -> Path:
        """The local CA certificate that devices must trust."""
        return self.state_dir / "pki" / "ca.crt"

    @property
    def broker_conf(self) -> Path:
        """The generated Mosquitto config; its path is on the broker's command line."""
        return self.state_dir / "broker" / "mosquitto.conf"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def thing_arn(self, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:thing/{name}"

    def job_arn(self, job_id: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no service log)"

    def broker_log_text(self) -> str:
        try:
            return (self.state_dir / "broker" / "mosquitto.log").read_text(errors="replace")
        except OSError:
            return "(no broker log)"

    def broker_pids(self) -> list[int]:
        """Live Mosquitto processes started for this state dir (found by their config path)."""
        return pids_with_cmdline(str(self.broker_conf))

    # lifecycle -------------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "iot_jobs_local",
            "--state-dir",
            str(self.state_dir),
            "serve",
            "--mqtt-port",
            str(self.mqtt_port),
            "--http-port",
            str(self.http_port),
            *self.extra_args,
        ]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the service and wait (with a deadline) for its ready line."""
        assert self.process is None or self.process.poll() is not None, "already running"
        ready = threading.Event()
        settled = threading.Event()  # set on the ready line or at the end of the output
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the reader thread
        log.write(f"==== {' '.join(shlex.quote(a) for a in self.command())}\n")
        log.flush()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        process = self.process

        def copy_output() -> None:
            assert process.stdout is not None
            try:
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    if line.startswith(READY_PREFIX):
                        ready.set()
                        settled.set()
            finally:
                log.close()
                settled.set()

        self._reader = threading.Thread(target=copy_output, name=f"service-log-{process.pid}", daemon=True)
        self._reader.start()
        settled.wait(timeout)
        if not ready.is_set():
            exited = process.poll()
            self.stop()
            raise RuntimeError(
                f"iot-jobs-local did not become ready within {timeout} s (exit code {exited}); log:\n{self.log_text()}"
            )
        if self not in _RUNNING:
            _RUNNING.append(self)

    def _reap(self, timeout: float) -> None:
        assert self.process is not None
        self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
        self._reap(grace)
        if self in _RUNNING:
            _RUNNING.remove(self)
        return process.returncode

    def kill9(self) -> int:
        """``kill -9`` the service (not its children) and reap it. Returns the killed pid."""
        assert self.process is not None and self.process.poll() is None, "not running"
        pid = self.process.pid
        os.kill(pid, signal.SIGKILL)
        self._reap(10.0)
        if self in _RUNNING:
            _RUNNING.remove(self)
        return pid

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Orderly stop, then start again on the same state dir and ports."""
        self.stop()
        self.start(timeout)

    # clients ---------------------------------------------------------------------------------
    def run_cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -m iot_jobs_local --state-dir DIR ARGS...``; raise with its output if it fails."""
        result = subprocess.run(
            [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(self.state_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"iot_jobs_local {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def provision(self, thing: str) -> tuple[Path, Path]:
        """Register ``thing`` and issue its certificate (the ``provision`` CLI); return (cert, key)."""
        self.run_cli("provision", thing)
        cert = self.state_dir / "devices" / thing / "device.crt"
        key = self.state_dir / "devices" / thing / "device.key"
        assert cert.is_file() and key.is_file(), f"provision {thing} did not write {cert} and {key}"
        return cert, key

    def device_files(self, thing: str) -> tuple[Path, Path]:
        """(cert, key) of ``thing``, provisioning it the first time this object is asked for it.

        Device helpers use this, so that a Device and a RawDevice of one thing provision it once.
        """
        if thing not in self._provisioned:
            self._provisioned[thing] = self.provision(thing)
        return self._provisioned[thing]

    def env(self, thing: str) -> dict[str, str]:
        """The variables the ``env --thing THING`` CLI exports (it also provisions the thing)."""
        out: dict[str, str] = {}
        for line in self.run_cli("env", "--thing", thing).stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                out[name] = shlex.split(value)[0] if value else ""
        return out

    def credentials(self) -> tuple[str, str]:
        """The local AWS access key id and secret (from ``credentials.json`` in the state dir)."""
        stored = json.loads((self.state_dir / "credentials.json").read_text())
        return stored["accessKeyId"], stored["secretAccessKey"]

    def boto3_client(self, service_name: Any) -> Any:
        """A fresh boto3 client for ``iot`` or ``iot-jobs-data`` pointed here, without retries."""
        import boto3
        from botocore.config import Config

        key_id, secret = self.credentials()
        return boto3.session.Session().client(
            service_name,
            endpoint_url=self.http_endpoint,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=15),
        )

    def iot(self) -> Any:
        """The boto3 ``iot`` control-plane client for this service (created once, then reused)."""
        if self._iot is None:
            self._iot = self.boto3_client("iot")
        return self._iot

    # the service's own records (white-box checks of what was stored) ---------------------------
    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Run a read-only SQL query on the service's SQLite database (``DIR/jobs.sqlite3``)."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.state_dir / 'jobs.sqlite3'}?mode=ro", uri=True, timeout=5)
        try:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, params)]
        finally:
            db.close()

    def execution_row(self, job_id: str, thing: str, execution_number: int | None = None) -> dict[str, Any] | None:
        """The stored ``executions`` row of ``job_id`` on ``thing`` (the latest one unless
        ``execution_number`` is given) as a dict of columns, e.g. ``step_timeout_minutes``; None if absent."""
        sql = "SELECT * FROM executions WHERE job_id = ? AND thing_name = ?"
        params: tuple[Any, ...] = (job_id, thing)
        if execution_number is not None:
            sql += " AND execution_number = ?"
            params += (execution_number,)
        rows = self.query(sql + " ORDER BY execution_number DESC LIMIT 1", *params)
        return rows[0] if rows else None

    def job_row(self, job_id: str) -> dict[str, Any] | None:
        """The stored ``jobs`` row of ``job_id`` as a dict of columns; None if absent."""
        rows = self.query("SELECT * FROM jobs WHERE job_id = ?", job_id)
        return rows[0] if rows else None

    def create_job(
        self, thing: str | list[str], document: dict[str, Any] | str, job_id: str | None = None, **kwargs: Any
    ) -> str:
        """``iot.create_job`` targeting the given thing(s); returns the job id (unique if not given)."""
        job_id = job_id or unique("job")
        things = [thing] if isinstance(thing, str) else thing
        body = document if isinstance(document, str) else json.dumps(document)
        self.iot().create_job(jobId=job_id, targets=[self.thing_arn(t) for t in things], document=body, **kwargs)
        return job_id


def new_service(directory: Path, extra_args: tuple[str, ...] = ()) -> ServiceProcess:
    """A started service in ``directory`` (state in ``directory/state``), on free ports, with
    ``extra_args`` added to its ``serve`` command line."""
    service = ServiceProcess(
        state_dir=directory / "state",
        mqtt_port=free_port(),
        http_port=free_port(),
        log_path=directory / "service.log",
        extra_args=tuple(extra_args),
    )
    service.start()
    return service


def _print_logs(config: pytest.Config, service: ServiceProcess) -> None:
    text = (
        f"\n===== iot-jobs-local log ({service.log_path}) =====\n{service.log_text()}"
        f"\n===== mosquitto log (last 200 lines) =====\n"
        + "\n".join(service.broker_log_text().splitlines()[-200:])
        + "\n"
    )
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(text)
    else:
        sys.stderr.write(text)


@pytest.fixture(scope="session")
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service shared by the whole session (own temp state dir, free ports).

    Tests sharing it must use unique thing and job names. Its log is printed at the end of the
    session if any test failed.
    """
    svc = new_service(tmp_path_factory.mktemp("iot-jobs-local"))
    try:
        yield svc
    finally:
        svc.stop()
        if request.session.testsfailed:
            _print_logs(request.config, svc)


@pytest.fixture
def service_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start private services for one test: ``svc = service_factory()``, or with extra ``serve``
    arguments: ``svc = service_factory("--time-scale", "600")``.

    Each has its own state dir under ``tmp_path`` and its own free ports. At the end of the test
    each is stopped, and any Mosquitto it left behind is killed (and the log printed on failure).
    """
    started: list[ServiceProcess] = []

    def make(*extra_args: str) -> ServiceProcess:
        svc = new_service(tmp_path / f"service-{len(started)}", extra_args)
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
        for pid in svc.broker_pids():  # only if the broker outlived its service (a bug the tests report)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if request.session.testsfailed:
            _print_logs(request.config, svc)


@pytest.fixture
def iot(service: ServiceProcess) -> Any:
    """The boto3 ``iot`` client of the shared service."""
    return service.iot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of every running service's log to a failing test's report."""
    report = yield
    if report.failed:
        for svc in _RUNNING:
            tail = "\n".join(svc.log_text().splitlines()[-80:])
            report.sections.append((f"iot-jobs-local log tail ({svc.log_path})", tail))
    return report


# --------------------------------------------------------------------------------------------------
# Devices on the AWS IoT Device SDK v2
# --------------------------------------------------------------------------------------------------

#: Event kinds of :class:`Device`; the AWS names are accepted as aliases.
JOBS_CHANGED = "jobs_changed"
NEXT_CHANGED = "next_changed"
_KIND_ALIASES = {
    "JobExecutionsChanged": JOBS_CHANGED,
    "notify": JOBS_CHANGED,
    "NextJobExecutionChanged": NEXT_CHANGED,
    "notify-next": NEXT_CHANGED,
}


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


def _kind(kind: str) -> str:
    kind = _KIND_ALIASES.get(kind, kind)
    assert kind in (JOBS_CHANGED, NEXT_CHANGED), f"unknown event kind {kind!r}"
    return kind


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
    ``mtls_from_path`` (e.g. ``min_reconnect_delay_ms``).
    """

    def __init__(
        self,
        service: ServiceProcess,
        thing: str,
        *,
        client_id: str | None = None,
        timeout: float = RESPONSE_TIMEOUT,
        **client_options: Any,
    ) -> None:
        from awscrt import mqtt_request_response
        from awsiot import ServiceStreamOptions, iotjobs, mqtt5_client_builder

        self.service = service
        self.thing = thing
        self.timeout = timeout
        self.client_id = client_id or f"test-sdk-{thing[:40]}-{uuid.uuid4().hex[:12]}"
        self.cert, self.key = service.device_files(thing)
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
            return self._events[_kind(kind)].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.thing}: no {kind} event within {timeout} s") from None

    def assert_no_event(self, *kinds: str, within: float = 0.5) -> None:
        """Fail if an event of any of ``kinds`` (default: both) is already queued or arrives within
        ``within`` seconds (at most :data:`MAX_ABSENCE_WAIT`)."""
        assert within <= MAX_ABSENCE_WAIT, "absence waits are capped at 1 s"
        selected = [_kind(k) for k in kinds] or [JOBS_CHANGED, NEXT_CHANGED]
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


@pytest.fixture
def device(request: pytest.FixtureRequest) -> Iterator[Callable[..., Device]]:
    """Factory of connected :class:`Device` objects.

    ``device()`` provisions a new unique thing on the shared ``service``; ``device(thing)`` uses that
    thing (several connections for one thing are fine: each gets its own client id);
    ``device(thing, service=other)`` connects to another service (the shared one is then not started).
    All are stopped at the end of the test.
    """
    made: list[Device] = []

    def make(thing: str | None = None, *, service: ServiceProcess | None = None, **kwargs: Any) -> Device:
        target = service if service is not None else request.getfixturevalue("service")
        dev = Device(target, thing or unique("thing"), **kwargs)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.stop()


# --------------------------------------------------------------------------------------------------
# Raw MQTT devices (paho)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


def paho_client(client_id: str, *, ca: Path | None, cert: Path | None = None, key: Path | None = None) -> Any:
    """A paho-mqtt 2.x MQTT v5 client with TLS: trusts ``ca``, presents ``cert``/``key`` if given."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ca) if ca else None,
        certfile=str(cert) if cert else None,
        keyfile=str(key) if key else None,
    )
    return client


class RawDevice:
    """A paho-mqtt (MQTT 5, mTLS with the device's certificate) connection for one thing.

    ``cert``/``key`` replace the thing's provisioned certificate (e.g. one made through the identity
    API with other policies attached). By default it subscribes to ``$aws/things/<thing>/jobs/#`` right after connecting, so it sees every
    reply and event of that thing (and, as it has no noLocal, its own requests). Messages queue up
    until a test takes them with :meth:`expect`.
    """

    def __init__(
        self,
        service: ServiceProcess,
        thing: str,
        *,
        subscribe: tuple[str, ...] | None = None,
        client_id: str | None = None,
        timeout: float = RESPONSE_TIMEOUT,
        cert: Path | None = None,
        key: Path | None = None,
    ) -> None:
        self.service = service
        self.thing = thing
        self.timeout = timeout
        # Either a certificate the test made itself (e.g. with other policies), or the thing's own.
        self.cert, self.key = (cert, key) if cert and key else service.device_files(thing)
        self.client_id = client_id or f"test-raw-{thing[:40]}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: deque[Message] = deque()
        self._acks: dict[int, Future[Any]] = {}
        self._subacks: dict[int, Future[Any]] = {}
        self._connected: Future[Any] = Future()
        self.client = paho_client(self.client_id, ca=service.ca_path, cert=self.cert, key=self.key)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = lambda client, userdata: self._settle_connect(ConnectionError("connect failed"))
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("localhost", service.mqtt_port, keepalive=60)
        self.client.loop_start()
        try:
            reason = self._connected.result(timeout)
            assert not reason.is_failure, f"CONNACK {reason}"
            for topic in (f"$aws/things/{thing}/jobs/#",) if subscribe is None else subscribe:
                codes = self.subscribe(topic)
                assert all(not c.is_failure for c in codes), f"SUBACK {codes} for {topic}"
        except BaseException:
            self.close()
            raise

    # paho callbacks (network thread) ---------------------------------------------------------
    def _settle_connect(self, value: Any) -> None:
        with contextlib.suppress(Exception):
            if isinstance(value, BaseException):
                self._connected.set_exception(value)
            else:
                self._connected.set_result(value)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._settle_connect(reason)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._settle_connect(ConnectionError(f"disconnected before CONNACK: {reason}"))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._arrived:
            self._messages.append(Message(message.topic, bytes(message.payload), message.qos, bool(message.retain)))
            self._arrived.notify_all()

    def _future(self, table: dict[int, Future[Any]], mid: int) -> Future[Any]:
        with self._lock:
            return table.setdefault(mid, Future())

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._future(self._acks, mid).set_result(reason)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self._future(self._subacks, mid).set_result(reasons)

    # operations ------------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1, timeout: float | None = None
    ) -> int:
        """Publish and wait for the PUBACK; return its MQTT5 reason code (0 ok, 135 not authorized).

        A dict payload is JSON-encoded. At QoS 0 there is no PUBACK: returns 0 once sent.
        """
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(topic, data, qos=qos)
        reason = self._future(self._acks, info.mid).result(self.timeout if timeout is None else timeout)
        return int(getattr(reason, "value", reason) or 0)

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float | None = None) -> list[Any]:
        """Subscribe and wait for the SUBACK; return its reason codes."""
        _result, mid = self.client.subscribe(topic_filter, qos=qos)
        return list(self._future(self._subacks, mid).result(self.timeout if timeout is None else timeout))

    def expect(self, topic: str | Callable[[Message], bool], timeout: float | None = None) -> Message:
        """Take the first received message on ``topic`` (or matching a predicate), waiting if needed."""
        match = topic if callable(topic) else (lambda m: m.topic == topic)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._arrived:
            while True:
                for message in self._messages:
                    if match(message):
                        self._messages.remove(message)
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.topic for m in self._messages]
                    raise AssertionError(f"{self.client_id}: no message on {topic!r} in time; queued: {seen}")
                self._arrived.wait(remaining)

    def request(self, topic: str, payload: bytes | str | dict[str, Any], timeout: float | None = None) -> Message:
        """Publish a request (must be authorized) and return its reply on ``topic/accepted|rejected``.

        With a JSON object payload carrying a ``clientToken``, only a reply echoing it matches.
        """
        token = payload.get("clientToken") if isinstance(payload, dict) else None

        def is_reply(m: Message) -> bool:
            if m.topic not in (topic + "/accepted", topic + "/rejected"):
                return False
            if token is None:
                return True
            with contextlib.suppress(ValueError):
                return bool(m.json().get("clientToken") == token)
            return False

        code = self.publish(topic, payload)
        assert code == 0, f"the broker refused the publish on {topic} (reason code {code})"
        return self.expect(is_reply, timeout)

    def assert_no_message(self, topic: str | Callable[[Message], bool], within: float = 0.5) -> None:
        """Fail if a message on ``topic`` (or matching a predicate) is queued or arrives within ``within`` s."""
        assert within <= MAX_ABSENCE_WAIT, "absence waits are capped at 1 s"
        match = topic if callable(topic) else (lambda m: m.topic == topic)
        deadline = time.monotonic() + within
        with self._arrived:
            while True:
                found = [m for m in self._messages if match(m)]
                if found:
                    raise AssertionError(f"{self.client_id}: unexpected message {found[0]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._arrived.wait(remaining)

    def messages(self) -> list[Message]:
        """Everything received and not yet taken."""
        with self._lock:
            return list(self._messages)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw_device(request: pytest.FixtureRequest) -> Iterator[Callable[..., RawDevice]]:
    """Factory of connected :class:`RawDevice` objects: ``raw_device()`` (a new thing), ``raw_device(thing)``,
    ``raw_device(thing, subscribe=(...))``, ``raw_device(thing, service=other)``. Closed at teardown."""
    made: list[RawDevice] = []

    def make(thing: str | None = None, *, service: ServiceProcess | None = None, **kwargs: Any) -> RawDevice:
        target = service if service is not None else request.getfixturevalue("service")
        dev = RawDevice(target, thing or unique("thing"), **kwargs)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.close()


# boto3 error assertions shared by the control-plane and HTTP data-plane tests ----------------------
def error_of(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    """The ClientError ``call(**kwargs)`` raises (the test fails if it succeeds)."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


def collect(call: Callable[..., Any], member: str, **kwargs: Any) -> tuple[list[Any], int]:
    """Every item of a paginated listing, following nextToken; also how many pages it took."""
    items: list[Any] = []
    pages = 0
    token = None
    while True:
        response = call(**kwargs, **({"nextToken": token} if token else {}))
        pages += 1
        items.extend(response[member])
        token = response.get("nextToken")
        if not token:
            return items, pages


def thing_with_policy(
    service: ServiceProcess, thing: str, statements: list[dict[str, Any]], directory: Path
) -> tuple[Path, Path]:
    """Register ``thing`` with a new ACTIVE certificate whose only policy holds ``statements``, all
    through boto3 as on AWS; return the certificate and key files (written into ``directory``)."""
    iot = service.iot()
    policy = unique("policy")
    iot.create_policy(policyName=policy, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    made = iot.create_keys_and_certificate(setAsActive=True)
    cert, key = directory / f"{thing}.crt", directory / f"{thing}.key"
    cert.write_text(made["certificatePem"])
    key.write_text(made["keyPair"]["PrivateKey"])
    iot.attach_policy(policyName=policy, target=made["certificateArn"])
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    return cert, key


def wait_job_gone(iot: Any, job_id: str, timeout: float = 15.0) -> None:
    """DeleteJob leaves the job DELETION_IN_PROGRESS for a moment (``DELETION_SECONDS`` of the service's
    clock): poll DescribeJob until it answers ResourceNotFoundException, checking the status meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = iot.describe_job(jobId=job_id)["job"]["status"]
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ResourceNotFoundException", exc.response
            return
        assert status == "DELETION_IN_PROGRESS", status
        assert time.monotonic() < deadline, f"job {job_id} still DELETION_IN_PROGRESS after {timeout} s"
        time.sleep(0.05)


def check_error(error: ClientError, code: str, status: int) -> None:
    """AWS's code, HTTP status and a non-empty message."""
    assert error.response["Error"]["Code"] == code, error.response
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status, error.response
    assert error.response["Error"]["Message"], error.response


def group_arn(service: ServiceProcess, name: str) -> str:
    return f"arn:aws:iot:{service.region}:{service.account}:thinggroup/{name}"
