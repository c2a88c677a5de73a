#!/usr/bin/env python3
"""Provisioning at fleet scale through the service's own HTTP API (issue 15).

Run: ``.venv/bin/python benchmarks/provisioning.py [-n 10000] [--threads 4] [--old-n 300] [--json PATH]``

It starts a fresh service (``python -m iot_jobs_local --state-dir TMP serve`` with its Mosquitto)
on free ports, then:

1. The fleet's sequence (what ``iot-jobs-fleet`` does, and what works unchanged against AWS IoT):
   CreatePolicy, CreateThingGroup and ONE AttachPolicy of the policy to the group; then per
   device CreateThing, CreateCertificateFromCsr (setAsActive; the device's own EC P-256 key and
   CSR, made before the clock starts: that is the device's work, not the service's),
   AttachThingPrincipal and AddThingToThingGroup, on K client threads.
2. The older per-certificate path at a smaller N, on the same service (so with the fleet already
   in it): CreateThing, CreateKeysAndCertificate (the service makes an RSA-2048 key),
   AttachPolicy to the certificate, AttachThingPrincipal, AddThingToThingGroup.

Every call is answered only once the broker enforces it (the service's guarantee), so the figures
include the broker's side. Reported per part: total time, devices and calls per second, the
median latency of each operation over the first and the last 500 calls of that operation (in
completion order: flat per-operation cost means last/first near 1), and at the end the service's
and Mosquitto's RSS and the CPU seconds of the service's process tree.

The client is the fleet's minimal SigV4-signed HTTP/1.1 client on keep-alive connections
(``iot_jobs_fleet.signed_client``: botocore signs, ``http.client`` sends): boto3 itself costs
~2 ms of client CPU per call, which on a 2-core machine would be what is measured.
``--boto3`` uses boto3 clients instead (one per thread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import REGION, iot_client, memory_kib, running_service, tree_cpu_seconds

from iot_jobs_fleet.signed_client import SignedIot

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*",
            },
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*"},
        ],
    }
)
WINDOW = 500


class RawIot(SignedIot):
    """The fleet's signed client (iot_jobs_fleet.signed_client) plus the few other calls this
    benchmark makes, on the same signing and keep-alive connection."""

    def __init__(self, endpoint: str, credentials: tuple[str, str]) -> None:
        from botocore.credentials import Credentials

        super().__init__(endpoint, REGION, Credentials(*credentials), timeout=120)

    def create_policy(self, policyName: str, policyDocument: str) -> dict[str, Any]:
        return self.call("CreatePolicy", "POST", f"/policies/{policyName}", body={"policyDocument": policyDocument})

    def create_policy_version(self, policyName: str, policyDocument: str, setAsDefault: bool) -> dict[str, Any]:
        query = {"setAsDefault": "true" if setAsDefault else "false"}
        path = f"/policies/{policyName}/version"
        return self.call("CreatePolicyVersion", "POST", path, query, {"policyDocument": policyDocument})

    def create_thing_group(self, thingGroupName: str) -> dict[str, Any]:
        return self.call("CreateThingGroup", "POST", f"/thing-groups/{thingGroupName}", body={})

    def describe_thing_group(self, thingGroupName: str) -> dict[str, Any]:
        return self.call("DescribeThingGroup", "GET", f"/thing-groups/{thingGroupName}")

    def create_keys_and_certificate(self, setAsActive: bool) -> dict[str, Any]:
        query = {"setAsActive": "true" if setAsActive else "false"}
        return self.call("CreateKeysAndCertificate", "POST", "/keys-and-certificate", query)

    def attach_policy(self, policyName: str, target: str) -> dict[str, Any]:
        return self.call("AttachPolicy", "PUT", f"/target-policies/{policyName}", body={"target": target})


def csrs(n: int) -> list[str]:
    """What each device makes itself: an EC P-256 key and a CSR for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet device")])
    out = []
    for _ in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        out.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return out


