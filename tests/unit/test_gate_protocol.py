"""The service's side of the CONNECT-time check (``iot_jobs_local.broker.gate``): its answers and
the framing the broker plugin (``connect_auth.c``) speaks."""

from __future__ import annotations

import struct
from typing import Any

from iot_jobs_local.broker.gate import ConnectGate, _Channel


def request(seq: int, cn: str, client_id: str) -> bytes:
    cn_b, id_b = cn.encode(), client_id.encode()
    return struct.pack(">IH", seq, len(cn_b)) + cn_b + struct.pack(">H", len(id_b)) + id_b


class Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data


def channel(decide: Any) -> tuple[_Channel, Transport]:
    transport = Transport()
    protocol = _Channel(decide)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def test_reserved_client_ids_are_refused_whatever_the_policy_says() -> None:
    gate = ConnectGate(lambda cn, client_id: True)
    assert gate.decide("cn", "my-device")
    for reserved in ("iot-jobs-local-service", "iot-jobs-local-watch", "iot-jobs-local-anything", "$aws"):
        assert not gate.decide("cn", reserved), reserved


def test_a_failing_policy_check_refuses() -> None:
    def broken(cn: str, client_id: str) -> bool:
        raise RuntimeError("database is locked")

    assert not ConnectGate(broken).decide("cn", "dev")


def test_requests_split_anywhere_are_answered_in_order_with_their_sequence_numbers() -> None:
    asked: list[tuple[str, str]] = []

    def decide(cn: str, client_id: str) -> bool:
        asked.append((cn, client_id))
        return client_id != "no"

    protocol, transport = channel(decide)
    stream = request(7, "cn-a", "yes") + request(8, "cn-ü", "no") + request(2**32 - 1, "", "x\ny")
    for i in range(0, len(stream), 3):  # bytes arrive in arbitrary pieces
        protocol.data_received(stream[i : i + 3])
    assert asked == [("cn-a", "yes"), ("cn-ü", "no"), ("", "x\ny")]
    assert (
        transport.written
        == struct.pack(">I", 7) + b"Y" + struct.pack(">I", 8) + b"N" + struct.pack(">I", 2**32 - 1) + b"Y"
    )


def test_a_partial_request_waits_for_the_rest() -> None:
    protocol, transport = channel(lambda cn, client_id: True)
    whole = request(1, "cn", "dev")
    protocol.data_received(whole[:-1])
    assert transport.written == b""
    protocol.data_received(whole[-1:])
    assert transport.written == struct.pack(">I", 1) + b"Y"
