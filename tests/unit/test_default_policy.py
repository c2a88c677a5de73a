"""The default device policy that ``provision`` attaches (``iot_jobs_local.identity.provisioning``)."""

from __future__ import annotations

import json
from pathlib import Path

from iot_jobs_local.broker.acl import Subject, compile_acl
from iot_jobs_local.identity import policies
from iot_jobs_local.identity.policies import CLIENT_ID, THING_NAME, Facts, allowed, parse
from iot_jobs_local.identity.provisioning import THING_VARIABLE, default_policy_document

ARN = "arn:aws:iot:us-east-1:123456789012"
ATTACHED = Facts(is_attached=True)
REPOSITORY_POLICY = Path(__file__).resolve().parents[2] / "policies" / "device-policy.json"


def subject(*things: str) -> Subject:
    return Subject("cn", "us-east-1", "123456789012", things)


def test_the_default_device_policy_is_the_repository_template() -> None:
    template = REPOSITORY_POLICY.read_text()
    filled = template.replace("<region>", "us-east-1").replace("<account>", "123456789012")
    expected = json.loads(filled.replace("<thingname>", THING_VARIABLE).replace("client/test-*", "client/*"))
    assert json.loads(default_policy_document("us-east-1", "123456789012")) == expected
    statements = parse(default_policy_document("us-east-1", "123456789012"))
    variables = {THING_NAME: "t1", CLIENT_ID: "anything"}
    assert allowed(statements, "iot:Connect", f"{ARN}:client/anything", variables, ATTACHED)
    assert allowed(statements, "iot:Publish", f"{ARN}:topic/$aws/things/t1/jobs/j1/update", variables, ATTACHED)
    assert not allowed(statements, "iot:Publish", f"{ARN}:topic/$aws/things/t2/jobs/get", variables, ATTACHED)
    assert not allowed(statements, "iot:Publish", f"{ARN}:topic/$aws/things/t1/jobs/notify", variables, ATTACHED)


def test_the_default_device_policy_confines_a_device_to_its_thing() -> None:
    acl = compile_acl(policies.parse(default_policy_document("us-east-1", "123456789012")), subject("T1"))
    assert acl.render() == [
        "user cn",
        "topic write $aws/things/T1/jobs/+/get",
        "topic read $aws/things/T1/jobs/+/get/+/#",
        "topic write $aws/things/T1/jobs/+/update",
        "topic read $aws/things/T1/jobs/+/update/+/#",
        "topic write $aws/things/T1/jobs/get",
        "topic read $aws/things/T1/jobs/get/+/#",
        "topic read $aws/things/T1/jobs/notify",
        "topic read $aws/things/T1/jobs/notify-next",
        "topic write $aws/things/T1/jobs/start-next",
        "topic read $aws/things/T1/jobs/start-next/+/#",
    ]
    assert not acl.needs_live_client_ids
    assert compile_acl(policies.parse(default_policy_document("us-east-1", "123456789012")), subject()).grants == {}
