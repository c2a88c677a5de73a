"""One ``iot_jobs_local serve`` subprocess on its own state dir and ports (:class:`ServiceProcess`)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iot_jobs_local.testing.service import terminate
from support.common import ACCOUNT, READY_PREFIX, REGION, START_TIMEOUT, free_port, unique
from support.logs import RUNNING
from support.processes import pids_with_cmdline


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
        if self not in RUNNING:
            RUNNING.append(self)

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
        terminate(process, grace)
        self._reap(grace)
        if self in RUNNING:
            RUNNING.remove(self)
        return process.returncode

    def kill9(self) -> int:
        """``kill -9`` the service (not its children) and reap it. Returns the killed pid."""
        assert self.process is not None and self.process.poll() is None, "not running"
        pid = self.process.pid
        os.kill(pid, signal.SIGKILL)
        self._reap(10.0)
        if self in RUNNING:
            RUNNING.remove(self)
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
