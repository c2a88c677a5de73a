"""The service's own MQTT connections (``mqtt_link``, ``broker_watch``) against a real Mosquitto,
in process.

The whole-service tests cover the default settings end to end; these cover what they cannot
reach: events at QoS 1 with more in flight than the PUBACK window, the keepalive ping, and the
link and the broker watch finding the broker again after it was stopped and started on the same
port (the watch still refusing client ids and confirming reloads afterwards).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.broker.process import free_port, password_line
from iot_jobs_local.broker.watch import BrokerWatch
from iot_jobs_local.clock import Clock
from iot_jobs_local.engine import Engine, Identity
from iot_jobs_local.mqtt.connection import SERVICE_USER
from iot_jobs_local.mqtt.device_api import MqttApi
from iot_jobs_local.mqtt.link import CLIENT_ID, EVENT_WINDOW, ServiceLink
from iot_jobs_local.store import Store

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto on PATH")

PASSWORD = "link-test-password"
TIMEOUT = 10.0


class Mosquitto:
    """A plain-TCP Mosquitto with one password-protected loopback listener; its log lines in a queue."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        #: A second listener, standing in for the device port, and the log on $SYS topics too.
        self.device_port = free_port()
        self.log: queue.Queue[str] = queue.Queue()
        self._conf = directory / "mosquitto.conf"
        (directory / "passwd").write_text(password_line(SERVICE_USER, PASSWORD) + "\n")
        (directory / "passwd").chmod(0o600)
        listeners = "".join(
            f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {directory / 'passwd'}\n"
            for port in (self.port, self.device_port)
        )
        self._conf.write_text(
            f"per_listener_settings true\n{listeners}log_dest stderr\nlog_dest topic\nlog_type all\n"
            + ("user root\n" if _is_root() else "")
        )
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(self._conf)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        stream = self._process.stderr
        assert stream is not None
        threading.Thread(target=lambda: [self.log.put(line) for line in stream], daemon=True).start()
        self.wait_for_log(f"Opening ipv4 listen socket on port {self.port}")
        self.wait_for_log(" running")  # "mosquitto version X running": the listeners accept connections

    def reload(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(TIMEOUT)

    def wait_for_log(self, text: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"Mosquitto never logged {text!r}")
            try:
                line = self.log.get(timeout=left)
            except queue.Empty:
                continue
            if text in line:
                return line


def _is_root() -> bool:
    return os.geteuid() == 0


class Observer:
    """A paho client on the same listener, subscribed to every jobs topic at QoS 1."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: queue.Queue[Any] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"observer-{port}")
        self.client.username_pw_set(SERVICE_USER, PASSWORD)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe("$aws/things/+/jobs/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT), "observer never subscribed"

    def next(self, topic_suffix: str) -> Any:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if message.topic.endswith(topic_suffix):
                return message
        raise AssertionError(f"no message on *{topic_suffix} within {TIMEOUT} s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextmanager
def _broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@asynccontextmanager
async def _link(broker: Mosquitto, tmp_path: Path, **options: Any) -> AsyncIterator[tuple[ServiceLink, Engine]]:
    store = Store(tmp_path / "jobs.sqlite")
    engine = Engine(store, Identity("us-east-1", "123456789012"), Clock(1))
    link = ServiceLink(broker.port, PASSWORD, MqttApi(engine), **options)
    engine.subscribe(link.publish_changes)
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.ready.wait(), TIMEOUT)
        yield link, engine
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def _request(observer: Observer, thing: str, token: str) -> dict[str, Any]:
    observer.client.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": token}), qos=0)
    message = await asyncio.to_thread(observer.next, "/get/accepted")
    body: dict[str, Any] = json.loads(message.payload)
    assert body["clientToken"] == token
    return body


def test_qos1_events_beyond_the_puback_window_all_arrive(tmp_path: Path) -> None:
    """More events than ``EVENT_WINDOW`` at QoS 1: each window slot comes back with its PUBACK."""
    things = EVENT_WINDOW // 2 + 50  # two events per thing: notify and notify-next

    async def scenario(broker: Mosquitto) -> None:
        observer = Observer(broker.port)
        try:
            async with _link(broker, tmp_path, event_qos=1) as (_, engine):
                engine.create_thing_group("fleet", None, {})
                for i in range(things):
                    engine.create_thing(f"t{i}")
                    engine.add_thing_to_thing_group({"thingGroupName": "fleet", "thingName": f"t{i}"})
                engine.create_job("J1", [engine.identity.group_arn("fleet")], '{"step":1}')
                seen: set[tuple[str, str]] = set()
                while len(seen) < 2 * things:
                    message = await asyncio.to_thread(observer.next, "")
                    assert message.qos == 1, message.topic
                    seen.add((message.topic.split("/")[2], message.topic.rsplit("/", 1)[1]))
                assert {kind for _, kind in seen} == {"notify", "notify-next"}
                assert (await _request(observer, "t0", "after-events"))["queuedJobs"][0]["jobId"] == "J1"
        finally:
            observer.close()

    with _broker(tmp_path) as broker:
        asyncio.run(scenario(broker))


def test_keepalive_pings_keep_an_idle_link_connected(tmp_path: Path) -> None:
    async def scenario(broker: Mosquitto) -> None:
        async with _link(broker, tmp_path, keepalive=1) as (link, _):
            for _ in range(3):  # 1.5 keepalives without a packet would make Mosquitto drop us
                await asyncio.to_thread(broker.wait_for_log, f"Received PINGREQ from {CLIENT_ID}")
            assert link.ready.is_set()

    with _broker(tmp_path) as broker:
        asyncio.run(scenario(broker))


def test_link_comes_back_after_the_broker_restarts(tmp_path: Path) -> None:
    async def scenario(broker: Mosquitto) -> None:
        async with _link(broker, tmp_path) as (link, engine):
            engine.create_thing("T")
            observer = Observer(broker.port)
            try:
                assert (await _request(observer, "T", "before"))["queuedJobs"] == []
            finally:
                observer.close()
            broker.stop()
            deadline = time.monotonic() + TIMEOUT
            while link.ready.is_set():  # the link notices the broker is gone
                assert time.monotonic() < deadline, "the link never noticed the broker stopped"
                await asyncio.sleep(0.01)
            broker.start()  # same port
            await asyncio.wait_for(link.ready.wait(), TIMEOUT)
            engine.create_job("J2", [engine.identity.thing_arn("T")], "{}")
            observer = Observer(broker.port)
            try:
                assert (await _request(observer, "T", "after"))["queuedJobs"][0]["jobId"] == "J2"
            finally:
                observer.close()

    with _broker(tmp_path) as broker:
        asyncio.run(scenario(broker))


class Device:
    """A paho client on the device listener; ``gone`` is set when the broker drops it."""

    def __init__(self, port: int, client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        connected, self.gone = threading.Event(), threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(SERVICE_USER, PASSWORD)
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_disconnect = lambda *_: self.gone.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(TIMEOUT), f"{client_id} never connected"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_broker_watch_tracks_clients_and_confirms_reloads_across_a_broker_restart(tmp_path: Path) -> None:
    heard: list[str] = []

    async def until(condition: Any) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert time.monotonic() < deadline, "condition never held"
            await asyncio.sleep(0.01)

    async def tracked(watch: BrokerWatch, round_: int) -> None:
        device = await asyncio.to_thread(Device, broker.device_port, f"device-{round_}")
        try:
            await until(lambda: f"device-{round_}" in watch.live)
            assert not device.gone.is_set() and watch.live[f"device-{round_}"] == SERVICE_USER
        finally:
            device.close()
        await until(lambda: f"device-{round_}" not in watch.live)

    async def scenario() -> None:
        watch = BrokerWatch(broker.port, PASSWORD, broker.device_port, heard.append)
        task = asyncio.create_task(watch.run())
        try:
            await asyncio.wait_for(watch.ready.wait(), TIMEOUT)
            await tracked(watch, 1)
            assert await watch.reload(broker.reload)
            broker.stop()
            await until(lambda: not watch.ready.is_set())
            await asyncio.to_thread(broker.start)  # same ports
            await asyncio.wait_for(watch.ready.wait(), TIMEOUT)
            await tracked(watch, 2)
            assert await watch.reload(broker.reload)
            assert heard.count(SERVICE_USER) >= 4  # every connect and disconnect of a device was heard
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await watch.close()

    with _broker(tmp_path) as broker:
        asyncio.run(scenario())
