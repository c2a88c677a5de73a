"""Access at fleet scale, on the real broker: what the fleet's provisioning sequence grants holds when
its calls return, what a change takes away is gone when its call returns, many changes at once end
in the right state, and hundreds of devices connecting at once are all let in.

The fleet's sequence (issue 15; it works unchanged against AWS IoT): one policy attached to a thing
group, then per device CreateThing, the device's own EC key and CSR, CreateCertificateFromCsr
(setAsActive), AttachThingPrincipal and AddThingToThingGroup. The broker plugin holds each
certificate's ACL and is updated one certificate at a time (broker/acl_feed.py).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.common import RESPONSE_TIMEOUT, unique
from support.service import ServiceProcess
from test_connect_gate import answered
from test_policies import Identities, allowed, statement, tls_refused
from test_policies import ids as ids  # the fixture, shared


@dataclass(frozen=True)
class Device:
    thing: str
    certificate_arn: str
    cert: Path
    key: Path


def fleet_policy(ids: Identities) -> str:
    return ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/${{iot:Connection.Thing.ThingName}}"),
        statement(
            "Allow",
            ["iot:Publish", "iot:Receive"],
            f"{ids.arn}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*",
        ),
        statement("Allow", "iot:Subscribe", f"{ids.arn}:topicfilter/$aws/things/*"),
    )


def fleet_group(ids: Identities) -> str:
    group = unique("fleet")
    arn = ids.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    ids.iot.attach_policy(policyName=fleet_policy(ids), target=arn)
    return group


def csr_and_key() -> tuple[str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), pem


def provision(iot: Any, directory: Path, group: str, thing: str | None = None) -> Device:
    """The fleet's sequence for one device."""
    thing = thing or unique("dev")
    iot.create_thing(thingName=thing)
    csr, key_pem = csr_and_key()
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    cert, key = directory / f"{thing}.crt", directory / f"{thing}.key"
    cert.write_text(made["certificatePem"])
    key.write_bytes(key_pem)
    return Device(thing, made["certificateArn"], cert, key)


def jobs_get(thing: str) -> str:
    return f"$aws/things/{thing}/jobs/get"


def test_a_device_provisioned_by_the_fleet_sequence_works_as_soon_as_the_calls_return(ids: Identities) -> None:
    group = fleet_group(ids)
    for _ in range(3):  # each one right after its last call returned
        device = provision(ids.iot, ids.directory, group)
        client = ids.connect(device.cert, device.key, device.thing)
        assert answered(client, device.thing)


def test_leaving_the_group_takes_its_policy_away_before_the_call_returns(ids: Identities) -> None:
    group = fleet_group(ids)
    device = provision(ids.iot, ids.directory, group)
    client = ids.connect(device.cert, device.key, device.thing)
    assert answered(client, device.thing)
    ids.iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)
    assert not allowed(client.publish(jobs_get(device.thing)))
    ids.iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    assert allowed(client.publish(jobs_get(device.thing)))


def test_detaching_the_group_policy_takes_it_from_every_member_before_the_call_returns(ids: Identities) -> None:
    group = unique("fleet")
    arn = ids.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    policy = fleet_policy(ids)
    ids.iot.attach_policy(policyName=policy, target=arn)
    devices = [provision(ids.iot, ids.directory, group) for _ in range(3)]
    clients = [ids.connect(d.cert, d.key, d.thing) for d in devices]
    for device, client in zip(devices, clients, strict=True):
        assert allowed(client.publish(jobs_get(device.thing)))
    ids.iot.detach_policy(policyName=policy, target=arn)
    for device, client in zip(devices, clients, strict=True):
        assert not allowed(client.publish(jobs_get(device.thing)))


def test_a_deactivated_certificate_is_cut_off_before_the_call_returns(ids: Identities) -> None:
    group = fleet_group(ids)
    device = provision(ids.iot, ids.directory, group)
    client = ids.connect(device.cert, device.key, device.thing)
    assert answered(client, device.thing)
    certificate_id = device.certificate_arn.rsplit("/", 1)[1]
    ids.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    # Its rights are gone at once; the connection is closed, and a new one refused at the handshake.
    with pytest.raises(Exception):  # noqa: B017 - a refused PUBACK or a closed connection, whichever comes first
        assert allowed(client.publish(jobs_get(device.thing)))
    client.disconnected.result(RESPONSE_TIMEOUT)
    assert tls_refused(ids.service, device.cert, device.key)


def test_many_changes_at_once_end_in_the_state_of_the_last_ones(ids: Identities) -> None:
    """Concurrent calls share broker updates; each answers only once its own change is in force."""
    group = fleet_group(ids)
    devices = [provision(ids.iot, ids.directory, group) for _ in range(12)]
    clients = [ids.connect(d.cert, d.key, d.thing) for d in devices]
    leaving = devices[::2]

    def toggle(device: Device) -> None:
        iot = ids.service.iot()
        for _ in range(3):
            iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
        if device in leaving:
            iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(toggle, devices))
    for device, client in zip(devices, clients, strict=True):
        assert allowed(client.publish(jobs_get(device.thing))) == (device not in leaving), device.thing


# --------------------------------------------------------------------------------------------------
# Hundreds of devices connecting at once
# --------------------------------------------------------------------------------------------------
PARALLEL = 300


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str) -> bytes:
    """MQTT 3.1.1 CONNECT, clean session, 60 s keepalive."""
    body = _string("MQTT") + bytes((4, 0x02)) + struct.pack("!H", 60) + _string(client_id)
    return bytes((0x10, len(body))) + body  # under 128 bytes: a one-byte remaining length


async def connack_of(context: ssl.SSLContext, port: int, client_id: str, held: list[asyncio.StreamWriter]) -> int:
    """The CONNACK return code (0: accepted); the connection stays open (in ``held``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    held.append(writer)
    writer.write(connect_packet(client_id))
    header = await reader.readexactly(4)
    assert header[0] == 0x20, header
    return header[3]


async def connect_all(service: ServiceProcess, devices: list[Device]) -> tuple[list[int], float]:
    contexts = []
    for device in devices:
        context = ssl.create_default_context(cafile=str(service.ca_path))
        context.load_cert_chain(str(device.cert), str(device.key))
        contexts.append(context)
    held: list[asyncio.StreamWriter] = []
    started = time.monotonic()
    try:
        codes = await asyncio.wait_for(
            asyncio.gather(
                *(connack_of(c, service.mqtt_port, d.thing, held) for c, d in zip(contexts, devices, strict=True))
            ),
            60,
        )
        return list(codes), time.monotonic() - started
    finally:
        for writer in held:
            writer.close()


@pytest.fixture
def fleet(ids: Identities) -> Iterator[list[Device]]:
    group = fleet_group(ids)
    clients = [ids.service.iot() for _ in range(4)]
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [
            pool.submit(provision, clients[i % len(clients)], ids.directory, group, f"par-{uuid.uuid4().hex[:12]}")
            for i in range(PARALLEL)
        ]
        yield [f.result() for f in futures]


def test_300_devices_connecting_at_once_are_all_let_in(ids: Identities, fleet: list[Device]) -> None:
    codes, seconds = asyncio.run(connect_all(ids.service, fleet))
    assert codes == [0] * PARALLEL, json.dumps({c: codes.count(c) for c in set(codes)})
    # Beyond Mosquitto's listen backlog (100) some SYNs wait for their 1 s retry: allow for a few.
    assert seconds < 30
