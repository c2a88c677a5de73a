"""The hostile-input corpus (hostile_corpus.py) against the running service, over MQTT and HTTP:
every case gets AWS's answer, never InternalError or a 500, and valid requests work afterwards."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hostile_corpus import HTTP_CASES, MQTT_CASES, HttpCase, MqttCase
from support.common import RESPONSE_TIMEOUT, unique
from support.raw_device import RawDevice
from support.service import ServiceProcess

PACKET_TOO_LARGE = 0x95
NEVER = ("InternalError", "InternalFailureException", "InternalFailure")


@pytest.fixture
def thing_and_job(service: ServiceProcess, raw_device: Callable[..., RawDevice]) -> tuple[RawDevice, str]:
    thing = unique("hostile")
    device = raw_device(thing)
    job = service.create_job(thing, {"step": "one"})
    return device, job


@pytest.mark.parametrize("case", MQTT_CASES, ids=[c.name for c in MQTT_CASES])
def test_mqtt(case: MqttCase, thing_and_job: tuple[RawDevice, str]) -> None:
    device, job = thing_and_job
    topic = f"$aws/things/{device.thing}/jobs/{case.suffix.replace('JOB', job)}"
    if case.code is None:
        # paho ignores the Maximum Packet Size the CONNACK announced: it sends, and the broker
        # disconnects that connection (0x95); the device's other connection hears no reply.
        sender = RawDevice(device.service, device.thing, subscribe=())
        gone: Future[Any] = Future()
        sender.client.on_disconnect = lambda c, u, f, reason, p: gone.done() or gone.set_result(reason)
        try:
            sender.client.publish(topic, case.payload, qos=1)
            reason = gone.result(RESPONSE_TIMEOUT)
            # 0x95 when the DISCONNECT reaches paho before the socket closes, else "unspecified".
            assert reason.is_failure and reason.value in (PACKET_TOO_LARGE, 0x80), reason
        finally:
            sender.close()
        device.assert_no_message(lambda m: m.topic.startswith(topic + "/"))
    else:
        assert device.publish(topic, case.payload) == 0
        reply = device.expect(lambda m: m.topic in (topic + "/accepted", topic + "/rejected"))
        assert reply.topic == topic + "/rejected", reply
        body = json.loads(reply.payload)  # the reply itself is always valid JSON
        assert body["code"] == case.code, body
    # The service answers a valid request afterwards, and the job is as it was.
    pending = device.request(f"$aws/things/{device.thing}/jobs/get", {"clientToken": "after"})
    assert pending.topic.endswith("/accepted")
    assert [j["jobId"] for j in pending.json()["queuedJobs"]] == [job]


def signed(service: ServiceProcess, case: HttpCase, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    key, secret = service.credentials.access_key_id, service.credentials.secret_access_key
    url = service.http_endpoint + path
    request = AWSRequest(method=case.method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), case.service, service.region).add_auth(request)
    prepared = request.prepare()
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request(case.method, path, body=body, headers=dict(prepared.headers))
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_http(case: HttpCase, service: ServiceProcess) -> None:
    thing = unique("hostile")
    iot = service.iot()
    thing_arn = iot.create_thing(thingName=thing)["thingArn"]
    job = service.create_job(thing, {"step": "one"})
    path = case.path.replace("NEWJOB", unique("job")).replace("THING", thing).replace("JOB", job)
    body = case.body.replace(b"THINGARN", thing_arn.encode())
    status, headers, payload = signed(service, case, path, body)
    code = headers.get("x-amzn-ErrorType", "").split(":")[0]
    assert (status, code) == (case.status, case.code), payload[:300]
    assert code not in NEVER
    json.loads(payload)  # an error body is JSON too
    assert iot.describe_job_execution(jobId=job, thingName=thing)["execution"]["status"] == "QUEUED"


def test_a_declared_100_mib_body_is_refused_from_its_headers(service: ServiceProcess) -> None:
    where = urlsplit(service.http_endpoint)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.putrequest("PUT", f"/jobs/{unique('job')}")
        connection.putheader("Content-Length", str(100 * 1024 * 1024))
        connection.putheader("Expect", "100-continue")
        connection.endheaders()
        response = connection.getresponse()  # answered without a byte of the body sent
        assert response.status == 413
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


def test_a_body_signed_as_unsigned_payload_is_refused(service: ServiceProcess) -> None:
    """UNSIGNED-PAYLOAD is S3's option; here the body is always signed, so it cannot be changed."""
    key, secret = service.credentials.access_key_id, service.credentials.secret_access_key
    thing = unique("unsigned")
    path = f"/things/{thing}"
    url = service.http_endpoint + path
    request = AWSRequest(method="POST", url=url, data=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(key, secret), "iot", service.region).add_auth(request)
    headers: dict[str, Any] = dict(request.prepare().headers)
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        tampered = b'{"attributePayload":{"attributes":{"owner":"mallory"}}}'
        headers["Content-Length"] = str(len(tampered))
        connection.request("POST", path, body=tampered, headers=headers)
        response = connection.getresponse()
        assert response.status == 403, response.read()
        assert response.getheader("x-amzn-ErrorType", "").startswith("InvalidSignatureException")
    finally:
        connection.close()
    assert service.iot().list_things(attributeName="owner", attributeValue="mallory")["things"] == []
