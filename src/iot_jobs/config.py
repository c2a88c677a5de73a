"""Optional config file: defaults for any flag, overridden by environment variables, then by flags.

``~/.config/iot-jobs/config.ini`` (or ``$XDG_CONFIG_HOME/iot-jobs/config.ini``, or ``--config``)::

    [iot-jobs]
    endpoint = abc123-ats.iot.eu-west-1.amazonaws.com
    cert = ~/certs/device.pem.crt
    key = ~/certs/private.pem.key
    thing_name = my-thing
    output = pretty
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from .errors import IotJobsError

SECTION = "iot-jobs"


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "iot-jobs" / "config.ini"


def load(path: Path | None, known: set[str]) -> dict[str, str]:
    """The file's settings (keys are flag names with ``_``); missing default file -> {}."""
    explicit = path is not None
    path = path or default_path()
    if not path.exists():
        if explicit:
            raise IotJobsError(f"config file not found: {path}", "Usage")
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise IotJobsError(f"cannot read config file {path}: {exc}", "Usage") from None
    if not parser.has_section(SECTION):
        return {}
    values = {key.replace("-", "_"): value for key, value in parser.items(SECTION)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise IotJobsError(f"unknown setting(s) in {path}: {', '.join(unknown)}", "Usage")
    return values
