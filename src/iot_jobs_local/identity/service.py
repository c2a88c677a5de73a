"""Certificates and their thing attachments; what a certificate may do on the broker.

The service layer of the identity half of the ``iot`` API (policies are in ``identity_policies``):
validate, run one transaction, then tell the listeners (the broker access manager) that access
changed, and which certificates lost it, so that their connections can be closed.

A certificate is known to the broker by its subject CN (the MQTT username, with
``use_identity_as_username``). Certificates made here get a random CN; the certificate id is the
SHA-256 of the DER certificate, as on AWS, so it cannot also be the CN.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import pki, policies, registration
from .errors import (
    CertificateStateException,
    DeleteConflictException,
    InvalidRequestException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from .groups import NO_GROUPS, Groups
from .paging import next_marker, window
from .policy_book import PolicyBook
from .store import Certificate, DocumentsByTarget, IdentityStore, ThingPrincipal

CERTIFICATE_STATUSES = (
    "ACTIVE",
    "INACTIVE",
    "REVOKED",
    "PENDING_TRANSFER",
    "REGISTER_INACTIVE",
    "PENDING_ACTIVATION",
)
_SETTABLE_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")
PRINCIPAL_TYPES = ("EXCLUSIVE_THING", "NON_EXCLUSIVE_THING")
_CERTIFICATE_ID = re.compile(r"[a-fA-F0-9]{64}\Z")


@dataclass(frozen=True)
class AccessChange:
    """What a certificate may do changed: for these CNs (None: possibly for any certificate);
    connections made with ``revoked_common_names`` must be closed; the CRL changed."""

    common_names: frozenset[str] | None = None
    revoked_common_names: frozenset[str] = frozenset()
    crl_changed: bool = False


Listener = Callable[[AccessChange], None]


@dataclass(frozen=True)
class Grant:
    """One ACTIVE certificate's policy statements and the things its ``iot:Connect`` may name."""

    common_name: str
    statements: list[policies.Statement]
    things: tuple[str, ...]


