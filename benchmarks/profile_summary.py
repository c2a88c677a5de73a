#!/usr/bin/env python3
"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) of the service, per request layer.

Run: ``.venv/bin/python benchmarks/profile_summary.py PROFILE.raw [--requests N]``

``data_plane.py --profile PROFILE.raw`` writes such a profile of the service while it is under the
throughput load. This prints where the samples went:

* by layer: each sample is charged to the innermost frame that belongs to a known layer (SQLite via
  ``store.py``, JSON, the jobs engine and rules, the MQTT adapter, paho's packet reading and writing,
  aiomqtt, the asyncio event loop, ...); "self" time, so the layers add up to 100 %;
* inclusive time of a few key functions (a function's samples include everything it calls);
* the functions with the most self time.

Only the event-loop (main) thread is counted, and its samples waiting in ``epoll_wait`` (record
with ``--idle``) are reported as idle time, apart from the busy samples the percentages refer to.
Under uvloop the wait happens in C below ``Runner.run``, where py-spy cannot separate it from
uvloop's own (small) work: those samples are counted as waiting too.

With ``--requests N`` (the requests the service answered while it was sampled) it also prints
microseconds per request, using the sampling rate (``--rate``, default 200 Hz as data_plane.py uses).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

#: (layer, predicate on (function, file)); the first match from the innermost frame outwards wins.
LAYERS: list[tuple[str, object]] = [
    ("SQLite (store: queries, row decoding)", lambda f, p: "iot_jobs_local/store" in p),
    ("JSON encode/decode", lambda f, p: p.startswith("json/")),
    ("jobs rules + engine", lambda f, p: "iot_jobs_local/jobs/" in p or "iot_jobs_local/engine" in p),
    ("reply payloads (mqtt_wire.py)", lambda f, p: p.endswith("iot_jobs_local/mqtt_wire.py")),
    ("topic routing (mqtt_api.py)", lambda f, p: p.endswith("iot_jobs_local/mqtt_api.py")),
    ("service loop (mqtt_link.py)", lambda f, p: p.endswith("iot_jobs_local/mqtt_link.py")),
    ("paho: send() syscalls, one per packet", lambda f, p: p.startswith("paho/") and f.endswith("_sock_send")),
    ("paho: recv() syscalls (3 per packet)", lambda f, p: p.startswith("paho/") and f.endswith("_sock_recv")),
    ("paho: MQTT5 Properties objects", lambda f, p: p.startswith("paho/mqtt/properties")),
    ("paho: read/parse packets", lambda f, p: p.startswith("paho/") and _is_read(f)),
    ("paho: build/queue/write packets", lambda f, p: p.startswith("paho/")),
    ("threading locks/conditions (paho MQTTMessageInfo)", lambda f, p: p.startswith("threading")),
    ("aiomqtt (queues, futures, callbacks)", lambda f, p: p.startswith("aiomqtt/")),
    ("dataclasses/enum/typing (stdlib)", lambda f, p: p.startswith(("dataclasses", "enum", "typing", "<string>"))),
    ("logging", lambda f, p: p.startswith("logging/")),
    (
        "asyncio: self-pipe wakeups (call_soon_threadsafe)",
        lambda f, p: p.startswith("asyncio/") and ("_write_to_self" in f or "_read_from_self" in f),
    ),
    (
        "asyncio: add/remove writer per packet (epoll_ctl)",
        lambda f, p: (
            (p.startswith("selectors") and "modify" in f)
            or (p.startswith("asyncio/") and ("_add_writer" in f or "_remove_writer" in f))
        ),
    ),
    (
        "asyncio: tasks/futures (wait_for per publish)",
        lambda f, p: (
            p.startswith("asyncio/") and p.rsplit("/", 1)[-1].split(":")[0] in ("tasks.py", "futures.py", "locks.py")
        ),
    ),
    ("asyncio: event loop (other)", lambda f, p: p.startswith("asyncio/") or p.startswith("selectors")),
    ("HTTP API (aiohttp)", lambda f, p: p.startswith("aiohttp/") or "http_api/" in p),
]

READ_FUNCS = ("loop_read", "_packet_read", "_packet_handle", "_handle_", "_sock_recv", "unpack", "read")

#: (label, predicate on one frame); a sample counts if any frame of its stack matches.
KEY_FUNCTIONS: list[tuple[str, object]] = [
    ("MqttApi.handle (request: JSON in, route, engine, SQLite, reply dict)", lambda f, p: f == "MqttApi.handle"),
    ("  of which engine + store (iot_jobs_local/engine*, store*)", None),
    ("  of which SQLite store (iot_jobs_local/store*)", None),
    ("_encode (reply json.dumps)", lambda f, p: f == "_encode" and "mqtt_link" in p),
    ("paho Client.loop_read (incl. on_message -> aiomqtt queue)", lambda f, p: f == "Client.loop_read"),
    ("paho Client.loop_write", lambda f, p: f == "Client.loop_write"),
    (
        "aiomqtt Client.publish (incl. paho publish, wait for the write)",
        lambda f, p: f == "Client.publish" and p.startswith("aiomqtt"),
    ),
    ("aiomqtt message iterator (__anext__)", lambda f, p: "__anext__" in f),
]


def _waiting(frames: list[tuple[str, str]]) -> bool:
    """The event loop waiting for I/O: asyncio's selector, or uvloop's C loop (the innermost Python
    frame is then ``Runner.run``; py-spy cannot tell uvloop's own work from its ``epoll_wait``
    there, and both are counted here)."""
    func, file = frames[-1]
    return func == "EpollSelector.select" or file.startswith("asyncio/runners")


def _is_read(func: str) -> bool:
    return any(key in func for key in READ_FUNCS)


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        for raw in stack.split(";"):
            m = FRAME.match(raw)
            frames.append((m["func"], m["file"]) if m else (raw, ""))
        stacks.append((frames, int(count)))
    return stacks


def layer_of(frames: list[tuple[str, str]]) -> str:
    for func, file in reversed(frames):
        for name, predicate in LAYERS:
            if predicate(func, file):  # type: ignore[operator]
                return name
    leaf_func, leaf_file = frames[-1]
    return f"other ({leaf_file or leaf_func})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--requests", type=int, default=None, help="requests answered while sampled")
    parser.add_argument("--rate", type=float, default=200.0, help="py-spy sampling rate in Hz (default 200)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    everything = parse(args.profile)
    # Only the event-loop (main) thread serves requests; the others are idle pool workers and the
    # child watcher, which py-spy cannot always tell from busy ones.
    stacks = [(frames, n) for frames, n in everything if frames and frames[0][0] == "_run_module_as_main"]
    others = sum(n for _, n in everything) - sum(n for _, n in stacks)
    idle = sum(n for frames, n in stacks if _waiting(frames))
    stacks = [(frames, n) for frames, n in stacks if not _waiting(frames)]
    total = sum(n for _, n in stacks)
    if not total:
        print("no samples")
        return 1

    def fmt(n: int) -> str:
        out = f"{100 * n / total:5.1f} %"
        if args.requests:
            out += f"  {1e6 * n / args.rate / args.requests:7.1f} us/request"
        return out

    print(
        f"{args.profile}: event-loop thread busy in {total} samples ({total / args.rate:.1f} s at "
        f"{args.rate:g} Hz), waiting for I/O (or in uvloop's C loop) in {idle} "
        f"({100 * idle / max(1, idle + total):.1f} % of its time); "
        f"{others} samples of other (idle) threads ignored"
    )
    print("percentages below are of the busy samples")
    layers = Counter[str]()
    for frames, n in stacks:
        layers[layer_of(frames)] += n
    print("\nself time by layer")
    for name, n in layers.most_common():
        print(f"  {fmt(n)}  {name}")

    print("\ninclusive time of key functions")

    def inclusive(predicate: object, within: object = None) -> int:
        total_n = 0
        for frames, c in stacks:
            if not any(predicate(f, p) for f, p in frames):  # type: ignore[operator]
                continue
            if within is not None and not any(within(f, p) for f, p in frames):  # type: ignore[operator]
                continue
            total_n += c
        return total_n

    handle = KEY_FUNCTIONS[0][1]
    for label, predicate in KEY_FUNCTIONS:
        if "engine + store" in label:
            n = inclusive(lambda f, p: "iot_jobs_local/engine" in p or "iot_jobs_local/store" in p, handle)
        elif "SQLite store" in label:
            n = inclusive(lambda f, p: "iot_jobs_local/store" in p, handle)
        else:
            n = inclusive(predicate)
        print(f"  {fmt(n)}  {label}")

    selfs = Counter[str]()
    for frames, n in stacks:
        func, file = frames[-1]
        selfs[f"{func} ({file})"] += n
    print(f"\ntop {args.top} functions by self time")
    for name, n in selfs.most_common(args.top):
        print(f"  {fmt(n)}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
