"""Isolation and authentication on the device listener: mutual TLS with the local CA, and each device
confined to its own ``$aws/things/<thing>/jobs/...`` topics (certificate CN = thing name)."""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iot_jobs_local.testing import Device
from iot_jobs_local.testing.device import JOBS_CHANGED, NEXT_CHANGED, modeled
from support.common import unique
from support.raw_device import RawDevice, paho_client
from support.service import ServiceProcess

NOT_AUTHORIZED = 135  # MQTT5 PUBACK reason code 0x87


# --------------------------------------------------------------------------------------------------
# Topic isolation between devices
# --------------------------------------------------------------------------------------------------


def test_sdk_request_for_another_thing_fails_fast(service: ServiceProcess, device: Callable[..., Device]) -> None:
    from awsiot import V2ServiceException

    mine, theirs = device(), device()
    job = service.create_job(theirs.thing, {"secret": "theirs"})
    theirs.next_event(NEXT_CHANGED)
    theirs.next_event(JOBS_CHANGED)
    attempts: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("get_pending", (), {}),
        ("start_next", (), {}),
        ("describe", (job,), {}),
        ("describe", ("$next",), {}),
        ("update", (job, "SUCCEEDED"), {}),
    ]
    for operation, args, kwargs in attempts:
        started = time.monotonic()
        with pytest.raises(V2ServiceException) as failure:
            getattr(mine, operation)(*args, thing=theirs.thing, timeout=10, **kwargs)
        elapsed = time.monotonic() - started
        # A publish failure (PUBACK "not authorized"), not the 5 s operation timeout, and no reply.
        assert elapsed < 3.0, f"{operation} took {elapsed:.1f} s: it timed out instead of failing on the PUBACK"
        assert failure.value.modeled_error is None, modeled(failure.value.modeled_error)
        assert "PUBLISH_FAILURE" in repr(failure.value.inner_error), repr(failure.value.inner_error)

    # None of it reached the other thing: its job is still QUEUED at version 1, and it heard nothing.
    described = theirs.describe(job)
    assert described.execution.status == "QUEUED" and described.execution.version_number == 1
    theirs.assert_no_event()
    # The refused device still works for its own thing.
    assert mine.get_pending().queued_jobs == []


def test_raw_publish_on_another_things_request_topics_is_not_authorized(
    service: ServiceProcess, raw_device: Callable[..., RawDevice]
) -> None:
    victim = raw_device()
    job = service.create_job(victim.thing, {"secret": "theirs"})
    victim.expect(f"$aws/things/{victim.thing}/jobs/notify-next")
    attacker = raw_device(subscribe=(f"$aws/things/{victim.thing}/jobs/#",))
    base = f"$aws/things/{victim.thing}/jobs"
    for topic, payload in [
        (f"{base}/get", {"clientToken": "x1"}),
        (f"{base}/start-next", {"clientToken": "x2"}),
        (f"{base}/{job}/get", {"clientToken": "x3"}),
        (f"{base}/$next/get", {"clientToken": "x4"}),
        (f"{base}/{job}/update", {"clientToken": "x5", "status": "SUCCEEDED"}),
    ]:
        assert attacker.publish(topic, payload) == NOT_AUTHORIZED, topic

    def is_reply(m: Any) -> bool:
        return bool(m.topic.endswith(("/accepted", "/rejected")))

    # No reply anywhere (the victim would see one on its own reply topics), and nothing changed.
    victim.assert_no_message(is_reply, within=1.0)
    attacker.assert_no_message(lambda m: True, within=0.1)
    reply = victim.request(f"{base}/{job}/get", {"clientToken": "mine"}).json()
    assert reply["execution"]["status"] == "QUEUED" and reply["execution"]["versionNumber"] == 1
    # ...and the attacker, subscribed to the victim's topics, did not get the victim's reply either.
    attacker.assert_no_message(lambda m: True, within=0.3)


