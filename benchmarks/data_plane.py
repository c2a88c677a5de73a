#!/usr/bin/env python3
"""Data-plane benchmark of the local IoT Jobs service (``iot-jobs-local``) as devices see it.

Run: ``.venv/bin/python benchmarks/data_plane.py [--quick] [--json PATH]``

It starts everything it needs in a temporary directory on free ports and stops all of it at the end
(also on error or Ctrl-C):

* the service: ``python -m iot_jobs_local --state-dir TMP serve`` (which starts its own Mosquitto);
* a second, plain Mosquitto with the service's generated config on other ports, and
  ``echo_responder.py`` (a stateless paho-mqtt responder) on its service listener: the baseline.

(a) Latency, one device, SDK defaults (``mqtt5_client_builder.mtls_from_path`` with only the port
    set, so the builder's default AWS IoT Core flow control is on), ``IotJobsClientV2`` with the
    REPL's options and its two event streams open, like ``iot-jobs`` itself. Each of the four REPL
    data-plane commands runs N times back to back; median and p99 are reported. Then each runs
    min(N, 50) times with a 100 ms pause before every request (what a person at the REPL sees), and
    the same two passes run against the echo responder for reference.
(b) Throughput, 50 devices (50 provisioned things, 50 TLS connections, flow control NONE), each
    keeping a window of requests in flight for a fixed time, against the service and against the
    echo responder on the second broker, in alternating rounds (ABBA order; medians reported).
    Reported: requests/s, service/echo, CPU time per request of every process involved.

``--compare REV`` (a git revision of this repository, checked out with ``git worktree`` in a
temporary directory, or the ``src`` directory of another checkout) also runs that version of the
service, provisioned the same way, as one more target of the same rounds, so one run reports both
versions' ratios to the echo responder side by side (e.g. ``--compare 533bc0f``: before iot:Connect
was enforced at CONNECT).

The code lives in modules beside this CLI: ``harness`` (children, service start-up, provisioning,
/proc), ``baseline`` (the echo broker), ``devices``, ``latency`` (a), ``throughput`` (b),
``checkout`` (--compare).

See benchmarks/README.md for what each figure means and the results on the reference machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from baseline import start_echo
from checkout import compared_source
from harness import Children, Service, iot_client, provision, service_source, start_service
from latency import COMMANDS, PACED_GAP_S, create_jobs, latency_phase
from throughput import OTHER_CPU_WARN_PCT, summarize_throughput, throughput_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N=30 latency samples, one round of 3 s throughput runs")
    parser.add_argument("-n", type=int, default=None, help="latency samples per command (default 200; 30 quick)")
    parser.add_argument("--devices", type=int, default=50, help="simulated devices for throughput (default 50)")
    parser.add_argument("--window", type=int, default=16, help="requests in flight per device (default 16)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per throughput run (default 10; 3 quick)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of load before counting (default 2; 1 quick)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="throughput rounds, alternating which target goes first; medians are reported (default 3; 1 quick)",
    )
    parser.add_argument(
        "--echo-request-qos",
        type=int,
        choices=(0, 1),
        default=0,
        help="QoS of the echo responder's request subscription (default 0, the cheapest)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help="record the service with py-spy (collapsed stacks) during its throughput runs; "
        "sampling slows the service, so do not quote that run's figures",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    parser.add_argument(
        "--no-latency-baseline", action="store_true", help="skip (a) against the echo responder (reference only)"
    )
    parser.add_argument("--skip-latency", action="store_true", help="skip (a)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip (b)")
    parser.add_argument(
        "--compare",
        metavar="REV",
        default=None,
        help="also measure the service at this git revision (checked out in a temporary git worktree), "
        "or from this src directory, in the same rounds; e.g. 533bc0f (before iot:Connect at CONNECT)",
    )
    args = parser.parse_args()
    n = args.n or (30 if args.quick else 200)
    n_paced = min(n, 50)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.rounds = args.rounds or (1 if args.quick else 3)

    def log(message: str) -> None:
        print(message, flush=True)

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)

    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="iot-jobs-bench-"))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "n": n,
            "n_paced": n_paced,
            "paced_gap_s": PACED_GAP_S,
            "devices": args.devices,
            "window": args.window,
            "duration_s": duration,
            "warmup_s": warmup,
            "rounds": args.rounds,
            "echo_request_qos": args.echo_request_qos,
            "compare": args.compare,
        },
    }
    stack = contextlib.ExitStack()
    try:
        import awscrt
        import awsiot  # noqa: F401

        results["machine"]["awscrt"] = getattr(awscrt, "__version__", "?")
        sources: dict[str, Path | None] = {"service": None}
        if args.compare is not None:
            sources["compared"] = stack.enter_context(compared_source(args.compare))
        results["service_source"] = service_source()
        log(f"service code: {results['service_source']}")
        if args.compare is not None:
            results["compared_source"] = service_source(sources["compared"])
            log(f"compared code ({args.compare}): {results['compared_source']}")
        things = [] if args.skip_throughput else [f"bench-dev-{i:02d}" for i in range(args.devices)]
        latency_thing = "bench-latency"
        services: dict[str, Service] = {}
        for name, source in sources.items():
            log(f"setting up {name} in {tmp / name}: provisioning {len(things) + 1} things ...")
            provision(tmp / name / "state", [latency_thing, *things], source=source)
            # Start every child process before the first awscrt client exists (no fork with CRT threads running).
            services[name] = service = start_service(children, tmp / name, name, source, log_level="WARNING")
            log(
                f"{name} pid {service.pid} (Mosquitto pid {service.broker_pid}): "
                f"mqtts://localhost:{service.mqtt_port}, {service.endpoint}"
            )
        main_service = services["service"]
        need_echo = not args.skip_throughput or not (args.skip_latency or args.no_latency_baseline)
        echo = None
        if need_echo:
            echo = start_echo(children, main_service, args.echo_request_qos)
            log(f"echo responder pid {echo.pid} on a second Mosquitto (pid {echo.broker_pid}), port {echo.device_port}")
        clients = {name: iot_client(s.endpoint, s.keys) for name, s in services.items()}

        if not args.skip_latency:
            log(f"\n(a) latency, 1 device, SDK defaults (flow control on), {n} sequential requests each")
            for name, service in services.items():
                key = "latency" if name == "service" else f"latency_{name}"
                results[key] = latency_phase(
                    service, clients[name], latency_thing, service.mqtt_port, name, n, n_paced, log
                )
            if echo is not None and not args.no_latency_baseline:
                results["latency_echo_baseline"] = latency_phase(
                    main_service, clients["service"], latency_thing, echo.device_port, "echo", n, n_paced, log,
                    real=False,
                )  # fmt: skip

        if not args.skip_throughput:
            assert echo is not None
            log(
                f"\n(b) throughput, {len(things)} devices x {args.window} in flight, flow control NONE, "
                f"{duration:g} s per run after {warmup:g} s warm-up"
            )
            # target: (certificates, port, describe job, pids to charge)
            targets: dict[str, tuple[Service, int, str, dict[str, int]]] = {}
            for name, service in services.items():
                arns = [clients[name].describe_thing(thingName=t)["thingArn"] for t in things]
                (describe_job,) = create_jobs(clients[name], "tp-describe", 1, arns)
                targets[name] = (
                    service,
                    service.mqtt_port,
                    describe_job,
                    {name: service.pid, "mosquitto": service.broker_pid},
                )
            targets["echo"] = (
                main_service,
                echo.device_port,
                targets["service"][2],
                {"echo": echo.pid, "mosquitto": echo.broker_pid},
            )
            labels = list(targets)
            rounds: list[dict[str, Any]] = []
            for r in range(args.rounds):
                order = labels if r % 2 == 0 else labels[::-1]  # ABBA: no order bias
                log(f"  round {r + 1}/{args.rounds}")
                this: dict[str, Any] = {"order": order}
                for label in order:
                    certs, port, describe_job, pids = targets[label]
                    profiling = args.profile is not None and label == "service" and r == 0
                    this[label] = throughput_target(
                        certs, things, port, describe_job, label, args.window, warmup, duration,
                        {**pids, "loadgen": os.getpid()}, log,
                        (children, main_service.pid, args.profile.resolve()) if profiling else None,
                    )  # fmt: skip
                rounds.append(this)
            results["throughput"] = {"rounds": rounds, "summary": summarize_throughput(rounds)}
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        children.stop_all()
        stack.close()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"\nwrote {args.json}")
    return 0


def print_summary(results: dict[str, Any]) -> None:
    print("\n" + "=" * 78)
    print(
        f"SUMMARY   ({results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"awscrt {results['machine'].get('awscrt')})"
    )
    print("=" * 78)
    settings = results["settings"]
    baseline = results.get("latency_echo_baseline")
    for key, title in (("latency", "service"), ("latency_compared", f"compared ({settings.get('compare')})")):
        latency = results.get(key)
        if not latency:
            continue
        print(
            f"(a) latency of {title}, 1 device, SDK defaults (flow control on); back to back x{settings['n']}, "
            f"paced ({1000 * settings['paced_gap_s']:g} ms pause) x{settings['n_paced']}"
        )
        print(
            "                                       back to back: median     p99  <=30ms?   paced: median     p99"
            + ("   | echo b2b: median  paced" if baseline else "")
        )
        for kind in COMMANDS:
            s, p = latency[kind], latency[kind + "_paced"]
            verdict = "ok    " if s["median_ms"] <= 30 else "MISSED"
            line = (
                f"    {kind:32}  {s['median_ms']:7.2f} ms {s['p99_ms']:7.2f}  {verdict}"
                f"        {p['median_ms']:7.2f} ms {p['p99_ms']:7.2f}"
            )
            if baseline:
                line += f"   |   {baseline[kind]['median_ms']:7.2f} ms {baseline[kind + '_paced']['median_ms']:7.2f} ms"
            print(line)
    tp = results.get("throughput")
    if tp:
        print_throughput(settings, tp)


def _ms(value: float | None) -> str:
    return f"{value:7.1f} ms" if value is not None else "     -   "


def print_throughput(settings: dict[str, Any], tp: dict[str, Any]) -> None:
    targets = sorted(tp["rounds"][0]["order"], key=("service", "compared", "echo").index)
    services = [t for t in targets if t != "echo"]
    print(
        f"(b) throughput, {settings['devices']} devices x {settings['window']} in flight, flow control NONE, "
        f"median of {settings['rounds']} round(s) of {settings['duration_s']:g} s"
    )
    if settings.get("compare"):
        print(f"    compared: the service at {settings['compare']}, in the same rounds")
    print(
        "                                       "
        + "".join(f"{t + '/s':>12}" for t in targets)
        + "".join(f"  {t + '/echo*':>15}" for t in services)
        + "  target >= 0.60   (ratio per round)"
    )
    for kind, entry in tp["summary"].items():
        ratios = [entry[f"ratio_{t}_over_echo"] for t in services]
        verdict = "ok    " if ratios[0] >= 0.6 else "MISSED"
        per_round = "; ".join(
            ", ".join(f"{x:.2f}" for x in entry["ratio_rounds" if t == "service" else f"{t}_ratio_rounds"])
            for t in services
        )
        print(
            f"    {kind:32} "
            + "".join(f"{entry[t]['requests_per_s']:12.1f}" for t in targets)
            + "".join(f"  {x:15.2f}" for x in ratios)
            + f"  {verdict}           ({per_round})"
        )
    print("    * median of the per-round ratios (rates: medians over the rounds; machine speed drifts)")
    print(
        "    CPU ms per request [% of one CPU]:   responder       mosquitto       loadgen         "
        "other (kernel, other processes)   whole machine"
    )
    for kind, entry in tp["summary"].items():
        for target in targets:
            per, pct = entry[target]["cpu_ms_per_request"], entry[target]["cpu_utilisation_pct"]
            cells = "  ".join(
                f"{per[name]:6.3f} [{pct[name]:5.1f}]" for name in (target, "mosquitto", "loadgen", "other", "machine")
            )
            print(f"      {target:8} {kind:27} {cells}")
    disturbed = [
        f"{target} {kind} round {i + 1}: {r[target][kind]['cpu_utilisation_pct']['other']:.0f}%"
        for i, r in enumerate(tp["rounds"])
        for kind in tp["summary"]
        for target in targets
        if r[target][kind]["cpu_utilisation_pct"]["other"] > OTHER_CPU_WARN_PCT
    ]
    if disturbed:
        print(
            f"    WARNING: other processes used > {OTHER_CPU_WARN_PCT}% of a CPU during: {'; '.join(disturbed)}."
            " Those rates are disturbed; rerun on a quiet machine."
        )
    print("    latency under load (median / p99):")
    for kind, entry in tp["summary"].items():
        for target in targets:
            e = entry[target]
            print(
                f"      {target:8} {kind:27} {_ms(e['latency_under_load_median_ms'])} / "
                f"{_ms(e['latency_under_load_p99_ms'])}   errors: {e['errors']}"
            )


if __name__ == "__main__":
    sys.exit(main())
