"""Compose the local service: state, engine, identity, Mosquitto, the MQTT link and the HTTP API.

One asyncio process. The broker is supervised: if Mosquitto dies it is started again on the same
ports, and devices reconnect by themselves. What a device may do on the broker follows the IoT
policies of its certificate: the access manager rewrites the broker's ACL and CRL on every
identity change and reloads them (SIGHUP); the broker watch enforces iot:Connect. Everything reads
one clock, which ``time_scale`` can speed up; the scheduler fires timeouts, rollout batches and
scheduled starts and ends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .broker import limits
from .broker.access import AccessManager
from .broker.acl_feed import AclFeed
from .broker.gate import ConnectGate
from .broker.process import Broker, BrokerConfig, BrokerError
from .broker.watch import BrokerWatch
from .clock import Clock
from .engine import Engine, Identity
from .engine.scheduler import Scheduler
from .http_api import identity_handlers
from .http_api.server import HttpApi
from .http_api.sigv4 import Verifier
from .identity.groups import Groups
from .identity.keys import KeyMaker
from .identity.provisioning import LocalRegistry, adopt_legacy_devices
from .identity.service import IdentityService
from .identity.store import IdentityStore
from .jobs.errors import JobsError
from .mqtt.device_api import MqttApi
from .mqtt.link import ServiceLink
from .request_log import LoggedHttpApi, LoggedMqttApi
from .state_dir import (
    DEFAULT_ACCOUNT,
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_REGION,
    LOCK_TIMEOUT,
    RunInfo,
    StateDir,
    StateLock,
)
from .store import Store

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceOptions:
    state_dir: Path
    mqtt_port: int = DEFAULT_MQTT_PORT
    http_port: int = DEFAULT_HTTP_PORT
    bind_address: str = "127.0.0.1"
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    #: Virtual seconds per real second (``serve --time-scale``); 1 is real time.
    time_scale: float = 1.0
    #: One log line per HTTP operation and MQTT request (``serve --log-requests``).
    log_requests: bool = False
    #: Device connections to be ready for (``serve --max-devices``); None: the default, lowered to
    #: what the open-file hard limit allows.
    max_devices: int | None = None


async def _supervise(broker: Broker, stop: asyncio.Event) -> None:
    """Restart Mosquitto if it dies while we are running; give up after repeated failures."""
    failures = 0
    while not stop.is_set():
        code = await broker.wait()
        if stop.is_set():
            return
        log.warning("Mosquitto exited unexpectedly (%s); restarting it", code)
        failures += 1
        try:
            await broker.start()
            failures = 0
        except BrokerError:
            if failures >= 3:
                raise


def _thing_exists(engine: Engine, name: str) -> bool:
    try:
        engine.describe_thing(name)
    except JobsError:
        return False
    return True


def _local_host(bind_address: str) -> str:
    return "127.0.0.1" if bind_address in ("0.0.0.0", "::", "") else bind_address


def _http_socket(bind_address: str, port: int) -> socket.socket:
    """The HTTP API's listening socket, bound here so that port 0 is resolved before anything
    (DescribeEndpoint, service.json, the ready line) needs the real port."""
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_address, port))
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen for HTTP on {bind_address}:{port}: {exc.strerror or exc}") from exc
    return sock


class _RunInfoWriter:
    """Keeps ``service.json`` current: who is connected, for ``iot-jobs-local status``. A burst of
    connects is written once (after a short delay), never per client."""

    DELAY_S = 0.2

    def __init__(self, state: StateDir, info: RunInfo, live: dict[str, str]) -> None:
        self._state, self._info, self._live = state, info, live
        self._pending: asyncio.TimerHandle | None = None

    def write(self) -> None:
        self._pending = None
        self._info = replace(self._info, clients=tuple(sorted(self._live)))
        with contextlib.suppress(OSError):
            self._state.write_run_info(self._info)

    def changed(self) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.DELAY_S, self.write)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


async def serve(options: ServiceOptions, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set. The state directory's lock is held from before anything is read
    until the service is ready, so that a ``reset`` never runs in the middle of a start."""
    try:
        capacity = limits.ensure(options.max_devices)
    except limits.LimitError as exc:
        raise ServiceError(str(exc)) from None
    state = StateDir(options.state_dir)
    lock = StateLock(state, "a starting iot-jobs-local")
    await asyncio.to_thread(lock.acquire, LOCK_TIMEOUT, lambda line: log.warning("%s", line))
    try:
        await _serve(state, options, capacity, stop, ready=lock.release)
    finally:
        lock.release()


