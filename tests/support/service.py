"""The project's own view of one service: :class:`ServiceProcess`, the packaged
:class:`~iot_jobs_local.testing.LocalService` plus what only this test suite needs (white-box reads
of the service's database, the CLI, a boto3 client kept per service, ``/proc`` look-ups)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from iot_jobs_local.testing import LocalService
from support.common import unique
from support.processes import pids_with_cmdline


class ServiceProcess(LocalService):
    """A :class:`LocalService` (``start``/``stop``/``restart``/``kill``, ports, log, devices) with
    the helpers the project's tests share. ``ServiceProcess(state_dir, mqtt_port, http_port,
    log_path)``: 0 ports are free ones, picked by the service."""

    def __init__(
        self,
        state_dir: Path,
        mqtt_port: int = 0,
        http_port: int = 0,
        log_path: Path | None = None,
        *,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(state_dir, mqtt_port=mqtt_port, http_port=http_port, extra_args=extra_args, log_path=log_path)
        self._iot: Any = None
        self._provisioned: dict[str, tuple[Path, Path]] = {}

    @property
    def ca_path(self) -> Path:
        return self.ca_file

    @property
    def broker_conf(self) -> Path:
        """The generated Mosquitto config; its path is on the broker's command line."""
        return self.state.broker_dir / "mosquitto.conf"

    def broker_pids(self) -> list[int]:
        """Live Mosquitto processes started for this state dir (found by their config path)."""
        return pids_with_cmdline(str(self.broker_conf))

    def kill9(self) -> int:
        """``kill -9`` the service (not its children) and reap it. Returns the killed pid."""
        return self.kill()

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

    def device_files(self, thing: str) -> tuple[Path, Path]:
        """(cert, key) of ``thing``, provisioning it the first time this object is asked for it,
        so that a Device, a RawDevice and an agent of one thing provision it once."""
        if thing not in self._provisioned:
            self._provisioned[thing] = self.provision(thing)
        return self._provisioned[thing]

    def cli_env(self, thing: str) -> dict[str, str]:
        """The variables the ``env --thing THING`` CLI exports (it also provisions the thing)."""
        out: dict[str, str] = {}
        for line in self.run_cli("env", "--thing", thing).stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                out[name] = shlex.split(value)[0] if value else ""
        return out

    def boto3_client(self, service_name: str) -> Any:
        """A fresh boto3 client for ``iot`` or ``iot-jobs-data`` pointed here, without retries."""
        from botocore.config import Config

        return self.client(service_name, config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=15))

    def iot(self) -> Any:
        """The boto3 ``iot`` control-plane client for this service (created once, then reused)."""
        if self._iot is None:
            self._iot = self.boto3_client("iot")
        return self._iot

    def create_job(
        self, thing: str | list[str], document: dict[str, Any] | str, job_id: str | None = None, **kwargs: Any
    ) -> str:
        """``iot.create_job`` targeting the given thing(s); returns the job id (unique if not given)."""
        job_id = job_id or unique("job")
        things = [thing] if isinstance(thing, str) else thing
        body = document if isinstance(document, str) else json.dumps(document)
        self.iot().create_job(jobId=job_id, targets=[self.thing_arn(t) for t in things], document=body, **kwargs)
        return job_id

    # the service's own records (white-box checks of what was stored) ---------------------------
    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Run a read-only SQL query on the service's SQLite database (``DIR/jobs.sqlite3``)."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.state.database}?mode=ro", uri=True, timeout=5)
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


def new_service(directory: Path, extra_args: tuple[str, ...] = ()) -> ServiceProcess:
    """A started service in ``directory`` (state in ``directory/state``, log ``directory/service.log``),
    on free ports, with ``extra_args`` added to its ``serve`` command line."""
    service = ServiceProcess(directory / "state", log_path=directory / "service.log", extra_args=tuple(extra_args))
    service.start()
    return service
