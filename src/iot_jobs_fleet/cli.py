"""``iot-jobs-fleet``: N simulated devices in a thing group, each its own mutual-TLS MQTT
connection, running jobs with a behaviour profile. See docs/fleet.md.

Local mode (no ``--endpoint``) finds the iot-jobs-local running on the state directory, as the
console does (``--state-dir``, ``IOT_JOBS_LOCAL_STATE_DIR``, the default), or starts one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from iot_jobs.version import add_version_flag

from . import profiles
from .provision import FleetDir, Identity, ProvisionError, given_set, issuer_id, provision, thing_names

PROG = "iot-jobs-fleet"
#: Provisioning threads by client, measured on 2 cores (docs/benchmarks.md): boto3 is CPU-bound
#: in the client; the signed client waits on the service, where a few connections are enough.
SIGNED_THREADS = 4
BOTO3_THREADS = 16


class UsageError(Exception):
    """One line; exit status 2."""


class RunError(Exception):
    """One line; exit status 1."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Simulated devices in a thing group that run their jobs with a behaviour profile.",
        epilog="Durations are seconds on the service's clock (see --time-scale). See docs/fleet.md.",
    )
    add_version_flag(p)
    add = p.add_argument
    add("--count", "-n", type=int, default=10, help="number of devices (default 10)")
    add("--group", "-g", default="fleet", help="thing group, created if missing (default fleet)")
    add("--prefix", default=None, help="thing name prefix (default <group>-)")
    add("--ramp", type=float, default=500.0, help="new connections per second (default 500)")
    add("--handshakes", type=int, default=64, help="TLS handshakes in flight at most (default 64)")
    add("--seed", type=int, default=None, help="seed of the assignment and of every draw (default: profile's, else 0)")
    add("--time-scale", type=float, default=None, help="service clock speed (default: the local service's, else 1)")
    add("--duration", type=float, default=None, help="stop after this many real seconds")
    add(
        "--until-done",
        action="store_true",
        help="stop when the --watch job is terminal, else when every device is connected and idle for --settle s",
    )
    add("--settle", type=float, default=2.0, help="idle real seconds that end --until-done (default 2)")
    add("--watch", metavar="JOB", default=None, help="show the live rollout view of JOB while the devices run")
    add("--report", metavar="FILE", type=Path, default=None, help="with --watch: write the HTML report there")
    add("--quiet", "-q", action="store_true", help="no status line each second")
    add("--print-assignment", action="store_true", help="print each thing's share and exit")
    add("--provision-only", action="store_true", help="create or reuse the things and exit")
    add(
        "--threads",
        type=int,
        default=None,
        help=f"provisioning threads (default {SIGNED_THREADS} with the signed client, {BOTO3_THREADS} with boto3)",
    )
    add(
        "--provision-client",
        choices=("signed", "boto3"),
        default="signed",
        help="client of the per-device provisioning calls: lean SigV4 (default) or boto3",
    )
    add(
        "--fleet-dir",
        type=Path,
        default=None,
        help="where identities are kept (default ~/.local/state/iot-jobs-fleet/GROUP)",
    )
    b = p.add_argument_group("behaviour (without --profile-file)")
    b.add_argument("--profile-file", "-P", type=Path, default=None, help="TOML profile with [[share]] tables")
    b.add_argument("--job-duration", default="1", help='seconds per execution: 5, "between 2 10", "exponential 5"')
    b.add_argument("--fail", type=float, default=0.0, help="fraction of devices that report FAILED")
    b.add_argument("--reject", type=float, default=0.0, help="fraction of devices that report REJECTED")
    b.add_argument("--hang", type=float, default=0.0, help="fraction of devices that never report")
    b.add_argument("--step-timeout", type=int, default=None, help="stepTimeoutInMinutes on start-next")
    b.add_argument("--progress", type=int, default=0, help="IN_PROGRESS updates per execution")
    b.add_argument("--drop", type=float, default=0.0, help="chance per execution of a drop and reconnect")
    b.add_argument("--offline", type=float, default=0.0, help="fraction of devices offline at the start")
    b.add_argument("--offline-for", default="between 10 60", help="how long they stay offline")
    c = p.add_argument_group("connection (the console's flags)")
    c.add_argument("--state-dir", default=None, help="iot-jobs-local state directory (local mode)")
    c.add_argument("--endpoint", "-e", default=None, help="AWS IoT data endpoint: run against AWS")
    c.add_argument("--port", type=int, default=8883, help="MQTT port against AWS (default 8883)")
    c.add_argument("--ca_file", default=None, help="CA of the broker's certificate (default: system store)")
    c.add_argument("--region", "-r", default=None, help="control-plane region (default: from the endpoint)")
    c.add_argument("--profile", default=None, help="AWS profile for the control plane")
    c.add_argument("--certs", type=Path, default=None, help="against AWS: a directory of <thing>.crt/<thing>.key")
    return p


