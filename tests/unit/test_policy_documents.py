"""IoT policy documents (``iot_jobs_local.identity.policies``): validation and AWS's evaluation rules."""

from __future__ import annotations

import json

import pytest

from iot_jobs_local.identity import policies
from iot_jobs_local.identity.errors import MalformedPolicyException
from iot_jobs_local.identity.policies import CLIENT_ID, THING_NAME, Facts, allowed, parse

ARN = "arn:aws:iot:us-east-1:123456789012"
ATTACHED = Facts(is_attached=True)


def doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str]) -> dict[str, object]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps({"Version": "1999-01-01", "Statement": [allow("iot:Connect", "*")]}),
        doc({"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}),
        doc({"Effect": "Allow", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "iot:Connect"}),
        doc({"Effect": "Allow", "Action": [], "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "Connect", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/x"}),
        doc({"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": "yes"}),
    ],
)
def test_malformed_documents_are_refused(document: str) -> None:
    with pytest.raises(MalformedPolicyException):
        parse(document)


def test_a_single_statement_object_and_string_members_are_accepted() -> None:
    statements = parse(json.dumps({"Version": "2012-10-17", "Statement": allow("iot:*", "*")}))
    assert statements == (policies.Statement("Allow", ("iot:*",), ("*",)),)


@pytest.mark.parametrize(
    ("resource", "topic", "expected"),
    [
        (f"{ARN}:topic/a/b", "a/b", True),
        (f"{ARN}:topic/a/*", "a/b/c", True),  # IoT's * crosses levels
        (f"{ARN}:topic/a/*", "a", False),
        (f"{ARN}:topic/a/?", "a/b", True),
        (f"{ARN}:topic/a/?", "a/bc", False),
        (f"{ARN}:topic/*", "$aws/things/t/jobs/get", True),
        ("arn:aws:iot:*:*:topic/a", "a", True),
        (f"{ARN}:topic/a/${{*}}", "a/*", True),  # ${*} is a literal star
        (f"{ARN}:topic/a/${{*}}", "a/b", False),
        ("arn:aws:iot:eu-west-1:123456789012:topic/a", "a", False),
    ],
)
def test_resources_match_like_iot_globs(resource: str, topic: str, expected: bool) -> None:
    statements = parse(doc(allow("iot:Publish", resource)))
    assert allowed(statements, "iot:Publish", f"{ARN}:topic/{topic}", {}, ATTACHED) is expected


def test_actions_match_case_insensitively_with_wildcards() -> None:
    statements = parse(doc(allow("IOT:pub*", f"{ARN}:topic/a")))
    assert allowed(statements, "iot:Publish", f"{ARN}:topic/a", {}, ATTACHED)
    assert not allowed(statements, "iot:Receive", f"{ARN}:topic/a", {}, ATTACHED)


def test_deny_wins_and_the_default_is_deny() -> None:
    statements = parse(doc(allow("iot:*", "*"), deny("iot:Publish", f"{ARN}:topic/secret/*")))
    assert allowed(statements, "iot:Publish", f"{ARN}:topic/open", {}, ATTACHED)
    assert not allowed(statements, "iot:Publish", f"{ARN}:topic/secret/x", {}, ATTACHED)
    assert allowed(statements, "iot:Receive", f"{ARN}:topic/secret/x", {}, ATTACHED)
    assert not allowed((), "iot:Publish", f"{ARN}:topic/open", {}, ATTACHED)


def test_variables_resolve_or_the_resource_matches_nothing() -> None:
    statements = parse(doc(allow("iot:Connect", [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"])))
    resource = f"{ARN}:client/t1"
    assert allowed(statements, "iot:Connect", resource, {THING_NAME: "t1", CLIENT_ID: "t1"}, ATTACHED)
    assert not allowed(statements, "iot:Connect", resource, {CLIENT_ID: "t1"}, ATTACHED)
    client = parse(doc(allow("iot:Publish", f"{ARN}:topic/c/${{iot:ClientId}}")))
    assert allowed(client, "iot:Publish", f"{ARN}:topic/c/me", {CLIENT_ID: "me"}, ATTACHED)
    assert not allowed(client, "iot:Publish", f"{ARN}:topic/c/you", {CLIENT_ID: "me"}, ATTACHED)


def test_conditions_only_is_attached_is_understood() -> None:
    attached = {"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}
    statements = parse(doc(allow("iot:Connect", "*", Condition=attached)))
    assert allowed(statements, "iot:Connect", f"{ARN}:client/x", {}, Facts(is_attached=True))
    assert not allowed(statements, "iot:Connect", f"{ARN}:client/x", {}, Facts(is_attached=False))
    unknown = parse(doc(allow("iot:Connect", "*", Condition={"StringEquals": {"aws:SourceIp": "1.2.3.4"}})))
    assert not allowed(unknown, "iot:Connect", f"{ARN}:client/x", {}, ATTACHED)  # unknown: never grants
    deny_unknown = parse(
        doc(
            allow("iot:Connect", "*"),
            {"Effect": "Deny", "Action": "iot:Connect", "Resource": "*", "Condition": {"IpAddress": {}}},
        )
    )
    assert not allowed(deny_unknown, "iot:Connect", f"{ARN}:client/x", {}, ATTACHED)  # unknown Deny: applies
