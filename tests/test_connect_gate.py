"""iot:Connect decided at CONNECT, before Mosquitto takes a session over (broker/gate.py and its
plugin): seen from the side of the device that already holds the client id."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from support.common import RESPONSE_TIMEOUT, unique
from support.service import ServiceProcess
from test_policies import NOT_AUTHORIZED, Identities, Mqtt, allowed, connack, statement
from test_policies import ids as ids  # the fixture, shared


def answered(device: Mqtt, thing: str) -> bool:
    """The device's own get-pending request is answered by the service."""
    token = uuid.uuid4().hex
    device.subscribe(f"$aws/things/{thing}/jobs/get/accepted")
    assert allowed(device.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": token}).encode()))
    while True:
        reply = device.expect(f"$aws/things/{thing}/jobs/get/accepted")
        if json.loads(reply.payload)["clientToken"] == token:
            return True


def answered_after_restart(device: Mqtt, thing: str, timeout: float = 20.0) -> bool:
    """As ``answered``, retried while the service's own link reconnects to a restarted broker
    (requests that arrive before it is back are lost, as on a broker restart on AWS)."""
    device.subscribe(f"$aws/things/{thing}/jobs/get/accepted")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = uuid.uuid4().hex
        assert allowed(device.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": token}).encode()))
        with contextlib.suppress(AssertionError):
            while (
                json.loads(device.expect(f"$aws/things/{thing}/jobs/get/accepted", 1.0).payload)["clientToken"] != token
            ):
                pass
            return True
    return False


def jobs_policy(ids: Identities, connect_resource: str) -> str:
    return ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/{connect_resource}"),
        statement(
            "Allow",
            ["iot:Publish", "iot:Receive", "iot:Subscribe"],
            f"{ids.arn}:topic*/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*",
        ),
        statement("Allow", "iot:Subscribe", f"{ids.arn}:topicfilter/$aws/things/*"),
    )


def test_a_refused_newcomer_leaves_the_holder_connected(ids: Identities) -> None:
    """Another certificate whose policy does not allow the holder's client id cannot cut it off."""
    holder_thing, other_thing = unique("holder"), unique("other")
    _arn, holder_cert, holder_key = ids.certificate(
        jobs_policy(ids, "${iot:Connection.Thing.ThingName}"), thing=holder_thing
    )
    _arn, other_cert, other_key = ids.certificate(
        jobs_policy(ids, "${iot:Connection.Thing.ThingName}"), thing=other_thing
    )
    holder = ids.connect(holder_cert, holder_key, holder_thing)
    assert answered(holder, holder_thing)
    for _ in range(5):
        reason = connack(ids.service, other_cert, other_key, holder_thing)
        assert reason.is_failure and reason.value == NOT_AUTHORIZED, reason
    assert not holder.disconnected.done()
    assert answered(holder, holder_thing)


def test_an_allowed_reconnect_of_the_same_thing_takes_over(ids: Identities) -> None:
    thing = unique("thing")
    _arn, cert, key = ids.certificate(jobs_policy(ids, "${iot:Connection.Thing.ThingName}"), thing=thing)
    first = ids.connect(cert, key, thing)
    second = ids.connect(cert, key, thing)
    first.disconnected.result(RESPONSE_TIMEOUT)  # as on AWS: the older connection is dropped
    assert answered(second, thing)
    assert not second.disconnected.done()


def test_a_certificate_without_connect_rights_is_refused(ids: Identities) -> None:
    thing = unique("thing")
    _arn, cert, key = ids.certificate(ids.policy(statement("Allow", "iot:Publish", "*")), thing=thing)
    reason = connack(ids.service, cert, key, thing)
    assert reason.is_failure and reason.value == NOT_AUTHORIZED, reason


def test_refusals_do_not_depend_on_the_broker_watch(service_factory: Callable[[], ServiceProcess]) -> None:
    """The watch (the service's log feed) may be down; CONNECT is still decided, and the broker's
    plugin keeps working after Mosquitto was killed and restarted by the service."""
    svc = service_factory()
    thing = unique("thing")
    cert, key = svc.provision(thing)
    (old,) = svc.broker_pids()
    os.kill(old, signal.SIGKILL)
    assert _reconnects(svc, cert, key, thing), "the restarted broker never accepted the device"
    assert svc.broker_pids() != [old]
    holder = Mqtt(svc, cert, key, thing)
    try:
        reason = connack(svc, cert, key, "iot-jobs-local-watch")
        assert reason.is_failure and reason.value == NOT_AUTHORIZED
        assert answered_after_restart(holder, thing)
        reason = connack(svc, cert, key, "iot-jobs-local-service")
        assert reason.is_failure and reason.value == NOT_AUTHORIZED
        assert answered(holder, thing)
        assert not holder.disconnected.done()
    finally:
        holder.close()


def _reconnects(svc: ServiceProcess, cert: Path, key: Path, client_id: str) -> bool:
    """Wait (with the CONNACK timeout per try) until the restarted broker accepts the device."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            reason = connack(svc, cert, key, client_id)
        except Exception:
            continue
        if not reason.is_failure:
            return True
    return False
