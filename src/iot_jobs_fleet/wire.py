"""One device's MQTT 3.1.1 connection over mutual TLS: an ``asyncio.Protocol`` on the service's
codec (``iot_jobs_local.mqtt.codec``: pure bytes, no I/O, so the layering allows it).

Cheap on purpose: no task, timer or lock of its own. Incoming PUBLISHes go to a callback; QoS 1
publishes are sent and forgotten (the request's reply is the acknowledgement that matters: a lost
one is asked again); keep-alive is one shared loop over every connection (:func:`keep_alive`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from iot_jobs_local.mqtt import codec

#: Seconds between PINGREQs when nothing else was sent (the broker allows 1.5 times this).
KEEPALIVE_S = 60


class Disconnected(Exception):
    """The connection is gone (or was refused); the device reconnects."""


class Wire(asyncio.Protocol):
    __slots__ = ("_decoder", "_deliver", "_lost", "_next_id", "connack", "last_sent", "suback", "transport")

    def __init__(self, deliver: Callable[[str, bytes], None], lost: Callable[[], None]) -> None:
        self._deliver = deliver
        self._lost = lost
        self._decoder = codec.Decoder()
        self._next_id = 0
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[bytes] = loop.create_future()
        self.last_sent = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            packets = self._decoder.feed(data)
            for packet in packets:
                kind = packet.kind
                if kind == codec.PUBLISH:
                    message = codec.parse_publish(packet)
                    if message.packet_id is not None:
                        self.write(codec.puback(message.packet_id))
                    self._deliver(message.topic, message.payload)
                elif kind == codec.CONNACK and not self.connack.done():
                    self.connack.set_result(codec.connack_code(packet))
                elif kind == codec.SUBACK and not self.suback.done():
                    self.suback.set_result(codec.suback_codes(packet))
        except codec.ProtocolError:
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for future in (self.connack, self.suback):
            if not future.done():
                future.set_exception(Disconnected("connection lost"))
                future.exception()
        self._lost()

    # used by the device ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.transport is not None

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise Disconnected("not connected")
        self.transport.write(data)
        self.last_sent = time.monotonic()

    def publish(self, topic: str, payload: bytes) -> None:
        self._next_id = self._next_id % 0xFFFF + 1
        self.write(codec.publish(topic, payload, 1, self._next_id))

    def subscribe(self, filters: Iterable[str]) -> None:
        self._next_id = self._next_id % 0xFFFF + 1
        self.write(codec.subscribe(self._next_id, [(f, 1) for f in filters]))

    def disconnect(self) -> None:
        if self.transport is not None:
            self.transport.write(codec.DISCONNECT_PACKET)
            self.transport.close()

    def abort(self) -> None:
        """Drop without DISCONNECT, as a device losing its network does."""
        if self.transport is not None:
            self.transport.abort()


def tls_context(ca_file: Path | None, cert: Path, key: Path) -> ssl.SSLContext:
    """A client context of one device (its own certificate), trusting ``ca_file`` or the system store."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    else:
        context.load_default_certs()
    context.load_cert_chain(str(cert), str(key))
    return context


async def keep_alive(wires: Callable[[], Iterable[Wire]], interval: float = KEEPALIVE_S) -> None:
    """PINGREQ on every connection that sent nothing for half the keep-alive: one loop for all."""
    while True:
        await asyncio.sleep(1.0)  # a periodic sweep, not synchronisation
        due = time.monotonic() - interval / 2
        for wire in wires():
            if wire.is_open and wire.last_sent < due:
                wire.write(codec.PINGREQ_PACKET)
