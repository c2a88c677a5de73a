#!/usr/bin/env python3
"""Control-plane benchmark of the local IoT Jobs service (``iot-jobs-local``) as boto3 sees it.

Run: ``.venv/bin/python benchmarks/control_plane.py [--quick] [--json PATH]``

It starts everything it needs in a temporary directory on free ports and stops all of it at the end
(also on error or Ctrl-C): the service (``python -m iot_jobs_local --state-dir TMP serve``, which
starts its own Mosquitto), and ``empty_http_server.py`` once per baseline.

(a) Requests per second of CreateThing, CreateJob (one thing target each) and DescribeJob, from one
    boto3 client calling back to back, and from 8 threads of this process with a client each.
    The same calls go, with the same clients, to do-nothing servers (``empty_http_server.py``):
    ``raw`` answers ``{}`` (what the client alone costs), ``ceiling`` answers each operation with a
    body like the service's (what the client costs parsing real answers: the best rate any server
    could reach; the report gives the service's rate as a share of it), and with ``--aiohttp`` an
    empty aiohttp handler (the web framework the service used until 7942d4f); with ``--ministack
    COMMAND``, MiniStack itself, the emulator the targets cite (``pip install ministack`` into a
    virtual environment of its own, then ``--ministack VENV/bin/ministack``). Also reported: CPU
    milliseconds per request of the server process and of this (client) process, from /proc.
(b) A SNAPSHOT job on a thing group of 10,000 things, on a fresh service holding only those things:
    the CreateJob call's latency; the time from the call until DescribeJob reports every thing
    QUEUED and until a subscriber has received both events (``notify`` and ``notify-next``) of
    every thing. The subscriber is a paho-mqtt MQTT5 client with a certificate made through the
    API (CreateKeysAndCertificate, CreatePolicy allowing iot:Receive on
    ``$aws/things/*/jobs/notify*``, AttachPolicy): it receives the events through the broker's
    ACL exactly as a device would. Then the service process's RSS (VmRSS, VmHWM) from /proc.

``--compare REV`` also runs the service at another git revision (checked out in a temporary
``git worktree``) or from another checkout's ``src`` directory, as one more column, in the same interleaved rounds: the
speed of a shared 2-vCPU machine drifts by tens of per cent between runs, so before/after figures
are only comparable within one run. ``--profile DIR`` records py-spy profiles of the service under
each load after the measured rounds.

Reports are printed for whatever was measured (``--only`` runs one part). The code lives in
modules beside this CLI: ``harness`` (children, service start-up, /proc), ``rates`` (a),
``fan_out`` (b), ``checkout`` (--compare).

See benchmarks/README.md ("Control plane") for the results on the reference machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from checkout import compared_source
from fan_out import FanOut, fan_out
from harness import ACCOUNT, HERE, Child, free_port, running_service
from rates import Rate, prepare, profile, rates

#: The targets of the issue, next to which the figures are printed.
TARGETS = {"CreateThing": 1200.0, "CreateJob": 700.0, "DescribeJob": 1200.0}
MINISTACK = {"CreateThing": 1208.0, "CreateJob": 594.0, "DescribeJob": 1010.0}
FANOUT_CREATE_TARGET = 0.5
FANOUT_DONE_TARGET = 3.0
RSS_TARGET_MB = 150.0


@contextlib.contextmanager
def empty_server(directory: Path, kind: str) -> Iterator[tuple[str, Child]]:
    port = free_port()
    command = [sys.executable, str(HERE / "empty_http_server.py"), "--port", str(port), "--kind", kind]
    child = Child(command, directory / f"empty-{kind}.log", "ready")
    try:
        child.start()
        yield f"http://127.0.0.1:{port}", child
    finally:
        child.stop()


@contextlib.contextmanager
def ministack_server(directory: Path, command: str) -> Iterator[tuple[str, Child]]:
    """MiniStack (``pip install ministack``, best in a virtual environment of its own), the emulator
    whose figures the targets cite, on a free port and with our account id in its ARNs."""
    port = free_port()
    env = {"GATEWAY_PORT": str(port), "MINISTACK_ACCOUNT_ID": ACCOUNT, "LOG_LEVEL": "WARNING"}
    child = Child([command], directory / "ministack.log", None, env, port)
    try:
        child.start()
        yield f"http://127.0.0.1:{port}", child
    finally:
        child.stop()


# ------------------------------------------------------------------------------------------------
# report


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def rates_report(results: dict[str, list[Rate]]) -> list[str]:
    lines = ["Control plane: requests/s (server CPU ms/request, client CPU ms/request)", ""]
    header = f"{'operation':<12} {'clients':>7}"
    for name in results:
        header += f" {name:>26}"
    ceiling = results.get("empty ceiling", [])
    lines.append(header + "   target  MiniStack" + ("  of ceiling" if ceiling else ""))
    service = results.get("service", [])
    for index, rate in enumerate(next(iter(results.values()))):
        row = f"{rate.operation:<12} {rate.threads:>7}"
        for measured in results.values():
            r = measured[index]
            row += f" {r.per_second:>9.0f} ({r.server_cpu_ms:5.2f}, {r.client_cpu_ms:5.2f})"
        if rate.threads == 1 and service:
            ok = service[index].per_second >= TARGETS[rate.operation]
            row += f"   {TARGETS[rate.operation]:>6.0f} {MINISTACK[rate.operation]:>7.0f}  {_mark(ok):<6}"
            if ceiling:
                row += f"  {service[index].per_second / ceiling[index].per_second:6.0%}"
        lines.append(row)
    worst = max(r.foreign_load for measured in results.values() for r in measured)
    lines.append(f"(other processes' load during the kept measurements: at most {worst:.2f} CPU)")
    return lines


def report(results: dict[str, list[Rate]], fans: dict[str, FanOut]) -> str:
    """The figures measured, whichever parts ran (``--only``): rates, fan-out, or both."""
    lines: list[str] = []
    if results:
        lines += rates_report(results)
    for name, fan in fans.items():
        rss_mb = fan.rss_kib["VmRSS"] / 1024
        lines += [
            *([""] if lines else []),
            f"{name}: SNAPSHOT job on a group of {fan.things} things (setup: {fan.setup_seconds:.1f} s for "
            f"CreateThing + AddThingToThingGroup of each, 8 threads; other processes' load meanwhile: "
            f"{fan.foreign_load:.2f} CPU)",
            f"  CreateJob call                    {fan.create_job_seconds:7.3f} s   target < {FANOUT_CREATE_TARGET} s  "
            f"{_mark(fan.create_job_seconds < FANOUT_CREATE_TARGET)}",
            f"  all QUEUED (DescribeJob)          {fan.queued_seconds:7.3f} s",
            f"  all events received ({fan.events_received}/{fan.events_expected})  {fan.events_seconds:7.3f} s",
            f"  QUEUED and events published       {fan.done_seconds:7.3f} s   target < {FANOUT_DONE_TARGET} s  "
            f"{_mark(fan.done_seconds < FANOUT_DONE_TARGET)}",
            f"  service RSS                       {rss_mb:7.1f} MB  target < {RSS_TARGET_MB:.0f} MB  "
            f"{_mark(rss_mb < RSS_TARGET_MB)}   (peak {fan.rss_kib['VmHWM'] / 1024:.1f} MB, "
            f"idle at start {fan.rss_idle_kib['VmRSS'] / 1024:.1f} MB)",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and a 1,000-thing group")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--seconds", type=float, help="duration of each rate measurement")
    parser.add_argument("--rounds", type=int, help="rounds of rate measurements (the median is kept)")
    parser.add_argument("--things", type=int, help="size of the thing group")
    parser.add_argument("--profile", type=Path, help="then profile the service (py-spy) under each load into DIR")
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also measure the service at this git revision (checked out in a temporary git worktree) "
        "or from this src directory (another checkout's)",
    )
    parser.add_argument("--only", choices=("rates", "service-rates", "fan-out"), help="run one part")
    parser.add_argument("--aiohttp", action="store_true", help="also measure an empty aiohttp server")
    parser.add_argument(
        "--ministack", metavar="COMMAND", help="also measure MiniStack, started by this command (its ministack script)"
    )
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    rounds = args.rounds or (1 if args.quick else 3)
    count = args.things or (1000 if args.quick else 10_000)

    results: dict[str, list[Rate]] = {}
    fans: dict[str, FanOut] = {}
    sources: dict[str, Path | None] = {"service": None}
    counter = itertools.count()
    with contextlib.ExitStack() as outer, tempfile.TemporaryDirectory(prefix="control-plane-bench-") as tmp:
        if args.compare is not None:
            sources["compared"] = outer.enter_context(compared_source(args.compare))
        stack = outer.enter_context(contextlib.ExitStack())
        root = Path(tmp)
        if args.only in (None, "rates", "service-rates"):
            targets = []
            for name, source in sources.items():
                service = stack.enter_context(running_service(root / f"rates-{name}", source, name))
                credentials = service.keys
                targets.append(prepare(name, service.endpoint, credentials, service.pid, counter))
            if args.only != "service-rates":
                kinds = ["raw", "ceiling"]
                if args.aiohttp and importlib.util.find_spec("aiohttp") is not None:
                    kinds.append("aiohttp")
                elif args.aiohttp:
                    print("aiohttp is not installed (pip install -e '.[bench]'): no aiohttp baseline", file=sys.stderr)
                for kind in kinds:
                    endpoint, child = stack.enter_context(empty_server(root, kind))
                    targets.append(prepare(f"empty {kind}", endpoint, credentials, child.pid, counter))
            if args.ministack is not None:
                endpoint, child = stack.enter_context(ministack_server(root, args.ministack))
                targets.append(prepare("MiniStack", endpoint, credentials, child.pid, counter))
            results = rates(targets, seconds, rounds, counter)
            if args.profile is not None:
                profile(targets[0], args.profile, seconds, counter)
            stack.close()
        if args.only in (None, "fan-out"):
            for name, source in sources.items():
                with running_service(root / f"fan-out-{name}", source, name) as service:
                    print(f"{name}: fan-out to {count} things ...", file=sys.stderr, flush=True)
                    fans[name] = fan_out(service, count, root / f"fan-out-{name}")
    text = report(results, fans)
    print(text)
    if args.json is not None:
        payload = {
            "rates": {
                name: [{**asdict(r), "per_second": r.per_second} for r in measured]
                for name, measured in results.items()
            },
            "fan_out": {name: asdict(fan) for name, fan in fans.items()},
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
