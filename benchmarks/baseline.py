"""The data plane's baseline: a second Mosquitto, configured like the service's (its generated
``mosquitto.conf`` with other ports, same certificates and ACLs), with ``echo_responder.py`` on its
service listener. The echo broker checks nothing at CONNECT: the service's CONNECT plugin answers
through a socket only the service's own broker holds, and it costs nothing once devices are
connected, which is when the figures are taken."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass

from harness import HERE, Children, Service, free_port, wait_for_line, wait_for_port

#: The service's CONNECT plugin lines (``plugin``, ``plugin_opt_*``), replaced by what the device
#: listener did before the plugin existed: the certificate's CN is the username.
PLUGIN_LINES = re.compile(r"^plugin(_opt_\w+)? .*\n", re.M)


@dataclass
class Echo:
    device_port: int
    pid: int
    broker_pid: int


def echo_config(conf: str, device_port: int, service_port: int) -> str:
    ports = iter([device_port, service_port])
    conf, count = re.subn(r"^listener \d+", lambda _m: f"listener {next(ports)}", conf, flags=re.M)
    if count != 2:
        raise RuntimeError(f"expected two listener lines in the service's mosquitto.conf, found {count}")
    if PLUGIN_LINES.search(conf):
        conf = PLUGIN_LINES.sub("", conf)
        conf = conf.replace(
            "require_certificate true\n", "require_certificate true\nuse_identity_as_username true\n", 1
        )
    return conf


def start_echo(children: Children, service: Service, request_qos: int) -> Echo:
    """A second Mosquitto from ``service``'s generated config (other ports), plus the echo responder."""
    device_port, service_port = free_port(), free_port()
    conf = echo_config((service.state / "broker" / "mosquitto.conf").read_text(), device_port, service_port)
    echo_dir = service.directory / "echo-broker"
    echo_dir.mkdir()
    (echo_dir / "mosquitto.conf").write_text(conf)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = children.start(
        "echo Mosquitto", [mosquitto, "-c", str(echo_dir / "mosquitto.conf")], echo_dir / "mosquitto.log"
    )
    wait_for_port(device_port, 10, "echo Mosquitto")
    wait_for_port(service_port, 10, "echo Mosquitto")
    password_file = echo_dir / "password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(service.credentials["brokerPassword"])
    log = service.directory / "echo.log"
    responder = children.start(
        "echo responder",
        [
            sys.executable, str(HERE / "echo_responder.py"), "--port", str(service_port),
            "--username", "jobs-service", "--password-file", str(password_file),
            "--request-qos", str(request_qos),
        ],
        log,
    )  # fmt: skip
    wait_for_line(responder, log, "echo ready", 15, "the echo responder")
    return Echo(device_port, responder.pid, broker.pid)
