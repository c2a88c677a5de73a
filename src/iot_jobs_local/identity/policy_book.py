"""IoT policies: documents with up to five versions, and their attachment to certificates and
thing groups (a target is stored as its ARN).

Every document is validated (``policies.parse``) before it is stored. A change that can alter
what an attached certificate may do (a new default version, attach, detach) calls ``changed`` so
the broker's ACL is rebuilt.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import replace

from . import policies
from .errors import (
    DeleteConflictException,
    InvalidRequestException,
    LimitExceededException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    VersionsLimitExceededException,
)
from .groups import Groups
from .paging import next_marker, window
from .store import Certificate, DocumentsByTarget, IdentityStore, Policy, PolicyVersion

MAX_VERSIONS = 5
MAX_POLICIES_PER_TARGET = 10
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}\Z")
_VERSION_ID = re.compile(r"[0-9]{1,9}\Z")


@functools.lru_cache(maxsize=1024)
def _parsed(document: str) -> tuple[policies.Statement, ...]:
    """A fleet shares a few documents: each is parsed once, not once per certificate and rebuild."""
    return policies.parse(document)


class PolicyBook:
    def __init__(
        self,
        store: IdentityStore,
        arn_prefix: str,
        clock: Callable[[], float],
        changed: Callable[[list[str] | None], None],
        certificate_of: Callable[[str], Certificate],
        groups: Groups,
    ) -> None:
        self._store = store
        self._arn_prefix = arn_prefix
        self._now = clock
        self._changed = changed
        self._certificate_of = certificate_of
        self._groups = groups
        self.group_prefix = f"{arn_prefix}:thinggroup/"

    def policy_arn(self, name: str) -> str:
        return f"{self._arn_prefix}:policy/{name}"

    def _policy(self, name: str) -> Policy:
        if not _POLICY_NAME.match(name):
            raise InvalidRequestException(f"Invalid policy name: {name}")
        found = self._store.policy(name)
        if found is None:
            raise ResourceNotFoundException(f"Policy {name} does not exist")
        return found

    def _version(self, policy: Policy, version_id: str | int) -> PolicyVersion:
        if isinstance(version_id, str) and not _VERSION_ID.match(version_id):
            raise InvalidRequestException(f"Invalid policy version id: {version_id}")
        found = self._store.version(policy.policy_name, int(version_id))
        if found is None:
            raise ResourceNotFoundException(f"Policy {policy.policy_name} has no version {version_id}")
        return found

    def _touch(
        self, policy: Policy, default_version_id: int | None = None, last_version_id: int | None = None
    ) -> Policy:
        updated = replace(
            policy,
            default_version_id=policy.default_version_id if default_version_id is None else default_version_id,
            last_version_id=policy.last_version_id if last_version_id is None else last_version_id,
            last_modified_date=self._now(),
            generation_id=uuid.uuid4().hex,
        )
        self._store.put_policy(updated)
        return updated

    def _notify_if_attached(self, name: str) -> None:
        if self._store.targets_of_policy(name):
            self._changed(None)  # any certificate may have it, directly or through its groups

    def _affected(self, arn: str) -> list[str] | None:
        """The CNs whose rights a change of ``arn``'s policies alters (None: a group's, any)."""
        if arn.startswith(self.group_prefix):
            return None
        return [self._certificate_of(arn).common_name]

    # policies ----------------------------------------------------------------------------------
    def create_policy(self, name: str, document: str) -> tuple[Policy, PolicyVersion]:
        if not _POLICY_NAME.match(name):
            raise InvalidRequestException(f"Invalid policy name: {name}")
        policies.parse(document)
        now = self._now()
        policy = Policy(name, self.policy_arn(name), 1, 1, now, now, uuid.uuid4().hex)
        version = PolicyVersion(name, 1, document, now)
        with self._store.transaction():
            if self._store.policy(name) is not None:
                raise ResourceAlreadyExistsException(  # AWS's wording (docs/fidelity.md)
                    f"Policy cannot be created - name already exists (name={name})", name, policy.policy_arn
                )
            self._store.put_policy(policy)
            self._store.put_version(version)
        return policy, version

    def get_policy(self, name: str) -> tuple[Policy, PolicyVersion]:
        policy = self._policy(name)
        return policy, self._version(policy, policy.default_version_id)

    def delete_policy(self, name: str) -> None:
        with self._store.transaction():
            policy = self._policy(name)
            if self._store.targets_of_policy(name):
                raise DeleteConflictException(
                    f"The policy cannot be deleted as the policy is attached to one or more principals (name={name})"
                )
            if len(self._store.versions(name)) > 1:
                # AWS's words, "than than" included, as users report them (docs/fidelity.md)
                raise DeleteConflictException(
                    "The policy cannot be deleted as versions other than than default version exist"
                )
            self._store.delete_policy(policy.policy_name)

    def list_policies(
        self, marker: str | None, page_size: int | None, ascending: bool
    ) -> tuple[list[Policy], str | None]:
        offset, limit = window(marker, page_size, 250)
        found = self._store.policies(ascending, offset, limit + 1)
        return found[:limit], next_marker(offset, limit, len(found))

    # versions ----------------------------------------------------------------------------------
    def create_policy_version(self, name: str, document: str, set_as_default: bool) -> tuple[Policy, PolicyVersion]:
        policies.parse(document)
        with self._store.transaction():
            policy = self._policy(name)
            if len(self._store.versions(name)) >= MAX_VERSIONS:
                raise VersionsLimitExceededException(
                    f"The policy {name} already has the maximum number of versions ({MAX_VERSIONS})"
                )
            version = PolicyVersion(name, policy.last_version_id + 1, document, self._now())
            self._store.put_version(version)
            policy = self._touch(
                policy,
                default_version_id=version.version_id if set_as_default else None,
                last_version_id=version.version_id,
            )
        if set_as_default:
            self._notify_if_attached(name)
        return policy, version

    def get_policy_version(self, name: str, version_id: str) -> tuple[Policy, PolicyVersion]:
        policy = self._policy(name)
        return policy, self._version(policy, version_id)

    def list_policy_versions(self, name: str) -> tuple[Policy, list[PolicyVersion]]:
        policy = self._policy(name)
        return policy, self._store.versions(name)

    def set_default_policy_version(self, name: str, version_id: str) -> None:
        with self._store.transaction():
            policy = self._policy(name)
            version = self._version(policy, version_id)
            if version.version_id == policy.default_version_id:
                return
            self._touch(policy, default_version_id=version.version_id)
        self._notify_if_attached(name)

    def delete_policy_version(self, name: str, version_id: str) -> None:
        with self._store.transaction():
            policy = self._policy(name)
            version = self._version(policy, version_id)
            if version.version_id == policy.default_version_id:
                raise DeleteConflictException(f"Version {version_id} is the default version of policy {name}")
            self._store.delete_version(name, version.version_id)

    # attachments -------------------------------------------------------------------------------
    def group_arn(self, name: str) -> str:
        return f"{self.group_prefix}{name}"

    def _target(self, target: str) -> str:
        """The stored form of a target: a thing group's ARN (the group must exist) or a certificate's."""
        if target.startswith(self.group_prefix):
            name = target[len(self.group_prefix) :]
            if not self._groups.exists(name):
                raise ResourceNotFoundException(f"Thing group {name} cannot be found.")
            return target
        return self._certificate_of(target).certificate_arn

    def statements_of(self, targets: list[str], documents: DocumentsByTarget | None = None) -> list[policies.Statement]:
        """The statements of the default versions of every policy attached to these targets
        (``documents``: all of them, read at once, instead of a query per target)."""
        out: list[policies.Statement] = []
        for target in targets:
            found = self._store.default_documents_of_target(target) if documents is None else documents.get(target, [])
            for _name, document in found:
                out += _parsed(document)
        return out

    def group_targets_attached(self) -> bool:
        """Whether any policy is attached to a thing group (else membership changes affect no access)."""
        return self._store.has_target_prefix(self.group_prefix)

    def forget_groups(self, names: list[str]) -> bool:
        """Drop the attachments of deleted groups; True if there were any."""
        dropped = False
        with self._store.transaction():
            for name in names:
                for policy in self._store.policies_of_target(self.group_arn(name)):
                    self._store.detach_policy(policy, self.group_arn(name))
                    dropped = True
        return dropped

    def attach_policy(self, name: str, target: str) -> None:
        with self._store.transaction():
            self._policy(name)
            arn = self._target(target)
            attached = self._store.policies_of_target(arn)
            if name in attached:
                return
            if len(attached) >= MAX_POLICIES_PER_TARGET:
                raise LimitExceededException(f"{target} already has {MAX_POLICIES_PER_TARGET} policies attached")
            self._store.attach_policy(name, arn, self._now())
        self._changed(self._affected(arn))

    def detach_policy(self, name: str, target: str) -> None:
        with self._store.transaction():
            self._policy(name)
            arn = self._target(target)
            if name not in self._store.policies_of_target(arn):
                return
            self._store.detach_policy(name, arn)
        self._changed(self._affected(arn))

    def attached_policies(
        self, target: str, marker: str | None, page_size: int | None, recursive: bool = False
    ) -> tuple[list[Policy], str | None]:
        """``recursive`` on a thing group also lists what its ancestors have attached (what its
        things inherit); a certificate has no ancestors, so it lists the same either way."""
        arn = self._target(target)
        targets = [arn]
        if recursive and arn.startswith(self.group_prefix):
            targets = [self.group_arn(g) for g in self._groups.lineage(arn[len(self.group_prefix) :]) or []]
        every: list[str] = []
        for one in targets:
            every += [n for n in self._store.policies_of_target(one) if n not in every]
        offset, limit = window(marker, page_size, 250)
        names = every[offset : offset + limit + 1]
        found = [p for p in (self._store.policy(n) for n in names) if p is not None]
        return found[:limit], next_marker(offset, limit, len(names))

    def targets_of_policy(
        self, name: str, marker: str | None, page_size: int | None, principals_only: bool = False
    ) -> tuple[list[str], str | None]:
        """Certificate and thing-group ARNs (``principals_only``: certificates only)."""
        self._policy(name)
        offset, limit = window(marker, page_size, 250)
        every = self._store.targets_of_policy(name)
        if principals_only:
            every = [t for t in every if not t.startswith(self.group_prefix)]
        targets = every[offset : offset + limit + 1]
        return targets[:limit], next_marker(offset, limit, len(targets))
