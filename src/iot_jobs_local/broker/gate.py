"""The service's side of the CONNECT-time check: answers the broker plugin's questions.

The broker asks, for each CONNECT on the device listener, whether the certificate with this CN may
connect with this client id (``connect_auth.c`` has the byte layout). The answer comes from the
identity service's iot:Connect evaluation, except that ids the service's own connections use
(or that start with ``$``, as AWS reserves) are never given to a device, whatever its policy says.

Each broker start gets a fresh socket pair: one end is inherited by Mosquitto, the other is read
here on the event loop. The check is synchronous and cheap (a few SQLite reads), so it is answered
inside ``data_received``; the broker waits for it with a timeout and refuses on silence.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Client ids a device can never use: the service's own connections share the broker's client id
#: space (taking one over would cut the service off), and AWS reserves ``$``.
RESERVED_CLIENT_ID_PREFIXES = ("iot-jobs-local-", "$")

_HEADER = struct.Struct(">IH")
_SEQ = struct.Struct(">I")
_LENGTH = struct.Struct(">H")


class _Channel(asyncio.Protocol):
    def __init__(self, decide: Callable[[str, str], bool]) -> None:
        self._decide = decide
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        out = []
        while True:
            request = self._take()
            if request is None:
                break
            seq, common_name, client_id = request
            out.append(_SEQ.pack(seq) + (b"Y" if self._decide(common_name, client_id) else b"N"))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _take(self) -> tuple[int, str, str] | None:
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            return None
        seq, cn_len = _HEADER.unpack_from(buffer)
        id_at = _HEADER.size + cn_len
        if len(buffer) < id_at + _LENGTH.size:
            return None
        (id_len,) = _LENGTH.unpack_from(buffer, id_at)
        end = id_at + _LENGTH.size + id_len
        if len(buffer) < end:
            return None
        common_name = bytes(buffer[_HEADER.size : id_at]).decode(errors="replace")
        client_id = bytes(buffer[id_at + _LENGTH.size : end]).decode(errors="replace")
        del buffer[:end]
        return seq, common_name, client_id

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class ConnectGate:
    """``may_connect(cn, client_id)``: the identity service's iot:Connect decision."""

    def __init__(self, may_connect: Callable[[str, str], bool]) -> None:
        self._may_connect = may_connect
        self._transport: asyncio.BaseTransport | None = None

    def decide(self, common_name: str, client_id: str) -> bool:
        if client_id.startswith(RESERVED_CLIENT_ID_PREFIXES):
            allowed = False
        else:
            try:
                allowed = self._may_connect(common_name, client_id)
            except Exception:  # refuse, and keep answering the next CONNECT
                log.exception("iot:Connect check failed for %s", common_name)
                allowed = False
        if not allowed:
            log.info("iot:Connect refused at CONNECT: client id %r, certificate CN %s", client_id, common_name)
        return allowed

    async def open_channel(self) -> int:
        """A new socket pair for a broker about to start: returns the end the child inherits (the
        caller closes it once the child runs); the old channel, if any, is closed."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        self._transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: _Channel(self.decide), ours
        )
        theirs.set_inheritable(True)
        return theirs.detach()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
