"""``iot-jobs-local``: serve (in the foreground), start / status / stop / reset / logs (a service in
the background), provision a device, print the environment that points clients here.

Imports are per command: ``--help``, ``status`` and ``stop`` load neither boto3 nor cryptography
nor the service itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state_dir import (
    DEFAULT_ACCOUNT,
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_REGION,
    StateDir,
    StateLocked,
    default_state_dir,
)

if TYPE_CHECKING:
    from .service import ServiceOptions


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iot-jobs")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, with the version read only when asked for (importlib.metadata is not free)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"iot-jobs-local {_version()}")
        parser.exit()


def _serve_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--mqtt-port",
        type=_port,
        default=None,
        help=f"device MQTT/TLS port; 0 picks a free one (default: the last one used on this state "
        f"directory, else {DEFAULT_MQTT_PORT})",
    )
    sp.add_argument(
        "--http-port",
        type=_port,
        default=None,
        help=f"HTTP API port; 0 picks a free one (default: the last one used, else {DEFAULT_HTTP_PORT})",
    )
    sp.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    sp.add_argument("--region", default=DEFAULT_REGION, help="region used in ARNs (default us-east-1)")
    sp.add_argument("--account", default=DEFAULT_ACCOUNT, help="account id used in ARNs")
    sp.add_argument("--log-level", default="INFO", help="service log level (default INFO)")
    sp.add_argument(
        "--log-requests",
        action="store_true",
        help="log one line per HTTP operation and MQTT request, with its outcome and duration",
    )
    sp.add_argument(
        "--max-devices",
        type=_device_count,
        default=None,
        metavar="N",
        help="device connections to be ready for: the open-file limit is raised for them and the broker "
        "accepts that many; refused at start if the OS hard limit is too low (default 10000, or what "
        "the hard limit allows)",
    )
    sp.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="N",
        help="run the service's clock N times faster than real time: timeouts, rollout rates and "
        "schedules happen N times sooner, and timestamps run ahead (default 1, real time)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-jobs-local", description="A local, wire-compatible AWS IoT Jobs service (Mosquitto + SQLite)."
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where state, certificates and broker files live "
        "(default: $IOT_JOBS_LOCAL_STATE_DIR or ~/.local/state/iot-jobs-local)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the service in the foreground (Ctrl-C stops it)")
    _serve_options(s)
    st = sub.add_parser(
        "start", help="start the service in the background (its own session; log in the state directory)"
    )
    _serve_options(st)
    st.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it to be ready (default 30)")
    status = sub.add_parser("status", help="is a service running here: ports, state directory, pid, clients, uptime")
    status.add_argument("--json", action="store_true", help="print service.json and the uptime as one JSON object")
    stop = sub.add_parser("stop", help="stop the service running on the state directory")
    stop.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for it to stop (default 15)")
    reset = sub.add_parser(
        "reset", help="delete the state: jobs, things, certificates, credentials (refused while running)"
    )
    reset.add_argument("--stop", action="store_true", help="stop a running service first")
    logs = sub.add_parser("logs", help="print the background service's log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended (Ctrl-C ends)")
    logs.add_argument("-n", "--lines", type=int, default=None, metavar="N", help="only the last N lines")
    p = sub.add_parser("provision", help="register a thing and issue its device certificate and key")
    p.add_argument("thing_name")
    e = sub.add_parser("env", help="print shell exports that point iot-jobs, boto3 and the AWS CLI here")
    e.add_argument("--thing", required=True, help="thing whose certificate the REPL should use")
    for sp in (s, st, status, stop, reset, logs, p, e):
        sp.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 (pick a free one) to 65535")
    return value


def _device_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of devices") from None
    if not 1 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError("the number of devices must be 1 to 10000000")
    return value


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError("the time scale must be above 0 and at most 1000000")
    return value


def provision(state: StateDir, thing_name: str, region: str, account: str) -> tuple[Path, Path]:
    """Register the thing, issue an ACTIVE certificate with the default device policy (idempotent).

    Through the running service's HTTP API if there is one (so its broker knows the certificate at
    once), else directly in the state directory.
    """
    info = state.read_run_info()
    state.ensure_pki()
    from .identity.provisioning import Boto3Registry, LocalRegistry
    from .identity.provisioning import provision as provision_thing

    if info is not None:
        import boto3  # only here: the other commands start faster without it

        creds = state.credentials()
        client = boto3.session.Session().client(
            "iot",
            endpoint_url=info.http_endpoint,
            region_name=info.region,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
        )
        return provision_thing(state, thing_name, Boto3Registry(client, info.region, info.account))
    import time

    from .engine import Engine, Identity
    from .identity.service import IdentityService
    from .identity.store import IdentityStore
    from .store import Store

    store = Store(state.database)
    identity_store = IdentityStore(state.database)
    try:
        engine = Engine(store, Identity(region, account), time.time)
        identity = IdentityService(identity_store, state.ca, region, account, lambda _name: True, time.time)
        return provision_thing(state, thing_name, LocalRegistry(identity, engine.create_thing, state.ca()))
    finally:
        identity_store.close()
        store.close()


def _ports(state: StateDir, args: argparse.Namespace) -> tuple[int, int]:
    """The ports asked for, else the ones this state directory's last service used, else the defaults."""
    stored = state.stored_ports() or (DEFAULT_MQTT_PORT, DEFAULT_HTTP_PORT)
    return (
        stored[0] if args.mqtt_port is None else args.mqtt_port,
        stored[1] if args.http_port is None else args.http_port,
    )


def _options(state: StateDir, args: argparse.Namespace) -> ServiceOptions:
    from .service import ServiceOptions

    mqtt_port, http_port = _ports(state, args)
    return ServiceOptions(
        state.root,
        mqtt_port,
        http_port,
        args.bind,
        args.region,
        args.account,
        args.time_scale,
        args.log_requests,
        args.max_devices,
    )


