"""HTTP/1.1 for the control plane: an asyncio protocol around httptools (llhttp, Node.js's parser).

What the AWS SDKs and CLI send is small keep-alive requests, one at a time per connection. A web
framework's request and response objects, stream readers and middleware were most of the
service's cost per call (about 0.1 ms of the ~0.3 ms a CreateThing took, see
``benchmarks/README.md``); here a request is parsed in C, answered synchronously by the API, and
the response written in one ``write``. Pipelined requests are answered in order. Bodies of any
framing llhttp accepts (Content-Length, chunked) are read; ``Expect: 100-continue`` is honoured.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import functools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

import httptools

log = logging.getLogger(__name__)

#: Refuse a request whose body exceeds this (AWS IoT's largest documents are 32 KB; policies 2 KB).
MAX_BODY = 1 << 20
#: How long a refused connection keeps reading (and dropping) what the client still sends.
LINGER_S = 2.0
#: Refuse a request line plus headers beyond this many bytes.
MAX_HEAD = 64 << 10
#: Stop reading from a client that has this many requests waiting for their turn.
MAX_QUEUED = 32
#: Close a keep-alive connection that has sent nothing for this long (the SDKs reconnect at will).
IDLE_TIMEOUT_S = 75.0


class Headers:
    """Case-insensitive, multi-valued request headers."""

    __slots__ = ("_values",)

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            key = name.decode("latin-1").lower()
            if key in values:
                values[key].append(value.decode("latin-1"))
            else:
                values[key] = [value.decode("latin-1")]
        self._values = values

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name.lower())
        return values[-1] if values else default

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), ()))

    def values(self, lower_name: str) -> Sequence[str]:
        """The values of a header named in lower case, not copied (for the hot path)."""
        return self._values.get(lower_name, ())

    def lower_items(self) -> dict[str, str]:
        """Each header once, lower-cased, its last value (what a dict of the headers would hold)."""
        return {name: values[-1] for name, values in self._values.items()}


@dataclass
class Request:
    method: str
    #: The request target as sent: percent-encoded path, then ``?`` and the raw query if any.
    target: str
    headers: Headers
    body: bytes
    keep_alive: bool = True

    @property
    def raw_path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    def query(self) -> dict[str, str]:
        """The query string decoded, the last value of a repeated name winning."""
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Await the API's ``settle`` before sending (the change must be in force when the client hears).
    settle: bool = False
    #: The real reply, still being made off the event loop: awaited, then sent in this one's place
    #: (later requests on the connection wait behind it, as behind ``settle``).
    later: Awaitable[Reply] | None = None


Respond = Callable[[Request], Reply]
#: None when nothing needs waiting for, else what to await before a reply with ``settle`` is sent.
Settle = Callable[[], "Awaitable[None] | None"]


class _Date:
    """The ``Date`` header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, email.utils.formatdate(second, usegmt=True)
        return self._value


_DATE = _Date()


@functools.cache
def _status_line(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}"


def encode(reply: Reply, *, head_only: bool = False, close: bool = False) -> bytes:
    lines = [_status_line(reply.status), f"Date: {_DATE.now()}", f"Content-Length: {len(reply.body)}"]
    lines.extend(f"{name}: {value}" for name, value in reply.headers)
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + reply.body


def _plain(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])


