#!/usr/bin/env python3
"""Many parallel mutual-TLS CONNECTs through the real broker: does the service's CONNECT check keep up?

Run: ``.venv/bin/python benchmarks/connect_gate.py [--devices 200] [--connections 3000] [--in-flight 64]``

It starts a fresh service, provisions ``--devices`` devices with the fleet's sequence (a thing group
policy that allows iot:Connect for any client id; each certificate attached to its thing as
EXCLUSIVE_THING, so one certificate can hold many connections),
then opens ``--connections`` MQTT connections (client ids ``<thing>-<n>``, each a new question
for the broker plugin, which asks the service over its socket pair: ``broker/gate.py``) with at
most ``--in-flight`` handshakes at a time (Mosquitto's listen backlog is 100), and holds them all
open until the last CONNACK. Reported: connects per second, CONNECT latency (TCP connect to
CONNACK) percentiles, the CPU seconds per connect of the service (the gate's answer, the broker
log line it reads for each client) and of Mosquitto (the TLS handshake), and from the service's
share the rate the gate alone could answer. The client (one uvloop process) does its side of
every handshake too, on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import cpu_seconds, memory_kib, running_service
from provisioning import RawIot

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
    }
)


def connect_packet(client_id: str) -> bytes:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("!H", len(data)) + data

    body = string("MQTT") + bytes((4, 0x02)) + struct.pack("!H", 300) + string(client_id)
    return bytes((0x10, len(body))) + body


def key_and_csr() -> tuple[bytes, str]:
    """A device's own EC P-256 key (PEM) and a CSR for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def provision(svc: Any, directory: Path, devices: int) -> list[tuple[str, Path, Path]]:
    """The fleet's sequence for each device, on 4 threads; (thing, certificate, key) of each."""
    admin = RawIot(svc.endpoint, svc.keys)
    admin.create_policy(policyName="connect", policyDocument=POLICY)
    arn = admin.create_thing_group(thingGroupName="gate")["thingGroupArn"]
    admin.attach_policy(policyName="connect", target=arn)
    local = threading.local()

    def one(i: int) -> tuple[str, Path, Path]:
        if not hasattr(local, "iot"):
            local.iot = RawIot(svc.endpoint, svc.keys)
        iot, thing = local.iot, f"gate-{i:05d}"
        key_pem, csr = key_and_csr()
        iot.create_thing(thingName=thing)
        cert = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
        # EXCLUSIVE_THING: the thing (and its group's policy) applies whatever the client id, so one
        # certificate can hold many connections (with NON_EXCLUSIVE_THING the id must be the name).
        iot.attach_thing_principal(
            thingName=thing, principal=cert["certificateArn"], thingPrincipalType="EXCLUSIVE_THING"
        )
        iot.add_thing_to_thing_group(thingGroupName="gate", thingName=thing)
        cert_path, key_path = directory / f"{thing}.crt", directory / f"{thing}.key"
        cert_path.write_text(cert["certificatePem"])
        key_path.write_bytes(key_pem)
        return thing, cert_path, key_path

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(devices)))


async def storm(
    port: int, ca: str, devices: list[tuple[str, Path, Path]], connections: int, in_flight: int
) -> tuple[list[float], list[int], float]:
    contexts = []
    for _thing, cert, key in devices:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(str(cert), str(key))
        contexts.append(context)
    gate = asyncio.Semaphore(in_flight)
    held: list[asyncio.StreamWriter] = []
    latencies: list[float] = []
    codes: list[int] = []

    async def one(n: int) -> None:
        thing = devices[n % len(devices)][0]
        async with gate:
            started = time.perf_counter()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=contexts[n % len(devices)], server_hostname="localhost"
            )
            held.append(writer)
            writer.write(connect_packet(f"{thing}-{n}"))
            header = await reader.readexactly(4)
            latencies.append(time.perf_counter() - started)
            codes.append(header[3])

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(n) for n in range(connections)))
        return latencies, codes, time.perf_counter() - started
    finally:
        for writer in held:
            writer.close()


def run(devices: int, connections: int, in_flight: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp, running_service(Path(tmp) / "svc") as svc:
        made = provision(svc, Path(tmp), devices)
        service_cpu, broker_cpu = cpu_seconds(svc.pid), cpu_seconds(svc.broker_pid)
        try:
            import uvloop

            latencies, codes, seconds = uvloop.run(storm(svc.mqtt_port, svc.ca, made, connections, in_flight))
        except ImportError:
            latencies, codes, seconds = asyncio.run(storm(svc.mqtt_port, svc.ca, made, connections, in_flight))
        service_cpu = cpu_seconds(svc.pid) - service_cpu
        broker_cpu = cpu_seconds(svc.broker_pid) - broker_cpu
        ordered = sorted(latencies)
        per_connect = service_cpu / connections
        return {
            "devices": devices,
            "connections": connections,
            "in_flight": in_flight,
            "accepted": codes.count(0),
            "refused": len(codes) - codes.count(0),
            "seconds": round(seconds, 2),
            "connects_per_second": round(connections / seconds, 1),
            "latency_ms": {
                "p50": round(statistics.median(ordered) * 1000, 1),
                "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
                "max": round(ordered[-1] * 1000, 1),
            },
            "service_cpu_ms_per_connect": round(per_connect * 1000, 3),
            "mosquitto_cpu_ms_per_connect": round(broker_cpu / connections * 1000, 3),
            "service_bound_connects_per_second": round(1 / per_connect) if per_connect else None,
            "mosquitto_rss_kib_after": memory_kib(svc.broker_pid),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200, help="certificates (default 200)")
    parser.add_argument("--connections", type=int, default=3000, help="connections to open (default 3000)")
    parser.add_argument("--in-flight", type=int, default=64, help="handshakes at once (default 64)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.devices, args.connections, args.in_flight)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
