"""Console start-up: ``iot-jobs --help``/``--version`` and the first prompt when attaching to a
running iot-jobs-local (median of N runs), with where the attach time goes.

    python benchmarks/console_startup.py [--runs 10]

Starts an iot-jobs-local on free ports in a temporary directory, attaches ``iot-jobs`` to it in a
pseudo-terminal N times, and stops the service. The breakdown comes from one extra run with
``-X importtime`` and from the console's log timestamps (IOT_JOBS_TRACE_STARTUP=1).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def _first_prompt(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    child = pexpect.spawn(sys.executable, ["-m", "iot_jobs", *args], env=env, encoding="utf-8", timeout=30)
    child.expect("iot-jobs>")
    elapsed = time.perf_counter() - start
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return elapsed


def _imports(args: list[str], env: dict[str, str]) -> list[tuple[int, str]]:
    """Top-level imports by cumulative microseconds, from one run with -X importtime."""
    child = pexpect.spawn(
        sys.executable, ["-X", "importtime", "-m", "iot_jobs", *args], env=env, encoding="utf-8", timeout=30
    )
    child.logfile_read = log = open(os.devnull, "w")  # noqa: SIM115 - drained below
    child.expect("iot-jobs>")
    text = child.before or ""
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    log.close()
    rows = []
    for line in text.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if found and len(found.group(2)) <= 2:
            rows.append((int(found.group(1)), found.group(3)))
    return sorted(rows, reverse=True)[:12]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--runs", type=int, default=10)
    runs = cli.parse_args().runs
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env.update(HOME=tmp, XDG_STATE_HOME=f"{tmp}/xdg", XDG_CONFIG_HOME=f"{tmp}/config")
        for what in (["--help"], ["--version"]):
            times = _timed([sys.executable, "-m", "iot_jobs", *what], env, runs)
            print(f"iot-jobs {what[0]}: median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f})")
        base = _timed([sys.executable, "-c", "pass"], env, runs)
        print(f"python -c pass: median {statistics.median(base) * 1000:.0f} ms")
        state = Path(tmp) / "state"
        ports = [str(_free_port()) for _ in range(2)]
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iot_jobs_local",
                "--state-dir",
                str(state),
                "serve",
                "--mqtt-port",
                ports[0],
                "--http-port",
                ports[1],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            assert service.stdout is not None
            for line in service.stdout:
                if "ready" in line:
                    break
            args = ["--local", "--state-dir", str(state), "--thing", "bench-thing"]
            _first_prompt(args, env)  # provisions the thing once
            times = [_first_prompt(args, env) for _ in range(runs)]
            print(
                f"first prompt, attaching: median {statistics.median(times) * 1000:.0f} ms "
                f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
            )
            traced = {**env, "IOT_JOBS_TRACE_STARTUP": "1"}
            _first_prompt(args, traced)
            print("start-up steps (from the console's log):")
            log = (Path(tmp) / "xdg" / "iot-jobs" / "iot-jobs.log").read_text().splitlines()
            for line in [x for x in log if "startup:" in x][-12:]:
                print("  " + line.split("startup: ", 1)[1])
            print("largest imports (cumulative ms):")
            for micros, name in _imports(args, env):
                print(f"  {micros / 1000:6.1f}  {name}")
        finally:
            service.terminate()
            service.wait(20)


if __name__ == "__main__":
    main()
