"""Compose the local service: state, engine, Mosquitto, the MQTT link and the HTTP API.

One asyncio process. The broker is supervised: if Mosquitto dies it is started again on the same
ports, and devices reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .broker import Broker, BrokerConfig, BrokerError, free_port
from .engine import Engine, Identity
from .http_api.server import HttpApi
from .mqtt_api import MqttApi
from .mqtt_link import ServiceLink
from .state_dir import DEFAULT_ACCOUNT, DEFAULT_REGION, RunInfo, StateDir
from .store import Store

log = logging.getLogger(__name__)

DEFAULT_MQTT_PORT = 8883
DEFAULT_HTTP_PORT = 8088


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


async def serve(options: ServiceOptions, stop: asyncio.Event) -> None:
    state = StateDir(options.state_dir)
    state.ensure_pki()
    running = state.read_run_info()
    if running is not None and running.pid != os.getpid():
        raise ServiceError(f"iot-jobs-local already runs on {state.root} (pid {running.pid})")
    creds = state.credentials()
    store = Store(state.database)
    engine = Engine(store, Identity(options.region, options.account), time.time)
    broker = Broker(
        BrokerConfig(
            directory=state.broker_dir,
            ca_file=state.ca_cert,
            cert_file=state.server_cert,
            key_file=state.server_key,
            device_port=options.mqtt_port,
            service_port=free_port(),
            service_password=creds.broker_password,
            bind_address=options.bind_address,
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(store.close)
        await broker.start()
        stack.push_async_callback(broker.stop)
        link = ServiceLink(broker.config.service_port, creds.broker_password, MqttApi(engine))
        engine.subscribe(link.publish_changes)
        runner = web.AppRunner(HttpApi(engine).app(), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        try:
            await web.TCPSite(runner, options.bind_address, options.http_port).start()
        except OSError as exc:
            raise ServiceError(f"cannot listen for HTTP on {options.bind_address}:{options.http_port}: {exc}") from exc
        tasks = [
            asyncio.create_task(link.run(), name="mqtt-link"),
            asyncio.create_task(_supervise(broker, stop), name="broker-supervisor"),
        ]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait_for(link.ready.wait(), 10)
            state.write_run_info(
                RunInfo(os.getpid(), options.mqtt_port, options.http_port, options.region, options.account)
            )
            stack.callback(state.clear_run_info)
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
