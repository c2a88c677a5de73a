"""Policies attached to thing groups, through boto3, enforced on a real SDK device.

AWS: "You can attach a policy to a parent group and it is inherited by its child groups, and by all
of the things in the group and in its child groups" (developer guide, Static thing groups). The
device's certificate has no policy of its own: everything it may do (connect, publish its jobs
requests, receive the replies) comes from the groups of its thing, and follows membership, group
deletion and attachments while the broker keeps running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from support.api import check_error, error_of, group_arn
from support.common import unique
from support.service import ServiceProcess


def _jobs_policy(service: ServiceProcess) -> str:
    arn = f"arn:aws:iot:{service.region}:{service.account}"
    thing = "${iot:Connection.Thing.ThingName}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
                {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/$aws/things/{thing}/*"},
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": f"{arn}:topic/$aws/things/{thing}/jobs/*",
                },
            ],
        }
    )


def _bare_thing(iot: Any, directory: Path) -> tuple[str, str, tuple[Path, Path]]:
    """A thing with an ACTIVE certificate that has no policy attached: (thing, certificate ARN, files)."""
    thing = unique("thing")
    made = iot.create_keys_and_certificate(setAsActive=True)
    cert, key = directory / f"{thing}.crt", directory / f"{thing}.key"
    cert.write_text(made["certificatePem"])
    key.write_text(made["keyPair"]["PrivateKey"])
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"], thingPrincipalType="EXCLUSIVE_THING")
    return thing, made["certificateArn"], (cert, key)


def _works(service: ServiceProcess, thing: str, files: tuple[Path, Path]) -> None:
    """A new SDK device of ``thing`` connects (client id = thing name), opens its streams and is answered."""
    device = Device(service, thing, *files, client_id=thing)
    try:
        assert device.get_pending().queued_jobs == []
    finally:
        device.stop()


def _refused(service: ServiceProcess, thing: str, files: tuple[Path, Path]) -> None:
    with pytest.raises(ConnectionError):
        Device(service, thing, *files, client_id=thing, timeout=5)


def test_a_device_gets_the_policies_of_its_things_groups_and_their_parents(
    service: ServiceProcess, tmp_path: Path
) -> None:
    iot = service.iot()
    policy = unique("group-policy")
    iot.create_policy(policyName=policy, policyDocument=_jobs_policy(service))
    parent, child = unique("parent"), unique("child")
    iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    iot.attach_policy(policyName=policy, target=group_arn(service, child))
    thing, cert_arn, files = _bare_thing(iot, tmp_path)

    _refused(service, thing, files)  # not in the group yet: no policy at all

    iot.add_thing_to_thing_group(thingGroupName=child, thingName=thing)
    _works(service, thing, files)

    # A live connection loses its rights as its thing leaves the group; a new one is refused.
    device = Device(service, thing, *files, client_id=thing)
    try:
        iot.remove_thing_from_thing_group(thingGroupName=child, thingName=thing)
        with pytest.raises(Exception):  # noqa: B017 - the SDK reports a refused request its own way
            device.get_pending(timeout=5)
    finally:
        device.stop()
    _refused(service, thing, files)

    iot.update_thing_groups_for_thing(thingName=thing, thingGroupsToAdd=[child])
    _works(service, thing, files)

    # Detached from the child, attached to the parent: inherited through the hierarchy.
    iot.detach_policy(policyName=policy, target=group_arn(service, child))
    _refused(service, thing, files)
    iot.attach_policy(policyName=policy, target=group_arn(service, parent))
    _works(service, thing, files)

    assert iot.list_targets_for_policy(policyName=policy)["targets"] == [group_arn(service, parent)]
    assert iot.list_attached_policies(target=group_arn(service, child))["policies"] == []
    recursive = iot.list_attached_policies(target=group_arn(service, child), recursive=True)["policies"]
    assert [p["policyName"] for p in recursive] == [policy]
    assert [p["policyName"] for p in iot.list_attached_policies(target=group_arn(service, parent))["policies"]] == [
        policy
    ]

    # What applies to the device: the certificate's own (none) and what its thing inherits.
    effective = iot.get_effective_policies(principal=cert_arn, thingName=thing)["effectivePolicies"]
    assert [(e["policyName"], json.loads(e["policyDocument"])) for e in effective] == [
        (policy, json.loads(_jobs_policy(service)))
    ]
    assert iot.get_effective_policies(principal=cert_arn)["effectivePolicies"] == []

    # A policy attached to a group cannot be deleted (as for a certificate).
    error = error_of(iot.delete_policy, policyName=policy)
    check_error(error, "DeleteConflictException", 409)

    # Deleting the groups takes their attachments with them (DeleteThingGroup has no conflict error
    # in AWS's model), and the device's access with them.
    iot.delete_thing_group(thingGroupName=child)
    _refused(service, thing, files)
    iot.add_thing_to_thing_group(thingGroupName=parent, thingName=thing)
    _works(service, thing, files)
    iot.delete_thing_group(thingGroupName=parent)
    assert iot.list_targets_for_policy(policyName=policy)["targets"] == []
    _refused(service, thing, files)
    iot.delete_policy(policyName=policy)


def test_thing_group_targets_have_awss_errors(service: ServiceProcess) -> None:
    iot = service.iot()
    policy = unique("group-policy")
    iot.create_policy(policyName=policy, policyDocument=_jobs_policy(service))
    missing = group_arn(service, unique("no-such-group"))
    for call in (iot.attach_policy, iot.detach_policy):
        check_error(error_of(call, policyName=policy, target=missing), "ResourceNotFoundException", 404)
    check_error(error_of(iot.list_attached_policies, target=missing), "ResourceNotFoundException", 404)
    group = unique("group")
    iot.create_thing_group(thingGroupName=group)
    check_error(
        error_of(iot.attach_policy, policyName=unique("no-such-policy"), target=group_arn(service, group)),
        "ResourceNotFoundException",
        404,
    )
    iot.attach_policy(policyName=policy, target=group_arn(service, group))
    iot.attach_policy(policyName=policy, target=group_arn(service, group))  # idempotent
    assert iot.list_targets_for_policy(policyName=policy)["targets"] == [group_arn(service, group)]
    # The deprecated principal operations are about certificates: a group is not a principal.
    assert iot.list_policy_principals(policyName=policy)["principals"] == []
    for call in (iot.attach_principal_policy, iot.detach_principal_policy):
        error = error_of(call, policyName=policy, principal=group_arn(service, group))
        check_error(error, "InvalidRequestException", 400)
        assert error.response["Error"]["Message"] == "The given ARN does not represent a cert"
    iot.detach_policy(policyName=policy, target=group_arn(service, group))
    iot.delete_thing_group(thingGroupName=group)
    iot.delete_policy(policyName=policy)
