"""(b) of the data-plane benchmark: many devices keeping requests in flight against one target (a
service, or the echo responder), with the CPU time of every process involved."""

from __future__ import annotations

import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from devices import Device, connected
from harness import CLK_TCK, Children, Service, cpu_seconds, machine_cpu
from latency import summarize

OTHER_CPU_WARN_PCT = 20  # CPU not used by the measured processes (other sessions' work) that spoils a run


class LoadGenerator:
    """Each device keeps ``window`` requests in flight; a completion issues the next request."""

    def __init__(self, devices: list[Device], request: Callable[[Device], Future[Any]], window: int) -> None:
        self._devices = devices
        self._request = request
        self._window = window
        self._lock = threading.Lock()
        self._stopping = False
        self._outstanding = 0
        self.completions: list[tuple[float, float, bool]] = []  # (time done, latency s, ok)
        self.errors: list[str] = []
        self._drained = threading.Event()

    def _issue(self, device: Device) -> None:
        with self._lock:
            if self._stopping:
                return
            self._outstanding += 1
        started = time.perf_counter()
        try:
            future = self._request(device)
        except Exception as exc:  # the device is gone (stopping): count it, end this device's chain
            self._done(device, started, None, exc, reissue=False)
            return
        future.add_done_callback(lambda f: self._done(device, started, f, None))

    def _done(
        self,
        device: Device,
        started: float,
        future: Future[Any] | None,
        exc: BaseException | None,
        reissue: bool = True,
    ) -> None:
        now = time.perf_counter()
        if exc is None and future is not None:
            exc = future.exception()
        ok = exc is None
        self.completions.append((now, now - started, ok))
        if not ok and len(self.errors) < 20:
            self.errors.append(repr(exc))
        with self._lock:
            self._outstanding -= 1
            stopping = self._stopping
            if stopping and self._outstanding == 0:
                self._drained.set()
        if reissue and not stopping:
            self._issue(device)

    def _stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._outstanding == 0:
                self._drained.set()

    def run(self, warmup: float, duration: float, cpu_pids: dict[str, int]) -> dict[str, Any]:
        try:
            for device in self._devices:
                for _ in range(self._window):
                    self._issue(device)
            time.sleep(warmup)
            cpu0 = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
            busy0, total0 = machine_cpu()
            t0 = time.perf_counter()
            time.sleep(duration)
            t1 = time.perf_counter()
            cpu1 = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
            busy1, total1 = machine_cpu()
        finally:  # also on Ctrl-C/SIGTERM: issue nothing more, so the devices can be stopped
            self._stop()
        drained = self._drained.wait(30)
        window = [c for c in self.completions if t0 <= c[0] < t1]
        ok = [c for c in window if c[2]]
        latencies = [c[1] * 1000.0 for c in ok]
        rate = len(ok) / (t1 - t0)
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu_pids}
        # everything else: the kernel's own work (softirq, loopback) and other processes on the machine
        cpu["other"] = max(0.0, (busy1 - busy0) / CLK_TCK - sum(cpu.values()))
        cpu["machine"] = (busy1 - busy0) / CLK_TCK
        machine_pct = 100 * (busy1 - busy0) / max(1, total1 - total0)  # of all CPUs together
        return {
            "devices": len(self._devices),
            "window_per_device": self._window,
            "seconds": round(t1 - t0, 3),
            "completed": len(ok),
            "errors_in_window": len(window) - len(ok),
            "errors_total": sum(1 for c in self.completions if not c[2]),
            "error_samples": self.errors[:5],
            "drained": drained,
            "requests_per_s": round(rate, 1),
            "latency_under_load": summarize(latencies) if latencies else None,
            "cpu_seconds": {name: round(v, 3) for name, v in cpu.items()},
            "cpu_utilisation_pct": {name: round(100 * v / (t1 - t0), 1) for name, v in cpu.items()},
            "cpu_ms_per_request": {name: round(1000 * v / len(ok), 4) if ok else None for name, v in cpu.items()},
            "machine_busy_pct_of_all_cpus": round(machine_pct, 1),
        }


