"""``LocalService``: one ``iot-jobs-local serve`` process for a test session or another harness."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..state_dir import Credentials, RunInfo, StateDir

if TYPE_CHECKING:
    from .device import Device


class LocalServiceError(RuntimeError):
    pass


class LocalService:
    """An ``iot-jobs-local serve`` child on free ports (``0``: the service picks and reports them),
    in a temporary state directory unless ``state_dir`` is given; stopped on exit::

        with LocalService() as svc:
            iot = svc.client("iot")
            device = svc.device("my-thing")

    ``extra_args`` go to ``serve`` (``("--time-scale", "600")``; an attribute: a later
    :meth:`start` uses what it holds then). Its output is appended to ``log_path`` (default:
    ``service.log`` in the state directory), across restarts.
    """

    #: The services started and not yet stopped, in this process (for log tails of failing tests).
    _running: ClassVar[list[LocalService]] = []

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        mqtt_port: int = 0,
        http_port: int = 0,
        extra_args: Sequence[str] = (),
        start_timeout: float = 30.0,
        log_path: Path | str | None = None,
    ) -> None:
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="iot-jobs-local-")
            state_dir = Path(self._temp.name) / "state"
        self.state = StateDir(Path(state_dir).expanduser().resolve())
        self._ports = (mqtt_port, http_port)
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self._log_path = Path(log_path).expanduser().resolve() if log_path is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._info: RunInfo | None = None
        self._devices: list[Device] = []

    @classmethod
    def running(cls) -> list[LocalService]:
        """The services of this process started and not yet stopped (the pytest plugin attaches
        the tail of each one's log to a failing test's report)."""
        return list(cls._running)

    # lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> LocalService:
        """Start the service (if it is not running) and return once it is ready, or raise
        :class:`LocalServiceError` with its log. After the first start it comes back on the same
        ports. ``timeout``: default ``start_timeout``."""
        if self._process is not None and self._process.poll() is None:
            return self
        self.state.create()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"==== {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C at the test runner's terminal is the runner's to handle
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        while (info := self.state.read_run_info()) is None or info.pid != self._process.pid:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path, "rb") as log:
                    log.seek(offset)
                    tail = log.read().decode(errors="replace")
                raise LocalServiceError(f"iot-jobs-local did not start; its log:\n{tail}")
            time.sleep(0.05)  # the service's readiness file: polled, the child gives no other signal
        self._info = info
        # A restart (reset) comes back on the same ports, so clients made before keep working.
        self._ports = (info.mqtt_port, info.http_port)
        if self not in LocalService._running:
            LocalService._running.append(self)
        return self

    def command(self) -> list[str]:
        """The ``serve`` command line :meth:`start` runs (this Python, ``-m iot_jobs_local``)."""
        mqtt_port, http_port = self._ports
        command = [sys.executable, "-m", "iot_jobs_local", "--state-dir", str(self.state.root), "serve"]
        return [*command, "--mqtt-port", str(mqtt_port), "--http-port", str(http_port), *self.extra_args]

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the service (SIGKILL after ``grace`` s). Returns its exit code (0: it stopped in
        order), None if it was not started. Devices made here stay: they reconnect by themselves
        when it starts again, as after an outage on AWS (:meth:`close` disconnects them)."""
        with contextlib.suppress(ValueError):
            LocalService._running.remove(self)
        process, self._process = self._process, None
        if process is None:
            return None
        return terminate(process, grace)

    def restart(self, timeout: float | None = None) -> None:
        """Stop in order, then start again on the same state directory and ports."""
        self.stop()
        self.start(timeout)

    def kill(self) -> int:
        """``kill -9`` the service process (not its children: its Mosquitto follows by itself) and
        reap it, for tests of what survives a crash; :meth:`start` brings it back on the same state
        and ports. Returns the killed pid."""
        process = self._process
        if process is None or process.poll() is not None:
            raise LocalServiceError("the service is not running")
        with contextlib.suppress(ValueError):
            LocalService._running.remove(self)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self._process = None
        return process.pid

    def reset(self) -> None:
        """Stop, delete the state (jobs, things, certificates), start again on the same ports and
        with the same access key (boto3 clients made before keep working; devices must reconnect)."""
        from ..control import reset

        self.disconnect_devices()  # their certificates are about to go
        self.stop()
        reset(self.state, stop_first=False, keep_credentials=True)
        self.start()

    def disconnect_devices(self) -> None:
        """Disconnect every :class:`Device` made by :meth:`device` that is still connected."""
        for device in list(self._devices):
            device.stop()
        self._devices.clear()

    def close(self) -> None:
        """Disconnect the devices made here, stop the service, remove a temporary state directory."""
        self.disconnect_devices()
        self.stop()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # where it is -------------------------------------------------------------------------------
    @property
    def info(self) -> RunInfo:
        if self._info is None:
            raise LocalServiceError("the service is not started (use it as `with LocalService() as svc:`)")
        return self._info

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The ``serve`` child while it runs (None once stopped)."""
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def state_dir(self) -> Path:
        return self.state.root

    @property
    def log_path(self) -> Path:
        """Where the service's output goes (appended across restarts)."""
        return self._log_path or self.state.log_path

    def log_text(self) -> str:
        """The service's output so far (all its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no service log)"

    def broker_log_text(self) -> str:
        """Mosquitto's log (``broker/mosquitto.log`` in the state directory)."""
        try:
            return (self.state.broker_dir / "mosquitto.log").read_text(errors="replace")
        except OSError:
            return "(no broker log)"

    @property
    def mqtt_endpoint(self) -> str:
        """The device endpoint's host (the port is :attr:`mqtt_port`), as ``iot:Data-ATS`` on AWS."""
        return "localhost"

    @property
    def mqtt_port(self) -> int:
        """The device port (before the first start: the one asked for, 0 for a free one)."""
        return self._info.mqtt_port if self._info is not None else self._ports[0]

    @property
    def http_port(self) -> int:
        """The HTTP API's port (before the first start: the one asked for, 0 for a free one)."""
        return self._info.http_port if self._info is not None else self._ports[1]

    @property
    def http_endpoint(self) -> str:
        """``endpoint_url`` for boto3's ``iot`` and ``iot-jobs-data`` clients."""
        return self.info.http_endpoint

    @property
    def region(self) -> str:
        return self.info.region

    @property
    def account(self) -> str:
        return self.info.account

    @property
    def ca_file(self) -> Path:
        """The local CA's certificate, which devices must trust."""
        return self.state.ca_cert

    @property
    def credentials(self) -> Credentials:
        """The local AWS access key id and secret key the HTTP API accepts (SigV4)."""
        return self.state.credentials()

    def env(self, thing: str | None = None) -> dict[str, str]:
        """Variables that point boto3 and the AWS CLI here; with ``thing``, also the device's
        (``IOT_JOBS_*``: endpoint, port, CA, its certificate and key, provisioning it), as
        ``iot-jobs-local env --thing THING`` prints them."""
        creds = self.credentials
        out = {
            "AWS_ENDPOINT_URL_IOT": self.http_endpoint,
            "AWS_ENDPOINT_URL_IOT_JOBS_DATA_PLANE": self.http_endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        }
        if thing is not None:
            cert, key = self.provision(thing)
            out |= {
                "IOT_JOBS_ENDPOINT": self.mqtt_endpoint,
                "IOT_JOBS_PORT": str(self.mqtt_port),
                "IOT_JOBS_CA_FILE": str(self.ca_file),
                "IOT_JOBS_CERT": str(cert),
                "IOT_JOBS_KEY": str(key),
                "IOT_JOBS_THING_NAME": thing,
            }
        return out

    def thing_arn(self, thing: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:thing/{thing}"

    def job_arn(self, job_id: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}"

    # clients -----------------------------------------------------------------------------------
    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A boto3 client (``"iot"`` or ``"iot-jobs-data"``) bound to this service."""
        import boto3

        creds = self.credentials
        return boto3.session.Session().client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=self.http_endpoint,
            region_name=self.region,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            **kwargs,
        )

    def provision(self, thing: str) -> tuple[Path, Path]:
        """Register ``thing`` (if new), issue an ACTIVE certificate with the default device policy;
        return (certificate, private key) paths. Idempotent."""
        from ..cli import provision

        return provision(self.state, thing, self.region, self.account)

    def device(
        self,
        thing: str | None = None,
        *,
        client_id: str | None = None,
        timeout: float = 10.0,
        files: tuple[Path, Path] | None = None,
        **client_options: Any,
    ) -> Device:
        """A connected :class:`Device` for ``thing`` (a fresh unique thing if None), provisioned
        first unless ``files`` (certificate, key) are given; disconnected by :meth:`close` and
        :meth:`reset` (not by :meth:`stop`: it reconnects when the service is back).
        ``client_options`` go to the SDK's ``mtls_from_path`` (e.g. ``min_reconnect_delay_ms``)."""
        from .device import Device

        name = thing or unique_name("thing")
        cert, key = files if files is not None else self.provision(name)
        made = Device(self, name, cert, key, client_id=client_id, timeout=timeout, **client_options)
        self._devices.append(made)
        return made

    def forget(self, device: Device) -> None:
        """No longer disconnect ``device`` when the service stops (it stopped by itself)."""
        with contextlib.suppress(ValueError):
            self._devices.remove(device)


def unique_name(prefix: str = "t") -> str:
    """A fresh name, valid as a thing name and as a job id, so tests sharing a service never meet."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def terminate(process: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; reaped either way. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
