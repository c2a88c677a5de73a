#!/usr/bin/env python3
"""Provisioning at fleet scale: N things with certificates, a policy and group membership via boto3.

Run: ``.venv/bin/python benchmarks/provisioning.py [-n 10000] [--threads 16] [--json PATH]``

It starts a fresh service (``python -m iot_jobs_local --state-dir TMP serve`` with its Mosquitto)
in a temporary directory on free ports, creates one policy and one thing group, then N things on K
threads, each thing with CreateThing, CreateKeysAndCertificate (setAsActive), AttachPolicy,
AttachThingPrincipal and AddThingToThingGroup, every call answered only once the broker enforces
it (the service's guarantee). Reported: total time, things and operations per second, the mean
latency of the first and the last 100 attachments (AttachPolicy + AttachThingPrincipal, in the
order they completed: flat per-operation cost means last/first near 1), the service's RSS (VmRSS,
VmHWM) and CPU seconds of the service and its Mosquitto. ``--source SRC`` runs the service from
another source tree (before/after comparisons).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from control_plane import iot_client, running_service, tree_cpu_seconds

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*"},
        ],
    }
)


def _status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def run(n: int, threads: int, source: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-prov-") as tmp, running_service(Path(tmp) / "svc", source) as svc:
        credentials = svc.credentials()
        local = threading.local()

        def client() -> Any:
            if not hasattr(local, "iot"):
                local.iot = iot_client(svc.endpoint, credentials)
            return local.iot

        admin = client()
        admin.create_policy(policyName="fleet", policyDocument=POLICY)
        admin.create_thing_group(thingGroupName="fleet")
        attachments: list[tuple[float, float]] = []  # (completed at, seconds)
        lock = threading.Lock()

        def timed(call: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = call(**kwargs)
            done = time.perf_counter()
            with lock:
                attachments.append((done, done - started))
            return result

        def one(i: int) -> None:
            iot = client()
            name = f"fleet-{i:05d}"
            iot.create_thing(thingName=name)
            cert = iot.create_keys_and_certificate(setAsActive=True)
            timed(iot.attach_policy, policyName="fleet", target=cert["certificateArn"])
            timed(iot.attach_thing_principal, thingName=name, principal=cert["certificateArn"])
            iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=name)

        cpu_before = tree_cpu_seconds(svc.child.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(one, i) for i in range(n)]:
                future.result()
        elapsed = time.perf_counter() - started
        cpu = tree_cpu_seconds(svc.child.pid) - cpu_before
        attachments.sort()
        window = min(100, len(attachments) // 2)
        first = statistics.mean(s for _, s in attachments[:window]) * 1000
        last = statistics.mean(s for _, s in attachments[-window:]) * 1000
        return {
            "things": n,
            "threads": threads,
            "seconds": round(elapsed, 2),
            "things_per_second": round(n / elapsed, 1),
            "operations_per_second": round(5 * n / elapsed, 1),
            "first_attachments_ms": round(first, 2),
            "last_attachments_ms": round(last, 2),
            "last_over_first": round(last / first, 2),
            "service_tree_cpu_seconds": round(cpu, 2),
            **{f"service_{k}_mb": round(v, 1) for k, v in _status(svc.child.pid).items()},
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000, help="things to create (default 10000)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--source", type=Path, help="run the service from this src directory")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.n, args.threads, args.source)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
