"""The service's own MQTT connections to the broker: the link that receives every device request
and publishes replies and events, and the connect/subscribe/keepalive it shares with the broker
watch (``broker_watch``).

An asyncio protocol speaking MQTT 3.1.1 (``mqtt_codec``) to the broker's loopback service
listener. Requests are answered inside ``data_received``, all replies to one read in one write:
paho (through aiomqtt) cost ~0.28 ms of CPU per request on this path, four times the jobs work
itself (profile in ``benchmarks/README.md``).

Replies and events go out at QoS 0: a QoS 1 publish makes the device send a PUBACK, and the
awscrt socket has Nagle on, so the device's next request waits behind that PUBACK for the broker's
delayed ACK (~40 ms, see the implementation notes). Measured: with QoS 1 events, a start-next sent
right after an update that published events took 42 ms instead of 25 ms. The cost: a device whose
persistent session is offline does not get the events queued (UNCONFIRMED which QoS AWS uses);
set ``EVENT_QOS = 1`` to trade the latency for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from ..engine import PendingChange
from ..jobs.lifecycle_events import LifecycleEvent
from . import codec
from .connection import (
    KEEPALIVE_S,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    Connection,
    LinkError,
    close,
    keep_alive,
    open_connection,
)
from .device_api import REQUEST_FILTERS, MqttApi, Outgoing

log = logging.getLogger(__name__)

#: Replies always go out at QoS 0 (see above); events by default too.
EVENT_QOS = 0
#: Requests reach us at QoS 0 over loopback: a PUBACK per request would be one more small write,
#: and with Nagle it held back the reply that followed it until the broker's delayed ACK (~40 ms).
REQUEST_QOS = 0
#: QoS 1 events awaiting their PUBACK at once (only with ``EVENT_QOS = 1``): a window pipelines a
#: large fan-out (20,000 events for a 10,000-thing group) instead of a broker round trip each.
EVENT_WINDOW = 500
CLIENT_ID = "iot-jobs-local-service"
#: Events written before the publisher yields to requests waiting in the loop.
EVENT_BATCH = 256


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # a payload is always JSON


def _encode(message: Outgoing) -> bytes:
    return _ENCODER.encode(message.payload).encode()


class ServiceLink:
    """``event_qos`` and ``keepalive`` default to the module's constants (tests vary them)."""

    def __init__(
        self, port: int, password: str, api: MqttApi, *, event_qos: int = EVENT_QOS, keepalive: int = KEEPALIVE_S
    ) -> None:
        self._port = port
        self._password = password
        self._api = api
        self._event_qos = event_qos
        self._keepalive = keepalive
        self._changes: asyncio.Queue[Sequence[PendingChange | LifecycleEvent]] = asyncio.Queue()
        self._connection: Connection | None = None
        self.ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def publish_changes(self, changes: Sequence[PendingChange]) -> None:
        """Engine listener. Deferred with ``call_soon`` so a request's reply is published before its events.

        Payloads are built by the publisher task, not here, so a change touching thousands of things
        does not delay the response of the operation that caused it.
        """
        self._loop.call_soon(self._changes.put_nowait, changes)

    def publish_lifecycle(self, events: Sequence[LifecycleEvent]) -> None:
        """Engine listener for the registry events (``$aws/events/...``): same queue, same order."""
        self._loop.call_soon(self._changes.put_nowait, events)

    async def run(self) -> None:
        """Serve requests until cancelled, reconnecting if the broker goes away."""
        publisher = asyncio.create_task(self._publish_events(), name="event-publisher")
        delay = RETRY_FIRST_S
        try:
            while True:
                try:
                    await self._serve_once()
                    delay = RETRY_FIRST_S
                except (OSError, LinkError, asyncio.TimeoutError) as exc:
                    log.warning("service connection to the broker: %s; retrying in %.1f s", exc or type(exc), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
        finally:
            publisher.cancel()

    def _answer(self, topic: str, payload: bytes) -> bytes | None:
        reply = self._api.handle(topic, payload)
        return None if reply is None else codec.publish(reply.topic, _encode(reply))

    async def _serve_once(self) -> None:
        """One connection, from CONNECT until the broker goes away (returns) or we are cancelled."""
        filters = [(f, REQUEST_QOS) for f in REQUEST_FILTERS]
        transport, connection = await open_connection(
            self._port, CLIENT_ID, self._password, self._keepalive, self._answer, filters, self._api.batch
        )
        pinger: asyncio.Task[None] | None = None
        try:
            self._connection = connection
            self.ready.set()
            pinger = asyncio.create_task(keep_alive(connection, self._keepalive), name="mqtt-keepalive")
            await connection.closed
            log.warning("service connection to the broker lost; reconnecting")
        finally:
            self.ready.clear()
            self._connection = None
            if pinger is not None:
                pinger.cancel()
            close(transport, connection)

    async def _publish_events(self) -> None:
        """Publish each batch's events in order, yielding to requests every ``EVENT_BATCH`` events."""
        window = asyncio.Semaphore(EVENT_WINDOW)
        while True:
            changes = await self._changes.get()
            written = 0
            for change in changes:
                messages = (
                    self._api.events(change) if isinstance(change, PendingChange) else [self._api.lifecycle(change)]
                )
                for message in messages:
                    if self._event_qos:
                        await window.acquire()
                    self._publish_event(message, window)
                    written += 1
                    if written % EVENT_BATCH == 0:
                        await self._pause()

    async def _pause(self) -> None:
        """Let requests in between the things of a large batch, and respect the socket's buffer."""
        await asyncio.sleep(0)
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(LinkError):
                await connection.drain()

    def _publish_event(self, message: Outgoing, window: asyncio.Semaphore) -> None:
        connection = self._connection
        if connection is None or not connection.is_open:
            log.warning("broker unavailable: dropped event on %s", message.topic)
            if self._event_qos:
                window.release()
            return
        if not self._event_qos:
            connection.write(codec.publish(message.topic, _encode(message)))
            return
        packet_id, acked = connection.expect_ack()
        connection.write(codec.publish(message.topic, _encode(message), self._event_qos, packet_id))

        def settled(done: asyncio.Future[codec.Packet]) -> None:
            window.release()
            if not done.cancelled() and done.exception() is not None:
                log.warning("event on %s may not have reached the broker: %s", message.topic, done.exception())

        acked.add_done_callback(settled)
