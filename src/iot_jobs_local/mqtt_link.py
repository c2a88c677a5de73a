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
import socket
import time
from collections.abc import Callable, Sequence
from typing import cast

from . import mqtt_codec as codec
from .broker import SERVICE_USER
from .engine import PendingChange
from .jobs.lifecycle_events import LifecycleEvent
from .mqtt_api import REQUEST_FILTERS, MqttApi, Outgoing

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
KEEPALIVE_S = 60
#: How long the broker gets to answer CONNECT and SUBSCRIBE before we try again.
HANDSHAKE_TIMEOUT_S = 10.0
#: Reconnect back-off: from the first to the longest wait between attempts.
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 2.0
#: Events written before the publisher yields to requests waiting in the loop.
EVENT_BATCH = 256


#: What a connection does with each PUBLISH it receives (topic, payload): bytes to write back, if any.
Answer = Callable[[str, bytes], "bytes | None"]


class LinkError(Exception):
    """The broker refused or dropped the service's connection."""


def _encode(message: Outgoing) -> bytes:
    return json.dumps(message.payload, separators=(",", ":")).encode()


class Connection(asyncio.Protocol):
    """One connection to the broker's service listener: hands each incoming PUBLISH to ``answer``
    (whose bytes, if any, are written back in the same write), tracks what awaits an ACK."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._decoder = codec.Decoder()
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.connack: asyncio.Future[codec.Packet] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._acks: dict[int, asyncio.Future[codec.Packet]] = {}
        self._writable = asyncio.Event()
        self._writable.set()
        self._last_id = 0
        self.last_heard = time.monotonic()

    # asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Replies must not wait for Nagle (the event loop usually sets this already).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            packets = self._decoder.feed(data)
        except codec.ProtocolError as exc:
            log.error("broker sent a malformed packet (%s); reconnecting", exc)
            self.close()
            return
        out: list[bytes] = []
        for packet in packets:
            try:
                if packet.kind == codec.PUBLISH:
                    message = codec.parse_publish(packet)
                    if message.packet_id is not None:
                        out.append(codec.puback(message.packet_id))
                    reply = self._answer(message.topic, message.payload)
                    if reply is not None:
                        out.append(reply)
                elif packet.kind in (codec.PUBACK, codec.SUBACK):
                    waiter = self._acks.pop(codec.packet_id(packet), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(packet)
                elif packet.kind == codec.CONNACK and not self.connack.done():
                    self.connack.set_result(packet)
                elif packet.kind != codec.PINGRESP:
                    log.debug("ignored MQTT packet type 0x%02x", packet.kind)
            except codec.ProtocolError as exc:
                log.error("broker sent a malformed packet (%s); skipped", exc)
            except Exception:  # the service never dies on a bad message
                log.exception("internal error handling an MQTT packet")
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._writable.set()
        error = LinkError(f"connection lost: {exc}" if exc else "connection closed by the broker")
        for future in (self.connack, *self._acks.values()):
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting for it any more
        self._acks.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # used by the link ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def write(self, data: bytes) -> None:
        if self._transport is None:
            raise LinkError("not connected")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's write buffer is over its high-water mark."""
        await self._writable.wait()
        if self._transport is None:
            raise LinkError("not connected")

    def expect_ack(self) -> tuple[int, asyncio.Future[codec.Packet]]:
        """A fresh packet identifier, and the future its PUBACK or SUBACK resolves."""
        for _ in range(0xFFFF):
            self._last_id = self._last_id % 0xFFFF + 1
            if self._last_id not in self._acks:
                future: asyncio.Future[codec.Packet] = asyncio.get_running_loop().create_future()
                self._acks[self._last_id] = future
                return self._last_id, future
        raise LinkError("65,535 packets already await their acknowledgement")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_connection(
    port: int, client_id: str, password: str, keepalive: int, answer: Answer, filters: Sequence[tuple[str, int]] = ()
) -> tuple[asyncio.BaseTransport, Connection]:
    """Connect to the broker's service listener as ``client_id`` (clean session) and subscribe to
    ``filters``; raises :class:`LinkError` if the broker refuses either."""
    loop = asyncio.get_running_loop()
    transport, connection = await asyncio.wait_for(
        loop.create_connection(lambda: Connection(answer), "127.0.0.1", port), HANDSHAKE_TIMEOUT_S
    )
    try:
        connection.write(codec.connect(client_id, username=SERVICE_USER, password=password, keepalive=keepalive))
        code = codec.connack_code(await asyncio.wait_for(connection.connack, HANDSHAKE_TIMEOUT_S))
        if code:
            raise LinkError(f"broker refused the connection: {codec.CONNACK_CODES.get(code, code)}")
        if filters:
            packet_id, subscribed = connection.expect_ack()
            connection.write(codec.subscribe(packet_id, list(filters)))
            granted = codec.suback_codes(await asyncio.wait_for(subscribed, HANDSHAKE_TIMEOUT_S))
            if 0x80 in granted:
                raise LinkError(f"broker refused the subscription to {[f for f, _ in filters]}")
    except BaseException:
        transport.close()
        raise
    return transport, connection


def close(transport: asyncio.BaseTransport, connection: Connection) -> None:
    """DISCONNECT (so the broker does not log a lost connection), then close."""
    if connection.is_open:
        connection.write(codec.DISCONNECT_PACKET)
    transport.close()


async def keep_alive(connection: Connection, keepalive: int) -> None:
    """PINGREQ at half the keepalive; a broker silent for a whole keepalive is taken for dead."""
    while connection.is_open:
        await asyncio.sleep(keepalive / 2)
        if time.monotonic() - connection.last_heard > keepalive:
            log.warning("the broker has not answered for %d s", keepalive)
            connection.close()
            return
        connection.write(codec.PINGREQ_PACKET)


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
            self._port, CLIENT_ID, self._password, self._keepalive, self._answer, filters
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
