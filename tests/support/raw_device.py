"""A device on paho-mqtt 2.x (MQTT 5, mutual TLS) for what the SDK cannot send (:class:`RawDevice`)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.common import MAX_ABSENCE_WAIT, RESPONSE_TIMEOUT
from support.service import ServiceProcess


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


def paho_client(client_id: str, *, ca: Path | None, cert: Path | None = None, key: Path | None = None) -> Any:
    """A paho-mqtt 2.x MQTT v5 client with TLS: trusts ``ca``, presents ``cert``/``key`` if given."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ca) if ca else None,
        certfile=str(cert) if cert else None,
        keyfile=str(key) if key else None,
    )
    return client


class RawDevice:
    """A paho-mqtt (MQTT 5, mTLS with the device's certificate) connection for one thing.

    ``cert``/``key`` replace the thing's provisioned certificate (e.g. one made through the identity
    API with other policies attached). By default it subscribes to ``$aws/things/<thing>/jobs/#`` right after connecting, so it sees every
    reply and event of that thing (and, as it has no noLocal, its own requests). Messages queue up
    until a test takes them with :meth:`expect`.
    """

    def __init__(
        self,
        service: ServiceProcess,
        thing: str,
        *,
        subscribe: tuple[str, ...] | None = None,
        client_id: str | None = None,
        timeout: float = RESPONSE_TIMEOUT,
        cert: Path | None = None,
        key: Path | None = None,
    ) -> None:
        self.service = service
        self.thing = thing
        self.timeout = timeout
        # Either a certificate the test made itself (e.g. with other policies), or the thing's own.
        self.cert, self.key = (cert, key) if cert and key else service.device_files(thing)
        self.client_id = client_id or f"test-raw-{thing[:40]}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: deque[Message] = deque()
        self._acks: dict[int, Future[Any]] = {}
        self._subacks: dict[int, Future[Any]] = {}
        self._connected: Future[Any] = Future()
        self.client = paho_client(self.client_id, ca=service.ca_path, cert=self.cert, key=self.key)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = lambda client, userdata: self._settle_connect(ConnectionError("connect failed"))
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("localhost", service.mqtt_port, keepalive=60)
        self.client.loop_start()
        try:
            reason = self._connected.result(timeout)
            assert not reason.is_failure, f"CONNACK {reason}"
            for topic in (f"$aws/things/{thing}/jobs/#",) if subscribe is None else subscribe:
                codes = self.subscribe(topic)
                assert all(not c.is_failure for c in codes), f"SUBACK {codes} for {topic}"
        except BaseException:
            self.close()
            raise

    # paho callbacks (network thread) ---------------------------------------------------------
    def _settle_connect(self, value: Any) -> None:
        with contextlib.suppress(Exception):
            if isinstance(value, BaseException):
                self._connected.set_exception(value)
            else:
                self._connected.set_result(value)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._settle_connect(reason)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._settle_connect(ConnectionError(f"disconnected before CONNACK: {reason}"))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._arrived:
            self._messages.append(Message(message.topic, bytes(message.payload), message.qos, bool(message.retain)))
            self._arrived.notify_all()

    def _future(self, table: dict[int, Future[Any]], mid: int) -> Future[Any]:
        with self._lock:
            return table.setdefault(mid, Future())

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._future(self._acks, mid).set_result(reason)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self._future(self._subacks, mid).set_result(reasons)

    # operations ------------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1, timeout: float | None = None
    ) -> int:
        """Publish and wait for the PUBACK; return its MQTT5 reason code (0 ok, 135 not authorized).

        A dict payload is JSON-encoded. At QoS 0 there is no PUBACK: returns 0 once sent.
        """
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(topic, data, qos=qos)
        reason = self._future(self._acks, info.mid).result(self.timeout if timeout is None else timeout)
        return int(getattr(reason, "value", reason) or 0)

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float | None = None) -> list[Any]:
        """Subscribe and wait for the SUBACK; return its reason codes."""
        _result, mid = self.client.subscribe(topic_filter, qos=qos)
        return list(self._future(self._subacks, mid).result(self.timeout if timeout is None else timeout))

    def expect(self, topic: str | Callable[[Message], bool], timeout: float | None = None) -> Message:
        """Take the first received message on ``topic`` (or matching a predicate), waiting if needed."""
        match = topic if callable(topic) else (lambda m: m.topic == topic)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._arrived:
            while True:
                for message in self._messages:
                    if match(message):
                        self._messages.remove(message)
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.topic for m in self._messages]
                    raise AssertionError(f"{self.client_id}: no message on {topic!r} in time; queued: {seen}")
                self._arrived.wait(remaining)

    def request(self, topic: str, payload: bytes | str | dict[str, Any], timeout: float | None = None) -> Message:
        """Publish a request (must be authorized) and return its reply on ``topic/accepted|rejected``.

        With a JSON object payload carrying a ``clientToken``, only a reply echoing it matches.
        """
        token = payload.get("clientToken") if isinstance(payload, dict) else None

        def is_reply(m: Message) -> bool:
            if m.topic not in (topic + "/accepted", topic + "/rejected"):
                return False
            if token is None:
                return True
            with contextlib.suppress(ValueError):
                return bool(m.json().get("clientToken") == token)
            return False

        code = self.publish(topic, payload)
        assert code == 0, f"the broker refused the publish on {topic} (reason code {code})"
        return self.expect(is_reply, timeout)

    def assert_no_message(self, topic: str | Callable[[Message], bool], within: float = 0.5) -> None:
        """Fail if a message on ``topic`` (or matching a predicate) is queued or arrives within ``within`` s."""
        assert within <= MAX_ABSENCE_WAIT, "absence waits are capped at 1 s"
        match = topic if callable(topic) else (lambda m: m.topic == topic)
        deadline = time.monotonic() + within
        with self._arrived:
            while True:
                found = [m for m in self._messages if match(m)]
                if found:
                    raise AssertionError(f"{self.client_id}: unexpected message {found[0]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._arrived.wait(remaining)

    def messages(self) -> list[Message]:
        """Everything received and not yet taken."""
        with self._lock:
            return list(self._messages)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