class Timings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[str, list[float]] = {}  # operation -> seconds, in completion order

    def call(self, name: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = function(**kwargs)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.calls.setdefault(name, []).append(elapsed)
        return result

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, seconds in self.calls.items():
            window = min(WINDOW, max(1, len(seconds) // 2))
            first = statistics.median(seconds[:window]) * 1000
            last = statistics.median(seconds[-window:]) * 1000
            out[name] = {
                "calls": len(seconds),
                "first_median_ms": round(first, 2),
                "last_median_ms": round(last, 2),
                "last_over_first": round(last / first, 2),
            }
        return out


def run_part(threads: int, n: int, one: Callable[[int, Timings], None]) -> dict[str, Any]:
    timings = Timings()
    started, client_cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(one, i, timings) for i in range(n)]:
            future.result()
    elapsed, client_cpu = time.perf_counter() - started, time.process_time() - client_cpu
    calls = sum(len(s) for s in timings.calls.values())
    return {
        "devices": n,
        "seconds": round(elapsed, 2),
        "client_cpu_seconds": round(client_cpu, 2),
        "devices_per_second": round(n / elapsed, 1),
        "calls_per_second": round(calls / elapsed, 1),
        "operations": timings.summary(),
    }


def run(n: int, threads: int, old_n: int, use_boto3: bool, source: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-prov-") as tmp, running_service(Path(tmp) / "svc", source) as svc:
        local = threading.local()

        def client() -> Any:
            if not hasattr(local, "iot"):
                local.iot = iot_client(svc.endpoint, svc.keys) if use_boto3 else RawIot(svc.endpoint, svc.keys)
            return local.iot

        load = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: how busy it was
        made = time.perf_counter()
        requests = csrs(n)
        csr_seconds = time.perf_counter() - made
        admin = client()
        admin.create_policy(policyName="fleet", policyDocument=POLICY)
        group_arn = admin.create_thing_group(thingGroupName="fleet")["thingGroupArn"]
        admin.attach_policy(policyName="fleet", target=group_arn)

        def fleet_device(i: int, t: Timings) -> None:
            iot, name = client(), f"fleet-{i:05d}"
            t.call("CreateThing", iot.create_thing, thingName=name)
            cert = t.call(
                "CreateCertificateFromCsr",
                iot.create_certificate_from_csr,
                certificateSigningRequest=requests[i],
                setAsActive=True,
            )
            t.call("AttachThingPrincipal", iot.attach_thing_principal, thingName=name, principal=cert["certificateArn"])
            t.call("AddThingToThingGroup", iot.add_thing_to_thing_group, thingGroupName="fleet", thingName=name)

        cpu_before = tree_cpu_seconds(svc.pid)
        fleet = run_part(threads, n, fleet_device)
        fleet["service_tree_cpu_seconds"] = round(tree_cpu_seconds(svc.pid) - cpu_before, 2)
        fleet["device_csrs_made_beforehand_seconds"] = round(csr_seconds, 2)
        after_fleet = {"service": memory_kib(svc.pid), "mosquitto": memory_kib(svc.broker_pid)}
        # A change that reaches every certificate: the fleet policy's new default version.
        started = time.perf_counter()
        admin.create_policy_version(policyName="fleet", policyDocument=POLICY, setAsDefault=True)
        fleet["new_default_policy_version_seconds"] = round(time.perf_counter() - started, 2)

        admin.create_thing_group(thingGroupName="old-path")

        def old_device(i: int, t: Timings) -> None:
            iot, name = client(), f"old-{i:05d}"
            t.call("CreateThing", iot.create_thing, thingName=name)
            cert = t.call("CreateKeysAndCertificate", iot.create_keys_and_certificate, setAsActive=True)
            arn = cert["certificateArn"]
            t.call("AttachPolicy", iot.attach_policy, policyName="fleet", target=arn)
            t.call("AttachThingPrincipal", iot.attach_thing_principal, thingName=name, principal=arn)
            t.call("AddThingToThingGroup", iot.add_thing_to_thing_group, thingGroupName="old-path", thingName=name)

        cpu_before = tree_cpu_seconds(svc.pid)
        old = run_part(threads, old_n, old_device) if old_n else {}
        if old:
            old["service_tree_cpu_seconds"] = round(tree_cpu_seconds(svc.pid) - cpu_before, 2)
        return {
            "load_average_at_start_and_end": [load, [round(x, 2) for x in os.getloadavg()]],
            "client": "boto3" if use_boto3 else "raw SigV4 http.client",
            "threads": threads,
            "fleet_sequence": fleet,
            "memory_after_fleet_kib": after_fleet,
            "old_path_after_fleet": old,
            "memory_at_end_kib": {"service": memory_kib(svc.pid), "mosquitto": memory_kib(svc.broker_pid)},
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000, help="devices of the fleet sequence (default 10000)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--old-n", type=int, default=300, help="devices of the older path (default 300; 0: skip)")
    parser.add_argument("--boto3", action="store_true", help="boto3 clients instead of the minimal signed client")
    parser.add_argument("--source", type=Path, help="run the service from this src directory")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.n, args.threads, args.old_n, args.boto3, args.source)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
