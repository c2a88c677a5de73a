"""(b) of the control-plane benchmark: a SNAPSHOT job on a thing group of many things, on a fresh
service holding only those things: the CreateJob call, all executions QUEUED, every event received
by a subscriber that gets them through the broker's ACL as a device would, and the service's RSS."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import ACCOUNT, REGION, Service, iot_client, machine_busy_seconds, memory_kib, thing_arn, tree_cpu_seconds
from rates import DOCUMENT, THREADS, wait_for_quiet


class EventCounter:
    """A paho-mqtt MQTT5 subscriber on ``$aws/things/+/jobs/notify`` and ``.../notify-next``.

    Records, per topic, the first arrival (monotonic clock) of each (thing, event) pair it is told
    to expect; ``wait`` returns once all of them arrived.
    """

    FILTERS = ("$aws/things/+/jobs/notify", "$aws/things/+/jobs/notify-next")

    def __init__(self, port: int, ca: Path, cert: Path, key: Path) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._expected: set[str] = set()
        self._seen: set[str] = set()
        self.messages = 0
        self.last = 0.0
        self._done = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="benchmark-events", protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self._subscribed.set()
        self._client = client
        self._port = port

    def __enter__(self) -> EventCounter:
        self._client.connect("localhost", self._port, keepalive=60)
        self._client.loop_start()
        self._client.subscribe([(f, 0) for f in self.FILTERS])
        if not self._subscribed.wait(10):
            raise RuntimeError("the event subscriber got no SUBACK")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def expect(self, things: list[str]) -> None:
        with self._lock:
            self._expected = {f"$aws/things/{t}/jobs/{kind}" for t in things for kind in ("notify", "notify-next")}
            self._seen = set()
            self.messages = 0
            self._done.clear()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self.messages += 1
            if message.topic in self._expected and message.topic not in self._seen:
                self._seen.add(message.topic)
                self.last = now
                if len(self._seen) == len(self._expected):
                    self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    @property
    def received(self) -> int:
        return len(self._seen)


def _subscriber_identity(client: Any, directory: Path) -> tuple[Path, Path]:
    """A certificate whose policy lets it connect and receive every thing's jobs events."""
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/benchmark-events"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/$aws/things/*/jobs/*"},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{arn}:topic/$aws/things/*/jobs/*"},
        ],
    }
    keys = client.create_keys_and_certificate(setAsActive=True)
    client.create_policy(policyName="benchmark-events", policyDocument=json.dumps(policy))
    client.attach_policy(policyName="benchmark-events", target=keys["certificateArn"])
    cert, key = directory / "events.crt", directory / "events.key"
    cert.write_text(keys["certificatePem"])
    key.write_text(keys["keyPair"]["PrivateKey"])
    return cert, key


@dataclass
class FanOut:
    things: int
    setup_seconds: float
    create_job_seconds: float
    queued_seconds: float
    events_seconds: float
    events_expected: int
    events_received: int
    done_seconds: float
    rss_idle_kib: dict[str, int]
    rss_kib: dict[str, int]
    foreign_load: float


def _parallel(clients: list[Any], items: list[str], call: Callable[[Any, str], None]) -> None:
    failures: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            for item in items[slot :: len(clients)]:
                call(clients[slot], item)
        except BaseException as exc:  # reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def fan_out(service: Service, count: int, directory: Path) -> FanOut:
    credentials = service.keys
    client = iot_client(service.endpoint, credentials)
    rss_idle = memory_kib(service.pid)
    group = "benchmark-group"
    client.create_thing_group(thingGroupName=group)
    things = [f"g{i:05d}" for i in range(count)]
    clients = [iot_client(service.endpoint, credentials) for _ in range(THREADS)]
    start = time.perf_counter()

    def add(c: Any, name: str) -> None:
        c.create_thing(thingName=name)
        c.add_thing_to_thing_group(thingGroupName=group, thingName=name)

    _parallel(clients, things, add)
    setup = time.perf_counter() - start

    cert, key = _subscriber_identity(client, directory)
    with EventCounter(service.mqtt_port, Path(service.ca), cert, key) as events:
        # Check the subscriber sees events at all (and warm the path up) with a one-thing job.
        client.create_thing(thingName="warm-up")
        events.expect(["warm-up"])
        client.create_job(jobId="warm-up", targets=[thing_arn("warm-up")], document=DOCUMENT)
        if not events.wait(10):
            raise RuntimeError("the subscriber did not receive the warm-up job's events")

        events.expect(things)
        wait_for_quiet()
        tree_before, machine_before, client_before = (
            tree_cpu_seconds(service.pid),
            machine_busy_seconds(),
            time.process_time(),
        )
        t0 = time.monotonic()
        client.create_job(jobId="fan-out", targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"],
                          document=DOCUMENT, targetSelection="SNAPSHOT")  # fmt: skip
        created = time.monotonic() - t0
        while True:
            details = client.describe_job(jobId="fan-out")["job"]["jobProcessDetails"]
            if details["numberOfQueuedThings"] == count:
                queued = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"not all things QUEUED after 60 s: {details}")
            time.sleep(0.01)  # polling the control plane is what the measurement is about
        complete = events.wait(120)
        events_at = (events.last - t0) if complete else float("nan")
        received, expected = events.received, 2 * count
        elapsed = time.monotonic() - t0
        ours = tree_cpu_seconds(service.pid) - tree_before + time.process_time() - client_before
        foreign = max(0.0, machine_busy_seconds() - machine_before - ours) / elapsed
    return FanOut(
        things=count,
        setup_seconds=setup,
        create_job_seconds=created,
        queued_seconds=queued,
        events_seconds=events_at,
        events_expected=expected,
        events_received=received,
        done_seconds=max(queued, events_at),
        rss_idle_kib=rss_idle,
        rss_kib=memory_kib(service.pid),
        foreign_load=foreign,
    )