class _RefusedEarly(Exception):
    """Raised from a parser callback to stop reading a request that is refused from its head."""


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, respond: Respond, settle: Settle | None, live: set[HttpProtocol]) -> None:
        self._respond = respond
        self._settle = settle
        self._live = live
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: collections.deque[Request | Reply] = collections.deque()
        self._waiting = False  # a reply is waiting for ``settle``; later ones queue behind it
        self._paused = False
        self._broken = False  # a malformed request was seen: the rest of the stream is not parsed
        self._settling: asyncio.Task[None] | None = None
        self.last_heard = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._head_size = 0
        self._header_pairs: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._refusal: Reply | None = None

    # asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        self._live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._live.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        if self._broken:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._broken = True
            self._queue.append(_plain(400, "Protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            self._broken = True
            early = self._refusal if isinstance(exc.__context__, _RefusedEarly) else None
            self._queue.append(early or _plain(400, f"Malformed HTTP request: {exc}"))
        self._serve_queue()

    # httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every request: as little as possible here.
        self._header_pairs.append((name, value))
        self._count_head(len(name) + len(value))

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD and self._refusal is None:
            self._refusal = _plain(431, "Request header fields too large")
            self._header_pairs.clear()  # nothing more is kept of a refused request

    def on_headers_complete(self) -> None:
        if self._refusal is not None:
            return
        expect = length = None
        for name, value in self._header_pairs:
            if len(name) == 6 and name.lower() == b"expect":
                expect = value
            elif len(name) == 14 and name.lower() == b"content-length":
                length = value
        if length is not None and length.strip().isdigit() and int(length) > MAX_BODY:
            # Refused before the body is read (or, with Expect: 100-continue, sent): answered and
            # closed at once, so a client announcing 100 MiB does not get to send it.
            self._refusal = _plain(413, f"Request body larger than {MAX_BODY} bytes")
            raise _RefusedEarly
        if expect is None:
            return
        if expect.lower() != b"100-continue":
            self._refusal = _plain(417, f"Unknown Expect: {expect.decode('latin-1')}")
        elif self._parser.get_http_version() == "1.1" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            if self._refusal is None:
                self._refusal = _plain(413, f"Request body larger than {MAX_BODY} bytes")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        if self._refusal is not None:
            self._queue.append(self._refusal)
            return
        method = self._parser.get_method().decode("latin-1")
        request = Request(
            method, self._url.decode("latin-1"), Headers(self._header_pairs), b"".join(self._body), keep_alive
        )
        self._queue.append(request)
        if len(self._queue) >= MAX_QUEUED and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    # answering -----------------------------------------------------------------------------
    def _serve_queue(self) -> None:
        """Answer queued requests in order until one has to wait for ``settle``."""
        while self._queue and not self._waiting and self._transport is not None:
            item = self._queue.popleft()
            if isinstance(item, Reply):  # refused before it reached the API: answer, then close
                self._transport.write(encode(item, close=True))
                self._linger_close()
                return
            try:
                reply = self._respond(item)
            except Exception:  # the service never dies on a bad request
                log.exception("internal error on %s %s", item.method, item.raw_path)
                reply = _plain(500, "Internal failure")
            if reply.later is not None:
                self._waiting = True
                self._settling = asyncio.get_running_loop().create_task(self._finish_then_send(item, reply.later))
                return
            pending = self._settle() if reply.settle and self._settle is not None else None
            if pending is not None:
                self._waiting = True
                self._settling = asyncio.get_running_loop().create_task(self._settle_then_send(item, reply, pending))
                return
            self._send(item, reply)
        if self._paused and len(self._queue) < MAX_QUEUED // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _linger_close(self) -> None:
        """Close after a refusal without losing the answer: a client still sending (a refused body)
        would get a reset that can discard the reply unread, so the write side ends first and what
        still arrives is dropped (``_broken``) for ``LINGER_S`` before the socket closes."""
        transport = self._transport
        if transport is None:
            return
        self._broken = True
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_S, transport.close)
        else:
            transport.close()

    def _send(self, request: Request, reply: Reply) -> None:
        if self._transport is None:
            return
        self._transport.write(encode(reply, head_only=request.method == "HEAD", close=not request.keep_alive))
        if not request.keep_alive:
            self._transport.close()

    async def _finish_then_send(self, request: Request, later: Awaitable[Reply]) -> None:
        try:
            reply = await later
        except Exception:  # the service never dies on a bad request
            log.exception("internal error on %s %s", request.method, request.raw_path)
            reply = _plain(500, "Internal failure")
        pending = self._settle() if reply.settle and self._settle is not None else None
        if pending is not None:
            await self._settle_then_send(request, reply, pending)
            return
        self._waiting = False
        self._settling = None
        self._send(request, reply)
        self._serve_queue()

    async def _settle_then_send(self, request: Request, reply: Reply, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception:  # the change is committed: say so even if the broker lags
            log.exception("waiting for the broker to apply an access change")
        self._waiting = False
        self._settling = None
        self._send(request, reply)
        self._serve_queue()

    @property
    def busy(self) -> bool:
        """Answering, or holding requests to answer."""
        return self._waiting or bool(self._queue)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpServer:
    """Listens on one address; closes connections idle for ``idle_timeout`` seconds, and on
    ``close`` every open keep-alive connection."""

    def __init__(self, respond: Respond, settle: Settle | None = None, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self._respond = respond
        self._settle = settle
        self._idle_timeout = idle_timeout
        self._live: set[HttpProtocol] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> None:
        """Listen on ``host:port``, or on ``sock``, a socket already bound (then host and port are
        only what it is bound to)."""
        loop = asyncio.get_running_loop()

        def protocol() -> HttpProtocol:
            return HttpProtocol(self._respond, self._settle, self._live)

        if sock is not None:
            self._server = await loop.create_server(protocol, sock=sock)
        else:
            self._server = await loop.create_server(protocol, host, port, reuse_address=True)
        self._sweeper = asyncio.create_task(self._sweep(), name="http-idle-sweeper")

    async def _sweep(self) -> None:
        """One task for all connections, rather than a timer per request."""
        while True:
            await asyncio.sleep(self._idle_timeout / 4)
            cutoff = time.monotonic() - self._idle_timeout
            for protocol in [p for p in self._live if p.last_heard < cutoff and not p.busy]:
                protocol.close()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for protocol in list(self._live):
            protocol.close()
        if self._server is not None:
            await self._server.wait_closed()