def test_a_device_cannot_publish_on_its_own_response_or_event_topics(
    service: ServiceProcess, device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    d = device()
    raw = raw_device(d.thing)
    job = service.create_job(d.thing, {"a": 1})
    d.next_event(JOBS_CHANGED)
    d.next_event(NEXT_CHANGED)
    base = f"$aws/things/{d.thing}/jobs"
    fake_event = {"timestamp": 1700000000, "jobs": {}}
    for topic in [
        f"{base}/get/accepted",
        f"{base}/get/rejected",
        f"{base}/start-next/accepted",
        f"{base}/start-next/rejected",
        f"{base}/{job}/get/accepted",
        f"{base}/$next/get/accepted",
        f"{base}/{job}/update/accepted",
        f"{base}/{job}/update/rejected",
        f"{base}/notify",
        f"{base}/notify-next",
    ]:
        assert raw.publish(topic, fake_event) == NOT_AUTHORIZED, topic
    # No forged event reached the device's streams.
    d.assert_no_event(within=0.5)
    raw.assert_no_message(lambda m: m.payload.startswith(b'{"timestamp": 1700000000'), within=0.1)


def test_subscribing_to_another_things_topics_delivers_nothing(
    service: ServiceProcess, device: Callable[..., Device], raw_device: Callable[..., RawDevice]
) -> None:
    victim = device()
    victim_raw = raw_device(victim.thing)
    spy = raw_device(subscribe=())
    for topic_filter in (
        f"$aws/things/{victim.thing}/jobs/notify",
        f"$aws/things/{victim.thing}/jobs/notify-next",
        f"$aws/things/{victim.thing}/jobs/#",
        "$aws/things/+/jobs/notify",
        "$aws/things/+/jobs/notify-next",
        "$aws/things/+/jobs/#",
    ):
        # Mosquitto grants the subscription (or refuses it); either way it must never deliver.
        codes = spy.subscribe(topic_filter)
        assert len(codes) == 1
    victim_topic = f"$aws/things/{victim.thing}/"

    job = service.create_job(victim.thing, {"secret": "theirs"})
    # Positive control: the victim receives both events, on its SDK streams and raw...
    assert victim.next_event(NEXT_CHANGED).execution.job_id == job
    assert victim.next_event(JOBS_CHANGED).jobs["QUEUED"][0].job_id == job
    victim_raw.expect(f"$aws/things/{victim.thing}/jobs/notify-next")
    # ...and a reply of its own.
    victim.start_next()
    victim_raw.expect(f"$aws/things/{victim.thing}/jobs/start-next/accepted")
    # The spy got none of it.
    spy.assert_no_message(lambda m: m.topic.startswith(victim_topic), within=1.0)


# --------------------------------------------------------------------------------------------------
# Authentication: only certificates issued by the local CA
# --------------------------------------------------------------------------------------------------


def _connect_outcome(client: Any, port: int, timeout: float = 5.0) -> tuple[bool, str]:
    """Try to connect a paho client: (True, ...) only on a successful CONNACK."""
    outcome: Future[tuple[bool, str]] = Future()

    def settle(value: tuple[bool, str]) -> None:
        with contextlib.suppress(Exception):  # a race with another callback that settled it first
            outcome.set_result(value)

    client.on_connect = lambda c, u, f, rc, p: settle((not rc.is_failure, f"CONNACK {rc}"))
    client.on_disconnect = lambda c, u, f, rc, p: settle((False, f"disconnected: {rc}"))
    client.on_connect_fail = lambda c, u: settle((False, "connect failed"))
    try:
        client.connect("localhost", port, keepalive=10)
    except OSError as exc:  # ssl.SSLError is an OSError
        return False, f"connect raised {exc!r}"
    client.loop_start()
    try:
        return outcome.result(timeout)
    except FutureTimeout:
        return False, f"no CONNACK within {timeout} s"
    finally:
        client.disconnect()
        client.loop_stop()


def _foreign_ca_and_client(directory: Path, common_name: str) -> tuple[Path, Path, Path]:
    """A CA of our own and a client certificate for ``common_name`` signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the iot-jobs-local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "foreign-ca.crt", directory / "foreign.crt", directory / "foreign.key")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_a_client_without_a_certificate_cannot_connect(service: ServiceProcess) -> None:
    client = paho_client(unique("nocert"), ca=service.ca_path)
    connected, detail = _connect_outcome(client, service.mqtt_port)
    assert not connected, detail


def test_a_certificate_from_another_ca_cannot_connect(
    service: ServiceProcess, raw_device: Callable[..., RawDevice], tmp_path: Path
) -> None:
    # The thing exists and its real certificate works (positive control)...
    genuine = raw_device()
    assert genuine.request(f"$aws/things/{genuine.thing}/jobs/get", {"clientToken": "ok"}).topic.endswith("/accepted")
    # ...but a certificate with the same CN from another CA is refused.
    _ca, cert, key = _foreign_ca_and_client(tmp_path, genuine.thing)
    client = paho_client(unique("impostor"), ca=service.ca_path, cert=cert, key=key)
    connected, detail = _connect_outcome(client, service.mqtt_port)
    assert not connected, detail
