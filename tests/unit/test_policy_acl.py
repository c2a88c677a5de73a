"""IoT policies -> Mosquitto ACL (``iot_jobs_local.broker.acl``): filter algebra and translation."""

from __future__ import annotations

import json

import pytest

from iot_jobs_local.broker.acl import Subject, compile_acl, covers, intersect, restrict_write, topic_filters
from iot_jobs_local.identity import policies

ARN = "arn:aws:iot:us-east-1:123456789012"


def statements(*raw: dict[str, object]) -> tuple[policies.Statement, ...]:
    return policies.parse(json.dumps({"Version": "2012-10-17", "Statement": list(raw)}))


def subject(*things: str, live: tuple[str, ...] = ()) -> Subject:
    return Subject("cn", "us-east-1", "123456789012", things, live)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a/#", "a", "a"),
        ("a/#", "a/b/c", "a/b/c"),
        ("a/+/c", "a/b/+", "a/b/c"),
        ("a/+", "a/b/c", None),
        ("#", "$aws/x", None),  # MQTT wildcards never match $ topics
        ("$aws/things/T/jobs/#", "$aws/things/+/jobs/+/get", "$aws/things/T/jobs/+/get"),
        ("a/b", "a/c", None),
    ],
)
def test_intersect(a: str, b: str, expected: str | None) -> None:
    assert intersect(a, b) == expected
    assert intersect(b, a) == expected


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("a/#", "a/b", True),
        ("a/#", "a", True),
        ("a/+", "a/b", True),
        ("a/+", "a/#", False),
        ("a/b", "a/+", False),
        ("#", "$aws/x", False),
        ("+/b", "a/b", True),
    ],
)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected


@pytest.mark.parametrize(
    ("glob", "subset", "superset"),
    [
        ("a/b", {"a/b"}, {"a/b"}),
        ("a/*", {"a/+/#"}, {"a/#"}),
        ("a/*/c", {"a/+/c"}, {"a/#"}),
        ("a/dev-*", set(), {"a/#"}),  # not expressible: dropped when granting, widened when denying
        ("a/x?", set(), {"a/+"}),
        ("*", {"#", "$aws/#"}, {"#", "$aws/#"}),
        ("a/b+c", set(), {"a/+"}),  # a topic cannot contain '+': nothing to grant
    ],
)
def test_topic_globs_become_filters(glob: str, subset: set[str], superset: set[str]) -> None:
    tokens = policies.tokens(glob, {})
    assert tokens is not None
    assert topic_filters(tokens, superset=False) == subset
    assert topic_filters(tokens, superset=True) == superset


def test_writes_to_dollar_topics_are_cut_to_the_request_topics() -> None:
    assert restrict_write("$aws/things/T/jobs/#") == [
        "$aws/things/T/jobs/+/get",
        "$aws/things/T/jobs/+/update",
        "$aws/things/T/jobs/get",
        "$aws/things/T/jobs/start-next",
    ]
    assert restrict_write("$aws/things/T/jobs/notify") == []
    assert restrict_write("$aws/things/T/jobs/j1/update/accepted") == []
    assert restrict_write("a/#") == ["a/#"]


def test_allow_everything_never_allows_forging_replies() -> None:
    acl = compile_acl(statements({"Effect": "Allow", "Action": "iot:*", "Resource": "*"}), subject("T1"))
    writable = {f for f, access in acl.grants.items() if "write" in access}
    assert "#" in writable
    assert all(
        not f.startswith("$") or f.startswith(("$aws/things/+/jobs", "$aws/things/+/shadow", "$aws/rules"))
        for f in writable
    )
    assert not any(f.endswith(("accepted", "rejected", "notify", "notify-next")) for f in writable)
    assert acl.grants["$aws/#"] == {"read"}


def test_a_deny_that_covers_a_grant_removes_only_that_direction() -> None:
    acl = compile_acl(
        statements(
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN}:topic/a/b"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/a/*"},
        ),
        subject("T1"),
    )
    assert acl.grants == {"a/b": {"read"}}
    assert acl.denies == []


def test_a_deny_inside_a_wider_grant_becomes_a_deny_line() -> None:
    acl = compile_acl(
        statements(
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/a/*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/a/secret"},
        ),
        subject("T1"),
    )
    assert acl.grants == {"a/+/#": {"write"}}
    assert acl.denies == ["a/secret"]


def test_client_id_variables() -> None:
    policy = statements(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/d/${{iot:ClientId}}"},
    )
    # The client id can only be the thing name: expanded statically.
    assert compile_acl(policy, subject("T1")).grants == {"d/T1": {"write"}}
    open_ended = statements(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/d/${{iot:ClientId}}"},
    )
    acl = compile_acl(open_ended, subject("T1"))
    assert acl.grants == {} and acl.needs_live_client_ids
    assert compile_acl(open_ended, subject("T1", live=("c1", "c2"))).grants == {"d/c1": {"write"}, "d/c2": {"write"}}