class IdentityService:
    def __init__(
        self,
        store: IdentityStore,
        ca: Callable[[], pki.Issued],
        region: str,
        account: str,
        thing_exists: Callable[[str], bool],
        clock: Callable[[], float],
        groups: Groups = NO_GROUPS,
    ) -> None:
        self._store = store
        self.region = region
        self.account = account
        self.arn_prefix = f"arn:aws:iot:{region}:{account}"
        self.now = clock
        self._ca = ca
        self._thing_exists = thing_exists
        self._listeners: list[Listener] = []
        self._groups = groups
        self.policies = PolicyBook(store, self.arn_prefix, clock, self._changed, self._principal, groups)
        self._ca_signer: pki.Signer | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _changed(
        self, common_names: Iterable[str] | None = None, revoked: Sequence[str] = (), crl: bool = False
    ) -> None:
        affected = None if common_names is None else frozenset(common_names)
        change = AccessChange(affected, frozenset(revoked), crl)
        for listener in self._listeners:
            listener(change)

    # certificates ------------------------------------------------------------------------------
    def certificate_arn(self, certificate_id: str) -> str:
        return f"{self.arn_prefix}:cert/{certificate_id}"

    def _signer(self) -> pki.Signer:
        """The CA's parsed key and certificate, read once (the CA does not change while the
        service runs; reading and parsing it for every certificate cost more than signing)."""
        if self._ca_signer is None:
            self._ca_signer = pki.Signer(self._ca())
        return self._ca_signer

    def create_keys_and_certificate(
        self, set_as_active: bool, keys: pki.KeyPair | None = None
    ) -> tuple[Certificate, pki.Issued]:
        """``keys``: an RSA key made elsewhere (a worker process: making one costs ~55 ms of
        CPU); without it, one is made here."""
        issued = self._signer().device_certificate(f"iot-cert.{secrets.token_hex(16)}", keys or pki.new_rsa_key_pair())
        certificate = self.register(issued.certificate_pem, "ACTIVE" if set_as_active else "INACTIVE")
        return certificate, issued

    def local_ca(self) -> dict[str, Any]:
        """The local CA as DescribeCACertificate shows a registered CA (ACTIVE, no auto-registration)."""
        pem = self._ca().certificate_pem
        facts = pki.facts(pem)
        return {
            "certificateArn": f"{self.arn_prefix}:cacert/{facts.certificate_id}",
            "certificateId": facts.certificate_id,
            "status": "ACTIVE",
            "certificatePem": pem.decode(),
            "creationDate": facts.not_before,
            "autoRegistrationStatus": "DISABLE",
            "lastModifiedDate": facts.not_before,
            "customerVersion": 1,
            "generationId": facts.certificate_id[:32],
            "validity": {"notBefore": facts.not_before, "notAfter": facts.not_after},
            "certificateMode": "DEFAULT",
        }

    def create_certificate_from_csr(self, csr_pem: str, set_as_active: bool) -> Certificate:
        """Sign the CSR with the local CA (AWS signs it with its own)."""
        try:
            pem = self._signer().sign_csr(csr_pem.encode(), f"iot-cert.{secrets.token_hex(16)}")
        except pki.BadCertificate as exc:
            raise InvalidRequestException(str(exc)) from None
        return self.register(pem, "ACTIVE" if set_as_active else "INACTIVE")

    def register_certificate(
        self, certificate_pem: str, ca_pem: str | None, status: str | None, set_as_active: bool | None
    ) -> Certificate:
        """RegisterCertificate: a certificate signed by a registered CA (here: the local CA)."""
        data = registration.usable(certificate_pem, self.now())
        registration.check_issuer(data, ca_pem, self._ca().certificate_pem)
        return self.register(data, registration.status_of(status, set_as_active))

    def register_certificate_without_ca(self, certificate_pem: str, status: str | None) -> Certificate:
        """Any certificate. The broker trusts only the local CA, so only one it signed can connect."""
        data = registration.usable(certificate_pem, self.now())
        return self.register(data, registration.status_of(status, None))

    def register(self, certificate_pem: bytes, status: str) -> Certificate:
        """Record a certificate (issued here, by an older version, or registered by a caller)."""
        facts = pki.facts(certificate_pem)
        now = self.now()
        certificate = Certificate(
            certificate_id=facts.certificate_id,
            certificate_arn=self.certificate_arn(facts.certificate_id),
            status=status,
            certificate_pem=certificate_pem.decode(),
            common_name=facts.common_name,
            serial_number=facts.serial_number,
            not_before=facts.not_before,
            not_after=facts.not_after,
            creation_date=now,
            last_modified_date=now,
            generation_id=uuid.uuid4().hex,
        )
        with self._store.transaction():
            if self._store.certificate(facts.certificate_id) is not None:
                raise ResourceAlreadyExistsException(
                    registration.ALREADY_REGISTERED, facts.certificate_id, certificate.certificate_arn
                )
            if self._store.certificate_by_common_name(facts.common_name) is not None:
                # The broker knows a certificate by its subject CN (its MQTT username): two
                # certificates with one CN cannot be told apart (docs/fidelity.md).
                raise InvalidRequestException(
                    f"A certificate with subject CN {facts.common_name} is already registered"
                )
            self._store.put_certificate(certificate)
        if status != "ACTIVE":
            # Only the CRL changes (it lists every certificate that is not ACTIVE). A new ACTIVE
            # certificate has no policy and no thing yet: it may do nothing, before and after.
            self._changed([facts.common_name], crl=True)
        return certificate

    def _certificate(self, certificate_id: str) -> Certificate:
        if not _CERTIFICATE_ID.match(certificate_id):
            raise InvalidRequestException(f"Invalid certificate id: {certificate_id}")
        found = self._store.certificate(certificate_id.lower())
        if found is None:
            raise ResourceNotFoundException(f"The certificate {certificate_id} does not exist")
        return found

    def describe_certificate(self, certificate_id: str) -> Certificate:
        return self._certificate(certificate_id)

    def certificate_by_common_name(self, common_name: str) -> Certificate | None:
        return self._store.certificate_by_common_name(common_name)

    def revoked_serials(self) -> list[int]:
        """Serials of deleted certificates and of every certificate that is not ACTIVE."""
        return self._store.revoked_serials()

    def update_certificate(self, certificate_id: str, new_status: str) -> None:
        if new_status not in CERTIFICATE_STATUSES:
            raise InvalidRequestException(f"Invalid newStatus: {new_status}")
        if new_status not in _SETTABLE_STATUSES:
            raise InvalidRequestException(f"The status {new_status} cannot be set with UpdateCertificate")
        with self._store.transaction():
            current = self._certificate(certificate_id)
            if current.status == new_status:
                return
            if current.status == "REVOKED":
                raise CertificateStateException(f"The certificate {current.certificate_id} is revoked")
            self._store.put_certificate(
                replace(current, status=new_status, last_modified_date=self.now(), generation_id=uuid.uuid4().hex)
            )
        self._changed([current.common_name], [current.common_name] if new_status != "ACTIVE" else [], crl=True)

    def delete_certificate(self, certificate_id: str, force: bool) -> None:
        with self._store.transaction():
            current = self._certificate(certificate_id)
            if current.status == "ACTIVE":
                raise CertificateStateException(  # AWS's words, as users report them (docs/fidelity.md)
                    f"Certificate must be deactivated (not ACTIVE) before deletion. Id: {current.certificate_id}"
                )
            if self._store.things_of_principal(current.certificate_arn):
                raise DeleteConflictException(
                    f"Certificate {current.certificate_id} is attached to one or more things: detach them first"
                )
            attached = self._store.policies_of_target(current.certificate_arn)
            if attached and not force:
                raise DeleteConflictException(
                    f"Certificate {current.certificate_id} has policies attached: detach them or use forceDelete"
                )
            for name in attached:
                self._store.detach_policy(name, current.certificate_arn)
            self._store.add_revoked_serial(current.serial_number)
            self._store.delete_certificate(current.certificate_id)
        self._changed([current.common_name], [current.common_name], crl=True)

    def list_certificates(
        self, page_size: int | None, marker: str | None, ascending: bool
    ) -> tuple[list[Certificate], str | None]:
        offset, limit = window(marker, page_size, 250)
        found = self._store.certificates(ascending, offset, limit + 1)
        return found[:limit], next_marker(offset, limit, len(found))

    def certificates_by_ca(
        self, ca_certificate_id: str, page_size: int | None, marker: str | None, ascending: bool
    ) -> tuple[list[Certificate], str | None]:
        """ListCertificatesByCA: the certificates the local CA signed (none for another CA id)."""
        if not _CERTIFICATE_ID.match(ca_certificate_id):
            raise InvalidRequestException(f"Invalid CA certificate id: {ca_certificate_id}")
        ca = self.local_ca()
        signed = []
        if ca_certificate_id.lower() == ca["certificateId"]:
            pem = ca["certificatePem"].encode()
            signed = [c for c in self._store.certificates(ascending) if pki.signed_by(c.certificate_pem.encode(), pem)]
        offset, limit = window(marker, page_size, 250)
        return signed[offset : offset + limit], next_marker(offset, limit, len(signed[offset : offset + limit + 1]))

    # thing principals --------------------------------------------------------------------------
    def _principal(self, principal: str) -> Certificate:
        prefix = f"{self.arn_prefix}:cert/"
        if not principal.startswith(prefix):
            raise InvalidRequestException(
                f"Principal {principal} is not a certificate ARN of this account and region ({prefix}<certificateId>)"
            )
        certificate_id = principal[len(prefix) :]
        if not _CERTIFICATE_ID.match(certificate_id):
            raise InvalidRequestException(f"Invalid certificate id in principal: {principal}")
        found = self._store.certificate(certificate_id.lower())
        if found is None:
            raise ResourceNotFoundException("The certificate given in the principal does not exist.")
        return found

    def _thing(self, thing_name: str) -> None:
        if not self._thing_exists(thing_name):
            raise ResourceNotFoundException(f"Thing {thing_name} cannot be found.")

    def attach_thing_principal(self, thing_name: str, principal: str, principal_type: str | None) -> None:
        kind = principal_type or "NON_EXCLUSIVE_THING"
        if kind not in PRINCIPAL_TYPES:
            raise InvalidRequestException(f"Invalid thingPrincipalType: {kind}")
        self._thing(thing_name)
        with self._store.transaction():
            certificate = self._principal(principal)
            others = [
                t for t in self._store.things_of_principal(certificate.certificate_arn) if t.thing_name != thing_name
            ]
            if others and (kind == "EXCLUSIVE_THING" or any(t.principal_type == "EXCLUSIVE_THING" for t in others)):
                raise InvalidRequestException(
                    f"Principal {principal} is attached to thing {others[0].thing_name}: an EXCLUSIVE_THING "
                    "principal belongs to one thing only"
                )
            self._store.attach_thing(thing_name, certificate.certificate_arn, kind, self.now())
        self._changed([certificate.common_name])

    def detach_thing_principal(self, thing_name: str, principal: str) -> None:
        self._thing(thing_name)
        with self._store.transaction():
            certificate = self._principal(principal)
            self._store.detach_thing(thing_name, certificate.certificate_arn)
        self._changed([certificate.common_name])

    def thing_principals(self, thing_name: str) -> list[ThingPrincipal]:
        self._thing(thing_name)
        return self._store.principals_of_thing(thing_name)

    def principal_things(self, principal: str) -> list[ThingPrincipal]:
        certificate = self._principal(principal)
        return self._store.things_of_principal(certificate.certificate_arn)

    def effective_policies(self, principal: str | None, thing_name: str | None) -> list[str]:
        """GetEffectivePolicies: the policies of the certificate, and those the thing inherits from
        its groups and their ancestors, each once (names, in attachment order)."""
        if principal is None and thing_name is None:
            raise InvalidRequestException("Specify a principal, a thingName or both")
        targets = []
        if principal is not None:
            targets.append(self._principal(principal).certificate_arn)
        if thing_name is not None:
            self._thing(thing_name)
            targets += [self.policies.group_arn(g) for g in self._groups.inherited_by([thing_name])]
        names: list[str] = []
        for target in targets:
            names += [n for n in self._store.policies_of_target(target) if n not in names]
        return names

    def membership_changed(self, deleted_groups: Sequence[str], things: Sequence[str] | None = None) -> None:
        """Engine listener: the group membership of ``things`` changed (None: of any thing), or
        groups were deleted, taking their policy attachments with them. Access is recompiled only
        if some thing group has a policy, and only for the certificates attached to ``things``."""
        dropped = self.policies.forget_groups(list(deleted_groups)) if deleted_groups else False
        if dropped or things is None:
            if dropped or self.policies.group_targets_attached():
                self._changed()
        elif self.policies.group_targets_attached():
            self._changed(self._store.common_names_of_things(things))

    # what the broker enforces ------------------------------------------------------------------
    def _statements(
        self, certificate: Certificate, things: Sequence[str], documents: DocumentsByTarget | None = None
    ) -> list[policies.Statement]:
        """The certificate's own policies, and those of the thing groups (and their ancestors) of
        ``things``: AWS evaluates them together (an explicit Deny in any of them wins)."""
        groups = [self.policies.group_arn(g) for g in self._groups.inherited_by(things)]
        return self.policies.statements_of([certificate.certificate_arn, *groups], documents)

    def _things(
        self, certificate: Certificate, attached: list[ThingPrincipal] | None = None
    ) -> tuple[list[str], list[str]]:
        if attached is None:
            attached = self._store.things_of_principal(certificate.certificate_arn)
        exclusive = [t.thing_name for t in attached if t.principal_type == "EXCLUSIVE_THING"]
        return exclusive, [t.thing_name for t in attached]

    def may_connect(self, common_name: str, client_id: str) -> bool:
        """iot:Connect for ``client_id`` by the ACTIVE certificate with this CN (AWS's rules)."""
        certificate = self._store.certificate_by_common_name(common_name)
        if certificate is None or certificate.status != "ACTIVE":
            return False
        exclusive, names = self._things(certificate)
        variables = {policies.CLIENT_ID: client_id}
        # Without an exclusive thing, AWS resolves the thing name only if the client id is one.
        thing = exclusive[0] if exclusive else client_id if client_id in names else None
        if thing is not None:
            variables[policies.THING_NAME] = thing
        return policies.allowed(
            self._statements(certificate, [thing] if thing is not None else []),
            "iot:Connect",
            f"{self.arn_prefix}:client/{client_id}",
            variables,
            policies.Facts(is_attached=thing is not None),
        )

    def grants(self, common_names: Collection[str] | None = None) -> Iterator[Grant]:
        """What the ACTIVE certificates with these CNs may do (None: every certificate, oldest
        first, read with a few bulk queries), one at a time: the broker compiles its ACL from it."""
        if common_names is not None:
            found = (self._store.certificate_by_common_name(cn) for cn in common_names)
            certificates = [c for c in found if c is not None]
            attached = None
            documents = None
        else:
            certificates = self._store.certificates(ascending=True)
            attached = self._store.all_thing_principals()
            documents = self._store.all_default_documents()
        for certificate in certificates:
            if certificate.status != "ACTIVE":
                continue
            mine = None if attached is None else attached.get(certificate.certificate_arn, [])
            exclusive, names = self._things(certificate, mine)
            things = tuple(exclusive[:1] or names)
            yield Grant(certificate.common_name, self._statements(certificate, things, documents), things)
