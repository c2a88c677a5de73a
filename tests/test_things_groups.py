"""The thing registry of iot-jobs-local through the real boto3 ``iot`` client: things, static thing
groups and membership, with AWS's validation, error codes, HTTP statuses and pagination.

How membership drives CONTINUOUS jobs is tested in ``test_control_plane_jobs.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.api import check_error, collect, error_of, group_arn
from support.common import unique
from support.service import ServiceProcess

# --------------------------------------------------------------------------------------------------
# Things
# --------------------------------------------------------------------------------------------------


def test_create_and_describe_thing(service: ServiceProcess, iot: Any) -> None:
    name = unique("thing")
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"model": "x1", "site": "lab"}})
    assert created["thingName"] == name
    assert created["thingArn"] == service.thing_arn(name)
    assert created["thingId"]
    described = iot.describe_thing(thingName=name)
    assert described["thingName"] == name
    assert described["defaultClientId"] == name
    assert described["thingId"] == created["thingId"]
    assert described["thingArn"] == service.thing_arn(name)
    assert described["attributes"] == {"model": "x1", "site": "lab"}
    assert described["version"] == 1
    assert "thingTypeName" not in described


def test_create_thing_is_idempotent_only_for_an_identical_request(service: ServiceProcess, iot: Any) -> None:
    name = unique("thing")
    first = iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    again = iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    assert again["thingId"] == first["thingId"]
    error = error_of(iot.create_thing, thingName=name, attributePayload={"attributes": {"a": "2"}})
    check_error(error, "ResourceAlreadyExistsException", 409)
    assert error.response.get("resourceId") == name
    assert error.response.get("resourceArn") == service.thing_arn(name)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"thingName": "x" * 129}, id="name-129-chars"),
        pytest.param({"thingName": "has space"}, id="name-pattern"),
        pytest.param(
            {"thingName": "ok", "attributePayload": {"attributes": {"a": "1", "b": "2", "c": "3", "d": "4"}}},
            id="four-attributes-without-type",
        ),
        pytest.param({"thingName": "ok", "attributePayload": {"attributes": {"a": "no spaces"}}}, id="attribute-value"),
        pytest.param({"thingName": "ok", "attributePayload": {"attributes": {"bad key": "1"}}}, id="attribute-name"),
        pytest.param({"thingName": "ok", "attributePayload": {"attributes": {"a": "x" * 801}}}, id="attribute-801"),
    ],
)
def test_create_thing_validation(iot: Any, kwargs: dict[str, Any]) -> None:
    if kwargs["thingName"] == "ok":
        kwargs = {**kwargs, "thingName": unique("thing")}
    check_error(error_of(iot.create_thing, **kwargs), "InvalidRequestException", 400)


def test_create_thing_with_unknown_thing_type_is_not_found(iot: Any) -> None:
    error = error_of(iot.create_thing, thingName=unique("thing"), thingTypeName=unique("type"))
    check_error(error, "ResourceNotFoundException", 404)


def test_describe_missing_thing(iot: Any) -> None:
    check_error(error_of(iot.describe_thing, thingName=unique("missing")), "ResourceNotFoundException", 404)


def test_update_thing_replaces_or_merges_attributes_and_bumps_the_version(iot: Any) -> None:
    name = unique("thing")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})

    iot.update_thing(thingName=name, attributePayload={"attributes": {"c": "3"}, "merge": True})
    described = iot.describe_thing(thingName=name)
    assert described["attributes"] == {"a": "1", "b": "2", "c": "3"}
    assert described["version"] == 2

    # merge with an empty value removes that attribute
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": ""}, "merge": True})
    assert iot.describe_thing(thingName=name)["attributes"] == {"b": "2", "c": "3"}

    # without merge the given attributes replace the stored ones
    iot.update_thing(thingName=name, attributePayload={"attributes": {"z": "9"}})
    described = iot.describe_thing(thingName=name)
    assert described["attributes"] == {"z": "9"}
    assert described["version"] == 4

    # expectedVersion must match the current version
    iot.update_thing(thingName=name, attributePayload={"attributes": {"z": "8"}}, expectedVersion=4)
    check_error(
        error_of(iot.update_thing, thingName=name, attributePayload={"attributes": {}}, expectedVersion=4),
        "VersionConflictException",
        409,
    )
    assert iot.describe_thing(thingName=name)["version"] == 5

    # merging past three attributes breaks the limit of a thing without a type
    error = error_of(
        iot.update_thing, thingName=name, attributePayload={"attributes": {"a": "1", "b": "2", "c": "3"}, "merge": True}
    )
    check_error(error, "InvalidRequestException", 400)


def test_update_missing_thing(iot: Any) -> None:
    error = error_of(iot.update_thing, thingName=unique("missing"), attributePayload={"attributes": {"a": "1"}})
    check_error(error, "ResourceNotFoundException", 404)


def test_delete_thing(iot: Any) -> None:
    name = unique("thing")
    iot.create_thing(thingName=name)
    check_error(error_of(iot.delete_thing, thingName=name, expectedVersion=7), "VersionConflictException", 409)
    iot.describe_thing(thingName=name)  # still there
    iot.delete_thing(thingName=name, expectedVersion=1)
    check_error(error_of(iot.describe_thing, thingName=name), "ResourceNotFoundException", 404)
    # AWS: deleting a thing that does not exist succeeds.
    iot.delete_thing(thingName=name)
    iot.delete_thing(thingName=unique("never"))


def test_list_things_filters_by_attribute_and_pages(service: ServiceProcess, iot: Any) -> None:
    tag = unique("suite")
    names = sorted(unique("lt") for _ in range(5))
    for index, name in enumerate(names):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"suite": tag, "n": str(index)}})
    iot.create_thing(thingName=unique("other"), attributePayload={"attributes": {"suite": tag + "x"}})

    things, pages = collect(iot.list_things, "things", attributeName="suite", attributeValue=tag, maxResults=2)
    assert pages == 3
    assert [t["thingName"] for t in things] == names
    first = things[0]
    assert first["thingArn"] == service.thing_arn(names[0])
    assert first["attributes"] == {"suite": tag, "n": "0"}
    assert first["version"] == 1

    # usePrefixAttributeValue matches the other thing too
    prefixed = iot.list_things(attributeName="suite", attributeValue=tag, usePrefixAttributeValue=True)["things"]
    assert len(prefixed) == 6
    only = iot.list_things(attributeName="n", attributeValue="3")["things"]
    assert names[3] in [t["thingName"] for t in only]


def test_list_things_rejects_bad_paging(iot: Any) -> None:
    check_error(error_of(iot.list_things, nextToken="not-a-token"), "InvalidRequestException", 400)
    check_error(error_of(iot.list_things, maxResults=251), "InvalidRequestException", 400)
    # a token of another operation is not accepted either
    tag = unique("suite")
    for _ in range(2):
        iot.create_thing(thingName=unique("lt"), attributePayload={"attributes": {"suite": tag}})
    token = iot.list_things(attributeName="suite", attributeValue=tag, maxResults=1)["nextToken"]
    check_error(error_of(iot.list_thing_groups, nextToken=token), "InvalidRequestException", 400)


# --------------------------------------------------------------------------------------------------
# Thing groups
# --------------------------------------------------------------------------------------------------


def test_create_and_describe_thing_groups(service: ServiceProcess, iot: Any) -> None:
    root, child, grandchild = unique("root"), unique("child"), unique("grand")
    created = iot.create_thing_group(
        thingGroupName=root,
        thingGroupProperties={"thingGroupDescription": "the fleet", "attributePayload": {"attributes": {"k": "v"}}},
    )
    assert created["thingGroupName"] == root
    assert created["thingGroupArn"] == group_arn(service, root)
    assert created["thingGroupId"]
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.create_thing_group(thingGroupName=grandchild, parentGroupName=child)

    described = iot.describe_thing_group(thingGroupName=root)
    assert described["thingGroupName"] == root
    assert described["thingGroupId"] == created["thingGroupId"]
    assert described["thingGroupArn"] == group_arn(service, root)
    assert described["version"] == 1
    assert described["thingGroupProperties"] == {
        "thingGroupDescription": "the fleet",
        "attributePayload": {"attributes": {"k": "v"}},
    }
    assert "parentGroupName" not in described["thingGroupMetadata"]
    assert described["thingGroupMetadata"]["creationDate"] is not None

    metadata = iot.describe_thing_group(thingGroupName=grandchild)["thingGroupMetadata"]
    assert metadata["parentGroupName"] == child
    assert metadata["rootToParentThingGroups"] == [
        {"groupName": root, "groupArn": group_arn(service, root)},
        {"groupName": child, "groupArn": group_arn(service, child)},
    ]


def test_create_thing_group_is_idempotent_only_for_an_identical_request(iot: Any) -> None:
    name = unique("group")
    first = iot.create_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": "d"})
    again = iot.create_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": "d"})
    assert again["thingGroupId"] == first["thingGroupId"]
    error = error_of(iot.create_thing_group, thingGroupName=name, thingGroupProperties={"thingGroupDescription": "e"})
    check_error(error, "ResourceAlreadyExistsException", 409)


def test_create_thing_group_errors(iot: Any) -> None:
    error = error_of(iot.create_thing_group, thingGroupName=unique("g"), parentGroupName=unique("missing"))
    check_error(error, "ResourceNotFoundException", 404)
    check_error(error_of(iot.create_thing_group, thingGroupName="g" * 129), "InvalidRequestException", 400)
    check_error(error_of(iot.create_thing_group, thingGroupName="a/b"), "InvalidRequestException", 400)
    error = error_of(
        iot.create_thing_group, thingGroupName=unique("g"), thingGroupProperties={"thingGroupDescription": "tab\there"}
    )
    check_error(error, "InvalidRequestException", 400)


def test_a_hierarchy_is_at_most_seven_levels_deep(iot: Any) -> None:
    parent = None
    for _level in range(7):
        name = unique("lvl")
        iot.create_thing_group(thingGroupName=name, **({"parentGroupName": parent} if parent else {}))
        parent = name
    error = error_of(iot.create_thing_group, thingGroupName=unique("lvl8"), parentGroupName=parent)
    check_error(error, "InvalidRequestException", 400)


def test_update_thing_group(iot: Any) -> None:
    name = unique("group")
    iot.create_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": "one"})
    response = iot.update_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": "two"})
    assert response["version"] == 2
    described = iot.describe_thing_group(thingGroupName=name)
    assert described["thingGroupProperties"]["thingGroupDescription"] == "two"
    error = error_of(
        iot.update_thing_group,
        thingGroupName=name,
        thingGroupProperties={"thingGroupDescription": "x"},
        expectedVersion=1,
    )
    check_error(error, "VersionConflictException", 409)


def test_delete_thing_group(iot: Any) -> None:
    parent, child = unique("parent"), unique("child")
    iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    check_error(error_of(iot.delete_thing_group, thingGroupName=parent), "InvalidRequestException", 400)
    check_error(
        error_of(iot.delete_thing_group, thingGroupName=child, expectedVersion=5), "VersionConflictException", 409
    )
    iot.delete_thing_group(thingGroupName=child)
    iot.delete_thing_group(thingGroupName=parent)
    check_error(error_of(iot.describe_thing_group, thingGroupName=parent), "ResourceNotFoundException", 404)
    iot.delete_thing_group(thingGroupName=parent)  # missing: success
    iot.delete_thing_group(thingGroupName=unique("never"))


# --------------------------------------------------------------------------------------------------
# Membership
# --------------------------------------------------------------------------------------------------


def test_add_and_remove_things_by_name_or_arn(service: ServiceProcess, iot: Any) -> None:
    root, child = unique("root"), unique("child")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    direct, nested = sorted(unique("m") for _ in range(2))
    iot.create_thing(thingName=direct)
    iot.create_thing(thingName=nested)

    iot.add_thing_to_thing_group(thingGroupName=root, thingName=direct)
    iot.add_thing_to_thing_group(thingGroupArn=group_arn(service, child), thingArn=service.thing_arn(nested))
    iot.add_thing_to_thing_group(thingGroupName=root, thingName=direct)  # already a member: fine

    assert iot.list_things_in_thing_group(thingGroupName=root)["things"] == [direct]
    assert sorted(iot.list_things_in_thing_group(thingGroupName=root, recursive=True)["things"]) == [direct, nested]
    assert iot.list_things_in_thing_group(thingGroupName=child)["things"] == [nested]
    assert iot.list_thing_groups_for_thing(thingName=nested)["thingGroups"] == [
        {"groupName": child, "groupArn": group_arn(service, child)}
    ]

    iot.remove_thing_from_thing_group(thingGroupArn=group_arn(service, root), thingArn=service.thing_arn(direct))
    iot.remove_thing_from_thing_group(thingGroupName=child, thingName=nested)
    assert iot.list_things_in_thing_group(thingGroupName=root, recursive=True)["things"] == []
    assert iot.list_thing_groups_for_thing(thingName=nested)["thingGroups"] == []


def test_membership_errors(service: ServiceProcess, iot: Any) -> None:
    root, child, other = unique("root"), unique("child"), unique("other")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    iot.create_thing_group(thingGroupName=other)
    thing = unique("m")
    iot.create_thing(thingName=thing)

    missing_group = error_of(iot.add_thing_to_thing_group, thingGroupName=unique("nope"), thingName=thing)
    check_error(missing_group, "ResourceNotFoundException", 404)
    missing_thing = error_of(iot.add_thing_to_thing_group, thingGroupName=root, thingName=unique("nope"))
    check_error(missing_thing, "ResourceNotFoundException", 404)
    missing_thing = error_of(iot.remove_thing_from_thing_group, thingGroupName=root, thingName=unique("nope"))
    check_error(missing_thing, "ResourceNotFoundException", 404)
    check_error(error_of(iot.add_thing_to_thing_group, thingName=thing), "InvalidRequestException", 400)
    check_error(
        error_of(iot.add_thing_to_thing_group, thingGroupName=root, thingArn=group_arn(service, other)),
        "InvalidRequestException",
        400,
    )

    # one group per hierarchy; several hierarchies are fine
    iot.add_thing_to_thing_group(thingGroupName=root, thingName=thing)
    same_hierarchy = error_of(iot.add_thing_to_thing_group, thingGroupName=child, thingName=thing)
    check_error(same_hierarchy, "InvalidRequestException", 400)
    iot.add_thing_to_thing_group(thingGroupName=other, thingName=thing)
    groups = iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == sorted([root, other])

    check_error(
        error_of(iot.list_things_in_thing_group, thingGroupName=unique("nope")), "ResourceNotFoundException", 404
    )
    check_error(error_of(iot.list_thing_groups_for_thing, thingName=unique("nope")), "ResourceNotFoundException", 404)


def test_deleting_a_thing_or_group_ends_its_memberships(iot: Any) -> None:
    group, thing = unique("group"), unique("m")
    iot.create_thing_group(thingGroupName=group)
    iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    iot.delete_thing(thingName=thing)
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == []

    iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    iot.delete_thing_group(thingGroupName=group)
    assert iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"] == []


def test_list_things_in_thing_group_pages(iot: Any) -> None:
    root, child = unique("root"), unique("child")
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    names = sorted(unique("p") for _ in range(5))
    for index, name in enumerate(names):
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName=root if index % 2 else child, thingName=name)
    things, pages = collect(iot.list_things_in_thing_group, "things", thingGroupName=root, recursive=True, maxResults=2)
    assert things == names and pages == 3
    check_error(
        error_of(iot.list_things_in_thing_group, thingGroupName=root, nextToken="%%%"), "InvalidRequestException", 400
    )


def test_list_thing_groups(service: ServiceProcess, iot: Any) -> None:
    root = unique("lg")
    children = sorted(f"{root}-c{i}" for i in range(3))
    iot.create_thing_group(thingGroupName=root)
    for name in children:
        iot.create_thing_group(thingGroupName=name, parentGroupName=root)
    grandchild = f"{children[0]}-g"
    iot.create_thing_group(thingGroupName=grandchild, parentGroupName=children[0])

    direct, pages = collect(iot.list_thing_groups, "thingGroups", parentGroup=root, recursive=False, maxResults=2)
    assert [g["groupName"] for g in direct] == children and pages == 2
    assert direct[0]["groupArn"] == group_arn(service, children[0])
    # Without ``recursive`` (AWS's default is true), every descendant of the parent.
    for everything in (
        iot.list_thing_groups(parentGroup=root, recursive=True)["thingGroups"],
        collect(iot.list_thing_groups, "thingGroups", parentGroup=root, maxResults=2)[0],
    ):
        assert sorted(g["groupName"] for g in everything) == sorted([*children, grandchild])
    prefixed = iot.list_thing_groups(namePrefixFilter=root)["thingGroups"]
    assert sorted(g["groupName"] for g in prefixed) == sorted([root, *children, grandchild])
    # recursive=false without a parent: the top-level groups only.
    top = iot.list_thing_groups(namePrefixFilter=root, recursive=False)["thingGroups"]
    assert [g["groupName"] for g in top] == [root]
    check_error(error_of(iot.list_thing_groups, parentGroup=unique("nope")), "ResourceNotFoundException", 404)
