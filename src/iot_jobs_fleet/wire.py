"""One device's MQTT 3.1.1 connection over mutual TLS: an ``asyncio.Protocol`` on the service's
codec (``iot_jobs_local.mqtt.codec``: pure bytes, no I/O, so the layering allows it).

Cheap on purpose: no task, timer or lock of its own. Incoming PUBLISHes go to a callback; QoS 1
publishes are sent and forgotten (the request's reply is the acknowledgement that matters: a lost
one is asked again); keep-alive is one shared loop over every connection (:func:`keep_alive`).

TLS runs over memory BIOs (``ssl.SSLObject``) on a plain TCP transport, from ONE ``SSLContext``
for the whole fleet (:class:`Tls`): OpenSSL copies the context's certificate and key into each
connection when it is made (``SSL_new``), so loading a device's pair into the shared context just
before wrapping gives that connection its own identity. A context per device cost about 25 KB
(20 KB bare, 5 KB for the CA), 250 MB at 10,000 devices.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from iot_jobs_local.mqtt import codec

#: Seconds between PINGREQs when nothing else was sent (the broker allows 1.5 times this).
KEEPALIVE_S = 60


class Disconnected(Exception):
    """The connection is gone (or was refused); the device reconnects."""


class Tls:
    """The fleet's one client context: the broker's CA (or the system store) and TLS 1.2 or later."""

    def __init__(self, ca_file: Path | None, server_hostname: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        else:
            context.load_default_certs()
        self.context = context
        self.server_hostname = server_hostname
        # One worker: the shared context is loaded and wrapped by one thread at a time.
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tls-load")

    async def prepare(self, cert: Path, key: Path) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        """:meth:`wrap` on the worker thread: loading a pair is OpenSSL's PEM decoding (about 1.6 ms
        with OpenSSL 3.0) and releases the GIL, so it runs beside the event loop's handshakes."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, self.wrap, cert, key)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    def wrap(self, cert: Path, key: Path) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        """A client TLS connection (not yet started) presenting ``cert``. Only ever on one thread at
        a time (the loop's, or the worker's through :meth:`prepare`), so no other device's pair is
        loaded in between."""
        self.context.load_cert_chain(str(cert), str(key))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_hostname=self.server_hostname)
        return tls, incoming, outgoing


class Wire(asyncio.Protocol):
    __slots__ = (
        "_decoder",
        "_deliver",
        "_in",
        "_lost",
        "_next_id",
        "_out",
        "_secure",
        "_tls",
        "connack",
        "handshake",
        "last_sent",
        "suback",
        "transport",
    )

    def __init__(
        self,
        deliver: Callable[[str, bytes], None],
        lost: Callable[[Wire], None],
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO],
    ) -> None:
        self._deliver = deliver
        self._lost = lost
        self._tls, self._in, self._out = tls
        self._secure = False
        self._decoder = codec.Decoder()
        self._next_id = 0
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[bytes] = loop.create_future()
        self.last_sent = time.monotonic()

    # TLS over the memory BIOs ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self._shake()

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.transport is not None:
            self.transport.write(data)

    def _shake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._flush()
            if not self.handshake.done():
                self.handshake.set_exception(exc)
            self.abort()
            return
        self._flush()
        self._secure = True
        if not self.handshake.done():
            self.handshake.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if not self._secure:
            self._shake()
            if not self._secure:
                return
        chunks = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:  # close_notify or a broken record: the connection is over
                self.abort()
                return
            if not chunk:
                break
            chunks.append(chunk)
        self._flush()
        if chunks:
            self._received(b"".join(chunks))

    # MQTT ------------------------------------------------------------------------------------
    def _received(self, data: bytes) -> None:
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
        for future in (self.handshake, self.connack, self.suback):
            if not future.done():
                future.set_exception(Disconnected("connection lost"))
                future.exception()
        self._lost(self)

    # used by the device ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.transport is not None

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise Disconnected("not connected")
        self._tls.write(data)
        self._flush()
        self.last_sent = time.monotonic()

    def publish(self, topic: str, payload: bytes) -> None:
        self._next_id = self._next_id % 0xFFFF + 1
        self.write(codec.publish(topic, payload, 1, self._next_id))

    def subscribe(self, filters: Iterable[str]) -> None:
        self._next_id = self._next_id % 0xFFFF + 1
        self.write(codec.subscribe(self._next_id, [(f, 1) for f in filters]))

    def disconnect(self) -> None:
        if self.transport is not None:
            if self._secure:
                self.write(codec.DISCONNECT_PACKET)
            self.transport.close()

    def abort(self) -> None:
        """Drop without DISCONNECT, as a device losing its network does."""
        if self.transport is not None:
            self.transport.abort()


async def keep_alive(wires: Callable[[], Iterable[Wire]], interval: float = KEEPALIVE_S) -> None:
    """PINGREQ on every connection that sent nothing for half the keep-alive: one loop for all."""
    while True:
        await asyncio.sleep(1.0)  # a periodic sweep, not synchronisation
        due = time.monotonic() - interval / 2
        for wire in wires():
            if wire.is_open and wire.last_sent < due:
                wire.write(codec.PINGREQ_PACKET)
