"""Every operation of boto3's ``iot`` (and ``iot-jobs-data``) model is either handled by the HTTP API
or listed, with its reason, in docs/local-service.md "Out of scope": nothing answers 501 unlisted.

The handled set is the real table the server is built with (``iot_handlers.HANDLERS`` and the
identity handlers bound to an identity service on a temporary database), not a copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session

from iot_jobs_local.http_api import data_handlers, identity_handlers, iot_handlers
from iot_jobs_local.identity.service import IdentityService
from iot_jobs_local.identity.store import IdentityStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-service.md"
SECTION = "### Out of scope: the `iot` operations that answer 501"


def _model_operations(service: str) -> set[str]:
    return set(botocore.session.get_session().get_service_model(service).operation_names)


def _handled(tmp_path: Path) -> set[str]:
    store = IdentityStore(tmp_path / "state.db")
    try:
        identity = IdentityService(store, lambda: None, "us-east-1", "123456789012", lambda _n: True, lambda: 0.0)  # type: ignore[arg-type, return-value]
        endpoints = identity_handlers.Endpoints("localhost", "127.0.0.1:8088")
        return set(iot_handlers.HANDLERS) | set(identity_handlers.handlers(identity, endpoints))
    finally:
        store.close()


def _listed() -> list[str]:
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| area")]
    return [name for row in rows for name in re.findall(r"`([A-Za-z0-9]+)`", row.split(" | ")[1])]


def test_every_unimplemented_iot_operation_is_listed_with_a_reason(tmp_path: Path) -> None:
    model = _model_operations("iot")
    handled = _handled(tmp_path)
    listed = _listed()
    assert handled <= model, f"handlers for operations botocore does not know: {sorted(handled - model)}"
    assert len(listed) == len(set(listed)), "an operation is listed twice"
    unlisted = sorted(model - handled - set(listed))
    assert not unlisted, f"not implemented and not in {DOC.name} 'Out of scope': {unlisted}"
    both = sorted(handled & set(listed))
    assert not both, f"implemented but listed as out of scope: {both}"
    unknown = sorted(set(listed) - model - _model_operations("iot-jobs-data"))
    assert not unknown, f"listed but not in botocore's iot model: {unknown}"


def test_the_jobs_workflow_operations_are_implemented(tmp_path: Path) -> None:
    handled = _handled(tmp_path)
    workflow = {
        "DescribeEndpoint",
        "ListThingPrincipals",
        "ListPrincipalThings",
        "ListThingsInThingGroup",
        "ListThingGroupsForThing",
        "ListJobExecutionsForThing",
        "ListJobExecutionsForJob",
        "CreateKeysAndCertificate",
        "CreateCertificateFromCsr",
        "RegisterCertificate",
        "RegisterCertificateWithoutCA",
        "GetEffectivePolicies",
    }
    assert workflow <= handled, sorted(workflow - handled)


def test_the_device_data_plane_is_implemented_but_for_what_is_listed() -> None:
    model = _model_operations("iot-jobs-data")
    assert set(data_handlers.HANDLERS) <= model
    assert not sorted(model - set(data_handlers.HANDLERS) - set(_listed()))
