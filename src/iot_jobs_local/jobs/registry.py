"""Rules of the thing registry: things, static thing groups and their attributes.

Lengths and patterns of names and attribute keys and values are checked by the HTTP layer from
botocore's model; what the model cannot express lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .errors import InvalidRequest, ResourceNotFound, VersionMismatch
from .model import Thing, ThingGroup

#: AWS IoT quota: a thing without a thing type has at most 3 attributes (50 with a type).
MAX_THING_ATTRIBUTES = 3
#: AWS IoT quota: a thing group hierarchy is at most 7 levels deep (a root group is level 1).
MAX_GROUP_DEPTH = 7
#: AWS IoT quota: a thing belongs to at most 10 thing groups.
MAX_GROUPS_PER_THING = 10

_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iot:([a-z0-9-]+):(\d{12}):(thing|thinggroup)/([a-zA-Z0-9:_-]{1,128})\Z")


def name_or_arn(kind: str, name: Any, arn: Any, region: str, account: str) -> str:
    """A thing (``kind="thing"``) or group (``"thinggroup"``) given by name, or else by ARN."""
    label = "thing" if kind == "thing" else "thing group"
    if name is not None:
        return str(name)
    if arn is None:
        raise InvalidRequest(f"Specify the {label} by name or by ARN")
    match = _ARN_RE.match(arn) if isinstance(arn, str) else None
    if match is None or match.group(3) != kind:
        raise InvalidRequest(f"{arn!r} is not a {label} ARN")
    if match.group(1) != region or match.group(2) != account:
        raise ResourceNotFound(f"The {label} {arn} cannot be found.")
    return match.group(4)


def attributes_of(payload: Any) -> dict[str, str] | None:
    """The ``attributes`` of an AttributePayload (None when no payload or no attributes were sent)."""
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise InvalidRequest("attributePayload must be an object")
    attributes = payload.get("attributes")
    if attributes is None:
        return None
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise InvalidRequest("attributePayload.attributes must map attribute names to string values")
    return dict(attributes)


def new_attributes(current: Mapping[str, str], payload: Any) -> dict[str, str]:
    """Apply an AttributePayload as UpdateThing / UpdateThingGroup do.

    Without ``merge`` the given attributes replace the stored ones; with ``merge: true`` they are
    merged into them. Either way an empty value removes that attribute (AWS: "To remove an
    attribute, call UpdateThing with an empty attribute value"). No payload leaves them unchanged.
    """
    given = attributes_of(payload)
    if given is None:
        return dict(current)
    merge = isinstance(payload, dict) and payload.get("merge") is True
    result = dict(current) if merge else {}
    for key, value in given.items():
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    return result


def check_thing_attributes(attributes: Mapping[str, str], thing_type_name: str | None) -> None:
    if thing_type_name is None and len(attributes) > MAX_THING_ATTRIBUTES:
        raise InvalidRequest(
            f"A thing without a thing type can have at most {MAX_THING_ATTRIBUTES} attributes, got {len(attributes)}"
        )


def check_expected_version(kind: str, name: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise VersionMismatch(
            f"The {kind} {name} cannot be updated: "
            f"expectedVersion {expected} does not match the current version {current}"
        )


def thing_same_as_request(existing: Thing, attributes: Mapping[str, str], thing_type_name: str | None) -> bool:
    """CreateThing is idempotent only for a request identical to what is stored."""
    return dict(existing.attributes) == dict(attributes) and existing.thing_type_name == thing_type_name


def updated_thing(thing: Thing, payload: Any, expected_version: int | None) -> Thing:
    check_expected_version("thing", thing.thing_name, thing.version, expected_version)
    attributes = new_attributes(thing.attributes, payload)
    check_thing_attributes(attributes, thing.thing_type_name)
    return replace(thing, attributes=attributes, version=thing.version + 1)


def group_same_as_request(
    existing: ThingGroup, parent_name: str | None, description: str | None, attributes: Mapping[str, str]
) -> bool:
    """CreateThingGroup is idempotent for identical attributes, description and parent."""
    return (
        existing.parent_name == parent_name
        and existing.description == description
        and dict(existing.attributes) == dict(attributes)
    )


def check_group_depth(name: str, ancestors: Sequence[ThingGroup]) -> None:
    """``ancestors`` runs from the root to the new group's parent."""
    if len(ancestors) + 1 > MAX_GROUP_DEPTH:
        raise InvalidRequest(
            f"Thing group {name} would be {len(ancestors) + 1} levels deep; the maximum is {MAX_GROUP_DEPTH}"
        )


def updated_group(group: ThingGroup, properties: Any, expected_version: int | None) -> ThingGroup:
    check_expected_version("thing group", group.name, group.version, expected_version)
    if not isinstance(properties, dict):
        raise InvalidRequest("thingGroupProperties must be an object")
    description = properties.get("thingGroupDescription", group.description)
    attributes = new_attributes(group.attributes, properties.get("attributePayload"))
    return replace(group, description=description, attributes=attributes, version=group.version + 1)


def check_membership(thing_name: str, group: ThingGroup, group_root: str, current_roots: Mapping[str, str]) -> None:
    """May ``thing_name`` join ``group``? ``current_roots`` maps each group it is in to that group's root.

    A thing is in at most 10 groups, and in at most one group of a hierarchy (AWS: "you can't add
    a thing to two groups that share a common parent").
    """
    if group.name in current_roots:
        return
    if len(current_roots) >= MAX_GROUPS_PER_THING:
        raise InvalidRequest(f"Thing {thing_name} is already in {MAX_GROUPS_PER_THING} thing groups, the maximum")
    for member_of, root in current_roots.items():
        if root == group_root:
            raise InvalidRequest(
                f"Thing {thing_name} is already in thing group {member_of} of the same hierarchy as {group.name}"
            )
