"""Printing a service's logs (its own and Mosquitto's) for a failing test or session."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.service import ServiceProcess


def print_logs(config: pytest.Config, service: ServiceProcess) -> None:
    text = (
        f"\n===== iot-jobs-local log ({service.log_path}) =====\n{service.log_text()}"
        f"\n===== mosquitto log (last 200 lines) =====\n"
        + "\n".join(service.broker_log_text().splitlines()[-200:])
        + "\n"
    )
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(text)
    else:
        sys.stderr.write(text)
