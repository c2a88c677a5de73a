"""The service's own MQTT connection: receive every device request, publish replies and events.

Replies and events go out at QoS 0: a QoS 1 publish makes the device send a PUBACK, and the
awscrt socket has Nagle on, so the device's next request waits behind that PUBACK for the broker's
delayed ACK (~40 ms, see the implementation notes). Measured: with QoS 1 events, a start-next sent
right after an update that published events took 42 ms instead of 25 ms. The cost: a device whose
persistent session is offline does not get the events queued (UNCONFIRMED which QoS AWS uses);
set ``EVENT_QOS = 1`` to trade the latency for that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Sequence

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from .broker import SERVICE_USER
from .engine import PendingChange
from .mqtt_api import REQUEST_FILTER, MqttApi, Outgoing

log = logging.getLogger(__name__)

REPLY_QOS = 0
EVENT_QOS = 0
#: Requests reach us at QoS 0 over loopback: a PUBACK per request would be one more small write,
#: and with Nagle it held back the reply that followed it until the broker's delayed ACK (~40 ms).
REQUEST_QOS = 0
#: QoS 1 events awaiting their PUBACK at once. Publishing one at a time costs a broker round trip
#: each (a CreateJob on a 10,000-thing group publishes 20,000 events); a window pipelines them while
#: paho keeps them in order on the one connection.
EVENT_WINDOW = 500


def _encode(message: Outgoing) -> bytes:
    return json.dumps(message.payload, separators=(",", ":")).encode()


def _no_delay(client: aiomqtt.Client) -> None:
    """Send each reply at once (paho leaves Nagle on; the broker side already sets TCP_NODELAY)."""
    sock = client._client.socket()  # aiomqtt exposes no socket option hook
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ServiceLink:
    def __init__(self, port: int, password: str, api: MqttApi) -> None:
        self._port = port
        self._password = password
        self._api = api
        self._changes: asyncio.Queue[Sequence[PendingChange]] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self.ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def publish_changes(self, changes: Sequence[PendingChange]) -> None:
        """Engine listener. Deferred with ``call_soon`` so a request's reply is published before its events.

        Payloads are built by the publisher task, not here, so a change touching thousands of things
        does not delay the response of the operation that caused it.
        """
        self._loop.call_soon(self._changes.put_nowait, changes)

    async def run(self) -> None:
        """Serve requests until cancelled, reconnecting if the broker goes away."""
        publisher = asyncio.create_task(self._publish_events(), name="event-publisher")
        try:
            while True:
                try:
                    await self._serve_once()
                except aiomqtt.MqttError as exc:
                    self.ready.clear()
                    self._client = None
                    log.warning("service connection to the broker lost (%s); reconnecting", exc)
                    await asyncio.sleep(0.2)  # back-off before reconnecting to a restarting broker
        finally:
            publisher.cancel()

    async def _serve_once(self) -> None:
        async with aiomqtt.Client(
            "127.0.0.1",
            self._port,
            username=SERVICE_USER,
            password=self._password,
            identifier="iot-jobs-local-service",
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=60,
        ) as client:
            _no_delay(client)
            await client.subscribe(REQUEST_FILTER, options=SubscribeOptions(qos=REQUEST_QOS, noLocal=True))
            self._client = client
            self.ready.set()
            async for message in client.messages:
                reply = self._api.handle(str(message.topic), bytes(message.payload))
                if reply is not None:
                    await client.publish(reply.topic, _encode(reply), qos=REPLY_QOS)

    async def _publish_events(self) -> None:
        """Publish each batch's events in order, up to ``EVENT_WINDOW`` of them awaiting their PUBACK."""
        window = asyncio.Semaphore(EVENT_WINDOW)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                changes = await self._changes.get()
                for change in changes:
                    for message in self._api.events(change):
                        await window.acquire()
                        task = asyncio.create_task(self._publish_event(message))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                        task.add_done_callback(lambda _: window.release())
                    await asyncio.sleep(0)  # let requests in between the things of a large batch
        finally:
            for task in in_flight:
                task.cancel()

    async def _publish_event(self, message: Outgoing) -> None:
        client = self._client
        if client is None:
            log.warning("broker unavailable: dropped event on %s", message.topic)
            return
        try:
            await client.publish(message.topic, _encode(message), qos=EVENT_QOS)
        except aiomqtt.MqttError as exc:
            log.warning("could not publish event on %s: %s", message.topic, exc)
