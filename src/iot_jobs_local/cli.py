"""``iot-jobs-local``: serve, provision a device, print the environment that points clients here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .broker.process import BrokerError
from .engine import Engine, Identity
from .identity.errors import IdentityError
from .identity.provisioning import Boto3Registry, LocalRegistry
from .identity.provisioning import provision as provision_thing
from .identity.service import IdentityService
from .identity.store import IdentityStore
from .jobs.errors import JobsError
from .service import DEFAULT_HTTP_PORT, DEFAULT_MQTT_PORT, ServiceError, ServiceOptions, serve
from .state_dir import DEFAULT_ACCOUNT, DEFAULT_REGION, StateDir, default_state_dir
from .store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-jobs-local", description="A local, wire-compatible AWS IoT Jobs service (Mosquitto + SQLite)."
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where state, certificates and broker files live "
        "(default: $IOT_JOBS_LOCAL_STATE_DIR or ~/.local/state/iot-jobs-local)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the service (Mosquitto + jobs engine + HTTP control plane)")
    s.add_argument("--mqtt-port", type=int, default=DEFAULT_MQTT_PORT, help="device MQTT/TLS port (default 8883)")
    s.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP API port (default 8088)")
    s.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    s.add_argument("--region", default=DEFAULT_REGION, help="region used in ARNs (default us-east-1)")
    s.add_argument("--account", default=DEFAULT_ACCOUNT, help="account id used in ARNs")
    s.add_argument("--log-level", default="INFO", help="service log level (default INFO)")
    s.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="N",
        help="run the service's clock N times faster than real time: timeouts, rollout rates and "
        "schedules happen N times sooner, and timestamps run ahead (default 1, real time)",
    )
    p = sub.add_parser("provision", help="register a thing and issue its device certificate and key")
    p.add_argument("thing_name")
    e = sub.add_parser("env", help="print shell exports that point iot-jobs, boto3 and the AWS CLI here")
    e.add_argument("--thing", required=True, help="thing whose certificate the REPL should use")
    for sp in (s, p, e):
        sp.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


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
    store = Store(state.database)
    identity_store = IdentityStore(state.database)
    try:
        engine = Engine(store, Identity(region, account), time.time)
        identity = IdentityService(identity_store, state.ca, region, account, lambda _name: True, time.time)
        return provision_thing(state, thing_name, LocalRegistry(identity, engine.create_thing, state.ca()))
    finally:
        identity_store.close()
        store.close()


def _serve(state: StateDir, args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServiceOptions(
        state.root, args.mqtt_port, args.http_port, args.bind, args.region, args.account, args.time_scale
    )

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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Everything in the state directory is private: keys, credentials, the database (every job
    # document and execution), the broker's files and logs. Nobody else needs to read them.
    os.umask(0o077)
    state = StateDir((args.state_dir or default_state_dir()).expanduser().resolve())
    try:
        if args.command == "serve":
            return _serve(state, args)
        if args.command == "provision":
            cert, key = provision(state, args.thing_name, DEFAULT_REGION, DEFAULT_ACCOUNT)
            print(f"thing:       {args.thing_name}")
            print(f"certificate: {cert}")
            print(f"private key: {key}")
            print(f"CA file:     {state.ca_cert}")
            return 0
        return _env(state, args.thing)
    except (BrokerError, ServiceError, JobsError, IdentityError, OSError, BotoCoreError, ClientError) as exc:
        print(f"iot-jobs-local: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
