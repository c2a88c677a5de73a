"""Reading Mosquitto 2.0.11's log lines (``iot_jobs_local.broker.watch``): who connected with which
certificate, when a reload happened. Lines as Mosquitto writes them."""

from __future__ import annotations

from iot_jobs_local.broker.watch import BrokerWatch

DEVICE_PORT, SERVICE_PORT = 8883, 40000


class Recorder(BrokerWatch):
    def __init__(self) -> None:
        self.kicked: list[str] = []
        self.heard: list[str] = []
        super().__init__(SERVICE_PORT, "pw", DEVICE_PORT, self.heard.append)

    def kick(self, client_id: str) -> None:
        self.kicked.append(client_id)


def connect(watch: BrokerWatch, client_id: str, user: str, port: int = DEVICE_PORT, addr: str = "127.0.0.1:5") -> None:
    watch.handle_line(f"1795836066: New connection from {addr} on port {port}.")
    watch.handle_line(f"1795836066: New client connected from {addr} as {client_id} (p5, c1, k60, u'{user}').")


def test_device_connections_are_tracked_by_certificate() -> None:
    watch = Recorder()
    connect(watch, "dev-1", "cn-a")
    connect(watch, "odd (p5, c1, k60, u'cn-x').\nid", "cn-b", addr="127.0.0.1:6")
    assert watch.live == {"dev-1": "cn-a", "odd (p5, c1, k60, u'cn-x').\nid": "cn-b"}
    assert watch.clients_of("cn-a") == ["dev-1"] and watch.heard == ["cn-a", "cn-b"]
    watch.handle_line("1795836067: Client dev-1 closed its connection.")
    watch.handle_line("1795836067: Client odd (p5, c1, k60, u'cn-x').\nid disconnected.")
    assert watch.live == {} and watch.kicked == []


def test_service_listener_connections_are_not_devices_and_end_a_taken_over_one() -> None:
    watch = Recorder()
    connect(watch, "dev-1", "cn-a")
    connect(watch, "dev-1", "jobs-service", port=SERVICE_PORT, addr="127.0.0.1:7")
    assert watch.live == {}
    # Without the "New connection" line the port is unknown: only the service user is not a device.
    watch.handle_line("1: New client connected from 127.0.0.1:9 as dev-2 (p2, c1, k60, u'cn-a').")
    assert watch.live == {"dev-2": "cn-a"}


def test_nobody_is_disconnected_for_a_client_id_here() -> None:
    """iot:Connect is decided at CONNECT by the broker's plugin (``broker.gate``), not after the fact."""
    watch = Recorder()
    connect(watch, "iot-jobs-local-service", "cn-a", addr="127.0.0.1:8")
    connect(watch, "anything", "cn-a", addr="127.0.0.1:10")
    assert watch.kicked == []


def test_the_reload_line_is_seen() -> None:
    watch = Recorder()
    watch.handle_line("1795836067: Reloading config.")
    assert watch._reloaded.is_set()
