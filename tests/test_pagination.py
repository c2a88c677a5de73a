"""Paginated listings that the other tests read in one page, followed page by page with boto3's own
paginators (which know each operation's token and limit names: ``nextToken``/``maxResults``, or
``marker``/``nextMarker``/``pageSize``): with 2 items a page, every item comes back exactly once, in
the same order as one large page, over as many pages as it takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from support.common import unique
from support.service import ServiceProcess

COUNT = 5
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
)


def paged(iot: Any, operation: str, member: str, size: int, **kwargs: Any) -> tuple[list[Any], int]:
    pages = list(iot.get_paginator(operation).paginate(**kwargs, PaginationConfig={"PageSize": size}))
    return [item for page in pages for item in page[member]], len(pages)


def certificates(iot: Any, count: int) -> list[str]:
    return [iot.create_keys_and_certificate(setAsActive=True)["certificateArn"] for _ in range(count)]


def policies(iot: Any, count: int) -> list[str]:
    names = [unique("pg") for _ in range(count)]
    for name in names:
        iot.create_policy(policyName=name, policyDocument=POLICY)
    return names


def things(iot: Any, count: int) -> list[str]:
    names = [unique("pg") for _ in range(count)]
    for name in names:
        iot.create_thing(thingName=name)
    return names


# Each case: (operation, response member, setup returning the call's arguments and how many items
# the listing holds at least).
Setup = Callable[[Any], tuple[dict[str, Any], int]]


def _groups_of_a_thing(iot: Any) -> tuple[dict[str, Any], int]:
    (thing,) = things(iot, 1)
    for _ in range(COUNT):
        group = unique("pg")
        iot.create_thing_group(thingGroupName=group)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    return {"thingName": thing}, COUNT


def _policies_of_a_certificate(iot: Any) -> tuple[dict[str, Any], int]:
    (cert,) = certificates(iot, 1)
    for name in policies(iot, COUNT):
        iot.attach_policy(policyName=name, target=cert)
    return {"target": cert}, COUNT


def _certificates_of_a_policy(iot: Any) -> tuple[dict[str, Any], int]:
    (name,) = policies(iot, 1)
    for cert in certificates(iot, COUNT):
        iot.attach_policy(policyName=name, target=cert)
    return {"policyName": name}, COUNT


def _principals_of_a_thing(iot: Any) -> tuple[dict[str, Any], int]:
    (thing,) = things(iot, 1)
    for cert in certificates(iot, COUNT):
        iot.attach_thing_principal(thingName=thing, principal=cert)
    return {"thingName": thing}, COUNT


def _things_of_a_principal(iot: Any) -> tuple[dict[str, Any], int]:
    (cert,) = certificates(iot, 1)
    for thing in things(iot, COUNT):
        iot.attach_thing_principal(thingName=thing, principal=cert)
    return {"principal": cert}, COUNT


def _all_policies(iot: Any) -> tuple[dict[str, Any], int]:
    policies(iot, COUNT)
    return {}, COUNT


def _all_certificates(iot: Any) -> tuple[dict[str, Any], int]:
    certificates(iot, COUNT)
    return {}, COUNT


CASES: list[tuple[str, str, Setup]] = [
    ("list_thing_groups_for_thing", "thingGroups", _groups_of_a_thing),
    ("list_attached_policies", "policies", _policies_of_a_certificate),
    ("list_targets_for_policy", "targets", _certificates_of_a_policy),
    ("list_thing_principals", "principals", _principals_of_a_thing),
    ("list_thing_principals_v2", "thingPrincipalObjects", _principals_of_a_thing),
    ("list_principal_things", "things", _things_of_a_principal),
    ("list_principal_things_v2", "principalThingObjects", _things_of_a_principal),
    ("list_policies", "policies", _all_policies),
    ("list_certificates", "certificates", _all_certificates),
]


@pytest.mark.parametrize(("operation", "member", "setup"), CASES, ids=[c[0] for c in CASES])
def test_pages_of_two_hold_every_item_once_in_order(
    service: ServiceProcess, operation: str, member: str, setup: Setup
) -> None:
    iot = service.iot()
    kwargs, at_least = setup(iot)
    expected, _ = paged(iot, operation, member, 250, **kwargs)  # the largest page the models allow
    assert len(expected) >= at_least and len({json.dumps(item, default=str) for item in expected}) == len(expected)
    items, pages = paged(iot, operation, member, 2, **kwargs)
    assert items == expected
    assert pages == (len(expected) + 1) // 2
