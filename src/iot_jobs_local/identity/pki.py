"""The local certificate authority: a CA, the broker's server certificate, device certificates, the CRL.

The CA and the server use EC P-256 keys (~30x faster to make than RSA-2048). Device certificates
made by CreateKeysAndCertificate use RSA-2048 keys, as AWS IoT's do (the private key comes back
as PKCS#1 ``BEGIN RSA PRIVATE KEY``, like AWS's). The broker uses a device certificate's CN as the
MQTT username and looks the certificate up by it (see ``identity.py``); certificates issued by
older versions carry CN = thing name and keep working. The CRL lists every certificate that is
not ACTIVE, so the broker refuses them at the TLS handshake.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=3650)
CertificatePublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Issued:
    certificate_pem: bytes
    private_key_pem: bytes

    @property
    def certificate_id(self) -> str:
        """AWS IoT certificate ids are 64 hex characters: the SHA-256 of the DER certificate."""
        cert = x509.load_pem_x509_certificate(self.certificate_pem)
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def public_key_pem(self) -> bytes:
        cert = x509.load_pem_x509_certificate(self.certificate_pem)
        return cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class CertificateFacts:
    """What the service stores about a certificate it did not necessarily issue itself."""

    certificate_id: str
    common_name: str
    serial_number: int
    not_before: float
    not_after: float


def facts(certificate_pem: bytes) -> CertificateFacts:
    cert = x509.load_pem_x509_certificate(certificate_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = names[0].value if names else ""
    return CertificateFacts(
        certificate_id=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        common_name=common_name if isinstance(common_name, str) else common_name.decode(),
        serial_number=cert.serial_number,
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)


def new_ca(common_name: str = "iot-jobs-local CA") -> Issued:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _ca_parts(ca: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    ca_key = serialization.load_pem_private_key(ca.private_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return ca_cert, ca_key


@dataclass(frozen=True)
class KeyPair:
    """A private key as PEM, and its public key as PEM (reading the public key back from the
    private one would validate the whole RSA key again, tens of milliseconds)."""

    private_pem: bytes
    public_pem: bytes


def new_rsa_key_pair() -> KeyPair:
    """An RSA-2048 key, the private part as PKCS#1 PEM, as AWS returns it (~55 ms of CPU: a
    module-level function, so that a worker process can make it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(private, public)


class Signer:
    """The CA, parsed once: signing a certificate with its P-256 key costs well under a millisecond."""

    def __init__(self, ca: Issued) -> None:
        self.certificate, self.key = _ca_parts(ca)

    def _builder(self, common_name: str, public_key: CertificatePublicKey, server: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )

    def _sign(self, builder: x509.CertificateBuilder) -> bytes:
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def leaf(self, common_name: str, server: bool) -> Issued:
        """A certificate with a new EC P-256 key."""
        key = _key()
        builder = self._builder(common_name, key.public_key(), server)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
        return Issued(self._sign(builder), _key_pem(key))

    def device_certificate(self, common_name: str, keys: KeyPair) -> Issued:
        """A client certificate for this (RSA) key: what CreateKeysAndCertificate returns."""
        public_key = serialization.load_pem_public_key(keys.public_pem)
        assert isinstance(public_key, rsa.RSAPublicKey)
        return Issued(self._sign(self._builder(common_name, public_key, server=False)), keys.private_pem)

    def sign_csr(self, csr_pem: bytes, common_name: str) -> bytes:
        """A client certificate for the CSR's public key (CreateCertificateFromCsr).

        The subject is ours, not the CSR's: AWS's issued certificates carry its own subject too
        ("CN=AWS IoT Certificate"), and the broker needs a CN no other certificate has."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
            valid = csr.is_signature_valid
            public_key = csr.public_key()
        except ValueError as exc:
            raise BadCertificate("The certificate signing request is not a valid PEM PKCS#10 request") from exc
        if not valid:
            raise BadCertificate("The signature of the certificate signing request is not valid")
        if not isinstance(public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise BadCertificate("The certificate signing request's key must be RSA or EC")
        return self._sign(self._builder(common_name, public_key, server=False))


def _leaf(ca: Issued, common_name: str, server: bool, rsa_key: bool = False) -> Issued:
    signer = Signer(ca)
    if rsa_key:
        return signer.device_certificate(common_name, new_rsa_key_pair())
    return signer.leaf(common_name, server)


def new_server_certificate(ca: Issued) -> Issued:
    return _leaf(ca, "localhost", server=True)


def new_device_certificate(ca: Issued, common_name: str) -> Issued:
    """An RSA-2048 client certificate (what CreateKeysAndCertificate returns)."""
    return _leaf(ca, common_name, server=False, rsa_key=True)


class BadCertificate(ValueError):
    """Not a PEM X.509 certificate (or CSR), or one that cannot be used; the message says why."""


def load_certificate(certificate_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise BadCertificate("The certificate is not a valid PEM X.509 certificate") from exc


def signed_by(certificate_pem: bytes, ca_pem: bytes) -> bool:
    """Whether ``ca_pem``'s key signed this certificate (and named itself its issuer)."""
    cert = load_certificate(certificate_pem)
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def sign_csr(ca: Issued, csr_pem: bytes, common_name: str) -> bytes:
    """``Signer.sign_csr`` with a CA parsed for this one call."""
    return Signer(ca).sign_csr(csr_pem, common_name)


def new_crl(ca: Issued, revoked_serials: Iterable[int]) -> bytes:
    """A CRL (PEM) signed by the CA. Valid for the CA's lifetime: it is rewritten at every change."""
    ca_cert, ca_key = _ca_parts(ca)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(_now())
        .next_update(ca_cert.not_valid_after_utc)
    )
    for serial in sorted(set(revoked_serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_now()).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (keys, credentials), in directories made private
    too: whatever the umask of the process (a test harness provisioning in-process, say)."""
    missing = [parent for parent in [path.parent, *path.parent.parents] if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load(cert_path: Path, key_path: Path) -> Issued:
    return Issued(cert_path.read_bytes(), key_path.read_bytes())
