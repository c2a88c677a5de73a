"""``iot`` identity operations: endpoints, thing principals, policies (certificates are in
``certificate_handlers``, whose table this one includes).

One thin function per operation, named after it in snake_case: read the parsed input, call the
identity service, return the output members (wire names exactly as AWS). ``handlers()`` binds
them to one service and returns the table the HTTP server adds to its ``iot`` handlers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Any

from ..identity.errors import InvalidRequestException, ResourceNotFoundException
from ..identity.keys import KeyMaker
from ..identity.paging import next_marker, window
from ..identity.service import IdentityService
from ..identity.store import Policy, PolicyVersion
from . import certificate_handlers, thing_handlers
from .handler import LaterHandler
from .identity_context import Context, Endpoints, Operation

__all__ = ["OPERATIONS", "Context", "Endpoints", "handlers"]

#: AWS's DescribeEndpoint types. iot-jobs-local has no credential provider (no IAM role aliases).
ENDPOINT_TYPES = ("iot:Data", "iot:Data-ATS", "iot:Jobs", "iot:CredentialProvider")


def describe_endpoint(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    kind = p.get("endpointType") or "iot:Data"  # UNCONFIRMED: AWS's default is the legacy iot:Data
    if kind not in ENDPOINT_TYPES:
        raise InvalidRequestException(f"Endpoint type {kind} is not valid")
    if kind == "iot:CredentialProvider":
        raise InvalidRequestException("iot:CredentialProvider is not supported by iot-jobs-local")
    address = ctx.endpoints.jobs_address if kind == "iot:Jobs" else ctx.endpoints.data_host
    return {"endpointAddress": address}


# thing principals --------------------------------------------------------------------------------
def attach_thing_principal(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.attach_thing_principal(p["thingName"], p["principal"], p.get("thingPrincipalType"))
    return {}


def detach_thing_principal(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.detach_thing_principal(p["thingName"], p["principal"])
    return {}


def _token_page(items: list[Any], p: dict[str, Any], key: str) -> dict[str, Any]:
    offset, limit = window(p.get("nextToken"), p.get("maxResults"), 250)
    out: dict[str, Any] = {key: items[offset : offset + limit]}
    token = next_marker(offset, limit, len(items[offset : offset + limit + 1]))
    if token is not None:
        out["nextToken"] = token
    return out


def list_thing_principals(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found = ctx.identity.thing_principals(p["thingName"])
    return _token_page([t.principal for t in found], p, "principals")


def list_thing_principals_v2(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    kind = p.get("thingPrincipalType")
    found = [t for t in ctx.identity.thing_principals(p["thingName"]) if kind in (None, t.principal_type)]
    objects = [{"principal": t.principal, "thingPrincipalType": t.principal_type} for t in found]
    return _token_page(objects, p, "thingPrincipalObjects")


def list_principal_things(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found = ctx.identity.principal_things(p["principal"])
    return _token_page([t.thing_name for t in found], p, "things")


def list_principal_things_v2(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    kind = p.get("thingPrincipalType")
    found = [t for t in ctx.identity.principal_things(p["principal"]) if kind in (None, t.principal_type)]
    objects = [{"thingName": t.thing_name, "thingPrincipalType": t.principal_type} for t in found]
    return _token_page(objects, p, "principalThingObjects")


# policies ----------------------------------------------------------------------------------------
def create_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    policy, version = ctx.identity.policies.create_policy(p["policyName"], p["policyDocument"])
    return {
        "policyName": policy.policy_name,
        "policyArn": policy.policy_arn,
        "policyDocument": version.document,
        "policyVersionId": str(version.version_id),
    }


def get_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    policy, version = ctx.identity.policies.get_policy(p["policyName"])
    return {
        "policyName": policy.policy_name,
        "policyArn": policy.policy_arn,
        "policyDocument": version.document,
        "defaultVersionId": str(policy.default_version_id),
        "creationDate": policy.creation_date,
        "lastModifiedDate": policy.last_modified_date,
        "generationId": policy.generation_id,
    }


def delete_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.delete_policy(p["policyName"])
    return {}


def _policy_list(found: list[Policy], marker: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"policies": [{"policyName": x.policy_name, "policyArn": x.policy_arn} for x in found]}
    if marker is not None:
        out["nextMarker"] = marker
    return out


def list_policies(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ascending = p.get("ascendingOrder")
    found, marker = ctx.identity.policies.list_policies(p.get("marker"), p.get("pageSize"), ascending is not False)
    return _policy_list(found, marker)


def _version_out(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    return {
        "policyArn": policy.policy_arn,
        "policyName": policy.policy_name,
        "policyDocument": version.document,
        "policyVersionId": str(version.version_id),
        "isDefaultVersion": version.version_id == policy.default_version_id,
        "creationDate": version.create_date,
        "lastModifiedDate": policy.last_modified_date,
        "generationId": policy.generation_id,
    }


def create_policy_version(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    policy, version = ctx.identity.policies.create_policy_version(
        p["policyName"], p["policyDocument"], bool(p.get("setAsDefault", False))
    )
    out = _version_out(policy, version)
    return {k: out[k] for k in ("policyArn", "policyDocument", "policyVersionId", "isDefaultVersion")}


def get_policy_version(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _version_out(*ctx.identity.policies.get_policy_version(p["policyName"], p["policyVersionId"]))


def list_policy_versions(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    policy, versions = ctx.identity.policies.list_policy_versions(p["policyName"])
    return {
        "policyVersions": [
            {
                "versionId": str(v.version_id),
                "isDefaultVersion": v.version_id == policy.default_version_id,
                "createDate": v.create_date,
            }
            for v in versions
        ]
    }


def set_default_policy_version(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.set_default_policy_version(p["policyName"], p["policyVersionId"])
    return {}


def delete_policy_version(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.delete_policy_version(p["policyName"], p["policyVersionId"])
    return {}


def attach_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.attach_policy(p["policyName"], p["target"])
    return {}


def detach_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.detach_policy(p["policyName"], p["target"])
    return {}


def list_attached_policies(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found = ctx.identity.policies.attached_policies(
        p["target"], p.get("marker"), p.get("pageSize"), bool(p.get("recursive", False))
    )
    return _policy_list(*found)


def get_effective_policies(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("cognitoIdentityPoolId") is not None:
        raise InvalidRequestException("iot-jobs-local has no Amazon Cognito identities: use a certificate principal")
    out = []
    for name in ctx.identity.effective_policies(p.get("principal"), p.get("thingName")):
        policy, version = ctx.identity.policies.get_policy(name)
        out.append({"policyName": name, "policyArn": policy.policy_arn, "policyDocument": version.document})
    return {"effectivePolicies": out}


def list_targets_for_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    targets, marker = ctx.identity.policies.targets_of_policy(p["policyName"], p.get("marker"), p.get("pageSize"))
    out: dict[str, Any] = {"targets": targets}
    if marker is not None:
        out["nextMarker"] = marker
    return out


# The deprecated principal-policy operations, still in the API and in older scripts: the same
# attachments as AttachPolicy/DetachPolicy, for certificates only (the principal header). A thing
# group is not a principal: AWS answers "The given ARN does not represent a cert" (quoted from
# CloudFormation's PolicyPrincipalAttachment, which calls AttachPrincipalPolicy, in aws/aws-cdk#26166).
def _certificate_principal(ctx: Context, p: dict[str, Any]) -> str:
    principal: str = p["principal"]
    if principal.startswith(ctx.identity.policies.group_prefix):
        raise InvalidRequestException("The given ARN does not represent a cert")
    return principal


def attach_principal_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.attach_policy(p["policyName"], _certificate_principal(ctx, p))
    return {}


def detach_principal_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.identity.policies.detach_policy(p["policyName"], _certificate_principal(ctx, p))
    return {}


def list_principal_policies(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    principal = _certificate_principal(ctx, p)
    return _policy_list(*ctx.identity.policies.attached_policies(principal, p.get("marker"), p.get("pageSize")))


def list_policy_principals(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    """The certificates a policy is attached to (its thing groups are targets, not principals)."""
    targets, marker = ctx.identity.policies.targets_of_policy(
        p["policyName"], p.get("marker"), p.get("pageSize"), principals_only=True
    )
    out: dict[str, Any] = {"principals": targets}
    if marker is not None:
        out["nextMarker"] = marker
    return out


OPERATIONS: dict[str, Operation] = {
    **certificate_handlers.OPERATIONS,
    "DescribeEndpoint": describe_endpoint,
    "GetEffectivePolicies": get_effective_policies,
    "AttachThingPrincipal": attach_thing_principal,
    "DetachThingPrincipal": detach_thing_principal,
    "ListThingPrincipals": list_thing_principals,
    "ListThingPrincipalsV2": list_thing_principals_v2,
    "ListPrincipalThings": list_principal_things,
    "ListPrincipalThingsV2": list_principal_things_v2,
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "DeletePolicy": delete_policy,
    "ListPolicies": list_policies,
    "CreatePolicyVersion": create_policy_version,
    "GetPolicyVersion": get_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "SetDefaultPolicyVersion": set_default_policy_version,
    "DeletePolicyVersion": delete_policy_version,
    "AttachPolicy": attach_policy,
    "DetachPolicy": detach_policy,
    "ListAttachedPolicies": list_attached_policies,
    "ListTargetsForPolicy": list_targets_for_policy,
    "AttachPrincipalPolicy": attach_principal_policy,
    "DetachPrincipalPolicy": detach_principal_policy,
    "ListPrincipalPolicies": list_principal_policies,
    "ListPolicyPrincipals": list_policy_principals,
}


def _bind(
    operation: Operation, ctx: Context, _engine: Any, params: dict[str, Any]
) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    return operation(ctx, params)


def delete_thing(ctx: Context, engine: Any, p: dict[str, Any]) -> dict[str, Any]:
    """DeleteThing, refused while a certificate is attached to the thing, as AWS refuses it
    (``InvalidRequestException`` "Cannot delete. Thing <name> is still attached to one or more
    principals", reported by SDK users since 2019). A missing thing still succeeds."""
    name = p["thingName"]
    try:
        attached = ctx.identity.thing_principals(name)
    except ResourceNotFoundException:
        attached = []
    if attached:
        raise InvalidRequestException(f"Cannot delete. Thing {name} is still attached to one or more principals")
    return thing_handlers.delete_thing(engine, p)


def handlers(identity: IdentityService, endpoints: Endpoints, keys: KeyMaker | None = None) -> dict[str, LaterHandler]:
    """The table above, bound to one identity service (the engine argument is not used), and the
    registry operations that the identity service constrains."""
    ctx = Context(identity, endpoints, keys)
    table: dict[str, LaterHandler] = {
        name: functools.partial(_bind, operation, ctx) for name, operation in OPERATIONS.items()
    }
    table["DeleteThing"] = functools.partial(delete_thing, ctx)
    return table