# the profile -----------------------------------------------------------------------------------
def _toml_loads() -> Any:
    import importlib

    try:
        return importlib.import_module("tomllib").loads
    except ModuleNotFoundError:  # Python 3.10
        try:
            return importlib.import_module("tomli").loads
        except ModuleNotFoundError:
            raise UsageError("a profile file needs Python 3.11+ or the tomli package (pip install tomli)") from None


#: The behaviour flags and their defaults: with --profile-file, none may be given.
BEHAVIOUR_FLAGS = {
    "job_duration": "1",
    "fail": 0.0,
    "reject": 0.0,
    "hang": 0.0,
    "step_timeout": None,
    "progress": 0,
    "drop": 0.0,
    "offline": 0.0,
    "offline_for": "between 10 60",
}


def load_profile(args: argparse.Namespace) -> profiles.Profile:
    if args.profile_file is not None:
        given = [name for name, default in BEHAVIOUR_FLAGS.items() if getattr(args, name) != default]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} and --profile-file do not go together: put it in the profile's shares")
        try:
            text = args.profile_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{args.profile_file}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            return profiles.parse(text, _toml_loads())
        except profiles.ProfileError as exc:
            raise UsageError(exc.describe(str(args.profile_file))) from None
    try:
        return profiles.from_flags(
            duration=args.job_duration,
            fail=args.fail,
            reject=args.reject,
            hang=args.hang,
            drop=args.drop,
            offline=args.offline,
            offline_for=args.offline_for,
            progress=args.progress,
            step_timeout=args.step_timeout,
        )
    except profiles.ProfileError as exc:
        raise UsageError(exc.reason) from None


def _check_args(args: argparse.Namespace) -> None:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.ramp <= 0 or args.handshakes < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--ramp must be positive, --handshakes and --threads at least 1")
    if args.time_scale is not None and args.time_scale <= 0:
        raise UsageError("--time-scale must be positive")
    if args.report is not None and args.watch is None:
        raise UsageError("--report needs --watch JOB")
    if args.certs is not None and args.endpoint is None:
        raise UsageError("--certs is for AWS (with --endpoint); locally the fleet makes its own")


# where and who ---------------------------------------------------------------------------------
@dataclass
class Target:
    host: str
    port: int
    server_hostname: str
    ca_file: Path | None
    time_scale: float
    iot: Any  # a factory of boto3 iot clients (None with --certs)
    device_iot: Any  # a factory of the per-device provisioning clients (None: use ``iot``)
    issuer: str
    fleet_root: Path


def _fleet_root(args: argparse.Namespace) -> Path:
    if args.fleet_dir is not None:
        return Path(str(args.fleet_dir)).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "iot-jobs-fleet" / str(args.group)


def _boto3_factory(profile: str | None = None, **kwargs: Any) -> Any:
    """Clients of one boto3 session (its loaded service models are shared, so the 2nd client is
    cheap), made one at a time: a session is not thread-safe, the clients are."""
    made: dict[str, Any] = {}
    lock = threading.Lock()

    def make() -> Any:
        import boto3
        from botocore.config import Config

        with lock:
            if "session" not in made:
                made["session"] = boto3.session.Session(profile_name=profile)
            config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=4)
            return made["session"].client("iot", config=config, **kwargs)

    return make


def _signed_factory(
    profile: str | None = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
) -> Any:
    """Lean SigV4 clients (``signed_client``) with what a boto3 client of the same arguments
    would use: the session's credential chain (or the given keys), its region, the
    ``https://iot.<region>.amazonaws.com`` endpoint and its CA bundle (certifi's by default)."""
    made: dict[str, Any] = {}
    lock = threading.Lock()

    def make() -> Any:
        from botocore.credentials import Credentials
        from botocore.httpsession import get_cert_path
        from botocore.session import Session

        from .signed_client import SignedIot, aws_endpoint

        with lock:
            if "credentials" not in made:
                session = Session(profile=profile)
                if aws_access_key_id and aws_secret_access_key:
                    made["credentials"] = Credentials(aws_access_key_id, aws_secret_access_key)
                else:
                    made["credentials"] = session.get_credentials()
                region = region_name or session.get_config_variable("region")
                if not region:
                    raise ProvisionError("no region: give --region or configure one (AWS_REGION)")
                made["region"] = region
                made["ca"] = session.get_config_variable("ca_bundle") or get_cert_path(True)
            endpoint = endpoint_url or aws_endpoint(made["region"])
            return SignedIot(endpoint, made["region"], made["credentials"], ca_bundle=made["ca"])

    return make


