"""``provision <thing>``: a thing, an ACTIVE certificate and key in ``devices/<thing>/``, the default
device policy attached to the certificate, and the certificate attached to the thing.

The steps are the public ``iot`` operations (CreateThing, CreateKeysAndCertificate, CreatePolicy,
AttachPolicy, AttachThingPrincipal). While the service runs they go through its HTTP API with
boto3, so the broker picks up the new certificate at once; when it does not run they are applied
to the state directory in-process (``LocalRegistry``) and the next start builds the broker ACL.

Provisioning a thing whose files exist changes nothing (the policies attached to its certificate
may have been changed on purpose). A certificate made by an older version (CN = thing name, not
in the database) is adopted: registered ACTIVE and attached like a new one. A certificate that
was deleted through the API is replaced by a new one.

The default device policy is the repository's ``policies/device-policy.json`` with the region and
account filled in, ``<thingname>`` written as ``${iot:Connection.Thing.ThingName}`` (so one policy
serves every thing; provision attaches the thing as EXCLUSIVE_THING, so the variable resolves
whatever client id the device uses) and iot:Connect on ``client/*`` instead of ``client/test-*``
(the console uses ``test-<uuid>``, the SDK samples and tests other ids).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ..jobs.errors import JobsError, ResourceAlreadyExists
from . import pki
from .errors import IdentityError, ResourceAlreadyExistsException, ResourceNotFoundException
from .service import IdentityService

log = logging.getLogger(__name__)

DEFAULT_POLICY_NAME = "iot-jobs-local-device"
THING_VARIABLE = "${iot:Connection.Thing.ThingName}"


def default_policy_document(region: str, account: str) -> str:
    arn = f"arn:aws:iot:{region}:{account}"
    jobs = f"$aws/things/{THING_VARIABLE}/jobs"
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [
                    f"{arn}:topic/{jobs}/start-next",
                    f"{arn}:topic/{jobs}/*/update",
                    f"{arn}:topic/{jobs}/*/get",
                    f"{arn}:topic/{jobs}/get",
                ],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Receive",
                "Resource": [
                    f"{arn}:topic/{jobs}/notify",
                    f"{arn}:topic/{jobs}/notify-next",
                    f"{arn}:topic/{jobs}/start-next/*",
                    f"{arn}:topic/{jobs}/*/update/*",
                    f"{arn}:topic/{jobs}/get/*",
                    f"{arn}:topic/{jobs}/*/get/*",
                ],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [
                    f"{arn}:topicfilter/{jobs}/notify",
                    f"{arn}:topicfilter/{jobs}/notify-next",
                    f"{arn}:topicfilter/{jobs}/start-next/*",
                    f"{arn}:topicfilter/{jobs}/*/update/*",
                    f"{arn}:topicfilter/{jobs}/get/*",
                    f"{arn}:topicfilter/{jobs}/*/get/*",
                ],
            },
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
        ],
    }
    return json.dumps(document, indent=2)


class DeviceFiles(Protocol):
    """Where a device's certificate and key live (the state directory's ``devices/<thing>/``)."""

    @property
    def root(self) -> Path: ...

    def device_cert(self, thing: str) -> Path: ...

    def device_key(self, thing: str) -> Path: ...


class Registry(Protocol):
    """The ``iot`` operations provisioning needs."""

    region: str
    account: str

    def ensure_thing(self, thing: str) -> None: ...

    def certificate_known(self, certificate_id: str) -> bool: ...

    def adopt(self, certificate_pem: bytes) -> str | None:
        """Register a certificate issued by an older version; its ARN, or None if not possible."""
        ...

    def create_keys_and_certificate(self) -> tuple[str, bytes, bytes]:
        """(certificate ARN, certificate PEM, private key PEM) of a new ACTIVE certificate."""
        ...

    def ensure_policy(self, name: str, document: str) -> None: ...

    def attach(self, thing: str, certificate_arn: str, policy_name: str) -> None: ...


def provision(state: DeviceFiles, thing: str, registry: Registry) -> tuple[Path, Path]:
    """Provision ``thing`` (idempotent); return the paths of its certificate and private key."""
    registry.ensure_thing(thing)
    cert_path, key_path = state.device_cert(thing), state.device_key(thing)
    if cert_path.exists() and key_path.exists():
        pem = cert_path.read_bytes()
        if registry.certificate_known(pki.facts(pem).certificate_id):
            return cert_path, key_path
        adopted = registry.adopt(pem)
        if adopted is not None:
            _attach_default(registry, thing, adopted)
            return cert_path, key_path
    arn, certificate_pem, private_key_pem = registry.create_keys_and_certificate()
    pki.write_private(key_path, private_key_pem)
    pki.write_private(cert_path, certificate_pem)  # private as all of the state directory
    _attach_default(registry, thing, arn)
    return cert_path, key_path


def _attach_default(registry: Registry, thing: str, certificate_arn: str) -> None:
    registry.ensure_policy(DEFAULT_POLICY_NAME, default_policy_document(registry.region, registry.account))
    registry.attach(thing, certificate_arn, DEFAULT_POLICY_NAME)


def adopt_legacy_devices(state: DeviceFiles, registry: Registry) -> list[str]:
    """Adopt every certificate an older version issued into ``devices/``; the things adopted.

    A directory that cannot be adopted (not a thing name, not a certificate of ours) is skipped.
    """
    adopted = []
    devices = state.root / "devices"
    for directory in sorted(devices.iterdir()) if devices.is_dir() else []:
        cert = state.device_cert(directory.name)
        try:
            if not cert.is_file() or registry.certificate_known(pki.facts(cert.read_bytes()).certificate_id):
                continue
            registry.ensure_thing(directory.name)
            arn = registry.adopt(cert.read_bytes())
            if arn is not None:
                _attach_default(registry, directory.name, arn)
                adopted.append(directory.name)
        except (JobsError, IdentityError, ValueError, OSError) as exc:
            log.warning("not adopting the certificate in %s: %s", directory, exc)
    return adopted


class LocalRegistry:
    """The registry operations applied in-process (the service, or the CLI when none runs)."""

    def __init__(self, identity: IdentityService, create_thing: Callable[[str], object], ca: pki.Issued) -> None:
        self._identity = identity
        self._create_thing = create_thing
        self._ca = x509.load_pem_x509_certificate(ca.certificate_pem)
        self.region = identity.region
        self.account = identity.account

    def ensure_thing(self, thing: str) -> None:
        with contextlib.suppress(ResourceAlreadyExists):  # it exists (with other attributes)
            self._create_thing(thing)

    def certificate_known(self, certificate_id: str) -> bool:
        try:
            self._identity.describe_certificate(certificate_id)
        except ResourceNotFoundException:
            return False
        return True

    def adopt(self, certificate_pem: bytes) -> str | None:
        facts = pki.facts(certificate_pem)
        try:
            x509.load_pem_x509_certificate(certificate_pem).verify_directly_issued_by(self._ca)
        except (InvalidSignature, ValueError, TypeError):
            return None
        if self._identity.certificate_by_common_name(facts.common_name) is not None:
            return None
        if facts.serial_number in self._identity.revoked_serials():
            return None
        return self._identity.register(certificate_pem, "ACTIVE").certificate_arn

    def create_keys_and_certificate(self) -> tuple[str, bytes, bytes]:
        certificate, issued = self._identity.create_keys_and_certificate(set_as_active=True)
        return certificate.certificate_arn, issued.certificate_pem, issued.private_key_pem

    def ensure_policy(self, name: str, document: str) -> None:
        with contextlib.suppress(ResourceAlreadyExistsException):
            self._identity.policies.create_policy(name, document)

    def attach(self, thing: str, certificate_arn: str, policy_name: str) -> None:
        self._identity.policies.attach_policy(policy_name, certificate_arn)
        self._identity.attach_thing_principal(thing, certificate_arn, "EXCLUSIVE_THING")


class Boto3Registry:
    """The registry operations through a running service's HTTP API (SigV4-signed, like any client)."""

    def __init__(self, client: Any, region: str, account: str) -> None:
        self._iot = client
        self.region = region
        self.account = account

    def ensure_thing(self, thing: str) -> None:
        with contextlib.suppress(self._iot.exceptions.ResourceAlreadyExistsException):
            self._iot.create_thing(thingName=thing)

    def certificate_known(self, certificate_id: str) -> bool:
        try:
            self._iot.describe_certificate(certificateId=certificate_id)
        except self._iot.exceptions.ResourceNotFoundException:
            return False
        return True

    def adopt(self, certificate_pem: bytes) -> str | None:
        return None  # the running service adopted every older certificate when it started

    def create_keys_and_certificate(self) -> tuple[str, bytes, bytes]:
        made = self._iot.create_keys_and_certificate(setAsActive=True)
        return made["certificateArn"], made["certificatePem"].encode(), made["keyPair"]["PrivateKey"].encode()

    def ensure_policy(self, name: str, document: str) -> None:
        with contextlib.suppress(self._iot.exceptions.ResourceAlreadyExistsException):
            self._iot.create_policy(policyName=name, policyDocument=document)

    def attach(self, thing: str, certificate_arn: str, policy_name: str) -> None:
        self._iot.attach_policy(policyName=policy_name, target=certificate_arn)
        self._iot.attach_thing_principal(
            thingName=thing, principal=certificate_arn, thingPrincipalType="EXCLUSIVE_THING"
        )
