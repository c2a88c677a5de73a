"""``iot`` operations on jobs and job templates: one thin function per operation, in snake_case."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..wire import control as control_wire
from . import paging
from .handler import Handler

#: CreateJob members stored verbatim and returned by DescribeJob.
_JOB_CONFIG_MEMBERS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "schedulingConfig",
    "documentParameters",
    "jobTemplateArn",
    "namespaceId",
)
#: The members UpdateJob may change besides the description.
_UPDATABLE_MEMBERS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
)
#: CreateJobTemplate members stored verbatim and returned by DescribeJobTemplate.
_TEMPLATE_CONFIG_MEMBERS = (*_UPDATABLE_MEMBERS, "maintenanceWindows", "destinationPackageVersions")


def create_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    config = {k: p[k] for k in _JOB_CONFIG_MEMBERS if k in p}
    job = engine.create_job(
        p["jobId"], p.get("targets"), p.get("document"), p.get("description"), p.get("targetSelection"), config
    )
    return control_wire.job_reference(job)


def describe_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    view = engine.job_view(p["jobId"])
    return {"job": control_wire.job(view.job, view.counts, view.processing, engine.upcoming_windows(view.job))}


def get_job_document(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return {"document": engine.get_job_document(p["jobId"], bool(p.get("beforeSubstitution", False)))}


def list_jobs(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_jobs(
        status=p.get("status"),
        target_selection=p.get("targetSelection"),
        group_name=p.get("thingGroupName"),
        group_id=p.get("thingGroupId"),
        namespace_id=p.get("namespaceId"),
        after=paging.decode("ListJobs", p.get("nextToken"), 2),
        limit=paging.limit(p),
    )
    rolling = engine.rolling_out([j.job_id for j in found.items])
    jobs = [control_wire.job_summary(j, j.job_id in rolling) for j in found.items]
    return paging.output("ListJobs", "jobs", jobs, found)


def update_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.update_job(p["jobId"], p.get("description"), {k: p[k] for k in _UPDATABLE_MEMBERS if k in p})
    return {}


def cancel_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    job = engine.cancel_job(p["jobId"], bool(p.get("force", False)), p.get("reasonCode"), p.get("comment"))
    return control_wire.job_reference(job)


def delete_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_job(p["jobId"], bool(p.get("force", False)))
    return {}


def associate_targets_with_job(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return control_wire.job_reference(engine.associate_targets_with_job(p["jobId"], p["targets"]))


def create_job_template(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    config = {k: p[k] for k in _TEMPLATE_CONFIG_MEMBERS if k in p}
    template = engine.create_job_template(
        p["jobTemplateId"], p["description"], p.get("document"), p.get("jobArn"), config
    )
    return {"jobTemplateArn": template.arn, "jobTemplateId": template.template_id}


def describe_job_template(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    return control_wire.template(engine.describe_job_template(p["jobTemplateId"]))


def list_job_templates(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    found = engine.list_job_templates(paging.decode("ListJobTemplates", p.get("nextToken"), 2), paging.limit(p))
    templates = [control_wire.template_summary(t) for t in found.items]
    return paging.output("ListJobTemplates", "jobTemplates", templates, found)


def delete_job_template(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.delete_job_template(p["jobTemplateId"])
    return {}


def list_managed_job_templates(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    after = paging.decode("ListManagedJobTemplates", p.get("nextToken"), 2)
    found = engine.list_managed_job_templates(p.get("templateName"), after, paging.limit(p))
    templates = [control_wire.managed_template_summary(t, engine.identity.region) for t in found.items]
    return paging.output("ListManagedJobTemplates", "managedJobTemplates", templates, found)


def describe_managed_job_template(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    template = engine.describe_managed_job_template(p["templateName"], p.get("templateVersion"))
    return control_wire.managed_template(template, engine.identity.region)


HANDLERS: dict[str, Handler] = {
    "CreateJob": create_job,
    "DescribeJob": describe_job,
    "GetJobDocument": get_job_document,
    "ListJobs": list_jobs,
    "UpdateJob": update_job,
    "CancelJob": cancel_job,
    "DeleteJob": delete_job,
    "AssociateTargetsWithJob": associate_targets_with_job,
    "CreateJobTemplate": create_job_template,
    "DescribeJobTemplate": describe_job_template,
    "ListJobTemplates": list_job_templates,
    "DeleteJobTemplate": delete_job_template,
    "ListManagedJobTemplates": list_managed_job_templates,
    "DescribeManagedJobTemplate": describe_managed_job_template,
}
