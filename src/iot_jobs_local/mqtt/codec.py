"""The MQTT 3.1.1 packets the service's own connection uses, as bytes: pure, no I/O.

Only the client side of what the jobs service needs: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH at
QoS 0 and 1 with its PUBACK, PINGREQ/PINGRESP and DISCONNECT (OASIS MQTT 3.1.1, section 3). Why
not paho: on this path the service answers thousands of requests a second, and paho spent about
70 % of the service's CPU on them (a ``recv`` per header byte, locks, MQTT 5 property objects; see
``benchmarks/README.md``). :class:`Decoder` takes whatever the socket delivered and returns every
whole packet in it, so one read can carry many requests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x80
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

#: The largest remaining length the 4-byte variable-length encoding can express (256 MB).
MAX_REMAINING = 268_435_455

#: CONNACK return codes (3.2.2.3).
CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

PINGREQ_PACKET = bytes((PINGREQ, 0))
DISCONNECT_PACKET = bytes((DISCONNECT, 0))


class ProtocolError(Exception):
    """The broker sent bytes that are not a well-formed MQTT 3.1.1 packet."""


@dataclass(frozen=True)
class Packet:
    """One received control packet: ``kind`` is the high nibble of its first byte."""

    kind: int
    flags: int
    body: bytes


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    packet_id: int | None


def _remaining(length: int) -> bytes:
    """Variable-length encoding of a remaining length (2.2.3)."""
    if not 0 <= length <= MAX_REMAINING:
        raise ValueError(f"packet too large: {length} bytes")
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("string longer than 65,535 bytes")
    return struct.pack("!H", len(raw)) + raw


def connect(client_id: str, *, username: str | None, password: str | None, keepalive: int) -> bytes:
    """CONNECT with a clean session: the service subscribes afresh on every connection."""
    flags = 0x02
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    body = _string("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive) + payload
    return bytes((CONNECT,)) + _remaining(len(body)) + body


def subscribe(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(_string(f) + bytes((qos,)) for f, qos in filters)
    return bytes((SUBSCRIBE | 0x02,)) + _remaining(len(body)) + body


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int | None = None) -> bytes:
    """PUBLISH, never retained. QoS 1 needs a ``packet_id``."""
    head = _string(topic)
    if qos:
        if packet_id is None:
            raise ValueError("QoS 1 publish needs a packet id")
        head += struct.pack("!H", packet_id)
    return bytes((PUBLISH | qos << 1,)) + _remaining(len(head) + len(payload)) + head + payload


def puback(packet_id: int) -> bytes:
    return bytes((PUBACK, 2)) + struct.pack("!H", packet_id)


def connack_code(packet: Packet) -> int:
    if len(packet.body) != 2:
        raise ProtocolError("CONNACK of the wrong length")
    return packet.body[1]


def packet_id(packet: Packet) -> int:
    """The packet identifier that opens a PUBACK or SUBACK."""
    if len(packet.body) < 2:
        raise ProtocolError("packet too short for a packet identifier")
    return int.from_bytes(packet.body[:2], "big")


def suback_codes(packet: Packet) -> bytes:
    return packet.body[2:]


def parse_publish(packet: Packet) -> Publish:
    body = packet.body
    qos = (packet.flags >> 1) & 0x03
    if qos == 3 or len(body) < 2:
        raise ProtocolError("malformed PUBLISH")
    end = 2 + int.from_bytes(body[:2], "big")
    if end > len(body):
        raise ProtocolError("PUBLISH topic runs past the packet")
    try:
        topic = body[2:end].decode()
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not UTF-8") from None
    pid = None
    if qos:
        if end + 2 > len(body):
            raise ProtocolError("PUBLISH without its packet identifier")
        pid = int.from_bytes(body[end : end + 2], "big")
        end += 2
    return Publish(topic, body[end:], qos, pid)


class Decoder:
    """Splits a byte stream into packets; keeps a partial packet until the rest arrives."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        buffer = self._buffer
        buffer += data
        packets: list[Packet] = []
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            first = buffer[pos]
            # Remaining length: 1 to 4 bytes, 7 bits each, high bit = "more follows".
            length, shift, i, complete = 0, 0, pos + 1, False
            while i < end:
                byte = buffer[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length longer than 4 bytes")
            if not complete or i + length > end:
                break  # wait for the rest of the packet
            packets.append(Packet(first & 0xF0, first & 0x0F, bytes(buffer[i : i + length])))
            pos = i + length
        if pos:
            del buffer[:pos]
        return packets
