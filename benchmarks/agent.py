#!/usr/bin/env python3
"""Agent benchmark: from CreateJob returning to the job's handler process starting.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/agent.py [--jobs 100] [--idle 10]``

It starts the service (``iot_jobs_local serve``, with its Mosquitto) in a temporary directory and one
``python -m iot_jobs_agent`` for a thing, whose only handler writes one line into a FIFO that this
script reads. Per job: the time from ``iot.create_job`` returning to the line arriving (the agent's
event, its UpdateJobExecution to IN_PROGRESS, the step's progress update, the fork/exec of the
handler and the shell starting), then the agent's final report is awaited before the next job.
Interleaved with the jobs, the console's own GetPendingJobExecutions round trip (the ``DataPlane``
the console uses, on a second thing, without client-side flow control as the agent) is measured the
same number of times, as the yardstick: the target is at most twice it. Then, as the floor of the
interval, the same handler started ``--jobs`` times straight from asyncio as the agent's runner
starts it. Then the agent's idle RSS (VmRSS) and CPU over ``--idle`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness import Children, cpu_seconds, die_with_parent, provision, start_service


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def spawn_floor(handler: Path, reader_fd: int, times: int) -> list[float]:
    """Seconds from asking asyncio for the handler process (as the agent's runner does: pipes,
    /dev/null stdin, a new session, a minimal environment) to its line arriving: the part of the
    measured interval that no messaging change can remove."""
    import asyncio

    async def once() -> float:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            str(handler),
            "",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "IOT_JOBS_JOB_ID": "floor"},
            cwd=str(handler.parent),
            start_new_session=True,
        )
        arrived: asyncio.Future[None] = loop.create_future()
        loop.add_reader(reader_fd, lambda: arrived.done() or arrived.set_result(None))
        try:
            await asyncio.wait_for(arrived, 30)
        finally:
            loop.remove_reader(reader_fd)
        took = time.perf_counter() - began
        os.read(reader_fd, 4096)
        await process.communicate()
        return took

    async def all_of_them() -> list[float]:
        return [await once() for _ in range(times)]

    return asyncio.run(all_of_them())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import boto3
    from botocore.config import Config

    from iot_jobs.data_plane import DataPlane
    from iot_jobs.settings import Settings

    children = Children()
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            env = start_service(children, tmp)
            provision(env.state, ["bench-agent", "bench-console"])
            handlers = tmp / "handlers"
            handlers.mkdir(mode=0o700)
            fifo = tmp / "started"
            os.mkfifo(fifo)
            handler = handlers / "mark.sh"
            handler.write_text(f'#!/bin/sh\necho "$IOT_JOBS_JOB_ID" > "{fifo}"\n')
            handler.chmod(0o700)
            reader_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            keep_open = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # no EOF between writers
            cert, key = env.device_files("bench-agent")
            agent = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "iot_jobs_agent",
                    "--endpoint",
                    "localhost",
                    "--port",
                    str(env.mqtt_port),
                    "--cert",
                    cert,
                    "--key",
                    key,
                    "--ca_file",
                    str(env.state / "pki" / "ca.crt"),
                    "--thing_name",
                    "bench-agent",
                    "--handlers",
                    str(handlers),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=die_with_parent,
            )
            lines: queue.Queue[str] = queue.Queue()

            def pump() -> None:
                assert agent.stderr is not None
                for line in agent.stderr:
                    lines.put(line)

            threading.Thread(target=pump, daemon=True).start()

            def wait_line(fragment: str, timeout: float = 30.0) -> None:
                deadline = time.monotonic() + timeout
                while fragment not in lines.get(timeout=max(0.001, deadline - time.monotonic())):
                    pass

            wait_line("step 4: no queued work")
            iot = boto3.session.Session().client(
                "iot",
                endpoint_url=f"http://127.0.0.1:{env.http_port}",
                region_name="us-east-1",
                aws_access_key_id=env.credentials["accessKeyId"],
                aws_secret_access_key=env.credentials["secretAccessKey"],
                config=Config(retries={"max_attempts": 1}),
            )
            console_cert, console_key = env.device_files("bench-console")
            settings = Settings(
                endpoint="localhost",
                port=env.mqtt_port,
                cert=Path(console_cert),
                key=Path(console_key),
                ca_file=env.state / "pki" / "ca.crt",
                thing_name="bench-console",
                client_id="bench-console-dp",
            )
            document = json.dumps(
                {
                    "version": "1.0",
                    "steps": [{"action": {"name": "mark", "type": "runHandler", "input": {"handler": "mark.sh"}}}],
                }
            )
            arn = "arn:aws:iot:us-east-1:123456789012:thing/bench-agent"
            to_start: list[float] = []
            get_pending: list[float] = []
            # Without the MQTT5 builder's client-side limiter, as the agent runs: with it, get-pending
            # requests every ~15 ms (this loop's pace) wait for it and the yardstick grows to ~9 ms.
            with DataPlane(settings, lambda *_: None, lambda _s: None, flow_control=False) as plane:
                for i in range(args.jobs):
                    began = time.perf_counter()
                    plane.get_pending()
                    get_pending.append(time.perf_counter() - began)
                    iot.create_job(jobId=f"bench-{i}", targets=[arn], document=document)
                    returned = time.perf_counter()
                    ready, _, _ = select.select([reader_fd], [], [], 30)
                    if not ready:
                        raise RuntimeError(f"the handler of bench-{i} did not start within 30 s")
                    to_start.append(time.perf_counter() - returned)
                    os.read(reader_fd, 4096)
                    wait_line(f"bench-{i}: reported SUCCEEDED")
            wait_line("step 4: no queued work")
            floor = spawn_floor(handler, reader_fd, args.jobs)
            cpu0, rss0, t0 = cpu_seconds(agent.pid), rss_kib(agent.pid), time.monotonic()
            time.sleep(args.idle)  # the idle period being measured
            cpu1, elapsed = cpu_seconds(agent.pid), time.monotonic() - t0
            os.close(keep_open)
            os.close(reader_fd)
            result: dict[str, Any] = {
                "jobs": args.jobs,
                "create_to_handler_start_ms": {
                    "median": statistics.median(to_start) * 1000,
                    "p95": p95(to_start) * 1000,
                },
                "console_get_pending_ms": {
                    "median": statistics.median(get_pending) * 1000,
                    "p95": p95(get_pending) * 1000,
                },
                "handler_spawn_only_ms": {"median": statistics.median(floor) * 1000, "p95": p95(floor) * 1000},
                "idle": {"rss_kib": max(rss0, rss_kib(agent.pid)), "cpu_percent": 100 * (cpu1 - cpu0) / elapsed},
            }
            result["ratio_median"] = (
                result["create_to_handler_start_ms"]["median"] / result["console_get_pending_ms"]["median"]
            )
            agent.terminate()
            agent.wait(15)
        finally:
            children.stop_all()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
