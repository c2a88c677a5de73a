"""What a device may do on the broker is what the IoT policies attached to its certificate allow.

Certificates come from CreateKeysAndCertificate, policies from CreatePolicy/CreatePolicyVersion,
all through boto3; devices are real paho (MQTT 5) and awsiotsdk clients with those certificates.
Changes take effect while everyone stays connected (Mosquitto reloads its ACL and CRL on SIGHUP;
the broker process never changes), and are in force when the API call returns.

Refusals as this broker shows them: a PUBLISH gets PUBACK 0x87 (135, not authorized); a message on
a topic the policy does not let the device receive is simply not delivered; a client id iot:Connect
does not allow has its connection closed right after its CONNACK (Mosquitto 2.0.11 closes the
socket without a DISCONNECT packet, as AWS does); a certificate that is not ACTIVE fails the TLS
handshake.
"""

from __future__ import annotations

import contextlib
import json
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED
from support.common import RESPONSE_TIMEOUT, free_port, unique
from support.raw_device import Message, paho_client
from support.service import ServiceProcess

NOT_AUTHORIZED = 135
REPOSITORY_POLICY = Path(__file__).resolve().parents[1] / "policies" / "device-policy.json"


class Mqtt:
    """A paho MQTT 5 connection made with a given certificate, with futures for every reply."""

    def __init__(self, service: ServiceProcess, cert: Path, key: Path, client_id: str | None = None) -> None:
        self.client_id = client_id or f"test-{uuid.uuid4().hex[:16]}"
        self.client = paho_client(self.client_id, ca=service.ca_path, cert=cert, key=key)
        self.client.reconnect_delay_set(min_delay=30, max_delay=30)  # a refused client must not come back
        self._lock = threading.Lock()
        self._acks: dict[int, Future[Any]] = {}
        self._subacks: dict[int, Future[Any]] = {}
        self.connected: Future[Any] = Future()
        self.disconnected: Future[Any] = Future()
        self.messages: queue.Queue[Message] = queue.Queue()
        self.client.on_connect = lambda c, u, f, reason, p: _settle(self.connected, reason)
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda c, u, mid, reason, p: self._future(self._acks, mid).set_result(reason)
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self._future(self._subacks, mid).set_result(reasons)
        self.client.on_message = lambda c, u, m: self.messages.put(
            Message(m.topic, bytes(m.payload), m.qos, bool(m.retain))
        )
        self.client.connect("localhost", service.mqtt_port, keepalive=30)
        self.client.loop_start()
        reason = self.connected.result(RESPONSE_TIMEOUT)
        assert not reason.is_failure, f"CONNACK {reason}"

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        _settle(self.connected, ConnectionError(f"disconnected before CONNACK: {reason}"))
        _settle(self.disconnected, reason)

    def _future(self, table: dict[int, Future[Any]], mid: int) -> Future[Any]:
        with self._lock:
            return table.setdefault(mid, Future())

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """PUBACK reason code: 0 or 16 (no subscribers) when allowed, 135 when not."""
        info = self.client.publish(topic, payload, qos=1)
        return int(self._future(self._acks, info.mid).result(RESPONSE_TIMEOUT).value)

    def subscribe(self, topic_filter: str) -> None:
        _result, mid = self.client.subscribe(topic_filter, qos=1)
        self._future(self._subacks, mid).result(RESPONSE_TIMEOUT)

    def expect(self, topic: str, timeout: float = RESPONSE_TIMEOUT) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.client_id}: nothing on {topic} within {timeout} s") from None
            if message.topic == topic:
                return message

    def assert_nothing(self, topic: str, within: float = 0.5) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            assert message.topic != topic, f"{self.client_id} received {message}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def _settle(future: Future[Any], value: Any) -> None:
    with contextlib.suppress(Exception):  # already settled
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def allowed(code: int) -> bool:
    return code in (0, 16)


