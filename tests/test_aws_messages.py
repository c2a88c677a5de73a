"""Error messages in AWS's own words, where a source has them (docs/fidelity.md lists each source)."""

from __future__ import annotations

import json
from typing import Any

from support.api import error_of
from support.common import unique
from support.service import ServiceProcess

DOCUMENT = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


def message(error: Any) -> tuple[str, str]:
    return error.response["Error"]["Code"], error.response["Error"]["Message"]


def test_policy_messages(service: ServiceProcess) -> None:
    iot = service.iot()
    name = unique("p")
    iot.create_policy(policyName=name, policyDocument=DOCUMENT)
    assert message(error_of(iot.create_policy, policyName=name, policyDocument=DOCUMENT)) == (
        "ResourceAlreadyExistsException",
        f"Policy cannot be created - name already exists (name={name})",
    )
    for _ in range(4):
        iot.create_policy_version(policyName=name, policyDocument=DOCUMENT)
    assert message(error_of(iot.create_policy_version, policyName=name, policyDocument=DOCUMENT)) == (
        "VersionsLimitExceededException",
        f"The policy {name} already has the maximum number of versions (5)",
    )
    certificate = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    attached = unique("p")
    iot.create_policy(policyName=attached, policyDocument=DOCUMENT)
    iot.attach_policy(policyName=attached, target=certificate)
    assert message(error_of(iot.delete_policy, policyName=attached)) == (
        "DeleteConflictException",
        f"The policy cannot be deleted as the policy is attached to one or more principals (name={attached})",
    )
    unknown = certificate.rsplit("/", 1)[0] + "/" + "0" * 64
    assert message(error_of(iot.attach_policy, policyName=attached, target=unknown)) == (
        "ResourceNotFoundException",
        "The certificate given in the principal does not exist.",
    )


def test_thing_group_with_children(service: ServiceProcess) -> None:
    iot = service.iot()
    parent, child = unique("g"), unique("g")
    iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    assert message(error_of(iot.delete_thing_group, thingGroupName=parent)) == (
        "InvalidRequestException",
        f"Cannot delete thing group : {parent} when there are still child groups attached to it",
    )


def test_version_mismatch_over_mqtt(service: ServiceProcess, device: Any) -> None:
    d = device()
    job = service.create_job(d.thing, {"a": 1})
    error = d.rejected("update", job, status="IN_PROGRESS", expected_version=99)
    assert (error.code, error.message) == ("VersionMismatch", "Expected version 99 but found version 1")


def test_certificate_and_policy_deletion_messages(service: ServiceProcess) -> None:
    """As users report AWS's answers (rebuy-de/aws-nuke#374 and #320; boto3 users in getmoto/moto#3320)."""
    iot = service.iot()
    made = iot.create_keys_and_certificate(setAsActive=True)
    assert message(error_of(iot.delete_certificate, certificateId=made["certificateId"])) == (
        "CertificateStateException",
        f"Certificate must be deactivated (not ACTIVE) before deletion. Id: {made['certificateId']}",
    )
    assert message(error_of(iot.register_certificate_without_ca, certificatePem=made["certificatePem"])) == (
        "ResourceAlreadyExistsException",
        "The certificate is already provisioned or registered",
    )
    name = unique("p")
    iot.create_policy(policyName=name, policyDocument=DOCUMENT)
    iot.create_policy_version(policyName=name, policyDocument=DOCUMENT, setAsDefault=False)
    assert message(error_of(iot.delete_policy, policyName=name)) == (
        "DeleteConflictException",
        "The policy cannot be deleted as versions other than than default version exist",
    )