def throughput_target(
    certs: Service,
    things: list[str],
    port: int,
    describe_job: str,
    label: str,
    window: int,
    warmup: float,
    duration: float,
    cpu_pids: dict[str, int],
    log: Callable[[str], None],
    profile: tuple[Children, int, Path] | None = None,
) -> dict[str, Any]:
    devices = [Device(certs, t, port, f"bench-{label}-{t}", flow_control=False, streams=False) for t in things]
    out: dict[str, Any] = {}
    with connected(devices):
        for device in devices:  # sanity: the target answers both request kinds for every device
            device.get_pending().result(15)
            device.describe(describe_job).result(15)
        spy = None
        if profile is not None:  # py-spy on the target process for the whole load period
            children, pid, path = profile
            spy = children.start(
                "py-spy",
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--idle",
                    "--format",
                    "raw",
                    "--output",
                    str(path),
                ],
                path.with_suffix(".log"),
                tied=False,
            )
            time.sleep(1.0)
        for kind, request in (
            ("get_pending_job_executions", lambda d: d.get_pending()),
            ("describe_job_execution", lambda d: d.describe(describe_job)),
        ):
            result = LoadGenerator(devices, request, window).run(warmup, duration, cpu_pids)
            out[kind] = result
            log(
                f"  {label:7} {kind:28} {result['requests_per_s']:9.1f} req/s"
                f"   (errors {result['errors_total']}, cpu {fmt_cpu(result)})"
            )
            time.sleep(0.5)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    return out


def summarize_throughput(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per request kind: the median over rounds of each target's rate, CPU cost and latency under
    load, and each service's ratio to the echo responder (``ratio_<target>_over_echo``)."""
    out: dict[str, Any] = {}
    targets = [t for t in rounds[0]["order"]]
    for kind in rounds[0][targets[0]]:
        entry: dict[str, Any] = {}
        for target in targets:
            runs = [r[target][kind] for r in rounds]
            names = (target, "mosquitto", "loadgen", "other", "machine")
            loaded = [x["latency_under_load"] for x in runs if x["latency_under_load"]]
            entry[target] = {
                "requests_per_s": round(statistics.median(x["requests_per_s"] for x in runs), 1),
                "requests_per_s_rounds": [x["requests_per_s"] for x in runs],
                "errors": sum(x["errors_total"] for x in runs),
                "cpu_ms_per_request": {
                    name: round(statistics.median(x["cpu_ms_per_request"][name] or 0 for x in runs), 4)
                    for name in names
                },
                "cpu_utilisation_pct": {
                    name: round(statistics.median(x["cpu_utilisation_pct"][name] for x in runs), 1) for name in names
                },
                "latency_under_load_median_ms": round(statistics.median(x["median_ms"] for x in loaded), 1)
                if loaded
                else None,
                "latency_under_load_p99_ms": round(statistics.median(x["p99_ms"] for x in loaded), 1)
                if loaded
                else None,
            }
        if "echo" in targets:
            for target in (t for t in targets if t != "echo"):
                prefix = "" if target == "service" else f"{target}_"
                per_round = [
                    round(r[target][kind]["requests_per_s"] / max(r["echo"][kind]["requests_per_s"], 1e-9), 3)
                    for r in rounds
                ]
                entry[f"{prefix}ratio_rounds"] = per_round
                # The machine's speed drifts between rounds, so the headline ratio is the median of the
                # per-round ratios (target and echo measured back to back), not the ratio of the medians.
                entry[f"ratio_{target}_over_echo"] = round(statistics.median(per_round), 3)
                entry[f"{prefix}ratio_of_medians"] = round(
                    entry[target]["requests_per_s"] / max(entry["echo"]["requests_per_s"], 1e-9), 3
                )
        out[kind] = entry
    return out


def fmt_cpu(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}%" for k, v in result["cpu_utilisation_pct"].items())
