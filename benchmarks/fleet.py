#!/usr/bin/env python3
"""The fleet at scale: N simulated devices (``iot-jobs-fleet``) against a fresh local service.

Run: ``.venv/bin/python benchmarks/fleet.py [-n 1000] [--ramp 2000] [--handshakes 64] [--json PATH]``

It starts a service (``python -m iot_jobs_local serve``, real time) in a temporary directory,
provisions N things in one group with ``iot-jobs-fleet --provision-only`` (timed, but the
provisioning figures proper are ``benchmarks/provisioning.py``'s), then:

1. starts the fleet (every device its own mutual-TLS MQTT 3.1.1 connection, one uvloop process)
   and takes the time it reports for the last device's CONNACK and SUBACK;
2. CreateJob of a SNAPSHOT job on the group (devices take 0 s per execution) and polls DescribeJob
   every 20 ms until COMPLETED; checks every execution SUCCEEDED;
3. reads the RSS (VmRSS and peak VmHWM) and CPU seconds of the fleet, the service and Mosquitto;
4. stops the fleet and measures the data plane's request ceiling in the same run: 50 identities
   of the fleet, each with a window of 8 GetPendingJobExecutions in flight for 5 s, on the fleet's
   own MQTT client. Each execution costs a device two requests (start-next and the final update),
   so the ratio is 2 x executions per second / requests per second.

The machine's load is sampled for a second before the run and printed: on a shared machine the
figures are noisy. ``--dir DIR`` keeps the service's state and the identities in DIR, so a later
run reuses the N things instead of provisioning them again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    children_stopped,
    iot_client,
    machine_cpu,
    memory_kib,
    start_service,
    tree_cpu_seconds,
    wait_for_line,
)

REPO = Path(__file__).resolve().parents[1]
GROUP = "bench-fleet"


def machine_busy(seconds: float = 1.0) -> float:
    busy0, total0 = machine_cpu()
    time.sleep(seconds)  # sampling /proc/stat over an interval
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(1, total1 - total0)


def fleet_argv(state: Path, fleet_dir: Path, count: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "iot_jobs_fleet", "--state-dir", str(state), "--fleet-dir", str(fleet_dir),
        "--count", str(count), "--group", GROUP, *extra,
    ]  # fmt: skip


async def ceiling(port: int, ca: Path, fleet_dir: Path, things: list[str], window: int, seconds: float) -> float:
    """GetPendingJobExecutions per second from ``len(things)`` devices, ``window`` in flight each."""
    sys.path.insert(0, str(REPO / "src"))
    from iot_jobs_fleet.wire import Tls, Wire
    from iot_jobs_local.mqtt import codec

    done = 0
    stop_at = 0.0
    shared = Tls(ca, "localhost")

    async def device(thing: str) -> None:
        nonlocal done
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[None] = asyncio.Queue()
        wire_box: list[Wire] = []

        def deliver(_topic: str, _payload: bytes) -> None:
            replies.put_nowait(None)

        tls = shared.wrap(fleet_dir / f"{thing}.crt", fleet_dir / f"{thing}.key")
        _t, wire = await loop.create_connection(lambda: Wire(deliver, lambda _wire: None, tls), "127.0.0.1", port)
        wire_box.append(wire)
        await wire.handshake
        wire.write(codec.connect(thing, username=None, password=None, keepalive=60))
        assert await wire.connack == 0
        wire.subscribe([f"$aws/things/{thing}/jobs/get/accepted", f"$aws/things/{thing}/jobs/get/rejected"])
        await wire.suback
        topic, body = f"$aws/things/{thing}/jobs/get", b'{"clientToken":"b"}'
        while not stop_at:
            await asyncio.sleep(0.01)  # wait for every device to be connected
        for _ in range(window):
            wire.publish(topic, body)
        while time.monotonic() < stop_at:
            await replies.get()
            done += 1
            wire.publish(topic, body)
        wire.disconnect()

    tasks = [asyncio.create_task(device(t)) for t in things]
    await asyncio.sleep(2)  # connect everyone (50 handshakes) before the clock starts
    start = time.monotonic()
    stop_at = start + seconds
    counted_at_start = done
    await asyncio.wait(tasks, timeout=seconds + 10)
    return (done - counted_at_start) / (time.monotonic() - start)


def rss(pid: int) -> dict[str, int]:
    try:
        return memory_kib(pid)
    except OSError:
        return {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("-n", "--count", type=int, default=1000)
    p.add_argument("--ramp", type=float, default=2000.0)
    p.add_argument("--handshakes", type=int, default=64)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="keep the service's state and the identities here and reuse them next time (default: a temp dir)",
    )
    args = p.parse_args()
    busy = machine_busy()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, {busy:.0%} busy over 1 s before the run, load {load[0]:.2f}")
    results: dict[str, Any] = {"count": args.count, "machine_busy_before": busy, "load": load[0]}
    env = {"PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, children_stopped() as children:
        tmpdir = args.dir.resolve() if args.dir else Path(tmp)
        tmpdir.mkdir(parents=True, exist_ok=True)
        # harness.wait_for_line reads a whole log: a kept one holds the last run's lines.
        for old_log in ("service/service.log", "provision.log", "fleet.log"):
            (tmpdir / old_log).unlink(missing_ok=True)
        svc = start_service(children, tmpdir / "service")
        fleet_dir = tmpdir / "identities"
        started = time.monotonic()
        prov_log = tmpdir / "provision.log"
        proc = children.start(
            "provisioning", fleet_argv(svc.state, fleet_dir, args.count, "--provision-only"), prov_log, env=env
        )
        proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"provisioning failed:\n{prov_log.read_text()[-2000:]}")
        results["provision_s"] = time.monotonic() - started
        reused = "reused or " if args.dir else ""
        print(f"{reused}provisioned {args.count} things in {results['provision_s']:.1f} s")

        log = tmpdir / "fleet.log"
        fleet = children.start(
            "fleet",
            fleet_argv(svc.state, fleet_dir, args.count, "--job-duration", "0", "--ramp", str(args.ramp),
                       "--handshakes", str(args.handshakes)),
            log,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        line = wait_for_line(fleet, log, "devices connected in", 120, "fleet")
        found = re.search(r"connected in ([0-9.]+) s", line)
        assert found
        results["connect_s"] = float(found.group(1))
        print(f"connected {args.count} devices in {results['connect_s']:.2f} s (ramp {args.ramp:g}/s, "
              f"{args.handshakes} handshakes in flight at most)")  # fmt: skip

        iot = iot_client(svc.endpoint, svc.keys)
        arn = iot.describe_thing_group(thingGroupName=GROUP)["thingGroupArn"]
        cpu0 = {n: tree_cpu_seconds(pid) for n, pid in (("fleet", fleet.pid), ("service", svc.pid))}
        job_id = f"bench-snapshot-{int(time.time())}"
        t0 = time.monotonic()
        iot.create_job(jobId=job_id, targets=[arn], document='{"operation":"bench"}')
        while True:
            job = iot.describe_job(jobId=job_id)["job"]
            if job["status"] != "IN_PROGRESS":
                break
            time.sleep(0.02)  # polling DescribeJob
        results["job_s"] = time.monotonic() - t0
        details = job["jobProcessDetails"]
        results["job_status"] = job["status"]
        results["succeeded"] = details["numberOfSucceededThings"]
        results["executions_per_s"] = args.count / results["job_s"]
        results["cpu_job_s"] = {n: tree_cpu_seconds(pid) - cpu0[n] for n, pid in (("fleet", fleet.pid),
                                                                                   ("service", svc.pid))}  # fmt: skip
        print(f"CreateJob -> {job['status']} in {results['job_s']:.2f} s, {details['numberOfSucceededThings']}"
              f"/{args.count} SUCCEEDED: {results['executions_per_s']:.0f} executions/s")  # fmt: skip
        results["rss_kib"] = {"fleet": rss(fleet.pid), "service": rss(svc.pid), "mosquitto": rss(svc.broker_pid)}
        for name, mem in results["rss_kib"].items():
            print(f"  {name:9s} RSS {mem.get('VmRSS', 0) / 1024:7.1f} MiB (peak {mem.get('VmHWM', 0) / 1024:.1f} MiB)")
        total = sum(m.get("VmRSS", 0) for m in results["rss_kib"].values()) / 1024
        results["rss_total_mib"] = total
        print(f"  together {total:.1f} MiB")
        fleet.terminate()
        fleet.wait(30)

        things = sorted(path.stem for path in fleet_dir.glob("*.crt"))[:50]
        rate = asyncio.run(ceiling(svc.mqtt_port, Path(svc.ca), fleet_dir, things, 8, 5.0))
        results["ceiling_rps"] = rate
        results["ratio"] = 2 * results["executions_per_s"] / rate
        print(f"data-plane ceiling (50 devices x 8 GetPending in flight): {rate:.0f} requests/s; "
              f"fleet at {results['ratio']:.2f} of it (2 requests per execution)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
