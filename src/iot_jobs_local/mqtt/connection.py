"""The service's own MQTT 3.1.1 connections to the broker's loopback service listener: one
asyncio protocol, connect and subscribe, keepalive and close. The request link (``link``) and the
broker watch (``broker.watch``) both use them.

``SERVICE_USER`` is the username every service connection logs in with; the broker's service
listener accepts only it (``broker.process`` writes its password file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import cast

from . import codec

log = logging.getLogger(__name__)

SERVICE_USER = "jobs-service"
KEEPALIVE_S = 60
#: How long the broker gets to answer CONNECT and SUBSCRIBE before we try again.
HANDSHAKE_TIMEOUT_S = 10.0
#: Reconnect back-off: from the first to the longest wait between attempts.
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 2.0

#: What a connection does with each PUBLISH it receives (topic, payload): bytes to write back, if any.
Answer = Callable[[str, bytes], "bytes | None"]
#: What the answers to one read run inside (the service: one transaction, so they share a commit);
#: the replies are written only once it exits without an error.
Batch = Callable[[], AbstractContextManager[None]]


class LinkError(Exception):
    """The broker refused or dropped the service's connection."""


class Connection(asyncio.Protocol):
    """One connection to the broker's service listener: hands each incoming PUBLISH to ``answer``
    (whose bytes, if any, are written back in the same write), tracks what awaits an ACK."""

    def __init__(self, answer: Answer, batch: Batch = contextlib.nullcontext) -> None:
        self._answer = answer
        self._batch = batch
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
        try:
            with self._batch():
                self._handle(packets, out)
        except Exception:  # e.g. the commit failed: no reply may claim what did not happen
            log.exception("could not commit the answers to %d MQTT packets; not answered", len(packets))
            return
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _handle(self, packets: Sequence[codec.Packet], out: list[bytes]) -> None:
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
    port: int,
    client_id: str,
    password: str,
    keepalive: int,
    answer: Answer,
    filters: Sequence[tuple[str, int]] = (),
    batch: Batch = contextlib.nullcontext,
) -> tuple[asyncio.BaseTransport, Connection]:
    """Connect to the broker's service listener as ``client_id`` (clean session) and subscribe to
    ``filters``; raises :class:`LinkError` if the broker refuses either."""
    loop = asyncio.get_running_loop()
    transport, connection = await asyncio.wait_for(
        loop.create_connection(lambda: Connection(answer, batch), "127.0.0.1", port), HANDSHAKE_TIMEOUT_S
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
