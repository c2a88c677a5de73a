"""A bare Jobs "echo" responder: the baseline that ``data_plane.py`` compares the service against.

paho-mqtt 2.x, MQTT 5, connected to a broker's service listener (username/password), TCP_NODELAY on.
It subscribes to ``$aws/things/+/jobs/#`` with noLocal (QoS 0 unless ``--request-qos 1``; a QoS 1
subscription costs a PUBACK per request and is subject to Mosquitto's 20-message in-flight window and
1000-message queue limit) and answers every request on ``<request topic>/accepted`` at QoS 0,
echoing the request's ``clientToken``.
It keeps no state and does no validation: it is the cheapest thing that satisfies the SDK, so
``service rate / echo rate`` says how much the service's own work costs under the same load.

The replies have the same shape and roughly the same size as the service's replies in the
benchmark (one queued job for get-pending, a full execution with its document for describe).

Prints ``echo ready`` once its subscription is granted. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

REQUEST_FILTER = "$aws/things/+/jobs/#"


def reply_body(rest: list[str], request: dict[str, Any], now: int) -> dict[str, Any] | None:
    out: dict[str, Any] = {"clientToken": request.get("clientToken"), "timestamp": now}
    if rest == ["get"]:
        out["inProgressJobs"] = []
        out["queuedJobs"] = [
            {"jobId": "echo-job", "queuedAt": now, "lastUpdatedAt": now, "executionNumber": 1, "versionNumber": 1}
        ]
    elif rest == ["start-next"]:
        out["execution"] = _execution("echo-job", "IN_PROGRESS", now)
    elif len(rest) == 2 and rest[1] == "get":
        out["execution"] = _execution(rest[0], "QUEUED", now)
    elif len(rest) == 2 and rest[1] == "update":
        out["executionState"] = {"status": request.get("status", "IN_PROGRESS"), "versionNumber": 2}
    else:
        return None
    return out


def _execution(job_id: str, status: str, now: int) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "status": status,
        "queuedAt": now,
        "lastUpdatedAt": now,
        "versionNumber": 1,
        "executionNumber": 1,
        "jobDocument": {"operation": "benchmark", "n": 0},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", required=True, help="file holding the broker password")
    parser.add_argument(
        "--request-qos", type=int, choices=(0, 1), default=0, help="QoS of the request subscription (default 0)"
    )
    args = parser.parse_args()
    password = Path(args.password_file).read_text().strip()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-echo-responder", protocol=mqtt.MQTTv5)
    client.username_pw_set(args.username, password)

    def on_connect(c: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            print(f"echo: connect failed: {reason}", file=sys.stderr, flush=True)
            return
        sock = c.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.subscribe(REQUEST_FILTER, options=SubscribeOptions(qos=args.request_qos, noLocal=True))

    def on_subscribe(_c: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            print(f"echo: subscribe refused: {reasons}", file=sys.stderr, flush=True)
        else:
            print("echo ready", flush=True)

    def on_message(c: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        parts = topic.split("/")
        if len(parts) < 5 or parts[3] != "jobs":
            return
        rest = parts[4:]
        if rest[-1] in ("accepted", "rejected") or rest[0] in ("notify", "notify-next"):
            return
        try:
            request = json.loads(message.payload) if message.payload else {}
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {}
        body = reply_body(rest, request, int(time.time()))
        if body is not None:
            c.publish(topic + "/accepted", json.dumps(body, separators=(",", ":")), qos=0)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message

    def stop(_signum: int, _frame: Any) -> None:
        client.disconnect()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client.connect("127.0.0.1", args.port, keepalive=60)
    client.loop_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
