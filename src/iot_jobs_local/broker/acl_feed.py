"""The broker plugin's ACL table, kept equal to ours one certificate at a time (``connect_auth.c``).

Mosquitto's ACL file is re-read whole on every SIGHUP, so each change cost O(fleet) in the service
and in the broker. Instead the service keeps each certificate's entries here and sends only the
ones that changed over a socket pair the broker inherits; the plugin acknowledges each update once
every later check sees it, and ``update`` returns a future for that acknowledgement.

A new broker (a start, or a restart after a crash) gets the whole table before its ready marker,
and the plugin reads all of it before Mosquitto serves anyone.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Mapping

_HEADER = struct.Struct(">IBHI")
_ACK = struct.Struct(">I")
SET, DELETE, READY = b"S", b"D", b"R"


def frame(seq: int, op: bytes, common_name: str = "", body: bytes = b"") -> bytes:
    cn = common_name.encode()
    return _HEADER.pack(seq, op[0], len(cn), len(body)) + cn + body


class _Acks(asyncio.Protocol):
    def __init__(self, feed: AclFeed) -> None:
        self._feed = feed
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        whole = len(self._buffer) - len(self._buffer) % _ACK.size
        if whole:
            (last,) = _ACK.unpack_from(self._buffer, whole - _ACK.size)
            del self._buffer[:whole]
            self._feed.acked(last)

    def connection_lost(self, exc: Exception | None) -> None:
        self._feed.lost(self)


class AclFeed:
    """CN -> the plugin's entry lines (``CertificateAcl.entries_text``) for every certificate with rights."""

    def __init__(self) -> None:
        self.table: dict[str, bytes] = {}
        self._transport: asyncio.Transport | None = None
        self._protocol: _Acks | None = None
        self._seq = 0
        self._acked = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def _next(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    async def open_channel(self) -> int:
        """A socket pair for a broker about to start, the whole table queued on it: returns the end
        the child inherits (the caller closes it once the child runs)."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        transport, protocol = await asyncio.get_running_loop().connect_accepted_socket(lambda: _Acks(self), ours)
        self._transport, self._protocol = transport, protocol
        self._seq = self._acked = 0
        frames = [frame(self._next(), SET, cn, body) for cn, body in self.table.items()]
        frames.append(frame(self._next(), READY))
        transport.write(b"".join(frames))
        theirs.set_inheritable(True)
        return theirs.detach()

    def update(self, changes: Mapping[str, bytes | None]) -> asyncio.Future[None] | None:
        """Apply ``changes`` (None: the certificate has no rights); a future for the broker's
        acknowledgement, or None if nothing changed or no broker is attached (a new one gets the
        whole table when it starts)."""
        frames = []
        for cn, body in changes.items():
            if body is None:
                if self.table.pop(cn, None) is not None:
                    frames.append((DELETE, cn, b""))
            elif self.table.get(cn) != body:
                self.table[cn] = body
                frames.append((SET, cn, body))
        if not frames or self._transport is None or self._transport.is_closing():
            return None
        self._transport.write(b"".join(frame(self._next(), op, cn, body) for op, cn, body in frames))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._seq, waiter))
        return waiter

    def acked(self, seq: int) -> None:
        self._acked = seq
        still = []
        for wanted, waiter in self._waiters:
            if wanted <= seq:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((wanted, waiter))
        self._waiters = still

    def lost(self, protocol: _Acks) -> None:
        """The broker went away: nothing is enforced by it any more, nobody waits for it."""
        if protocol is self._protocol:
            self._transport = self._protocol = None
            self._release()

    def _release(self) -> None:
        for _wanted, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = []

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None
        self._release()
