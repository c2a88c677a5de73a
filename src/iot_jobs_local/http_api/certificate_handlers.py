"""``iot`` certificate operations: issue (CreateKeysAndCertificate, CreateCertificateFromCsr),
register (RegisterCertificate, RegisterCertificateWithoutCA), describe, update, delete, list, and
the local CA as the one registered CA. One thin function per operation, as in ``identity_handlers``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from ..identity.errors import ResourceNotFoundException
from ..identity.pki import KeyPair
from ..identity.store import Certificate
from .identity_context import Context, Operation


def _certificate_description(ctx: Context, c: Certificate) -> dict[str, Any]:
    return {
        "certificateArn": c.certificate_arn,
        "certificateId": c.certificate_id,
        "status": c.status,
        "certificatePem": c.certificate_pem,
        "ownedBy": ctx.identity.account,
        "creationDate": c.creation_date,
        "lastModifiedDate": c.last_modified_date,
        "customerVersion": c.customer_version,
        "generationId": c.generation_id,
        "validity": {"notBefore": c.not_before, "notAfter": c.not_after},
        "certificateMode": "DEFAULT",
    }


def create_keys_and_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    """The key is made in a worker process when the service has them (the reply comes later)."""
    active = bool(p.get("setAsActive", False))
    if ctx.keys is None:
        return _keys_and_certificate(ctx, active, None)
    keys = ctx.keys

    async def later() -> dict[str, Any]:
        return _keys_and_certificate(ctx, active, await keys.rsa_key_pair())

    return later()


def _keys_and_certificate(ctx: Context, active: bool, keys: KeyPair | None) -> dict[str, Any]:
    certificate, issued = ctx.identity.create_keys_and_certificate(active, keys)
    return {
        "certificateArn": certificate.certificate_arn,
        "certificateId": certificate.certificate_id,
        "certificatePem": certificate.certificate_pem,
        "keyPair": {"PublicKey": issued.public_key_pem.decode(), "PrivateKey": issued.private_key_pem.decode()},
    }


def _registered(certificate: Certificate) -> dict[str, Any]:
    return {"certificateArn": certificate.certificate_arn, "certificateId": certificate.certificate_id}


def create_certificate_from_csr(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    certificate = ctx.identity.create_certificate_from_csr(
        p["certificateSigningRequest"], bool(p.get("setAsActive", False))
    )
    return {**_registered(certificate), "certificatePem": certificate.certificate_pem}


def register_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    certificate = ctx.identity.register_certificate(
        p["certificatePem"], p.get("caCertificatePem"), p.get("status"), p.get("setAsActive")
    )
    return _registered(certificate)


def register_certificate_without_ca(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _registered(ctx.identity.register_certificate_without_ca(p["certificatePem"], p.get("status")))


def list_ca_certificates(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    """The one CA iot-jobs-local has, its own (RegisterCACertificate is out of scope)."""
    ca = ctx.identity.local_ca()
    if p.get("marker"):
        return {"certificates": []}
    keys = ("certificateArn", "certificateId", "status", "creationDate")
    return {"certificates": [{k: ca[k] for k in keys}]}


def describe_ca_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ca = ctx.identity.local_ca()
    if p["certificateId"].lower() != ca["certificateId"]:
        raise ResourceNotFoundException(f"The CA certificate {p['certificateId']} does not exist")
    return {"certificateDescription": {**ca, "ownedBy": ctx.identity.account}}


def describe_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    certificate = ctx.identity.describe_certificate(p["certificateId"])
    return {"certificateDescription": _certificate_description(ctx, certificate)}


def update_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.update_certificate(p["certificateId"], p["newStatus"])
    return {}


def delete_certificate(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.delete_certificate(p["certificateId"], bool(p.get("forceDelete", False)))
    return {}


def list_certificates(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found, marker = ctx.identity.list_certificates(p.get("pageSize"), p.get("marker"), bool(p.get("ascendingOrder")))
    return _certificate_list(found, marker)


def list_certificates_by_ca(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found, marker = ctx.identity.certificates_by_ca(
        p["caCertificateId"], p.get("pageSize"), p.get("marker"), bool(p.get("ascendingOrder"))
    )
    return _certificate_list(found, marker)


def _certificate_list(found: list[Certificate], marker: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "certificates": [
            {
                "certificateArn": c.certificate_arn,
                "certificateId": c.certificate_id,
                "status": c.status,
                "certificateMode": "DEFAULT",
                "creationDate": c.creation_date,
            }
            for c in found
        ]
    }
    if marker is not None:
        out["nextMarker"] = marker
    return out


OPERATIONS: dict[str, Operation] = {
    "CreateKeysAndCertificate": create_keys_and_certificate,
    "CreateCertificateFromCsr": create_certificate_from_csr,
    "RegisterCertificate": register_certificate,
    "RegisterCertificateWithoutCA": register_certificate_without_ca,
    "ListCACertificates": list_ca_certificates,
    "DescribeCACertificate": describe_ca_certificate,
    "DescribeCertificate": describe_certificate,
    "UpdateCertificate": update_certificate,
    "DeleteCertificate": delete_certificate,
    "ListCertificates": list_certificates,
    "ListCertificatesByCA": list_certificates_by_ca,
}
