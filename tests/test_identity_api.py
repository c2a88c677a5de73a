"""The identity operations of the ``iot`` control plane through boto3: certificates, policies and
their versions, policy and thing attachments; shapes and error codes as AWS returns them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support.common import unique
from support.service import ServiceProcess


def code_of(call: Callable[[], Any]) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def policy_document(service: ServiceProcess, topic: str = "a") -> str:
    arn = f"arn:aws:iot:{service.region}:{service.account}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arn}:topic/{topic}"}],
        }
    )


def test_create_keys_and_certificate(service: ServiceProcess, iot: Any) -> None:
    made = iot.create_keys_and_certificate(setAsActive=True)
    assert set(made) - {"ResponseMetadata"} == {"certificateArn", "certificateId", "certificatePem", "keyPair"}
    assert re.fullmatch(r"[0-9a-f]{64}", made["certificateId"])
    assert made["certificateArn"] == f"arn:aws:iot:{service.region}:{service.account}:cert/{made['certificateId']}"
    assert set(made["keyPair"]) == {"PublicKey", "PrivateKey"}
    assert made["keyPair"]["PrivateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    key = serialization.load_pem_private_key(made["keyPair"]["PrivateKey"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    cert = x509.load_pem_x509_certificate(made["certificatePem"].encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    ca = x509.load_pem_x509_certificate(service.ca_path.read_bytes())
    cert.verify_directly_issued_by(ca)

    described = iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]
    assert described["status"] == "ACTIVE" and described["certificatePem"] == made["certificatePem"]
    assert described["ownedBy"] == service.account and described["certificateMode"] == "DEFAULT"
    assert described["validity"]["notBefore"] < described["validity"]["notAfter"]
    listed = iot.list_certificates(pageSize=250, ascendingOrder=False)["certificates"]
    assert made["certificateId"] in [c["certificateId"] for c in listed]

    inactive = iot.create_keys_and_certificate()  # setAsActive defaults to false
    assert iot.describe_certificate(certificateId=inactive["certificateId"])["certificateDescription"]["status"] == (
        "INACTIVE"
    )


def test_certificate_states_and_deletion(service: ServiceProcess, iot: Any) -> None:
    made = iot.create_keys_and_certificate(setAsActive=True)
    cid, arn = made["certificateId"], made["certificateArn"]
    assert code_of(lambda: iot.update_certificate(certificateId=cid, newStatus="SLEEPING")) == "InvalidRequestException"
    assert code_of(lambda: iot.update_certificate(certificateId=cid, newStatus="PENDING_ACTIVATION")) == (
        "InvalidRequestException"
    )
    assert code_of(lambda: iot.delete_certificate(certificateId=cid)) == "CertificateStateException"
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")

    thing = unique("thing")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    assert code_of(lambda: iot.delete_certificate(certificateId=cid, forceDelete=True)) == "DeleteConflictException"
    iot.detach_thing_principal(thingName=thing, principal=arn)
    policy = unique("p")
    iot.create_policy(policyName=policy, policyDocument=policy_document(service))
    iot.attach_policy(policyName=policy, target=arn)
    assert code_of(lambda: iot.delete_certificate(certificateId=cid)) == "DeleteConflictException"
    iot.delete_certificate(certificateId=cid, forceDelete=True)
    assert code_of(lambda: iot.describe_certificate(certificateId=cid)) == "ResourceNotFoundException"
    assert iot.list_targets_for_policy(policyName=policy)["targets"] == []

    revoked = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=revoked, newStatus="REVOKED")
    assert code_of(lambda: iot.update_certificate(certificateId=revoked, newStatus="ACTIVE")) == (
        "CertificateStateException"
    )
    assert code_of(lambda: iot.describe_certificate(certificateId="0" * 64)) == "ResourceNotFoundException"
    assert code_of(lambda: iot.describe_certificate(certificateId="z" * 64)) == "InvalidRequestException"


def test_policies_and_versions(service: ServiceProcess, iot: Any) -> None:
    name = unique("p")
    created = iot.create_policy(policyName=name, policyDocument=policy_document(service))
    arn = f"arn:aws:iot:{service.region}:{service.account}:policy/{name}"
    assert {k: v for k, v in created.items() if k != "ResponseMetadata"} == {
        "policyName": name,
        "policyArn": arn,
        "policyDocument": policy_document(service),
        "policyVersionId": "1",
    }
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        iot.create_policy(policyName=name, policyDocument=policy_document(service))
    assert caught.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert caught.value.response["resourceId"] == name and caught.value.response["resourceArn"] == arn
    for bad in ("{", "[]", json.dumps({"Statement": [{"Effect": "Allow", "Action": "iot:Connect"}]})):
        assert code_of(lambda bad=bad: iot.create_policy(policyName=unique("p"), policyDocument=bad)) == (
            "MalformedPolicyException"
        )

    for version in range(2, 6):
        made = iot.create_policy_version(policyName=name, policyDocument=policy_document(service, f"v{version}"))
        assert made["policyVersionId"] == str(version) and made["isDefaultVersion"] is False
    assert code_of(lambda: iot.create_policy_version(policyName=name, policyDocument=policy_document(service))) == (
        "VersionsLimitExceededException"
    )
    assert iot.get_policy(policyName=name)["defaultVersionId"] == "1"
    iot.set_default_policy_version(policyName=name, policyVersionId="3")
    got = iot.get_policy(policyName=name)
    assert got["defaultVersionId"] == "3" and got["policyDocument"] == policy_document(service, "v3")
    version = iot.get_policy_version(policyName=name, policyVersionId="3")
    assert version["isDefaultVersion"] is True and version["policyDocument"] == policy_document(service, "v3")
    listed = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in listed] == [
        ("5", False),
        ("4", False),
        ("3", True),
        ("2", False),
        ("1", False),
    ]
    assert code_of(lambda: iot.delete_policy_version(policyName=name, policyVersionId="3")) == "DeleteConflictException"
    assert code_of(lambda: iot.delete_policy(policyName=name)) == "DeleteConflictException"  # other versions
    for version_id in ("1", "2", "4", "5"):
        iot.delete_policy_version(policyName=name, policyVersionId=version_id)
    assert code_of(lambda: iot.get_policy_version(policyName=name, policyVersionId="1")) == "ResourceNotFoundException"

    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName=name, target=cert)
    assert iot.list_attached_policies(target=cert)["policies"] == [{"policyName": name, "policyArn": arn}]
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [cert]
    assert name in [p["policyName"] for p in iot.list_policies(pageSize=250)["policies"]]
    assert code_of(lambda: iot.delete_policy(policyName=name)) == "DeleteConflictException"  # attached
    iot.detach_policy(policyName=name, target=cert)
    iot.delete_policy(policyName=name)
    assert code_of(lambda: iot.get_policy(policyName=name)) == "ResourceNotFoundException"
    assert code_of(lambda: iot.attach_policy(policyName=name, target=cert)) == "ResourceNotFoundException"
    other = unique("p")
    iot.create_policy(policyName=other, policyDocument=policy_document(service))
    missing = f"arn:aws:iot:{service.region}:{service.account}:cert/{'0' * 64}"
    assert code_of(lambda: iot.attach_policy(policyName=other, target=missing)) == "ResourceNotFoundException"


def test_thing_principals(service: ServiceProcess, iot: Any) -> None:
    thing, other = unique("thing"), unique("thing")
    for name in (thing, other):
        iot.create_thing(thingName=name)
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    assert code_of(lambda: iot.attach_thing_principal(thingName=unique("nothing"), principal=arn)) == (
        "ResourceNotFoundException"
    )
    iot.attach_thing_principal(thingName=thing, principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    assert code_of(lambda: iot.attach_thing_principal(thingName=other, principal=arn)) == "InvalidRequestException"
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arn]
    assert iot.list_thing_principals_v2(thingName=thing)["thingPrincipalObjects"] == [
        {"principal": arn, "thingPrincipalType": "EXCLUSIVE_THING"}
    ]
    assert iot.list_principal_things(principal=arn)["things"] == [thing]
    assert iot.list_principal_things_v2(principal=arn)["principalThingObjects"] == [
        {"thingName": thing, "thingPrincipalType": "EXCLUSIVE_THING"}
    ]
    iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_thing_principal(thingName=other, principal=arn)
    assert sorted(iot.list_principal_things(principal=arn)["things"]) == sorted([thing, other])
    page = iot.list_principal_things(principal=arn, maxResults=1)
    assert len(page["things"]) == 1 and "nextToken" in page
    rest = iot.list_principal_things(principal=arn, maxResults=1, nextToken=page["nextToken"])
    assert len(rest["things"]) == 1 and "nextToken" not in rest
    assert code_of(lambda: iot.list_thing_principals(thingName=unique("nothing"))) == "ResourceNotFoundException"


def test_a_thing_with_a_certificate_attached_cannot_be_deleted(service: ServiceProcess, iot: Any) -> None:
    """As on AWS: DeleteThing is refused until every principal is detached; then it succeeds."""
    from botocore.exceptions import ClientError

    thing = unique("thing")
    iot.create_thing(thingName=thing)
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName=thing, principal=arn)
    with pytest.raises(ClientError) as caught:
        iot.delete_thing(thingName=thing)
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == f"Cannot delete. Thing {thing} is still attached to one or more principals"
    assert iot.describe_thing(thingName=thing)["thingName"] == thing  # nothing was deleted
    iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.delete_thing(thingName=thing)
    assert code_of(lambda: iot.describe_thing(thingName=thing)) == "ResourceNotFoundException"
    assert iot.list_principal_things(principal=arn)["things"] == []


def test_the_deprecated_principal_policy_operations(service: ServiceProcess) -> None:
    """AttachPrincipalPolicy & co. are still in the API (and in older scripts): the same attachments
    as AttachPolicy with a certificate target, seen from either side."""
    iot = service.iot()
    certificate = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    names = sorted(unique("dp") for _ in range(3))
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
    )
    for name in names:
        iot.create_policy(policyName=name, policyDocument=document)
        iot.attach_principal_policy(policyName=name, principal=certificate)
    listed = iot.list_principal_policies(principal=certificate, ascendingOrder=True)["policies"]
    assert sorted(p["policyName"] for p in listed) == names
    assert [p["policyName"] for p in iot.list_attached_policies(target=certificate)["policies"]] == [
        p["policyName"] for p in listed
    ]
    assert iot.list_policy_principals(policyName=names[0])["principals"] == [certificate]
    iot.detach_principal_policy(policyName=names[0], principal=certificate)
    assert iot.list_policy_principals(policyName=names[0])["principals"] == []
    assert names[0] not in [p["policyName"] for p in iot.list_attached_policies(target=certificate)["policies"]]
