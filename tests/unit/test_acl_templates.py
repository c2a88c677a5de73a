"""The ACL compiler's shortcut: a resource matched against the ARN prefix once with its variables
left in place gives the same remainders as matching it again for every certificate's values."""

from __future__ import annotations

import itertools

from iot_jobs_local.broker import acl
from iot_jobs_local.identity import policies

PREFIX = "arn:aws:iot:us-east-1:123456789012:topic/"
THING, CLIENT = policies.THING_NAME, policies.CLIENT_ID
RESOURCES = [
    "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*",
    "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/get",
    "arn:aws:iot:*:*:topic/*/${iot:ClientId}/x",
    "arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}",
    "arn:aws:iot:*:*:topic*/${iot:ClientId}",
    "arn:aws:iot:*:*:top${iot:ClientId}",  # the variable is where the prefix is matched: no shortcut
    "arn:aws:iot:*:${iot:ClientId}:topic/a",  # the variable is inside the prefix: no shortcut
    "arn:aws:iot:*:*:topic/a/${*}/${iot:Connection.Thing.ThingName}-${iot:ClientId}/?",
    "arn:aws:iot:*:*:topic/no/variables/*",
    "*",
]
VALUES = [
    {THING: "fleet-00001", CLIENT: "fleet-00001"},
    {THING: "t:1", CLIENT: "c-2"},
    {THING: "thing", CLIENT: policies.ANY_VALUE},
    {THING: "123456789012", CLIENT: "us-east-1"},
    {CLIENT: "only-a-client"},
    {},
]


def test_the_shortcut_gives_what_the_full_match_gives() -> None:
    for resource, variables in itertools.product(RESOURCES, VALUES):
        found = policies.tokens(resource, variables)
        expected = acl.remainders(found, PREFIX) if found is not None else []
        assert acl.resource_remainders(resource, variables, PREFIX) == expected, (resource, variables)


def test_variables_out_of_the_prefix_reach_are_matched_once() -> None:
    assert acl._template(RESOURCES[0], PREFIX) is not None
    assert acl._template(RESOURCES[4], PREFIX) is not None  # the star takes the prefix's last "/"
    assert acl._template(RESOURCES[5], PREFIX) is None
    assert acl._template(RESOURCES[6], PREFIX) is None
