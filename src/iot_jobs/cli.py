"""``iot-jobs``: flags, environment and config file into one ``Settings``, then the session.

Precedence: flag > ``IOT_JOBS_<FLAG>`` environment variable > config file > default. With neither
``--endpoint`` nor ``--cert`` the console runs against iot-jobs-local (``--local``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import config
from .errors import IotJobsError
from .version import add_version_flag, installed_version

if TYPE_CHECKING:
    from .settings import Settings

# Everything else (logging, the settings, the SDKs) is imported once the flags are parsed, so that
# --help and --version answer quickly (docs/benchmarks.md).

#: --output values; formatting.py says what each looks like.
OUTPUTS = ("text", "json", "pretty")

_STARTED = time.perf_counter()


def trace(step: str) -> None:
    """IOT_JOBS_TRACE_STARTUP=1: log when each start-up step is done (benchmarks/console_startup.py)."""
    if os.environ.get("IOT_JOBS_TRACE_STARTUP"):
        import logging

        logging.getLogger("iot_jobs").info("startup: %-28s %6.0f ms", step, (time.perf_counter() - _STARTED) * 1000)


VERBOSITY = ("none", "fatal", "error", "warn", "info", "debug", "trace")

#: (flags, dest, help, type); every one is also IOT_JOBS_<DEST> and a config-file key.
_OPTIONS: list[tuple[tuple[str, ...], str, str, type]] = [
    (("--endpoint", "-e"), "endpoint", "AWS IoT data endpoint (xxx-ats.iot.<region>.amazonaws.com)", str),
    (("--cert",), "cert", "device certificate file (PEM)", str),
    (("--key", "-k"), "key", "device private key file (PEM)", str),
    (("--thing_name", "--thing", "-t"), "thing_name", "thing name; created if it does not exist", str),
    (("--client_id", "-C"), "client_id", "MQTT client id (default test-<uuid>)", str),
    (("--port",), "port", "MQTT port (default 8883)", int),
    (("--ca_file",), "ca_file", "CA that signed the broker's certificate (default: system trust store)", str),
    (("--region", "-r"), "region", "control-plane region (default: from the endpoint, else the boto3 chain)", str),
    (("--profile",), "profile", "AWS profile for the control plane (default: the boto3 chain, AWS_PROFILE)", str),
    (("--proxy_host",), "proxy_host", "HTTP proxy host for the MQTT connection", str),
    (("--proxy_port",), "proxy_port", "HTTP proxy port (default 8080)", int),
    (("--state-dir",), "state_dir", "iot-jobs-local state directory (default ~/.local/state/iot-jobs-local)", str),
    (("--timeout",), "timeout", "seconds to wait for a data-plane response (default 10)", int),
    (("--mqtt",), "mqtt", "MQTT version of the device connection: 5 or 3.1.1 (default 5)", str),
    (
        ("--output",),
        "output",
        "text (the seed's lines, default), json (JSON documents only, one per line, for jq) or pretty "
        "(indented JSON, coloured on a terminal)",
        str,
    ),
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
    "mqtt": "5",
    "output": "text",
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
    p.add_argument(
        "-c",
        "--command",
        dest="commands",
        action="append",
        default=None,
        metavar="'CMD; CMD'",
        help="run these commands (separated by ';' or newlines) and exit; status 1 if one failed",
    )
    p.add_argument(
        "--stop-on-error",
        action="store_true",
        default=defaults.get("stop_on_error"),
        help="scripted use (-c or piped input): stop at the first command that fails [IOT_JOBS_STOP_ON_ERROR=1]",
    )
    p.add_argument(
        "--no-pager",
        action="store_true",
        default=defaults.get("no_pager"),
        help="never page long output (default: on a terminal, output taller than the screen goes through "
        "$PAGER, else less -RXF) [IOT_JOBS_NO_PAGER=1]",
    )
    add_version_flag(p)
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


#: Switches read from the environment and the config file as booleans.
_SWITCHES = ("local", "stop_on_error", "no_pager")


def _aliases() -> dict[str, str]:
    """Config-file key or environment suffix -> dest: every long flag's name, as given or with ``_``.

    So ``thing = x`` works in the config file (and ``IOT_JOBS_THING``) because ``--thing`` does.
    """
    names: dict[str, str] = {}
    for flags, dest, _text, _kind in _OPTIONS:
        names[dest] = dest
        for flag in flags:
            if flag.startswith("--"):
                names[flag[2:].replace("-", "_")] = dest
    for switch in _SWITCHES:
        names[switch] = switch
    return names


def _defaults(argv: list[str]) -> dict[str, object]:
    """Defaults, then the config file, then the environment."""
    return connection_defaults(argv)


def connection_defaults(argv: list[str]) -> dict[str, object]:
    """The connection flags' defaults: built-in, then the config file, then ``IOT_JOBS_*``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    kinds = {dest: kind for _flags, dest, _text, kind in _OPTIONS}
    aliases = _aliases()
    values: dict[str, object] = dict(_DEFAULTS)
    raw = {aliases[key]: text for key, text in config.load(known.config, set(aliases)).items()}
    for name in sorted(aliases, key=lambda n: n == aliases[n]):  # the canonical name wins
        text = os.environ.get(f"IOT_JOBS_{name.upper()}")
        if text:
            raw[aliases[name]] = text
    for dest, text in raw.items():
        if dest in _SWITCHES:
            values[dest] = text.lower() in ("1", "true", "yes", "on")
            continue
        try:
            values[dest] = kinds[dest](text)
        except ValueError:
            raise IotJobsError(f"{dest} must be {kinds[dest].__name__}, got {text!r}", "Usage") from None
    return values


