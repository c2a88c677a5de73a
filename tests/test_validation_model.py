"""Every bound the service models declare, checked over the wire: for each operation the service
implements, each member with a ``max`` (string length, list size, integer value) is sent one past
it, and each string member with a ``pattern`` or an ``enum`` a value outside it, through boto3,
which checks only minimums itself. Each must come back as AWS answers it:
``InvalidRequestException``, HTTP 400, naming the member in a validation message.

The other members get the smallest values boto3 accepts; they may break constraints of their own
(patterns, enums), which the same message then lists too: what is asserted is that the member under
test is among the problems.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from iot_jobs_local.http_api import data_handlers, identity_handlers, iot_handlers, validation
from support.api import check_error, error_of
from support.service import ServiceProcess

#: Members longer than this are not tried (job documents: 32 KB); their bound is tested elsewhere.
LARGEST = 4096
IOT = sorted({*iot_handlers.HANDLERS, *identity_handlers.OPERATIONS, "DeleteThing"})
DATA = sorted(data_handlers.HANDLERS)


def smallest(shape: Shape) -> Any:
    """The smallest value of ``shape`` that boto3's own validation lets through."""
    meta = shape.metadata
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        return {name: smallest(shape.members[name]) for name in shape.required_members}
    if isinstance(shape, ListShape):
        return [smallest(shape.member) for _ in range(max(int(meta.get("min", 0)), 1))]
    if isinstance(shape, MapShape):
        return {}
    if kind == "string":
        return "x" * max(int(meta.get("min", 1)), 1)
    if kind in ("integer", "long"):
        return int(meta.get("min", 1))
    if kind in ("double", "float"):
        return float(meta.get("min", 1))
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    if kind == "blob":
        return b"x"
    raise AssertionError(f"no smallest value for {kind}")


def one_past(shape: Shape) -> Any | None:
    """A value of ``shape`` just beyond its ``max``, or None if it has none worth sending."""
    top = shape.metadata.get("max")
    if top is None or top > LARGEST:
        return None
    if shape.type_name == "string":
        return "x" * (int(top) + 1)
    if isinstance(shape, ListShape):
        return [smallest(shape.member) for _ in range(int(top) + 1)]
    if shape.type_name in ("integer", "long"):
        return int(top) + 1
    return None


#: Values tried, in order, for one that a member's pattern refuses.
OUTSIDE_PATTERNS = ("has space", "semi;colon", "x/y", "tab\tx", "bell\x07")


def outside_pattern(shape: Shape) -> str | None:
    """A string within the member's length bounds that its pattern refuses, if one is found."""
    pattern = shape.metadata.get("pattern") if shape.type_name == "string" else None
    check = validation.matcher(pattern) if pattern else None
    if check is None:
        return None
    low, high = int(shape.metadata.get("min", 0)), int(shape.metadata.get("max", 1 << 20))
    for value in OUTSIDE_PATTERNS:
        if low <= len(value) <= high and not check(value):
            return value
    return None


def cases(service_name: str, operations: list[str]) -> Iterator[Any]:
    model = botocore.session.get_session().get_service_model(service_name)
    for name in operations:
        operation: OperationModel = model.operation_model(name)
        shape = operation.input_shape
        if shape is None:
            continue
        for member, member_shape in shape.members.items():
            for kind, value in (
                ("max", one_past(member_shape)),
                ("pattern", outside_pattern(member_shape)),
                ("enum", "NOT_ONE_OF_THEM" if "enum" in member_shape.metadata else None),
            ):
                if value is not None:
                    yield pytest.param(service_name, name, member, value, id=f"{service_name}:{name}.{member}:{kind}")


@pytest.mark.parametrize(
    ("service_name", "operation", "member", "value"), [*cases("iot", IOT), *cases("iot-jobs-data", DATA)]
)
def test_a_member_outside_its_bounds_is_refused(
    service: ServiceProcess, clients: dict[str, Any], service_name: str, operation: str, member: str, value: Any
) -> None:
    client = clients[service_name]
    shape = client.meta.service_model.operation_model(operation).input_shape
    params = smallest(shape)
    params[member] = value
    error = error_of(getattr(client, xform_name(operation)), **params)
    check_error(error, "InvalidRequestException", 400)
    message = error.response["Error"]["Message"]
    assert "validation error" in message and f"at '{member}'" in message, message


@pytest.fixture(scope="module")
def clients(service: ServiceProcess) -> dict[str, Any]:
    return {name: service.boto3_client(name) for name in ("iot", "iot-jobs-data")}


def test_the_cases_cover_what_the_service_implements() -> None:
    """Guards the table above against an import that silently lists nothing."""
    assert {"CreateJob", "CreateThing", "DescribeJob", "CreatePolicy", "UpdateJobExecution"} <= {*IOT, *DATA}
    assert len([*cases("iot", IOT)]) > 50
