"""The service's window on Mosquitto: its log, read over MQTT, and the means to act on it.

It uses the service's own MQTT connections (``mqtt_link``) to the password-protected loopback
listener: one that follows the log, and short-lived ones that take a client id over.

Mosquitto publishes its log on ``$SYS/broker/log/<level>`` (``log_dest topic``), including
``New client connected from <addr> as <client id> (..., u'<CN>')``. This connection (on the service
listener) reads that feed to:

* know which client ids are connected with which certificate (CN = MQTT username), for the ACLs
  that depend on a live client id and to close the connections of a certificate that stops being
  ACTIVE, by taking their client id over from the service listener (Mosquitto 2.0.11 then closes
  the older connection's socket, without a DISCONNECT packet);
* confirm that a SIGHUP reload finished: Mosquitto logs ``Reloading config.`` at the start of the
  reload, and a PUBLISH we send after reading that line is only handled once the reload is done.
  (Mosquitto only takes the signal when its event loop wakes up, so a packet is sent to wake it.)

iot:Connect itself is not decided here but at CONNECT, by the broker's plugin (``gate``): a refused
client never connects, so nothing depends on this feed being up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

from ..mqtt import codec
from ..mqtt.connection import (
    KEEPALIVE_S,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    SERVICE_USER,
    Connection,
    LinkError,
    close,
    keep_alive,
    open_connection,
)

log = logging.getLogger(__name__)

LOG_FILTER = "$SYS/broker/log/#"
WATCH_CLIENT_ID = "iot-jobs-local-watch"
#: How long a take-over connection (``kick``) may take before it is given up.
TAKE_OVER_TIMEOUT_S = 5.0
#: A topic nobody subscribes to: a QoS 1 PUBLISH there is a round trip through the broker's loop.
BARRIER_TOPIC = "$aws/iot-jobs-local/barrier"

_STAMP = re.compile(r"^\d+: ")
_NEW_CONNECTION = re.compile(r"^New connection from (?P<addr>\S+) on port (?P<port>\d+)\.$")
# Client ids may contain anything, newlines included: DOTALL, and the fixed parts anchored at the end.
_CONNECTED = re.compile(
    r"^New client connected from (?P<addr>\S+) as (?P<id>.*) \(p\d+, c\d+, k\d+(?:, u'(?P<user>.*)')?\)\.$",
    re.DOTALL,
)
_GONE = tuple(
    re.compile(pattern, re.DOTALL)
    for pattern in (
        r"^Client (?P<id>.*) disconnected(?:: .*| due to .*)?\.$",
        r"^Client (?P<id>.*) closed its connection\.$",
        r"^Client (?P<id>.*) has exceeded timeout, disconnecting\.$",
        r"^Client (?P<id>.*) been disconnected by administrative action\.$",
        r"^Socket error on client (?P<id>.*), disconnecting\.$",
    )
)
_RELOADING = "Reloading config."


def _ignore(topic: str, payload: bytes) -> None:
    """A take-over connection subscribes to nothing."""


class BrokerWatch:
    """``on_client(cn)`` hears of every connect and disconnect of a device certificate."""

    def __init__(
        self,
        service_port: int,
        password: str,
        device_port: int,
        on_client: Callable[[str], None],
    ) -> None:
        self._port = service_port
        self._password = password
        self._device_port = device_port
        self._on_client = on_client
        self._connection: Connection | None = None
        self._pending: dict[str, int] = {}
        self._reloaded = asyncio.Event()
        self._kicks: set[asyncio.Task[None]] = set()
        #: Connected device client ids -> the CN of the certificate they connected with.
        self.live: dict[str, str] = {}
        self._by_cn: dict[str, set[str]] = {}  # the same, the other way round
        self.ready = asyncio.Event()

    def clients_of(self, common_name: str) -> list[str]:
        return sorted(self._by_cn.get(common_name, ()))

    def live_client_ids(self) -> dict[str, list[str]]:
        return {cn: sorted(ids) for cn, ids in self._by_cn.items()}

    def _gone(self, client_id: str) -> str | None:
        common_name = self.live.pop(client_id, None)
        if common_name is not None:
            ids = self._by_cn.get(common_name)
            if ids is not None:
                ids.discard(client_id)
                if not ids:
                    del self._by_cn[common_name]
        return common_name

    # the log feed ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow the broker's log until cancelled, reconnecting if the broker goes away."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._follow_once()
                delay = RETRY_FIRST_S
            except (OSError, LinkError, asyncio.TimeoutError) as exc:
                log.warning("broker log feed: %s; retrying in %.1f s", exc or type(exc), delay)
                await asyncio.sleep(delay)  # back-off before reconnecting to a restarting broker
                delay = min(delay * 2, RETRY_MAX_S)

    async def _follow_once(self) -> None:
        transport, connection = await open_connection(
            self._port, WATCH_CLIENT_ID, self._password, KEEPALIVE_S, self._on_log, [(LOG_FILTER, 0)]
        )
        pinger = asyncio.create_task(keep_alive(connection, KEEPALIVE_S), name="broker-watch-keepalive")
        try:
            self._connection = connection
            self.ready.set()
            await connection.closed
            log.warning("broker log feed lost; reconnecting")
        finally:
            self._connection = None
            self.ready.clear()
            self.live.clear()  # a restarted broker has no clients; what we missed is unknown
            self._by_cn.clear()
            pinger.cancel()
            close(transport, connection)

    def _on_log(self, topic: str, payload: bytes) -> None:
        self.handle_line(payload.decode(errors="replace"))

    def handle_line(self, line: str) -> None:
        line = _STAMP.sub("", line.strip("\r\n "))
        if line == _RELOADING:
            self._reloaded.set()
            return
        found = _NEW_CONNECTION.match(line)
        if found:
            if len(self._pending) > 10000:
                self._pending.clear()
            self._pending[found["addr"]] = int(found["port"])
            return
        found = _CONNECTED.match(line)
        if found:
            self._connected(found["addr"], found["id"], found["user"])
            return
        for pattern in _GONE:
            found = pattern.match(line)
            if found:
                common_name = self._gone(found["id"])
                if common_name is not None:
                    self._on_client(common_name)
                return

    def _connected(self, addr: str, client_id: str, user: str | None) -> None:
        port = self._pending.pop(addr, None)
        previous = self._gone(client_id)
        if previous is not None:
            self._on_client(previous)
        if user is None or (port != self._device_port if port is not None else user == SERVICE_USER):
            return
        self.live[client_id] = user
        self._by_cn.setdefault(user, set()).add(client_id)
        self._on_client(user)

    # actions -----------------------------------------------------------------------------------
    def kick(self, client_id: str) -> None:
        """Close the device connection using ``client_id`` (in the background)."""
        task = asyncio.get_running_loop().create_task(self._take_over(client_id), name=f"kick-{client_id}")
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

    async def _take_over(self, client_id: str) -> None:
        """Connect with ``client_id`` (Mosquitto drops the connection that held it), then leave."""
        try:
            transport, connection = await asyncio.wait_for(
                open_connection(self._port, client_id, self._password, KEEPALIVE_S, _ignore), TAKE_OVER_TIMEOUT_S
            )
        except (OSError, LinkError, asyncio.TimeoutError) as exc:
            log.warning("could not disconnect client %r: %s", client_id, exc or type(exc))
            return
        close(transport, connection)

    async def reload(self, send_signal: Callable[[], None], timeout: float = 5.0) -> bool:
        """Send SIGHUP and return once Mosquitto has finished reloading (False if unconfirmed)."""
        self._reloaded.clear()
        send_signal()
        connection = self._connection
        if connection is None:
            return False
        try:
            # Mosquitto blocks signals while it waits for socket events (up to 100 ms): a packet
            # wakes it, and the SIGHUP is handled on the way out.
            connection.write(codec.publish(BARRIER_TOPIC, b""))
            await asyncio.wait_for(self._reloaded.wait(), timeout)
            packet_id, acked = connection.expect_ack()
            connection.write(codec.publish(BARRIER_TOPIC, b"", 1, packet_id))
            await asyncio.wait_for(acked, timeout)
        except (asyncio.TimeoutError, LinkError) as exc:
            log.warning("could not confirm that the broker reloaded its ACL and CRL: %r", exc)
            return False
        return True

    async def close(self) -> None:
        for task in list(self._kicks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._kicks, return_exceptions=True)
