"""Where the local service keeps everything: database, PKI, broker files, credentials, run info.

Layout (all under one directory, ``--state-dir``)::

    jobs.sqlite3            state (SQLite, WAL)
    pki/ca.crt, ca.key      the local CA (ca.crt is what clients trust)
    pki/server.crt, .key    the broker's certificate (localhost, 127.0.0.1, ::1)
    pki/crl.pem             certificates the broker refuses (every certificate not ACTIVE)
    devices/<thing>/        device.crt, device.key issued by ``provision``
    broker/                 generated mosquitto.conf, ACL files and password file
    credentials.json        local AWS access key and the service's broker password
    service.json            present while a service runs: pid, ports, region, account, start time, clients
    ports.json              the ports the last service listened on (a later start reuses them)
    service.log             the log of a service started in the background (``start``, ``iot-jobs --local``)
    service.lock            held (flock) by a service while it starts and by ``reset`` while it runs
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import string
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # cryptography is imported where keys are made, not by --help or status
    from .identity import pki

DEFAULT_MQTT_PORT = 8883
DEFAULT_HTTP_PORT = 8088
DEFAULT_REGION = "us-east-1"
#: The account id AWS uses in its documentation examples.
DEFAULT_ACCOUNT = "123456789012"


def default_state_dir() -> Path:
    explicit = os.environ.get("IOT_JOBS_LOCAL_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "iot-jobs-local"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    broker_password: str


@dataclass(frozen=True)
class RunInfo:
    """What a running service publishes about itself, for ``env`` and ``iot-jobs --local``."""

    pid: int
    mqtt_port: int
    http_port: int
    region: str
    account: str
    #: Wall-clock epoch seconds when the service became ready.
    started_at: float = 0.0
    #: Client ids of the devices connected to the broker now (kept up to date by the service).
    clients: tuple[str, ...] = ()
    time_scale: float = 1.0

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite3"

    @property
    def ca_cert(self) -> Path:
        return self.root / "pki" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "pki" / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "pki" / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "pki" / "server.key"

    @property
    def crl_file(self) -> Path:
        return self.root / "pki" / "crl.pem"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    @property
    def run_info_path(self) -> Path:
        return self.root / "service.json"

    @property
    def ports_path(self) -> Path:
        return self.root / "ports.json"

    @property
    def log_path(self) -> Path:
        return self.root / "service.log"

    @property
    def lock_path(self) -> Path:
        return self.root / "service.lock"

    def device_cert(self, thing: str) -> Path:
        return self.root / "devices" / thing / "device.crt"

    def device_key(self, thing: str) -> Path:
        return self.root / "devices" / thing / "device.key"

    def create(self) -> None:
        """The directory, private; and whatever an older version left readable, made private too
        (the service itself creates every file with umask 077: see ``cli.main``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for path in self.root.rglob("*"):
            with contextlib.suppress(OSError):  # a file that went away meanwhile
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
                    continue
                path.chmod(0o700 if stat.S_ISDIR(info.st_mode) else 0o600)

    def ensure_pki(self) -> None:
        """Create the CA and the server certificate on first start; keep them afterwards."""
        from .identity import pki

        self.create()
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            ca = pki.new_ca()
            pki.write_private(self.ca_key, ca.private_key_pem)
            self.ca_cert.write_bytes(ca.certificate_pem)
        if not (self.server_cert.exists() and self.server_key.exists()):
            server = pki.new_server_certificate(self.ca())
            pki.write_private(self.server_key, server.private_key_pem)
            self.server_cert.write_bytes(server.certificate_pem)

    def ca(self) -> pki.Issued:
        from .identity import pki

        return pki.load(self.ca_cert, self.ca_key)

    def credentials(self) -> Credentials:
        path = self.root / "credentials.json"
        if path.exists():
            stored = json.loads(path.read_text())
            return Credentials(stored["accessKeyId"], stored["secretAccessKey"], stored["brokerPassword"])
        self.create()
        upper = string.ascii_uppercase + string.digits
        creds = Credentials(
            access_key_id="AKIA" + _random(upper, 16),
            secret_access_key=_random(string.ascii_letters + string.digits + "+/", 40),
            broker_password=secrets.token_urlsafe(24),
        )
        data: dict[str, Any] = {
            "accessKeyId": creds.access_key_id,
            "secretAccessKey": creds.secret_access_key,
            "brokerPassword": creds.broker_password,
        }
        from .identity import pki

        pki.write_private(path, json.dumps(data).encode())
        return creds

    def write_run_info(self, info: RunInfo) -> None:
        _write_atomically(self.run_info_path, json.dumps({**info.__dict__, "clients": list(info.clients)}))

    def read_run_info(self) -> RunInfo | None:
        """The running service's info, or None if none runs (a stale file from a killed one is ignored)."""
        try:
            stored = json.loads(self.run_info_path.read_text())
            stored["clients"] = tuple(stored.get("clients", ()))
            info = RunInfo(**stored)
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return info

    def clear_run_info(self) -> None:
        self.run_info_path.unlink(missing_ok=True)

    def write_ports(self, mqtt_port: int, http_port: int) -> None:
        """Remember the ports a service listens on, so that the next start (by hand, or by a
        console) comes back on them and clients configured with them keep working."""
        _write_atomically(self.ports_path, json.dumps({"mqtt_port": mqtt_port, "http_port": http_port}))

    def stored_ports(self) -> tuple[int, int] | None:
        """(mqtt_port, http_port) of the last service on this directory, if one ran."""
        try:
            stored = json.loads(self.ports_path.read_text())
            return int(stored["mqtt_port"]), int(stored["http_port"])
        except (OSError, ValueError, TypeError, KeyError):
            return None


#: How long a start waits for a reset (which may first stop a service: up to 15 s) and the reverse.
LOCK_TIMEOUT = 30.0


class StateLocked(RuntimeError):
    """Another process holds the state directory's lock (a reset, or a service starting)."""


class StateLock:
    """The state directory's lock (``flock`` on ``service.lock``): a service holds it from before it
    reads any state until it is ready (``service.json`` written), ``reset`` for all it does. So a
    start during a reset waits for the reset and then begins on the fresh state, and a reset during
    a start waits until the service runs, then sees it (and stops it, or refuses).

    The lock goes with the open file: the kernel releases it when the holder exits, even by
    ``kill -9``. The holder's pid is written into the file, for the message of one that waits.
    """

    def __init__(self, state: StateDir, purpose: str) -> None:
        self._state = state
        self._purpose = purpose
        self._fd: int | None = None

    def acquire(self, timeout: float = LOCK_TIMEOUT, notice: Callable[[str], None] | None = None) -> StateLock:
        """Take the lock, waiting up to ``timeout`` s; ``notice(line)`` is told once if it must wait.
        Raises :class:`StateLocked` (one line) if it is still held then."""
        import fcntl

        self._state.create()
        fd = os.open(self._state.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self.holder()
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StateLocked(
                        f"{self._state.root} is busy: {holder or 'another process'} did not finish "
                        f"within {timeout:g} s; try again"
                    ) from None
                if notice is not None and not told:
                    notice(f"waiting for {holder or 'another process'} to finish on {self._state.root}")
                    told = True
                time.sleep(0.05)  # flock has no timeout; polling the lock, a few times a second
        os.ftruncate(fd, 0)
        os.write(fd, f"{self._purpose} (pid {os.getpid()})\n".encode())
        self._fd = fd
        return self

    def holder(self) -> str:
        """Who holds (or last held) the lock, e.g. ``reset (pid 1234)``; empty if unknown."""
        try:
            return self._state.lock_path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file releases the flock

    @contextlib.contextmanager
    def held(self, timeout: float = LOCK_TIMEOUT, notice: Callable[[str], None] | None = None) -> Iterator[None]:
        self.acquire(timeout, notice)
        try:
            yield
        finally:
            self.release()


def notice_on_stderr(line: str) -> None:
    print(f"iot-jobs-local: {line}", file=sys.stderr, flush=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