def _aws_settings(args: argparse.Namespace) -> Settings:
    import uuid

    from .settings import Settings, region_from_endpoint

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
        profile=args.profile,
        operation_timeout=args.timeout,
        mqtt=args.mqtt,
        proxy_host=args.proxy_host,
        proxy_port=args.proxy_port,
    )


@contextmanager
def resolve(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for AWS, or for iot-jobs-local (started for the session if needed)."""
    import uuid

    from .settings import LocalRequest, Settings

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
            thing_provisioned=True,
            mqtt=args.mqtt,
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
        if args.output not in OUTPUTS:
            raise IotJobsError(f"--output must be one of {', '.join(OUTPUTS)}, got {args.output!r}", "Usage")
        if args.verbosity.lower() not in VERBOSITY:
            raise IotJobsError(f"--verbosity must be one of {', '.join(VERBOSITY)}", "Usage")
        from .settings import MQTT_VERSIONS

        if args.mqtt not in MQTT_VERSIONS:
            raise IotJobsError(f"--mqtt must be 5 or 3.1.1, got {args.mqtt!r}", "Usage")
    except IotJobsError as exc:
        print(f"iot-jobs: {exc.message}", file=sys.stderr)
        return 2
    import logging

    from .script import split_commands

    log = logging.getLogger("iot_jobs")
    home = _state_home()
    debug = args.verbosity.lower() in ("debug", "trace")
    logging.basicConfig(
        filename=home / "iot-jobs.log",
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    trace("flags parsed")
    from .session import Presentation, run  # imports the SDKs; kept out of --help's path

    trace("session modules imported")

    presentation = Presentation(output=args.output, verbosity=args.verbosity.lower(), pager=not args.no_pager)
    script = split_commands("\n".join(args.commands)) if args.commands is not None else None
    log.info("iot-jobs %s starting (%s)", installed_version(), "script" if script is not None else "session")
    try:
        with ExitStack() as stack:
            settings = stack.enter_context(resolve(args))
            trace("settings resolved")
            return run(
                settings,
                presentation,
                interactive=script is None and sys.stdin.isatty(),
                history_path=home / "history",
                script=script,
                stop_on_error=bool(args.stop_on_error),
            )
    except IotJobsError as exc:
        log.error("%s", exc.line())
        print(f"iot-jobs: {exc.line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a misconfiguration we did not foresee: still one line, details in the log
        log.exception("unexpected error")
        print(f"iot-jobs: {type(exc).__name__}: {exc} (details in {home / 'iot-jobs.log'})", file=sys.stderr)
        return 1