def local_target(args: argparse.Namespace) -> Target:
    from iot_jobs.errors import IotJobsError
    from iot_jobs.local import local_service

    try:
        with local_service(Path(args.state_dir) if args.state_dir else None) as (state, info):
            creds = state.credentials()
            ca = state.ca_cert
    except IotJobsError as exc:
        raise RunError(exc.message) from None
    where: dict[str, Any] = {
        "endpoint_url": info.http_endpoint,
        "region_name": info.region,
        "aws_access_key_id": creds.access_key_id,
        "aws_secret_access_key": creds.secret_access_key,
    }
    factory = _boto3_factory(**where)
    return Target(
        host="127.0.0.1",
        port=info.mqtt_port,
        server_hostname="localhost",
        ca_file=ca,
        time_scale=args.time_scale or info.time_scale or 1.0,
        iot=factory,
        device_iot=_signed_factory(**where) if args.provision_client == "signed" else None,
        issuer=issuer_id(ca),
        fleet_root=_fleet_root(args),
    )


def aws_target(args: argparse.Namespace) -> Target:
    region = args.region
    if region is None:
        from iot_jobs.settings import region_from_endpoint

        region = region_from_endpoint(args.endpoint)
    kwargs: dict[str, Any] = {"region_name": region} if region else {}
    if args.profile:
        kwargs["profile"] = args.profile
    return Target(
        host=args.endpoint,
        port=args.port,
        server_hostname=args.endpoint,
        ca_file=Path(args.ca_file).expanduser() if args.ca_file else None,
        time_scale=args.time_scale or 1.0,
        iot=None if args.certs else _boto3_factory(**kwargs),
        device_iot=None if args.certs or args.provision_client != "signed" else _signed_factory(**kwargs),
        issuer="aws:" + args.endpoint,
        fleet_root=_fleet_root(args),
    )


def identities(args: argparse.Namespace, target: Target, err: TextIO) -> list[Identity]:
    if args.certs is not None:
        try:
            return given_set(Path(args.certs).expanduser(), args.count)
        except ProvisionError as exc:
            raise RunError(str(exc)) from None
    things = thing_names(args.prefix if args.prefix is not None else f"{args.group}-", args.count)
    started = time.monotonic()
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 1 or done == total:
            shown[0] = now
            print(f"{PROG}: provisioned {done}/{total}", file=err, flush=True)

    try:
        threads = args.threads or (SIGNED_THREADS if target.device_iot is not None else BOTO3_THREADS)
        made = provision(
            target.iot,
            FleetDir(target.fleet_root),
            things,
            args.group,
            target.issuer,
            threads,
            progress,
            device_client_factory=target.device_iot,
        )
    except ProvisionError as exc:
        raise RunError(f"provisioning failed: {exc}") from None
    print(
        f"{PROG}: {len(made)} things in group {args.group} ready in {time.monotonic() - started:.1f} s "
        f"(identities in {target.fleet_root})",
        file=err,
        flush=True,
    )
    return made


