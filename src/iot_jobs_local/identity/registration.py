"""Checks on a certificate someone else made, before RegisterCertificate(WithoutCA) records it.

AWS answers a certificate it cannot use with ``CertificateValidationException`` (400) and one it
already has with ``ResourceAlreadyExistsException`` "The certificate is already provisioned or
registered" (the message boto3 users report from AWS). What a registration may set the status to:
the model's ``CertificateStatus`` values a caller can ask for (ACTIVE, INACTIVE, REVOKED); without
``status`` or ``setAsActive`` the certificate is INACTIVE, as CreateKeysAndCertificate's is.
"""

from __future__ import annotations

from . import pki
from .errors import CertificateValidationException, InvalidRequestException

ALREADY_REGISTERED = "The certificate is already provisioned or registered"
REGISTRABLE_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")


def status_of(status: str | None, set_as_active: bool | None) -> str:
    """``status`` wins over the deprecated ``setAsActive``."""
    if status is None:
        return "ACTIVE" if set_as_active else "INACTIVE"
    if status not in REGISTRABLE_STATUSES:
        raise InvalidRequestException(
            f"Invalid status: {status}. A certificate can be registered as ACTIVE, INACTIVE or REVOKED"
        )
    return status


def usable(certificate_pem: str, now: float) -> bytes:
    """The PEM as bytes, if it holds one X.509 certificate valid at ``now``."""
    data = certificate_pem.encode()
    try:
        cert = pki.load_certificate(data)
    except pki.BadCertificate as exc:
        raise CertificateValidationException(str(exc)) from None
    if cert.not_valid_after_utc.timestamp() < now:
        raise CertificateValidationException("The certificate has expired")
    if cert.not_valid_before_utc.timestamp() > now:
        raise CertificateValidationException("The certificate is not valid yet")
    return data


def check_issuer(certificate_pem: bytes, ca_pem: str | None, local_ca_pem: bytes) -> None:
    """RegisterCertificate: the issuer must be a registered CA; iot-jobs-local's is its own CA.

    ``caCertificatePem``, when given, must be that CA (compared as certificates, not as text)."""
    if ca_pem is not None:
        try:
            given = pki.load_certificate(ca_pem.encode())
        except pki.BadCertificate:
            raise CertificateValidationException("The CA certificate is not a valid PEM X.509 certificate") from None
        if given != pki.load_certificate(local_ca_pem):
            raise CertificateValidationException(
                "The CA certificate is not registered (iot-jobs-local's only CA is its own; see DescribeCACertificate)"
            )
    if not pki.signed_by(certificate_pem, local_ca_pem):
        raise CertificateValidationException("The certificate is not signed by a registered CA certificate")
