"""``iot-jobs``: flags, environment and config file into one ``Settings``, then the session.

Precedence: flag > ``IOT_JOBS_<FLAG>`` environment variable > config file > default. With neither
``--endpoint`` nor ``--cert`` the console runs against iot-jobs-local (``--local``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import config
from .errors import IotJobsError
from .settings import LocalRequest, Settings, region_from_endpoint

VERBOSITY = ("none", "fatal", "error", "warn", "info", "debug", "trace")

#: (flags, dest, help, type); every one is also IOT_JOBS_<DEST> and a config-file key.
_OPTIONS: list[tuple[tuple[str, ...], str, str, type]] = [
    (("--endpoint", "-e"), "endpoint", "AWS IoT data endpoint (xxx-ats.iot.<region>.amazonaws.com)", str),
    (("--cert", "-c"), "cert", "device certificate file (PEM)", str),
    (("--key", "-k"), "key", "device private key file (PEM)", str),
    (("--thing_name", "--thing", "-t"), "thing_name", "thing name; created if it does not exist", str),
    (("--client_id", "-C"), "client_id", "MQTT client id (default test-<uuid>)", str),
    (("--port",), "port", "MQTT port (default 8883)", int),
    (("--ca_file",), "ca_file", "CA that signed the broker's certificate (default: system trust store)", str),
    (("--region", "-r"), "region", "control-plane region (default: from the endpoint, else the boto3 chain)", str),
    (("--proxy_host",), "proxy_host", "HTTP proxy host for the MQTT connection", str),
    (("--proxy_port",), "proxy_port", "HTTP proxy port (default 8080)", int),
    (("--state-dir",), "state_dir", "iot-jobs-local state directory (default ~/.local/state/iot-jobs-local)", str),
    (("--timeout",), "timeout", "seconds to wait for a data-plane response (default 10)", int),
    (("--output",), "output", "json (the seed's one-line JSON, default) or pretty (indented, coloured)", str),
    (
        ("--verbosity",),
        "verbosity",
        f"awscrt log level: {', '.join(VERBOSITY)} (default none); debug also shows tracebacks",
        str,
    ),
]
_DEFAULTS: dict[str, object] = {
    "port": 8883,
    "proxy_port": 8080,
    "timeout": 10,
    "output": "json",
    "verbosity": "none",
    "local": False,
}


def parser(defaults: dict[str, object]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iot-jobs",
        description="Interactive AWS IoT Jobs console: control plane through boto3, device data plane through "
        "the AWS IoT Device SDK v2 over MQTT5. Without --endpoint/--cert it runs against iot-jobs-local.",
        epilog="Every option can also be set as IOT_JOBS_<NAME> (e.g. IOT_JOBS_THING_NAME) or in "
        f"{config.default_path()} under [{config.SECTION}].",
    )
    add_connection_options(p, defaults)
    return p


def add_connection_options(p: argparse.ArgumentParser, defaults: dict[str, object]) -> None:
    """The connection flags (and ``--local``, ``--config``): shared with the programs acting as devices."""
    for flags, dest, text, kind in _OPTIONS:
        p.add_argument(
            *flags, dest=dest, type=kind, default=defaults.get(dest), help=f"{text} [IOT_JOBS_{dest.upper()}]"
        )
    p.add_argument(
        "--local",
        action="store_true",
        default=defaults.get("local"),
        help="use iot-jobs-local, starting one for the session if none runs [IOT_JOBS_LOCAL=1]",
    )
    p.add_argument("--config", type=Path, default=None, help="config file (default: see below)")


def _defaults(argv: list[str]) -> dict[str, object]:
    """Defaults, then the config file, then the environment."""
    return connection_defaults(argv)


def connection_defaults(argv: list[str]) -> dict[str, object]:
    """The connection flags' defaults: built-in, then the config file, then ``IOT_JOBS_*``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    kinds = {dest: kind for _flags, dest, _text, kind in _OPTIONS}
    values: dict[str, object] = dict(_DEFAULTS)
    raw = config.load(known.config, set(kinds) | {"local"})
    raw.update(
        {
            dest: os.environ[f"IOT_JOBS_{dest.upper()}"]
            for dest in [*kinds, "local"]
            if os.environ.get(f"IOT_JOBS_{dest.upper()}")
        }
    )
    for dest, text in raw.items():
        if dest == "local":
            values[dest] = text.lower() in ("1", "true", "yes", "on")
            continue
        try:
            values[dest] = kinds[dest](text)
        except ValueError:
            raise IotJobsError(f"{dest} must be {kinds[dest].__name__}, got {text!r}", "Usage") from None
    return values


def _aws_settings(args: argparse.Namespace) -> Settings:
    missing = [
        flag
        for flag, value in (
            ("--endpoint", args.endpoint),
            ("--cert", args.cert),
            ("--key", args.key),
            ("--thing_name", args.thing_name),
        )
        if not value
    ]
    if missing:
        raise IotJobsError(f"missing {', '.join(missing)} (or use --local for the local service)", "Usage")
    return Settings(
        endpoint=args.endpoint,
        port=args.port,
        cert=Path(args.cert).expanduser(),
        key=Path(args.key).expanduser(),
        ca_file=Path(args.ca_file).expanduser() if args.ca_file else None,
        thing_name=args.thing_name,
        client_id=args.client_id or f"test-{uuid.uuid4()}",
        region=args.region or region_from_endpoint(args.endpoint),
        operation_timeout=args.timeout,
        proxy_host=args.proxy_host,
        proxy_port=args.proxy_port,
    )


@contextmanager
def resolve(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for AWS, or for iot-jobs-local (started for the session if needed)."""
    if not (args.local or (not args.endpoint and not args.cert)):
        yield _aws_settings(args)
        return
    from . import local  # only local mode needs the local service's package

    request = LocalRequest(Path(args.state_dir) if args.state_dir else None, args.thing_name)
    with local.local_service(request.state_dir) as (state, info):
        thing = request.thing_name or local.DEFAULT_THING
        cert, key = local.device_files(state, info, thing)
        creds = state.credentials()
        yield Settings(
            endpoint="localhost",
            port=info.mqtt_port,
            cert=cert,
            key=key,
            ca_file=state.ca_cert,
            thing_name=thing,
            client_id=args.client_id or f"test-{uuid.uuid4()}",
            region=info.region,
            control_endpoint_url=info.http_endpoint,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            operation_timeout=args.timeout,
        )


def _state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base) / "iot-jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser(_defaults(argv)).parse_args(argv)
        if args.output not in ("json", "pretty"):
            raise IotJobsError(f"--output must be json or pretty, got {args.output!r}", "Usage")
        if args.verbosity.lower() not in VERBOSITY:
            raise IotJobsError(f"--verbosity must be one of {', '.join(VERBOSITY)}", "Usage")
    except IotJobsError as exc:
        print(f"iot-jobs: {exc.message}", file=sys.stderr)
        return 2
    home = _state_home()
    debug = args.verbosity.lower() in ("debug", "trace")
    logging.basicConfig(
        filename=home / "iot-jobs.log",
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .session import Presentation, run  # imports the SDKs; kept out of --help's path

    presentation = Presentation(pretty=args.output == "pretty", verbosity=args.verbosity.lower())
    try:
        with ExitStack() as stack:
            settings = stack.enter_context(resolve(args))
            return run(settings, presentation, interactive=sys.stdin.isatty(), history_path=home / "history")
    except IotJobsError as exc:
        print(f"iot-jobs: {exc.line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