def raise_fd_limit(count: int) -> None:
    """One socket per device: lift the soft limit to the hard one, or refuse clearly."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 256
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise RunError(f"{count} devices need {need} file descriptors; the hard limit is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))


# the run ---------------------------------------------------------------------------------------
def _watch_thread(
    args: argparse.Namespace, target: Target, stop: threading.Event, done: threading.Event
) -> threading.Thread | None:
    """``iot_jobs.rollout.watch_job`` in a thread (the live view) while the devices run."""
    from iot_jobs.rollout import watch_job  # only a watching run pays for the view's imports

    if target.iot is None:
        print(f"{PROG}: --watch needs the control plane (not with --certs); not watching", file=sys.stderr)
        return None
    client = target.iot()

    def run() -> None:
        try:
            if not _job_exists(client, args.watch, stop):
                return
            watch_job(client, args.watch, stream=sys.stdout, report=args.report, stop=stop)
            done.set()  # the job is terminal (or the view was left): --until-done ends here
        except Exception as exc:  # the view failing must not take the devices down
            print(f"{PROG}: the watch stopped: {exc}; the devices carry on", file=sys.stderr)

    thread = threading.Thread(target=run, name="watch", daemon=True)
    thread.start()
    return thread


def _job_exists(client: Any, job_id: str, stop: threading.Event) -> bool:
    """Wait for the job to be created (a fleet is usually started first); False if stopped meanwhile."""
    told = False
    while not stop.is_set():
        try:
            client.describe_job(jobId=job_id)
            return True
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != "ResourceNotFoundException":
                raise
        if not told:
            told = True
            print(f"{PROG}: waiting for job {job_id} to be created", file=sys.stderr, flush=True)
        stop.wait(0.5)  # DescribeJob polled: the control plane has no creation event
    return False


async def run_fleet(
    args: argparse.Namespace, target: Target, made: list[Identity], profile: profiles.Profile, seed: int, err: TextIO
) -> None:
    from .device import Device, Fleet
    from .stats import FleetStats, status_line
    from .wire import Tls, keep_alive

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    stats = FleetStats(total=len(made))
    tls = Tls(target.ca_file, target.server_hostname)
    fleet = Fleet(
        host=target.host,
        port=target.port,
        tls=tls,
        seed=seed,
        time_scale=target.time_scale,
        stats=stats,
        handshakes=asyncio.Semaphore(args.handshakes),
        started=time.monotonic(),
    )
    plan = profiles.assign(profile.shares, len(made), seed)
    devices = [
        Device(fleet, i, ident.thing, profile.shares[plan[i]], ident.cert, ident.key) for i, ident in enumerate(made)
    ]
    tasks = []
    for i, device in enumerate(devices):
        late = fleet.real(device.share.offline.draw(profiles.start_rng(seed, i)))
        tasks.append(asyncio.create_task(device.live(i / args.ramp + late)))
    pinger = asyncio.create_task(keep_alive(lambda: (d.wire for d in devices if d.wire is not None)))

    watch_stop, watch_done = threading.Event(), threading.Event()
    watcher = _watch_thread(args, target, watch_stop, watch_done) if args.watch else None
    announced = False
    quiet_since: float | None = None
    last_done = -1
    deadline = fleet.started + args.duration if args.duration is not None else None
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)  # the status line's tick
            now = time.monotonic()
            elapsed = now - fleet.started
            if not announced and stats.all_connected_at is not None:
                announced = True
                print(
                    f"{PROG}: all {stats.total} devices connected in {stats.all_connected_at:.2f} s",
                    file=err,
                    flush=True,
                )
            if watcher is None and not args.quiet:
                print(status_line(stats, elapsed), file=err, flush=True)
            if deadline is not None and now >= deadline:
                break
            if args.until_done:
                if watcher is not None:
                    if watch_done.is_set():
                        break
                    continue
                settled = (
                    stats.all_connected_at is not None
                    and stats.states["busy"] == 0
                    and (stats.connected == stats.total)
                )
                if settled and stats.done == last_done:
                    quiet_since = quiet_since or now
                    if now - quiet_since >= args.settle:
                        break
                else:
                    quiet_since = None
                last_done = stats.done
    finally:
        watch_stop.set()
        for task in tasks:
            task.cancel()
        pinger.cancel()
        await asyncio.gather(*tasks, pinger, return_exceptions=True)
        for device in devices:
            if device.wire is not None:
                device.wire.disconnect()
        tls.close()
        if watcher is not None:
            await asyncio.to_thread(watcher.join, 10)
        print(
            status_line(stats, time.monotonic() - fleet.started).replace("fleet", f"{PROG}: stopped after", 1),
            file=err,
            flush=True,
        )


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    err = sys.stderr
    try:
        _check_args(args)
        profile = load_profile(args)
        seed = args.seed if args.seed is not None else (profile.seed if profile.seed is not None else 0)
        if args.print_assignment:
            prefix = args.prefix if args.prefix is not None else f"{args.group}-"
            plan = profiles.assign(profile.shares, args.count, seed)
            for thing, share in zip(thing_names(prefix, args.count), plan, strict=True):
                print(f"{thing}\t{profile.shares[share].name}")
            return 0
        target = aws_target(args) if args.endpoint else local_target(args)
        made = identities(args, target, err)
        if args.provision_only:
            return 0
        raise_fd_limit(len(made))
        loop = _new_loop()
        try:
            loop.run_until_complete(run_fleet(args, target, made, profile, seed, err))
        finally:
            loop.close()
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    except RunError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
