"""Ports of the real Mosquitto the service runs: a port picked for a listener (``--mqtt-port 0``, and
the service's own listener always) that another program takes before Mosquitto binds it is picked
again; a port given explicitly that is in use is one line."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from iot_jobs_local.broker.process import Broker, BrokerConfig, BrokerError, free_port
from iot_jobs_local.state_dir import StateDir

SERVE = (sys.executable, "-m", "iot_jobs_local", "--state-dir")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def broker_config(tmp_path: Path, device_port: int, service_port: int = 0) -> BrokerConfig:
    state = StateDir(tmp_path / "state")
    state.ensure_pki()
    return BrokerConfig(
        directory=state.broker_dir,
        ca_file=state.ca_cert,
        cert_file=state.server_cert,
        key_file=state.server_key,
        device_port=device_port,
        service_port=service_port,
        service_password="service-password",
    )


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_picked_port_taken_before_mosquitto_binds_it_is_picked_again(tmp_path: Path, busy_port: int) -> None:
    # The seam: the first port "picked" for the device listener is one another program holds, as if
    # it had taken the port between our pick and Mosquitto's bind.
    picks: list[int] = []

    def pick(host: str) -> int:
        picks.append(busy_port if not picks else free_port(host))
        return picks[-1]

    broker = Broker(broker_config(tmp_path, device_port=0), pick_port=pick)

    async def scenario() -> tuple[int, int]:
        await broker.start()
        try:
            first = broker.config.device_port
            assert accepts(first) and accepts(broker.config.service_port)
            # A restart (the supervisor's, after Mosquitto died) keeps the ports it ended up with.
            await broker.stop()
            await broker.start()
            return first, broker.config.device_port
        finally:
            await broker.stop()

    first, after_restart = asyncio.run(scenario())
    assert picks[0] == busy_port
    assert first not in (0, busy_port) and first in picks
    assert after_restart == first
    assert "Address already in use" in broker.log_path.read_text()  # Mosquitto did meet the taken port


def test_a_broker_on_an_explicit_port_in_use_fails_with_one_line(tmp_path: Path, busy_port: int) -> None:
    broker = Broker(broker_config(tmp_path, device_port=busy_port))
    with pytest.raises(BrokerError) as raised:
        asyncio.run(broker.start())
    assert str(raised.value) == f"cannot listen for MQTT on 127.0.0.1:{busy_port}: address already in use"


def test_serve_on_an_mqtt_port_in_use_says_so_in_one_line(tmp_path: Path, busy_port: int) -> None:
    result = subprocess.run(
        [*SERVE, str(tmp_path / "state"), "serve", "--mqtt-port", str(busy_port), "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("iot-jobs-local:")]
    assert errors == [f"iot-jobs-local: cannot listen for MQTT on 127.0.0.1:{busy_port}: address already in use"]
