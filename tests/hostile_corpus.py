"""Hostile input for both device planes and the control plane, each case with the answer AWS gives
(or, where AWS's is not documented, the one the fidelity page records). Used by test_hostile_input.

``JOB`` in a topic or path stands for a job the test created for the thing, ``THING`` for the thing.
"""

from __future__ import annotations

from dataclasses import dataclass

BIG = 2**63  # one past a Java long / SQLite INTEGER
DEEP_ARRAY = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000
DEEP_OBJECT_MQTT = b'{"a":' * 20_000  # 100 KB: under the 128 KB a PUBLISH may carry
DEEP_FIELD = b'{"clientToken":"t","x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
KIB = 1024


@dataclass(frozen=True)
class MqttCase:
    """A request on ``$aws/things/THING/jobs/<suffix>``; ``code`` of its rejected reply, or None when
    the PUBLISH is over AWS's 128 KB: the broker's CONNACK told the client so, and it is never sent
    (or, sent anyway, the broker disconnects the client): the service never sees it."""

    name: str
    suffix: str
    payload: bytes
    code: str | None


MQTT_CASES = [
    MqttCase("deep-array", "get", DEEP_ARRAY, "InvalidJson"),
    MqttCase("deep-object", "start-next", DEEP_OBJECT_MQTT, "InvalidJson"),
    MqttCase("deep-object-250-KB", "start-next", DEEP_OBJECT, None),
    MqttCase("deep-extra-field", "JOB/update", DEEP_FIELD, "InvalidJson"),
    MqttCase("execution-number-2^63-get", "JOB/get", b'{"executionNumber":%d}' % BIG, "InvalidRequest"),
    MqttCase(
        "execution-number-2^63-update",
        "JOB/update",
        b'{"status":"IN_PROGRESS","executionNumber":%d}' % BIG,
        "InvalidRequest",
    ),
    MqttCase(
        "expected-version-2^63", "JOB/update", b'{"status":"IN_PROGRESS","expectedVersion":%d}' % BIG, "InvalidRequest"
    ),
    MqttCase("execution-number--2^63-1", "JOB/get", b'{"executionNumber":%d}' % (-BIG - 1), "InvalidRequest"),
    MqttCase("nan-client-token", "get", b'{"clientToken":NaN}', "InvalidJson"),
    MqttCase("infinity", "get", b'{"clientToken":"t","x":Infinity}', "InvalidJson"),
    MqttCase("minus-infinity", "get", b'{"clientToken":"t","x":-Infinity}', "InvalidJson"),
    MqttCase("nan-expected-version", "JOB/update", b'{"status":"IN_PROGRESS","expectedVersion":NaN}', "InvalidJson"),
    MqttCase("1e400", "JOB/get", b'{"executionNumber":1E400}', "InvalidJson"),
    MqttCase("utf16-bom", "get", '{"clientToken":"t"}'.encode("utf-16"), "InvalidJson"),
    MqttCase("utf8-bom", "get", b'\xef\xbb\xbf{"clientToken":"t"}', "InvalidJson"),
    MqttCase("invalid-utf8", "get", b'{"clientToken":"\xff\xfe"}', "InvalidJson"),
    MqttCase("5000-digit-integer", "JOB/get", b'{"executionNumber":' + b"9" * 5000 + b"}", "InvalidJson"),
    MqttCase("not-an-object", "get", b"[1,2,3]", "InvalidJson"),
    MqttCase("truncated", "JOB/update", b'{"status":"IN_PRO', "InvalidJson"),
    MqttCase("130-KiB", "get", b'{"clientToken":"t","x":"' + b"a" * (130 * KIB) + b'"}', None),
    MqttCase("1-MiB", "get", b'{"x":"' + b"a" * (1024 * KIB) + b'"}', None),
    MqttCase("8-MiB", "JOB/update", b'{"x":"' + b"a" * (8 * 1024 * KIB) + b'"}', None),
    MqttCase("200-KiB-client-token", "get", b'{"clientToken":"' + b"t" * (200 * KIB) + b'"}', None),
]


@dataclass(frozen=True)
class HttpCase:
    """A signed request to ``service`` (``iot`` or ``iot-jobs-data``): status and error code."""

    name: str
    service: str
    method: str
    path: str
    body: bytes
    status: int
    code: str


HTTP_CASES = [
    HttpCase("deep-array-create-job", "iot", "PUT", "/jobs/NEWJOB", DEEP_ARRAY, 400, "InvalidRequestException"),
    HttpCase("deep-object-create-job", "iot", "PUT", "/jobs/NEWJOB", DEEP_OBJECT, 400, "InvalidRequestException"),
    HttpCase(
        "deep-field-create-job",
        "iot",
        "PUT",
        "/jobs/NEWJOB",
        b'{"targets":["arn"],"document":"{}","x":' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "deep-document",
        "iot",
        "PUT",
        "/jobs/NEWJOB",
        b'{"targets":["THINGARN"],"document":"' + b'{\\"a\\":' * 5_000 + b"1" + b"}" * 5_000 + b'"}',
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "document-with-1e400",
        "iot",
        "PUT",
        "/jobs/NEWJOB",
        b'{"targets":["THINGARN"],"document":"{\\"n\\":1E400}"}',
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "document-with-nan",
        "iot",
        "PUT",
        "/jobs/NEWJOB",
        b'{"targets":["THINGARN"],"document":"{\\"n\\":NaN}"}',
        400,
        "InvalidRequestException",
    ),
    HttpCase("nan-body", "iot", "PUT", "/jobs/NEWJOB", b'{"targets":NaN}', 400, "InvalidRequestException"),
    HttpCase(
        "utf16-body", "iot", "PUT", "/jobs/NEWJOB", '{"targets":[]}'.encode("utf-16"), 400, "InvalidRequestException"
    ),
    HttpCase(
        "data-update-expected-version-2^63",
        "iot-jobs-data",
        "POST",
        "/things/THING/jobs/JOB",
        b'{"status":"IN_PROGRESS","expectedVersion":%d}' % BIG,
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "data-update-execution-number-2^63",
        "iot-jobs-data",
        "POST",
        "/things/THING/jobs/JOB",
        b'{"status":"IN_PROGRESS","executionNumber":%d}' % BIG,
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "data-describe-execution-number-2^63",
        "iot-jobs-data",
        "GET",
        f"/things/THING/jobs/JOB?executionNumber={BIG}",
        b"",
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "control-describe-execution-number-2^63",
        "iot",
        "GET",
        f"/things/THING/jobs/JOB?executionNumber={BIG}",
        b"",
        400,
        "InvalidRequestException",
    ),
    HttpCase(
        "data-update-deep",
        "iot-jobs-data",
        "POST",
        "/things/THING/jobs/JOB",
        DEEP_OBJECT,
        400,
        "InvalidRequestException",
    ),
]