def _serve(state: StateDir, args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from .service import serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = _options(state, args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(options, stop)

    _run(main())
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop's event loop where it is installed (a dependency, except on Windows), else on asyncio's."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _env(state: StateDir, thing: str) -> int:
    info = state.read_run_info()
    if info is None:
        print(f"iot-jobs-local is not running on {state.root}; start it with: iot-jobs-local serve", file=sys.stderr)
        return 1
    cert, key = provision(state, thing, info.region, info.account)
    creds = state.credentials()
    exports = {
        "AWS_ENDPOINT_URL_IOT": info.http_endpoint,
        "AWS_ENDPOINT_URL_IOT_JOBS_DATA_PLANE": info.http_endpoint,
        "AWS_REGION": info.region,
        "AWS_DEFAULT_REGION": info.region,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "IOT_JOBS_ENDPOINT": "localhost",
        "IOT_JOBS_PORT": str(info.mqtt_port),
        "IOT_JOBS_CA_FILE": str(state.ca_cert),
        "IOT_JOBS_CERT": str(cert),
        "IOT_JOBS_KEY": str(key),
        "IOT_JOBS_THING_NAME": thing,
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _serve_argv(state: StateDir, args: argparse.Namespace) -> list[str]:
    """``start``'s flags as the ``serve`` command line of the background service."""
    mqtt_port, http_port = _ports(state, args)
    argv = ["--mqtt-port", str(mqtt_port), "--http-port", str(http_port), "--bind", args.bind]
    argv += ["--region", args.region, "--account", args.account, "--log-level", args.log_level]
    argv += ["--time-scale", repr(args.time_scale)] + (["--log-requests"] if args.log_requests else [])
    argv += ["--max-devices", str(args.max_devices)] if args.max_devices is not None else []
    return argv


def _start(state: StateDir, args: argparse.Namespace) -> int:
    from . import control
    from .broker import limits

    limits.check(args.max_devices)  # refused here, in one line, rather than in the background log

    info, started = control.start(state, _serve_argv(state, args), args.timeout)
    if not started:
        print(f"iot-jobs-local already runs on {state.root} (pid {info.pid})", file=sys.stderr)
    print(
        f"iot-jobs-local ready: mqtts://localhost:{info.mqtt_port} {info.http_endpoint} "
        f"state={state.root} pid={info.pid}"
    )
    return 0


def _status(state: StateDir, as_json: bool) -> int:
    import json
    import time

    from . import control

    info = state.read_run_info()
    if as_json:
        body: dict[str, Any] = {"running": info is not None, "stateDir": str(state.root)}
        if info is not None:
            body |= {**info.__dict__, "clients": list(info.clients), "uptime": time.time() - info.started_at}
        print(json.dumps(body))
        return 0 if info is not None else control.NOT_RUNNING
    if info is None:
        ports = state.stored_ports()
        last = f"; it last listened on MQTT {ports[0]}, HTTP {ports[1]}" if ports else ""
        print(f"iot-jobs-local is not running on {state.root}{last}")
        return control.NOT_RUNNING
    for line in control.status_lines(state, info):
        print(line)
    return 0


def _control(state: StateDir, args: argparse.Namespace) -> int:
    from . import control

    if args.command == "stop":
        info = control.stop(state, args.timeout)
        print(f"iot-jobs-local is not running on {state.root}" if info is None else f"stopped pid {info.pid}")
        return 0
    if args.command == "reset":
        removed = control.reset(state, stop_first=args.stop)
        print(f"reset {state.root}" + (f" (removed {', '.join(removed)})" if removed else " (nothing to remove)"))
        return 0
    with contextlib.suppress(KeyboardInterrupt):  # the way to end --follow
        control.print_log(state.log_path, sys.stdout, args.lines, args.follow)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Everything in the state directory is private: keys, credentials, the database (every job
    # document and execution), the broker's files and logs. Nobody else needs to read them.
    os.umask(0o077)
    state = StateDir((args.state_dir or default_state_dir()).expanduser().resolve())
    from .control import ControlError

    try:
        return _command(state, args)
    except (ControlError, StateLocked) as exc:
        print(f"iot-jobs-local: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `iot-jobs-local env ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not _expected(exc):
            raise
        print(f"iot-jobs-local: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


def _expected(exc: Exception) -> bool:
    """Errors that are one line for the user (their modules are loaded by then, if they were raised)."""
    if isinstance(exc, OSError):
        return True
    names = ("broker.process", "broker.limits", "service", "jobs.errors", "identity.errors")
    kinds: list[type[BaseException]] = []
    for name in names:
        module = sys.modules.get(f"{__package__}.{name}")
        for attr in ("BrokerError", "LimitError", "ServiceError", "JobsError", "IdentityError"):
            kind = getattr(module, attr, None)
            if isinstance(kind, type):
                kinds.append(kind)
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        kinds += [botocore.BotoCoreError, botocore.ClientError]
    return isinstance(exc, tuple(kinds))


def _command(state: StateDir, args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(state, args)
    if args.command == "start":
        return _start(state, args)
    if args.command == "status":
        return _status(state, args.json)
    if args.command in ("stop", "reset", "logs"):
        return _control(state, args)
    if args.command == "provision":
        cert, key = provision(state, args.thing_name, DEFAULT_REGION, DEFAULT_ACCOUNT)
        print(f"thing:       {args.thing_name}")
        print(f"certificate: {cert}")
        print(f"private key: {key}")
        print(f"CA file:     {state.ca_cert}")
        return 0
    return _env(state, args.thing)


if __name__ == "__main__":
    sys.exit(main())
