"""Everything the console needs to connect, as one frozen value built by ``cli``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_REGION_IN_ENDPOINT = re.compile(r"\.iot\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$")


def region_from_endpoint(endpoint: str | None) -> str | None:
    """``abc123-ats.iot.eu-west-1.amazonaws.com`` -> ``eu-west-1``."""
    if not endpoint:
        return None
    found = _REGION_IN_ENDPOINT.search(endpoint)
    return found.group(1) if found else None


#: The device's MQTT versions (``--mqtt``): "5" (the default) or "3.1.1".
MQTT_VERSIONS = ("5", "3.1.1")


@dataclass(frozen=True)
class Settings:
    endpoint: str
    port: int
    cert: Path
    key: Path
    thing_name: str
    client_id: str
    ca_file: Path | None = None
    region: str | None = None
    #: AWS profile for the control plane (None: the boto3 chain decides).
    profile: str | None = None
    #: Control-plane endpoint URL; None means boto3's own resolution (AWS_ENDPOINT_URL_IOT, ...).
    control_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    operation_timeout: int = 10
    connect_timeout: float = 10.0
    proxy_host: str | None = None
    proxy_port: int = 8080
    #: The thing is known to exist (iot-jobs-local provisioned it): no DescribeThing at start-up.
    thing_provisioned: bool = False
    #: MQTT version of the device connection, one of ``MQTT_VERSIONS``.
    mqtt: str = "5"


def check_files(settings: Settings) -> None:
    """Certificate, key and CA present, readable and usable, before any network call."""
    import ssl

    from .errors import IotJobsError

    for flag, path in (("--cert", settings.cert), ("--key", settings.key), ("--ca_file", settings.ca_file)):
        if path is None:
            continue
        if not path.is_file():
            raise IotJobsError(f"{flag} file not found: {path}", "FileNotFound", "Connect")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise IotJobsError(
                f"cannot read {flag} file {path}: {exc.strerror}", "FileNotReadable", "Connect"
            ) from None
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ca_file))
        except ssl.SSLError as exc:
            raise IotJobsError(
                f"--ca_file {settings.ca_file} is not a PEM certificate: {exc.reason or exc}",
                "InvalidCertificate",
                "Connect",
            ) from None
    try:
        context.load_cert_chain(str(settings.cert), str(settings.key))
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise IotJobsError(f"cannot use --cert/--key: {reason}", "InvalidCertificate", "Connect") from None


@dataclass(frozen=True)
class LocalRequest:
    """``--local``: use (or start) iot-jobs-local on this state directory."""

    state_dir: Path | None
    thing_name: str | None
