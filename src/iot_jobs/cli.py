"""``iot-jobs``: flags and environment into one ``Settings``, then the session.

Every flag has an environment variable (``IOT_JOBS_<FLAG>``). With neither ``--endpoint`` nor
``--cert`` the console runs against iot-jobs-local (``--local``), the embedded default.
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

from .errors import IotJobsError
from .settings import LocalRequest, Settings, region_from_endpoint


def _env(name: str) -> str | None:
    return os.environ.get(f"IOT_JOBS_{name}") or None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iot-jobs",
        description="Interactive AWS IoT Jobs console: control plane through boto3, device data plane "
        "through the AWS IoT Device SDK v2 over MQTT5. Without --endpoint it runs against iot-jobs-local.",
    )
    p.add_argument(
        "--endpoint",
        "-e",
        default=_env("ENDPOINT"),
        help="AWS IoT data endpoint (xxx-ats.iot.<region>.amazonaws.com) [IOT_JOBS_ENDPOINT]",
    )
    p.add_argument("--cert", "-c", default=_env("CERT"), help="device certificate file (PEM) [IOT_JOBS_CERT]")
    p.add_argument("--key", "-k", default=_env("KEY"), help="device private key file (PEM) [IOT_JOBS_KEY]")
    p.add_argument(
        "--thing_name",
        "--thing",
        "-t",
        dest="thing_name",
        default=_env("THING_NAME"),
        help="thing name; created if it does not exist [IOT_JOBS_THING_NAME]",
    )
    p.add_argument(
        "--client_id", "-C", default=_env("CLIENT_ID"), help="MQTT client id (default test-<uuid>) [IOT_JOBS_CLIENT_ID]"
    )
    p.add_argument(
        "--port", type=int, default=int(_env("PORT") or 8883), help="MQTT port (default 8883) [IOT_JOBS_PORT]"
    )
    p.add_argument(
        "--ca_file",
        default=_env("CA_FILE"),
        help="CA to trust for the broker (default: the system store) [IOT_JOBS_CA_FILE]",
    )
    p.add_argument(
        "--region",
        "-r",
        default=_env("REGION"),
        help="control-plane region (default: from the endpoint, else the boto3 chain) [IOT_JOBS_REGION]",
    )
    p.add_argument(
        "--local",
        action="store_true",
        default=bool(_env("LOCAL")),
        help="use iot-jobs-local (start one for the session if none runs) [IOT_JOBS_LOCAL=1]",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="iot-jobs-local state directory (default: $IOT_JOBS_LOCAL_STATE_DIR or ~/.local/state/iot-jobs-local)",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=int(_env("TIMEOUT") or 10),
        help="seconds to wait for a data-plane response (default 10) [IOT_JOBS_TIMEOUT]",
    )
    return p


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
    )


@contextmanager
def resolve(args: argparse.Namespace) -> Iterator[Settings]:
    """Settings for AWS, or for iot-jobs-local (started for the session if needed)."""
    if not (args.local or (not args.endpoint and not args.cert)):
        yield _aws_settings(args)
        return
    from . import local  # only local mode needs the local service's package

    request = LocalRequest(args.state_dir, args.thing_name)
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
    args = parser().parse_args(argv)
    home = _state_home()
    logging.basicConfig(
        filename=home / "iot-jobs.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .session import run  # imports the SDKs; kept out of --help's path

    try:
        with ExitStack() as stack:
            settings = stack.enter_context(resolve(args))
            return run(settings, interactive=sys.stdin.isatty(), history_path=home / "history")
    except IotJobsError as exc:
        print(f"iot-jobs: {exc.line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