async def _serve(
    state: StateDir,
    options: ServiceOptions,
    capacity: limits.Capacity,
    stop: asyncio.Event,
    ready: Callable[[], None],
) -> None:
    state.ensure_pki()
    running = state.read_run_info()
    if running is not None and running.pid != os.getpid():
        raise ServiceError(f"iot-jobs-local already runs on {state.root} (pid {running.pid})")
    creds = state.credentials()
    store = Store(state.database)
    clock = Clock(options.time_scale, not_before=store.latest_timestamp())
    if options.time_scale != 1:
        log.info("time runs %g times faster than real time (timestamps run ahead accordingly)", options.time_scale)
    elif clock.ahead_by > 1:
        log.warning(
            "the state's times run up to %.0f s ahead of the wall clock (a --time-scale run); this run "
            "keeps real time: deadlines set then fire when the wall clock reaches them",
            clock.ahead_by,
        )
    engine = Engine(store, Identity(options.region, options.account), clock)
    scheduler = Scheduler(engine, clock)
    identity_store = IdentityStore(state.database)
    identity = IdentityService(
        identity_store,
        state.ca,
        options.region,
        options.account,
        lambda n: _thing_exists(engine, n),
        clock,
        Groups(lineage=engine.group_lineage, of_thing=engine.groups_of_thing),
    )
    engine.watch_membership(identity.membership_changed)
    adopted = adopt_legacy_devices(state, LocalRegistry(identity, engine.create_thing, state.ca()))
    if adopted:
        log.info("registered the certificates of %d thing(s) provisioned by an older version", len(adopted))
    http_socket = _http_socket(options.bind_address, options.http_port)
    options = replace(options, http_port=int(http_socket.getsockname()[1]))
    config = BrokerConfig(
        directory=state.broker_dir,
        ca_file=state.ca_cert,
        cert_file=state.server_cert,
        key_file=state.server_key,
        device_port=options.mqtt_port,  # 0: the broker picks one as it starts (and retries on a clash)
        service_port=0,
        service_password=creds.broker_password,
        bind_address=options.bind_address,
        crl_file=state.crl_file,
        max_connections=capacity.max_devices,
        # Every device's request reaches the service's one connection: room for a few per device.
        max_queued_messages=max(1000, 10 * capacity.max_devices),
    )
    feed = AclFeed()
    access = AccessManager(identity, state.ca, state.crl_file, feed)
    access.prepare()
    broker = Broker(config, ConnectGate(identity.may_connect), feed)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(http_socket.close)
        stack.callback(store.close)
        stack.callback(identity_store.close)
        await broker.start()
        stack.push_async_callback(broker.stop)
        options = replace(options, mqtt_port=broker.config.device_port)
        run_info = RunInfo(
            os.getpid(),
            options.mqtt_port,
            options.http_port,
            options.region,
            options.account,
            started_at=time.time(),
            time_scale=options.time_scale,
        )
        writer: _RunInfoWriter | None = None

        def on_client(common_name: str) -> None:
            access.on_client(common_name)
            if writer is not None:
                writer.changed()

        watch = BrokerWatch(broker.config.service_port, creds.broker_password, options.mqtt_port, on_client)
        stack.push_async_callback(watch.close)
        watch_task = asyncio.create_task(watch.run(), name="broker-watch")
        stack.callback(watch_task.cancel)
        access.attach(broker, watch)
        identity.subscribe(access.on_change)
        mqtt_api = (LoggedMqttApi if options.log_requests else MqttApi)(engine)
        link = ServiceLink(broker.config.service_port, creds.broker_password, mqtt_api)
        engine.subscribe(link.publish_changes)
        engine.watch_lifecycle(link.publish_lifecycle)
        verifier = Verifier(
            {creds.access_key_id: creds.secret_access_key}, options.region, frozenset({"iot", "iot-jobs-data"})
        )
        endpoints = identity_handlers.Endpoints(
            data_host="localhost", jobs_address=f"{_local_host(options.bind_address)}:{options.http_port}"
        )
        api_class = LoggedHttpApi if options.log_requests else HttpApi
        keys = KeyMaker()
        stack.callback(keys.close)
        api = api_class(engine, verifier, identity_handlers.handlers(identity, endpoints, keys), access.settled)
        http_server = api.server()
        stack.push_async_callback(http_server.close)
        try:
            await http_server.start(options.bind_address, options.http_port, sock=http_socket)
        except OSError as exc:
            raise ServiceError(f"cannot listen for HTTP on {options.bind_address}:{options.http_port}: {exc}") from exc
        tasks = [
            watch_task,
            asyncio.create_task(link.run(), name="mqtt-link"),
            asyncio.create_task(_supervise(broker, stop), name="broker-supervisor"),
        ]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait_for(asyncio.gather(link.ready.wait(), watch.ready.wait()), 10)
            # Only now: what was overdue while the service was down fires with its events delivered.
            tasks.append(asyncio.create_task(scheduler.run(), name="scheduler"))
            writer = _RunInfoWriter(state, run_info, watch.live)
            writer.write()
            ready()
            stack.callback(state.clear_run_info)
            stack.callback(writer.cancel)
            state.write_ports(options.mqtt_port, options.http_port)
            print(
                f"iot-jobs-local ready: mqtts://localhost:{options.mqtt_port} "
                f"http://{options.bind_address}:{options.http_port} state={state.root}",
                flush=True,
            )
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