def tls_refused(service: ServiceProcess, cert: Path, key: Path) -> bool:
    """True if the broker refuses this certificate at the handshake (or before any CONNACK)."""
    client = paho_client(f"test-{uuid.uuid4().hex[:12]}", ca=service.ca_path, cert=cert, key=key)
    outcome: Future[bool] = Future()
    client.on_connect = lambda c, u, f, reason, p: _settle(outcome, reason.is_failure)
    client.on_disconnect = lambda c, u, f, reason, p: _settle(outcome, True)
    try:
        client.connect("localhost", service.mqtt_port, keepalive=10)
    except (ssl.SSLError, OSError):
        return True
    client.loop_start()
    try:
        return outcome.result(RESPONSE_TIMEOUT)
    finally:
        client.disconnect()
        client.loop_stop()


class Identities:
    """Certificates and policies made for one test through boto3, cleaned up after it."""

    def __init__(self, service: ServiceProcess, directory: Path) -> None:
        self.service = service
        self.iot = service.iot()
        self.directory = directory
        self.arn = f"arn:aws:iot:{service.region}:{service.account}"
        self.clients: list[Mqtt] = []

    def certificate(self, *policies: str, thing: str | None = None, exclusive: bool = True) -> tuple[str, Path, Path]:
        """A new ACTIVE certificate with ``policies`` attached (and ``thing``): (ARN, cert, key)."""
        made = self.iot.create_keys_and_certificate(setAsActive=True)
        cert = self.directory / f"{made['certificateId'][:16]}.crt"
        key = self.directory / f"{made['certificateId'][:16]}.key"
        cert.write_text(made["certificatePem"])
        key.write_text(made["keyPair"]["PrivateKey"])
        for name in policies:
            self.iot.attach_policy(policyName=name, target=made["certificateArn"])
        if thing is not None:
            self.iot.create_thing(thingName=thing)
            self.iot.attach_thing_principal(
                thingName=thing,
                principal=made["certificateArn"],
                thingPrincipalType="EXCLUSIVE_THING" if exclusive else "NON_EXCLUSIVE_THING",
            )
        return made["certificateArn"], cert, key

    def policy(self, *statements: dict[str, Any]) -> str:
        name = unique("policy")
        self.iot.create_policy(policyName=name, policyDocument=document(*statements))
        return name

    def connect(self, cert: Path, key: Path, client_id: str | None = None) -> Mqtt:
        client = Mqtt(self.service, cert, key, client_id)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def statement(effect: str, action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.fixture
def ids(service: ServiceProcess, tmp_path: Path) -> Iterator[Identities]:
    made = Identities(service, tmp_path)
    yield made
    made.close()


# --------------------------------------------------------------------------------------------------
# Publish, receive, connect
# --------------------------------------------------------------------------------------------------


def test_a_device_may_do_what_its_policy_allows_and_nothing_else(ids: Identities) -> None:
    tag = unique("s")
    client_id = f"client-{tag}"
    policy = ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/{client_id}"),
        statement("Allow", "iot:Publish", f"{ids.arn}:topic/sensors/{tag}/out"),
        statement("Allow", "iot:Receive", f"{ids.arn}:topic/sensors/{tag}/in"),
        statement("Allow", "iot:Subscribe", f"{ids.arn}:topicfilter/sensors/{tag}/*"),
    )
    feeder_policy = ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/*"),
        statement("Allow", "iot:Publish", f"{ids.arn}:topic/sensors/{tag}/*"),
    )
    _arn, cert, key = ids.certificate(policy)
    _arn, feeder_cert, feeder_key = ids.certificate(feeder_policy)
    device = ids.connect(cert, key, client_id)
    feeder = ids.connect(feeder_cert, feeder_key)

    assert allowed(device.publish(f"sensors/{tag}/out"))
    assert device.publish(f"sensors/{tag}/in") == NOT_AUTHORIZED
    assert device.publish(f"sensors/{unique('other')}/out") == NOT_AUTHORIZED
    assert device.publish(f"$aws/things/{tag}/jobs/get") == NOT_AUTHORIZED

    device.subscribe(f"sensors/{tag}/#")
    assert allowed(feeder.publish(f"sensors/{tag}/out", b"not for you"))
    assert allowed(feeder.publish(f"sensors/{tag}/in", b"for you"))
    assert device.expect(f"sensors/{tag}/in").payload == b"for you"
    device.assert_nothing(f"sensors/{tag}/out")


def connack(service: ServiceProcess, cert: Path, key: Path, client_id: str) -> Any:
    """The CONNACK reason a connection with this certificate and client id gets (then closed)."""
    client = paho_client(client_id, ca=service.ca_path, cert=cert, key=key)
    client.reconnect_delay_set(min_delay=30, max_delay=30)
    answered: Future[Any] = Future()
    client.on_connect = lambda c, u, f, reason, p: _settle(answered, reason)
    client.on_disconnect = lambda c, u, f, reason, p: _settle(answered, reason)
    client.connect("localhost", service.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        return answered.result(RESPONSE_TIMEOUT)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()


def test_a_client_id_that_iot_connect_does_not_allow_is_refused_at_connect(ids: Identities) -> None:
    thing = unique("thing")
    policy = ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/${{iot:Connection.Thing.ThingName}}"),
        statement("Allow", "iot:Publish", f"{ids.arn}:topic/t/${{iot:Connection.Thing.ThingName}}"),
    )
    # NON_EXCLUSIVE: the thing name variable resolves only when the client id is the thing's name.
    _arn, cert, key = ids.certificate(policy, thing=thing, exclusive=False)
    good = ids.connect(cert, key, thing)
    reason = connack(ids.service, cert, key, f"{thing}-2")
    assert reason.is_failure and reason.value == NOT_AUTHORIZED, reason
    # The allowed client was not touched, and still works.
    assert allowed(good.publish(f"t/{thing}"))
    assert not good.disconnected.done()


def test_thing_policy_variables_confine_each_device_to_its_thing(ids: Identities) -> None:
    policy = ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/*"),
        statement(
            "Allow",
            ["iot:Publish", "iot:Receive"],
            f"{ids.arn}:topic/things/${{iot:Connection.Thing.ThingName}}/*",
        ),
    )
    mine, theirs = unique("thing"), unique("thing")
    _arn, my_cert, my_key = ids.certificate(policy, thing=mine)
    _arn, their_cert, their_key = ids.certificate(policy, thing=theirs)
    me = ids.connect(my_cert, my_key)
    them = ids.connect(their_cert, their_key)
    me.subscribe("things/+/data")
    them.subscribe(f"things/{theirs}/data")

    assert me.publish(f"things/{theirs}/data") == NOT_AUTHORIZED
    assert allowed(them.publish(f"things/{theirs}/data", b"theirs"))
    assert them.expect(f"things/{theirs}/data").payload == b"theirs"
    me.assert_nothing(f"things/{theirs}/data")
    assert allowed(me.publish(f"things/{mine}/data", b"mine"))
    assert me.expect(f"things/{mine}/data").payload == b"mine"


def test_no_policy_lets_a_device_forge_jobs_replies_or_events(ids: Identities) -> None:
    everything = ids.policy(statement("Allow", "iot:*", "*"))
    thing = unique("thing")
    _arn, cert, key = ids.certificate(everything, thing=thing)
    device = ids.connect(cert, key)
    base = f"$aws/things/{thing}/jobs"
    for topic in (
        f"{base}/notify",
        f"{base}/notify-next",
        f"{base}/get/accepted",
        f"{base}/j1/update/rejected",
        f"$aws/events/job/{thing}/completed",
    ):
        assert device.publish(topic) == NOT_AUTHORIZED, topic
    assert allowed(device.publish(f"{base}/get", b'{"clientToken": "t"}'))
    assert allowed(device.publish(f"anything/{thing}"))


def test_deny_wins_over_allow(ids: Identities) -> None:
    tag = unique("d")
    policy = ids.policy(
        statement("Allow", "iot:*", "*"),
        statement("Deny", "iot:Publish", f"{ids.arn}:topic/{tag}/blocked/*"),
    )
    _arn, cert, key = ids.certificate(policy)
    device = ids.connect(cert, key)
    assert allowed(device.publish(f"{tag}/open/x"))
    assert device.publish(f"{tag}/blocked/x") == NOT_AUTHORIZED


def test_client_id_variable_with_a_wildcard_connect(ids: Identities) -> None:
    """``${iot:ClientId}`` cannot be known before the device connects: the ACL follows connections."""
    tag = unique("c")
    policy = ids.policy(
        statement("Allow", "iot:Connect", f"{ids.arn}:client/*"),
        statement("Allow", "iot:Publish", f"{ids.arn}:topic/{tag}/${{iot:ClientId}}"),
    )
    _arn, cert, key = ids.certificate(policy)
    device = ids.connect(cert, key, f"id-{tag}")
    deadline = time.monotonic() + RESPONSE_TIMEOUT
    while not allowed(device.publish(f"{tag}/id-{tag}")):  # the ACL is rebuilt just after the CONNACK
        assert time.monotonic() < deadline, "the ACL never followed the connection's client id"
    assert device.publish(f"{tag}/someone-else") == NOT_AUTHORIZED


# --------------------------------------------------------------------------------------------------
# Changes while connected
# --------------------------------------------------------------------------------------------------


def test_a_policy_change_takes_effect_at_once_and_nobody_is_disconnected(
    service: ServiceProcess, ids: Identities
) -> None:
    tag = unique("v")
    connect = statement("Allow", "iot:Connect", f"{ids.arn}:client/*")
    policy = ids.policy(connect, statement("Allow", "iot:Publish", f"{ids.arn}:topic/{tag}/a"))
    listener_policy = ids.policy(connect, statement("Allow", "iot:Receive", f"{ids.arn}:topic/{tag}/*"))
    _arn, cert, key = ids.certificate(policy)
    listener_arn, listener_cert, listener_key = ids.certificate(listener_policy)
    device = ids.connect(cert, key)
    listener = ids.connect(listener_cert, listener_key)
    listener.subscribe(f"{tag}/#")
    brokers = service.broker_pids()

    assert allowed(device.publish(f"{tag}/a", b"1"))
    assert device.publish(f"{tag}/b", b"2") == NOT_AUTHORIZED
    assert listener.expect(f"{tag}/a").payload == b"1"

    # A new default version: in force when the call returns.
    ids.iot.create_policy_version(
        policyName=policy,
        policyDocument=document(connect, statement("Allow", "iot:Publish", f"{ids.arn}:topic/{tag}/b")),
        setAsDefault=True,
    )
    assert device.publish(f"{tag}/a", b"3") == NOT_AUTHORIZED
    assert allowed(device.publish(f"{tag}/b", b"4"))
    assert listener.expect(f"{tag}/b").payload == b"4"

    # Back to version 1, then detach and attach again.
    ids.iot.set_default_policy_version(policyName=policy, policyVersionId="1")
    assert allowed(device.publish(f"{tag}/a", b"5"))
    assert listener.expect(f"{tag}/a").payload == b"5"
    ids.iot.detach_policy(policyName=listener_policy, target=listener_arn)
    assert allowed(device.publish(f"{tag}/a", b"6"))
    listener.assert_nothing(f"{tag}/a")
    ids.iot.attach_policy(policyName=listener_policy, target=listener_arn)
    assert allowed(device.publish(f"{tag}/a", b"7"))
    assert listener.expect(f"{tag}/a").payload == b"7"

    # Same broker process, same connections throughout.
    assert service.broker_pids() == brokers
    assert not device.disconnected.done() and not listener.disconnected.done()


def test_an_inactive_certificate_is_disconnected_and_refused(ids: Identities) -> None:
    policy = ids.policy(statement("Allow", "iot:*", "*"))
    arn, cert, key = ids.certificate(policy)
    _other_arn, other_cert, other_key = ids.certificate(policy)
    certificate_id = arn.rsplit("/", 1)[1]
    device = ids.connect(cert, key)
    bystander = ids.connect(other_cert, other_key)

    ids.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    device.disconnected.result(RESPONSE_TIMEOUT)  # AWS closes its connections too
    assert tls_refused(ids.service, cert, key)
    assert allowed(bystander.publish(f"{unique('b')}/x"))
    assert not bystander.disconnected.done()

    ids.iot.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")
    assert allowed(ids.connect(cert, key).publish(f"{unique('b')}/x"))

    # Deleting: INACTIVE first, detached from its policies (or forced).
    ids.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    ids.iot.delete_certificate(certificateId=certificate_id, forceDelete=True)
    assert tls_refused(ids.service, cert, key)


def test_the_repository_device_policy_works_unchanged_for_the_console(
    service: ServiceProcess, ids: Identities, device: Callable[..., Device]
) -> None:
    """policies/device-policy.json, placeholders filled, on a certificate of its own: the console's
    operations (client id ``test-<uuid>``, both event streams, get/start-next/describe/update) work,
    and what the policy does not allow is refused."""
    thing = unique("repo")
    filled = (
        REPOSITORY_POLICY.read_text()
        .replace("<region>", service.region)
        .replace("<account>", service.account)
        .replace("<thingname>", thing)
    )
    name = unique("repo-policy")
    ids.iot.create_policy(policyName=name, policyDocument=filled)
    arn, cert, key = ids.certificate(name, thing=thing, exclusive=False)
    assert ids.iot.list_attached_policies(target=arn)["policies"] == [
        {"policyName": name, "policyArn": f"{ids.arn}:policy/{name}"}
    ]
    # The device helpers use the files in devices/<thing>/; provision keeps existing files.
    target = service.state_dir / "devices" / thing
    target.mkdir(parents=True)
    (target / "device.crt").write_bytes(cert.read_bytes())
    (target / "device.key").write_bytes(key.read_bytes())

    sdk = device(thing, client_id=f"test-{uuid.uuid4()}")
    job = service.create_job(thing, {"operation": "reboot"})
    assert sdk.next_event(NEXT_CHANGED).execution.job_id == job
    assert sdk.next_event(JOBS_CHANGED).jobs["QUEUED"][0].job_id == job
    assert sdk.get_pending().queued_jobs[0].job_id == job
    started = sdk.start_next()
    assert started.execution.job_id == job and started.execution.status == "IN_PROGRESS"
    assert sdk.describe(job).execution.status == "IN_PROGRESS"
    sdk.update(job, "SUCCEEDED")
    assert sdk.describe(job).execution.status == "SUCCEEDED"

    # Outside the policy: another thing's topics, and a client id that is not test-*.
    raw = ids.connect(cert, key, f"test-{uuid.uuid4()}")
    assert raw.publish(f"$aws/things/{unique('other')}/jobs/get") == NOT_AUTHORIZED
    assert raw.publish(f"$aws/things/{thing}/jobs/notify") == NOT_AUTHORIZED
    reason = connack(ids.service, cert, key, f"sample-{uuid.uuid4()}")
    assert reason.is_failure and reason.value == NOT_AUTHORIZED, reason


# --------------------------------------------------------------------------------------------------
# Provisioning and upgrades
# --------------------------------------------------------------------------------------------------


def test_provision_attaches_the_default_device_policy(service: ServiceProcess) -> None:
    thing = unique("prov")
    cert, _key = service.provision(thing)
    iot = service.iot()
    principals = iot.list_thing_principals_v2(thingName=thing)["thingPrincipalObjects"]
    assert len(principals) == 1 and principals[0]["thingPrincipalType"] == "EXCLUSIVE_THING"
    arn = principals[0]["principal"]
    described = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[1])["certificateDescription"]
    assert described["status"] == "ACTIVE" and described["certificatePem"] == cert.read_text()
    assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == ["iot-jobs-local-device"]
    # Provisioning again keeps everything as it is.
    assert service.provision(thing)[0].read_bytes() == cert.read_bytes()
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arn]


def test_provision_while_the_service_is_stopped(service_factory: Callable[[], ServiceProcess]) -> None:
    svc = service_factory()
    thing = unique("offline")
    svc.iot().create_thing(thingName=thing, attributePayload={"attributes": {"site": "lab"}})
    svc.stop()
    cert, key = svc.provision(thing)  # applied to the state directory directly; the thing is kept
    svc.start()
    device = Mqtt(svc, cert, key)
    try:
        device.subscribe(f"$aws/things/{thing}/jobs/get/+")
        assert allowed(device.publish(f"$aws/things/{thing}/jobs/get", b'{"clientToken": "c1"}'))
        assert json.loads(device.expect(f"$aws/things/{thing}/jobs/get/accepted").payload)["clientToken"] == "c1"
    finally:
        device.close()
    assert svc.iot().describe_thing(thingName=thing)["attributes"] == {"site": "lab"}


def test_certificates_issued_by_an_older_version_keep_working(tmp_path: Path) -> None:
    """Older versions issued EC certificates with CN = thing name and kept no certificate records:
    the service registers them at start, attached to their thing with the default policy."""
    from iot_jobs_local.identity import pki
    from iot_jobs_local.state_dir import StateDir

    state = StateDir(tmp_path / "state")
    state.ensure_pki()
    thing = unique("legacy")
    legacy = pki._leaf(state.ca(), thing, server=False)  # what the old provision made
    pki.write_private(state.device_key(thing), legacy.private_key_pem)
    state.device_cert(thing).write_bytes(legacy.certificate_pem)

    svc = ServiceProcess(state.root, free_port(), free_port(), tmp_path / "service.log")
    svc.start()
    try:
        described = svc.iot().describe_certificate(certificateId=legacy.certificate_id)["certificateDescription"]
        assert described["status"] == "ACTIVE"
        assert svc.iot().list_principal_things(principal=described["certificateArn"])["things"] == [thing]
        device = Mqtt(svc, state.device_cert(thing), state.device_key(thing))
        try:
            device.subscribe(f"$aws/things/{thing}/jobs/get/+")
            assert allowed(device.publish(f"$aws/things/{thing}/jobs/get", b'{"clientToken": "c1"}'))
            device.expect(f"$aws/things/{thing}/jobs/get/accepted")
            assert device.publish(f"$aws/things/{unique('x')}/jobs/get") == NOT_AUTHORIZED
        finally:
            device.close()
    finally:
        svc.stop()


def test_a_device_cannot_take_over_the_services_own_client_ids(service_factory: Callable[[], ServiceProcess]) -> None:
    """Client ids are one space for the whole broker; the service's own are refused to devices at
    CONNECT even when their policy allows any client id (the default device policy does), and the
    service keeps answering as if nothing happened."""
    svc = service_factory()
    thing = unique("thief")
    cert, key = svc.provision(thing)
    device = Mqtt(svc, cert, key)
    try:
        device.subscribe(f"$aws/things/{thing}/jobs/get/+")
        for _ in range(5):
            for stolen in ("iot-jobs-local-service", "iot-jobs-local-watch", "$aws-anything"):
                reason = connack(svc, cert, key, stolen)
                assert reason.is_failure and reason.value == NOT_AUTHORIZED, (stolen, reason)
            # Answered at once, every time: the service's link was never cut.
            token = uuid.uuid4().hex
            assert allowed(device.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": token}).encode()))
            reply = device.expect(f"$aws/things/{thing}/jobs/get/accepted")
            assert json.loads(reply.payload)["clientToken"] == token
        assert not device.disconnected.done()
    finally:
        device.close()
