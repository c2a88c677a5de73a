"""Domain records to the control plane's (``iot``) thing and thing group shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..jobs.model import Thing, ThingGroup


def thing(t: Thing) -> dict[str, Any]:
    """DescribeThing output."""
    out: dict[str, Any] = {
        "defaultClientId": t.thing_name,
        "thingName": t.thing_name,
        "thingId": t.thing_id,
        "thingArn": t.thing_arn,
    }
    if t.thing_type_name:
        out["thingTypeName"] = t.thing_type_name
    out["attributes"] = dict(t.attributes)
    out["version"] = t.version
    return out


def thing_attribute(t: Thing) -> dict[str, Any]:
    """ListThings entry (ThingAttribute)."""
    out: dict[str, Any] = {"thingName": t.thing_name}
    if t.thing_type_name:
        out["thingTypeName"] = t.thing_type_name
    out["thingArn"] = t.thing_arn
    out["attributes"] = dict(t.attributes)
    out["version"] = t.version
    return out


def group_reference(g: ThingGroup) -> dict[str, Any]:
    """GroupNameAndArn."""
    return {"groupName": g.name, "groupArn": g.arn}


def group(g: ThingGroup, ancestors: Sequence[ThingGroup]) -> dict[str, Any]:
    """DescribeThingGroup output; ``ancestors`` runs from the root to the parent."""
    properties: dict[str, Any] = {}
    if g.description is not None:
        properties["thingGroupDescription"] = g.description
    if g.attributes:
        properties["attributePayload"] = {"attributes": dict(g.attributes)}
    metadata: dict[str, Any] = {}
    if g.parent_name is not None:
        metadata["parentGroupName"] = g.parent_name
        metadata["rootToParentThingGroups"] = [group_reference(a) for a in ancestors]
    metadata["creationDate"] = g.created_at
    return {
        "thingGroupName": g.name,
        "thingGroupId": g.group_id,
        "thingGroupArn": g.arn,
        "version": g.version,
        "thingGroupProperties": properties,
        "thingGroupMetadata": metadata,
    }
