"""The service's own MQTT connection: receive every device request, publish replies and events.

Replies go out at QoS 0: a QoS 1 reply makes the device send a PUBACK that Nagle then holds up
together with its next packet (~40 ms per request, see the implementation notes). Events go out
at QoS 1 so that devices with persistent sessions still get them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from .broker import SERVICE_USER
from .engine import PendingChange
from .mqtt_api import REQUEST_FILTER, MqttApi, Outgoing

log = logging.getLogger(__name__)

REPLY_QOS = 0
EVENT_QOS = 1


def _encode(message: Outgoing) -> bytes:
    return json.dumps(message.payload, separators=(",", ":")).encode()


class ServiceLink:
    def __init__(self, port: int, password: str, api: MqttApi) -> None:
        self._port = port
        self._password = password
        self._api = api
        self._events: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self.ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def publish_changes(self, changes: Sequence[PendingChange]) -> None:
        """Engine listener. Deferred with ``call_soon`` so a request's reply is published before its events."""
        for change in changes:
            for message in self._api.events(change):
                self._loop.call_soon(self._events.put_nowait, message)

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
            await client.subscribe(REQUEST_FILTER, options=SubscribeOptions(qos=1, noLocal=True))
            self._client = client
            self.ready.set()
            async for message in client.messages:
                reply = self._api.handle(str(message.topic), bytes(message.payload))
                if reply is not None:
                    await client.publish(reply.topic, _encode(reply), qos=REPLY_QOS)

    async def _publish_events(self) -> None:
        while True:
            message = await self._events.get()
            client = self._client
            if client is None:
                log.warning("broker unavailable: dropped event on %s", message.topic)
                continue
            try:
                await client.publish(message.topic, _encode(message), qos=EVENT_QOS)
            except aiomqtt.MqttError as exc:
                log.warning("could not publish event on %s: %s", message.topic, exc)
