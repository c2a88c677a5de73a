"""The thing registry: things, static thing groups, membership (and what membership does to jobs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..jobs import creation, registry, transitions
from ..jobs.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from ..jobs.model import ExecutionStatus, Thing, ThingGroup
from ..store import Cursor, Page
from .core import PendingChange
from .targets import TargetOps
from .uuids import random_uuid


def _no_thing_types(thing_type_name: str | None, billing_group_name: str | None = None) -> None:
    """This service has no thing types or billing groups, so naming one names something missing."""
    if thing_type_name is not None:
        raise ResourceNotFound(f"Thing type {thing_type_name} cannot be found.")
    if billing_group_name is not None:
        raise ResourceNotFound(f"Billing group {billing_group_name} cannot be found.")


class RegistryOps(TargetOps):
    # things -----------------------------------------------------------------------------------
    def create_thing(
        self,
        name: str,
        attributes: Mapping[str, str] | None = None,
        *,
        thing_type_name: str | None = None,
        billing_group_name: str | None = None,
    ) -> Thing:
        creation.check_thing_name(name)
        _no_thing_types(thing_type_name, billing_group_name)
        attributes = dict(attributes or {})
        registry.check_thing_attributes(attributes, thing_type_name)
        thing = Thing(name, random_uuid(), self.identity.thing_arn(name), attributes)
        # A new thing changes no job or execution: one statement, without a transaction around it.
        if self._store.insert_thing(thing):
            return thing
        existing = self._store.get_thing(name)
        if existing is None:  # deleted in between by another connection
            return self.create_thing(name, attributes, thing_type_name=thing_type_name)
        if registry.thing_same_as_request(existing, attributes, thing_type_name):
            return existing  # CreateThing is idempotent for an identical request.
        raise ResourceAlreadyExists(f"Thing {name} already exists with different attributes", name, existing.thing_arn)

    def describe_thing(self, name: str) -> Thing:
        return self._require_thing(name)

    def update_thing(
        self,
        name: str,
        attribute_payload: Any,
        expected_version: int | None,
        thing_type_name: str | None = None,
    ) -> None:
        _no_thing_types(thing_type_name)
        with self._store.transaction():
            thing = self._require_thing(name)
            self._store.put_thing(registry.updated_thing(thing, attribute_payload, expected_version))

    def delete_thing(self, name: str, expected_version: int | None) -> None:
        """Succeeds for a missing thing. Its pending executions become REMOVED (UNCONFIRMED, see README)."""
        now = self._clock()
        with self._store.transaction():
            thing = self._store.get_thing(name)
            if thing is None:
                return
            registry.check_expected_version("thing", name, thing.version, expected_version)
            before = self._pending(name)
            self._store.put_executions(transitions.service_update(e, ExecutionStatus.REMOVED, now) for e in before)
            self._store.delete_thing(name)
            for job_id in {e.job_id for e in before}:
                self._settle_job(job_id, now)
            changes = self._changes({name: before}, {name: []}, now)
        self._emit(changes)
        self._membership_changed(things=[name])

    def list_things(
        self,
        *,
        attribute_name: str | None,
        attribute_value: str | None,
        prefix: bool,
        thing_type_name: str | None,
        after: Cursor | None,
        limit: int,
    ) -> Page[Thing]:
        if attribute_value is not None and attribute_name is None:
            raise InvalidRequest("attributeValue needs an attributeName")
        return self._store.list_things(
            attribute_name=attribute_name,
            attribute_value=attribute_value,
            prefix=prefix,
            thing_type_name=thing_type_name,
            after=after,
            limit=limit,
        )

    # thing groups -----------------------------------------------------------------------------
    def _require_group(self, name: str) -> ThingGroup:
        group = self._store.get_group(name)
        if group is None:
            raise ResourceNotFound(f"Thing group {name} cannot be found.")
        return group

    def create_thing_group(self, name: str, parent_name: str | None, properties: Any) -> ThingGroup:
        properties = properties or {}
        if not isinstance(properties, dict):
            raise InvalidRequest("thingGroupProperties must be an object")
        description = properties.get("thingGroupDescription")
        attributes = registry.attributes_of(properties.get("attributePayload")) or {}
        with self._store.transaction():
            existing = self._store.get_group(name)
            if existing is not None:
                if registry.group_same_as_request(existing, parent_name, description, attributes):
                    return existing  # idempotent for an identical request
                raise ResourceAlreadyExists(f"Thing group {name} already exists", name, existing.arn)
            if parent_name is not None:
                parent = self._require_group(parent_name)
                registry.check_group_depth(name, [*self._store.ancestors(parent_name), parent])
            group = ThingGroup(
                name,
                random_uuid(),
                self.identity.group_arn(name),
                self._clock(),
                parent_name,
                description,
                attributes,
            )
            self._store.put_group(group)
        return group

    def describe_thing_group(self, name: str) -> tuple[ThingGroup, list[ThingGroup]]:
        """The group and its ancestors, root first."""
        group = self._require_group(name)
        return group, self._store.ancestors(name)

    def update_thing_group(self, name: str, properties: Any, expected_version: int | None) -> int:
        with self._store.transaction():
            group = registry.updated_group(self._require_group(name), properties, expected_version)
            self._store.put_group(group)
        return group.version

    def delete_thing_group(self, name: str, expected_version: int | None) -> None:
        """Succeeds for a missing group; refused while it has child groups.

        Its things leave it, so CONTINUOUS jobs targeting it (or an ancestor) treat them as removed.
        """
        now = self._clock()
        changes: list[PendingChange] = []
        with self._store.transaction():
            group = self._store.get_group(name)
            if group is None:
                return
            registry.check_expected_version("thing group", name, group.version, expected_version)
            if self._store.has_child_groups(name):
                raise InvalidRequest(
                    f"Cannot delete thing group : {name} when there are still child groups attached to it"
                )
            lineage = [name, *(g.name for g in self._store.ancestors(name))]
            members = self._store.direct_members(name) if self._store.jobs_targeting_groups(lineage) else []
            targeted = self._store.continuous_jobs_for_things(members)
            self._store.delete_group(name)
            changes = self._reconcile(targeted, now)
        self._emit(changes)
        self._membership_changed([name])

    def list_thing_groups(
        self, *, parent: str | None, prefix: str | None, recursive: bool, after: Cursor | None, limit: int
    ) -> Page[ThingGroup]:
        if parent is not None:
            self._require_group(parent)
        return self._store.list_groups(parent=parent, prefix=prefix, recursive=recursive, after=after, limit=limit)

    # membership -------------------------------------------------------------------------------
    def _member_names(self, p: Mapping[str, Any]) -> tuple[str, str]:
        region, account = self.identity.region, self.identity.account
        group = registry.name_or_arn("thinggroup", p.get("thingGroupName"), p.get("thingGroupArn"), region, account)
        thing = registry.name_or_arn("thing", p.get("thingName"), p.get("thingArn"), region, account)
        return group, thing

    def add_thing_to_thing_group(self, request: Mapping[str, Any]) -> None:
        """``request`` names the group and the thing, each by name or ARN (the wire members)."""
        group_name, thing_name = self._member_names(request)
        self._change_membership(thing_name, [group_name], [])

    def remove_thing_from_thing_group(self, request: Mapping[str, Any]) -> None:
        group_name, thing_name = self._member_names(request)
        self._change_membership(thing_name, [], [group_name])

    def update_thing_groups_for_thing(self, thing_name: str, to_add: Sequence[str], to_remove: Sequence[str]) -> None:
        """UpdateThingGroupsForThing: both lists in one transaction, then one reconciliation."""
        self._change_membership(thing_name, to_add, to_remove)

    def _change_membership(self, thing_name: str, to_add: Sequence[str], to_remove: Sequence[str]) -> None:
        now = self._clock()
        with self._store.transaction():
            groups = {name: self._require_group(name) for name in [*to_remove, *to_add]}
            self._require_thing(thing_name)
            before = self._store.continuous_jobs_for_things([thing_name])
            entered: set[str] = set()
            for name in to_remove:
                if name in self._store.groups_of_thing(thing_name):
                    self._store.remove_member(name, thing_name)
            for name in to_add:
                group = groups[name]
                current = self._store.groups_of_thing(thing_name)
                if name in current:
                    continue
                roots = self._store.roots([*current, name])
                registry.check_membership(thing_name, group, roots[name], {g: roots[g] for g in current})
                self._store.add_member(name, thing_name)
                # Jobs targeting the group joined (or one of its ancestors) give the thing a new
                # execution even if another of their groups already held it (captured on AWS).
                entered |= self._store.jobs_targeting_groups([name, *(g.name for g in self._store.ancestors(name))])
            changes = self._reconcile(before, now, {thing_name: entered} if entered else None)
        self._emit(changes)
        self._membership_changed(things=[thing_name])

    def list_things_in_thing_group(self, name: str, recursive: bool, after: Cursor | None, limit: int) -> Page[str]:
        self._require_group(name)
        return self._store.list_things_in_group(name, recursive, after, limit)

    def list_thing_groups_for_thing(self, thing_name: str, after: Cursor | None, limit: int) -> Page[ThingGroup]:
        self._require_thing(thing_name)
        return self._store.list_groups_of_thing(thing_name, after, limit)

    def group_lineage(self, name: str) -> list[str] | None:
        """The group and its ancestors, nearest first; None if there is no such group."""
        if self._store.get_group(name) is None:
            return None
        return [name, *reversed([g.name for g in self._store.ancestors(name)])]

    def groups_of_thing(self, thing_name: str) -> list[str]:
        """The static groups a thing is a direct member of, by name."""
        return self._store.groups_of_thing(thing_name)
