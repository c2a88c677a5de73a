"""Certificates a caller brings: CreateCertificateFromCsr, RegisterCertificate (signed by the local
CA), RegisterCertificateWithoutCA, and the local CA as ListCACertificates/DescribeCACertificate
show it. Through boto3, each ending with a real SDK device connecting with the certificate once it
is ACTIVE and attached to its thing and a policy, as on AWS.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iot_jobs_local.testing import Device
from support.api import check_error, error_of
from support.common import unique
from support.service import ServiceProcess

Key = ec.EllipticCurvePrivateKey


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _key_file(key: Key, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    key: Key, cn: str, issuer: tuple[x509.Certificate, Key] | None = None, *, days: int = 30, start_days: int = -1
) -> str:
    """A client certificate for ``key``: signed by ``issuer`` (certificate, key), else self-signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (_name(cn), key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=start_days))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _local_ca(service: ServiceProcess) -> tuple[x509.Certificate, Key]:
    """The local CA, as its owner (the user of the state directory) has it."""
    ca_key = serialization.load_pem_private_key((service.ca_path.parent / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(service.ca_path.read_bytes()), ca_key


def _certificate_id(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _connects(service: ServiceProcess, iot: Any, certificate_arn: str, pem: str, key: Path) -> None:
    """Attach the certificate to a new thing and a jobs policy; an SDK device of it is answered."""
    thing = unique("thing")
    arn = f"arn:aws:iot:{service.region}:{service.account}"
    policy = unique("policy")
    statements = [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{arn}:topic/$aws/things/{thing}/*"},
    ]
    iot.create_policy(policyName=policy, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    iot.attach_policy(policyName=policy, target=certificate_arn)
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=certificate_arn)
    cert = key.with_suffix(".crt")
    cert.write_text(pem)
    device = Device(service, thing, cert, key, client_id=thing)
    try:
        assert device.get_pending().queued_jobs == []
    finally:
        device.stop()


def test_create_certificate_from_csr_signs_with_the_local_ca(service: ServiceProcess, tmp_path: Path) -> None:
    iot = service.iot()
    key = _key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("my-device"))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr)
    assert set(made) - {"ResponseMetadata"} == {"certificateArn", "certificateId", "certificatePem"}
    assert made["certificateId"] == _certificate_id(made["certificatePem"])
    assert made["certificateArn"].endswith(f":cert/{made['certificateId']}")
    issued = x509.load_pem_x509_certificate(made["certificatePem"].encode())
    assert issued.public_key() == key.public_key()
    issued.verify_directly_issued_by(_local_ca(service)[0])
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == (
        "INACTIVE"
    )
    iot.update_certificate(certificateId=made["certificateId"], newStatus="ACTIVE")
    _connects(service, iot, made["certificateArn"], made["certificatePem"], _key_file(key, tmp_path / "csr.key"))

    active = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    assert active["certificateId"] != made["certificateId"]  # a new certificate for the same key
    assert iot.describe_certificate(certificateId=active["certificateId"])["certificateDescription"]["status"] == (
        "ACTIVE"
    )
    check_error(
        error_of(iot.create_certificate_from_csr, certificateSigningRequest="not a CSR"), "InvalidRequestException", 400
    )


def test_register_certificate_signed_by_the_local_ca(service: ServiceProcess, tmp_path: Path) -> None:
    iot = service.iot()
    ca = _local_ca(service)
    key = _key()
    pem = _certificate(key, unique("registered"), ca)
    ca_pem = service.ca_path.read_text()
    made = iot.register_certificate(certificatePem=pem, caCertificatePem=ca_pem)
    assert set(made) - {"ResponseMetadata"} == {"certificateArn", "certificateId"}
    assert made["certificateId"] == _certificate_id(pem)
    described = iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]
    assert described["status"] == "INACTIVE" and described["certificatePem"] == pem

    again = error_of(iot.register_certificate, certificatePem=pem, caCertificatePem=ca_pem)
    check_error(again, "ResourceAlreadyExistsException", 409)
    assert again.response["Error"]["Message"] == "The certificate is already provisioned or registered"

    other = _key()
    second = iot.register_certificate(certificatePem=_certificate(other, unique("registered"), ca), status="ACTIVE")
    described = iot.describe_certificate(certificateId=second["certificateId"])["certificateDescription"]
    _connects(service, iot, second["certificateArn"], described["certificatePem"], _key_file(other, tmp_path / "r.key"))

    # Not signed by a registered CA, not a certificate, expired, another CA named, a bad status.
    self_signed = _certificate(_key(), unique("self"))
    for kwargs in (
        {"certificatePem": self_signed},
        {"certificatePem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"},
        {"certificatePem": _certificate(_key(), unique("old"), ca, days=-1, start_days=-10)},
        {"certificatePem": _certificate(_key(), unique("x"), ca), "caCertificatePem": self_signed},
    ):
        check_error(error_of(iot.register_certificate, **kwargs), "CertificateValidationException", 400)
    bad_status = error_of(
        iot.register_certificate, certificatePem=_certificate(_key(), unique("x"), ca), status="PENDING_TRANSFER"
    )
    check_error(bad_status, "InvalidRequestException", 400)


def test_register_certificate_without_ca(service: ServiceProcess, tmp_path: Path) -> None:
    iot = service.iot()
    self_signed = _certificate(_key(), unique("self"))
    made = iot.register_certificate_without_ca(certificatePem=self_signed, status="ACTIVE")
    assert made["certificateId"] == _certificate_id(self_signed)
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == (
        "ACTIVE"
    )
    again = error_of(iot.register_certificate_without_ca, certificatePem=self_signed)
    check_error(again, "ResourceAlreadyExistsException", 409)
    assert again.response["Error"]["Message"] == "The certificate is already provisioned or registered"
    check_error(
        error_of(iot.register_certificate_without_ca, certificatePem="garbage"), "CertificateValidationException", 400
    )
    # One the broker can verify (the local CA signed it) connects once ACTIVE.
    key = _key()
    pem = _certificate(key, unique("no-ca"), _local_ca(service))
    registered = iot.register_certificate_without_ca(certificatePem=pem)
    assert iot.describe_certificate(certificateId=registered["certificateId"])["certificateDescription"]["status"] == (
        "INACTIVE"
    )
    iot.update_certificate(certificateId=registered["certificateId"], newStatus="ACTIVE")
    _connects(service, iot, registered["certificateArn"], pem, _key_file(key, tmp_path / "n.key"))


def test_the_local_ca_is_the_registered_ca(service: ServiceProcess) -> None:
    iot = service.iot()
    ca_pem = service.ca_path.read_text()
    listed = iot.list_ca_certificates()["certificates"]
    assert [c["certificateId"] for c in listed] == [_certificate_id(ca_pem)]
    assert listed[0]["status"] == "ACTIVE"
    described = iot.describe_ca_certificate(certificateId=listed[0]["certificateId"])["certificateDescription"]
    assert described["certificatePem"] == ca_pem
    assert described["certificateArn"] == listed[0]["certificateArn"]
    assert described["autoRegistrationStatus"] == "DISABLE"
    check_error(error_of(iot.describe_ca_certificate, certificateId="0" * 64), "ResourceNotFoundException", 404)

    # ListCertificatesByCA: what the local CA signed, not what was registered without it.
    signed = iot.register_certificate(certificatePem=_certificate(_key(), unique("by-ca"), _local_ca(service)))
    foreign = iot.register_certificate_without_ca(certificatePem=_certificate(_key(), unique("foreign")))
    by_ca = iot.get_paginator("list_certificates_by_ca").paginate(caCertificateId=listed[0]["certificateId"])
    ids = {c["certificateId"] for page in by_ca for c in page["certificates"]}
    assert signed["certificateId"] in ids and foreign["certificateId"] not in ids
    assert iot.list_certificates_by_ca(caCertificateId="0" * 64)["certificates"] == []


@pytest.mark.parametrize("status", ["ACTIVE", "INACTIVE"])
def test_set_as_active_is_honoured_by_register_certificate(service: ServiceProcess, status: str) -> None:
    iot = service.iot()
    pem = _certificate(_key(), unique("flag"), _local_ca(service))
    made = iot.register_certificate(certificatePem=pem, setAsActive=status == "ACTIVE")
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == status
