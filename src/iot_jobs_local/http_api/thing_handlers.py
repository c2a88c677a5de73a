"""``iot`` operations on things and thing groups: one thin function per operation, in snake_case."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..jobs import registry
from . import paging, registry_wire
from .handler import Handler


def create_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    t = engine.create_thing(
        p["thingName"],
        registry.attributes_of(p.get("attributePayload")),
        thing_type_name=p.get("thingTypeName"),
        billing_group_name=p.get("billingGroupName"),
    )
    return {"thingName": t.thing_name, "thingArn": t.thing_arn, "thingId": t.thing_id}


def describe_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return registry_wire.thing(engine.describe_thing(p["thingName"]))


def update_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.update_thing(p["thingName"], p.get("attributePayload"), p.get("expectedVersion"), p.get("thingTypeName"))
    return {}


def delete_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_thing(p["thingName"], p.get("expectedVersion"))
    return {}


def list_things(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_things(
        attribute_name=p.get("attributeName"),
        attribute_value=p.get("attributeValue"),
        prefix=bool(p.get("usePrefixAttributeValue", False)),
        thing_type_name=p.get("thingTypeName"),
        after=paging.decode("ListThings", p.get("nextToken"), 1),
        limit=paging.limit(p),
    )
    return paging.output("ListThings", "things", [registry_wire.thing_attribute(t) for t in found.items], found)


def create_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    g = engine.create_thing_group(p["thingGroupName"], p.get("parentGroupName"), p.get("thingGroupProperties"))
    return {"thingGroupName": g.name, "thingGroupArn": g.arn, "thingGroupId": g.group_id}


def describe_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return registry_wire.group(*engine.describe_thing_group(p["thingGroupName"]))


def update_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    version = engine.update_thing_group(p["thingGroupName"], p["thingGroupProperties"], p.get("expectedVersion"))
    return {"version": version}


def delete_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_thing_group(p["thingGroupName"], p.get("expectedVersion"))
    return {}


def update_thing_groups_for_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.update_thing_groups_for_thing(
        p.get("thingName") or "", p.get("thingGroupsToAdd") or [], p.get("thingGroupsToRemove") or []
    )
    return {}


def add_thing_to_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.add_thing_to_thing_group(p)
    return {}


def remove_thing_from_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.remove_thing_from_thing_group(p)
    return {}


def list_things_in_thing_group(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_things_in_thing_group(
        p["thingGroupName"],
        bool(p.get("recursive", False)),
        paging.decode("ListThingsInThingGroup", p.get("nextToken"), 1),
        paging.limit(p),
    )
    return paging.output("ListThingsInThingGroup", "things", found.items, found)


def list_thing_groups_for_thing(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_thing_groups_for_thing(
        p["thingName"], paging.decode("ListThingGroupsForThing", p.get("nextToken"), 1), paging.limit(p)
    )
    groups = [registry_wire.group_reference(g) for g in found.items]
    return paging.output("ListThingGroupsForThing", "thingGroups", groups, found)


def list_thing_groups(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_thing_groups(
        parent=p.get("parentGroup"),
        prefix=p.get("namePrefixFilter"),
        # Absent means true: the AWS CLI reference's list-thing-groups lists child groups unasked.
        recursive=bool(p.get("recursive", True)),
        after=paging.decode("ListThingGroups", p.get("nextToken"), 1),
        limit=paging.limit(p),
    )
    groups = [registry_wire.group_reference(g) for g in found.items]
    return paging.output("ListThingGroups", "thingGroups", groups, found)


HANDLERS: dict[str, Handler] = {
    "CreateThing": create_thing,
    "DescribeThing": describe_thing,
    "UpdateThing": update_thing,
    "DeleteThing": delete_thing,
    "ListThings": list_things,
    "CreateThingGroup": create_thing_group,
    "DescribeThingGroup": describe_thing_group,
    "UpdateThingGroup": update_thing_group,
    "DeleteThingGroup": delete_thing_group,
    "AddThingToThingGroup": add_thing_to_thing_group,
    "UpdateThingGroupsForThing": update_thing_groups_for_thing,
    "RemoveThingFromThingGroup": remove_thing_from_thing_group,
    "ListThingsInThingGroup": list_things_in_thing_group,
    "ListThingGroupsForThing": list_thing_groups_for_thing,
    "ListThingGroups": list_thing_groups,
}
