"""The service's MQTT 3.1.1 codec, against byte strings worked out from the OASIS specification."""

from __future__ import annotations

import pytest

from iot_jobs_local.mqtt import codec


def test_connect_with_credentials_and_clean_session() -> None:
    packet = codec.connect("svc", username="u", password="pw", keepalive=60)
    body = b"\x00\x04MQTT" + b"\x04" + b"\xc2" + b"\x00\x3c" + b"\x00\x03svc" + b"\x00\x01u" + b"\x00\x02pw"
    assert packet == b"\x10" + bytes((len(body),)) + body


def test_connect_without_credentials() -> None:
    assert codec.connect("c", username=None, password=None, keepalive=0)[9] == 0x02


def test_subscribe_sets_the_reserved_flag_bits() -> None:
    packet = codec.subscribe(7, [("a/+", 0), ("b/#", 1)])
    assert packet == b"\x82\x0e\x00\x07" + b"\x00\x03a/+\x00" + b"\x00\x03b/#\x01"


def test_publish_qos0_and_qos1() -> None:
    assert codec.publish("t", b"hi") == b"\x30\x05\x00\x01thi"
    assert codec.publish("t", b"hi", 1, 0x0102) == b"\x32\x07\x00\x01t\x01\x02hi"
    with pytest.raises(ValueError):
        codec.publish("t", b"", 1)


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_encoding_matches_the_specification_table(length: int, encoded: bytes) -> None:
    if 2 <= length < 300_000:  # a PUBLISH with an empty topic: 2 bytes of topic length, then payload
        assert codec.publish("", b"x" * (length - 2))[1 : 1 + len(encoded)] == encoded
    assert codec._remaining(length) == encoded


def test_remaining_length_out_of_range() -> None:
    with pytest.raises(ValueError):
        codec._remaining(268_435_456)


def test_decoder_splits_a_stream_at_any_byte_boundary() -> None:
    big = b"{" + b"x" * 20_000 + b"}"
    stream = (
        codec.publish("$aws/things/T/jobs/get", b"{}") + bytes((codec.PINGRESP, 0)) + codec.publish("a/b", big, 1, 9)
    )
    for cut in range(0, len(stream), 97):
        decoder = codec.Decoder()
        packets = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [p.kind for p in packets] == [codec.PUBLISH, codec.PINGRESP, codec.PUBLISH]
        first, last = codec.parse_publish(packets[0]), codec.parse_publish(packets[2])
        assert (first.topic, first.payload, first.qos, first.packet_id) == ("$aws/things/T/jobs/get", b"{}", 0, None)
        assert (last.topic, last.payload, last.qos, last.packet_id) == ("a/b", big, 1, 9)


def test_decoder_byte_by_byte() -> None:
    stream = codec.publish("t", b"p" * 200) * 3
    decoder = codec.Decoder()
    packets = [p for i in range(len(stream)) for p in decoder.feed(stream[i : i + 1])]
    assert [codec.parse_publish(p).payload for p in packets] == [b"p" * 200] * 3


def test_acknowledgements() -> None:
    decoder = codec.Decoder()
    connack, suback, puback = decoder.feed(b"\x20\x02\x00\x05" + b"\x90\x04\x00\x07\x00\x80" + codec.puback(300))
    assert codec.connack_code(connack) == 5
    assert codec.packet_id(suback) == 7 and codec.suback_codes(suback) == b"\x00\x80"
    assert puback.kind == codec.PUBACK and codec.packet_id(puback) == 300


@pytest.mark.parametrize(
    "body",
    [b"\x00", b"\x00\x05ab", b"\x00\x01\xff"],
)
def test_malformed_publish_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(codec.ProtocolError):
        codec.parse_publish(codec.Packet(codec.PUBLISH, 0, body))


def test_publish_qos1_without_packet_id_and_qos3_are_protocol_errors() -> None:
    with pytest.raises(codec.ProtocolError):
        codec.parse_publish(codec.Packet(codec.PUBLISH, 2, b"\x00\x01t"))
    with pytest.raises(codec.ProtocolError):
        codec.parse_publish(codec.Packet(codec.PUBLISH, 6, b"\x00\x01t\x00\x01"))


def test_a_five_byte_remaining_length_is_refused() -> None:
    with pytest.raises(codec.ProtocolError):
        codec.Decoder().feed(b"\x30\xff\xff\xff\xff\x01")
