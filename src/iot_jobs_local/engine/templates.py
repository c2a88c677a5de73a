"""Job templates: a document and configuration that CreateJob can start from; the account's own, and
AWS's managed ones (read-only data, ``jobs/managed_templates``)."""

from __future__ import annotations

from typing import Any

from ..jobs import configs, creation, managed_templates
from ..jobs.errors import Conflict, InvalidRequest, ResourceNotFound
from ..jobs.managed_templates import ManagedTemplate
from ..jobs.model import JobTemplate
from ..store import Cursor, Page
from .core import EngineCore


class TemplateOps(EngineCore):
    def create_job_template(
        self, template_id: str, description: str, document: Any, job_arn: Any, config: dict[str, Any]
    ) -> JobTemplate:
        """From a ``document`` or from an existing job (``job_arn``); ``config`` holds the other members."""
        creation.check_job_id(template_id)
        creation.check_description(description)
        with self._store.transaction():
            if self._store.get_template(template_id) is not None:
                raise Conflict(f"Job template {template_id} already exists.", template_id)
            if job_arn is not None:
                if document is not None:
                    raise InvalidRequest("Specify either a document or a jobArn, not both")
                job_id = creation.job_id_from_arn(str(job_arn), self.identity.region, self.identity.account)
                job = self._require_job(job_id)
                document = job.document
                inherited = {k: v for k, v in job.config.items() if k in creation.TEMPLATE_CONFIG_MEMBERS}
                config = {**inherited, **config}
            if not isinstance(document, str):
                raise InvalidRequest("document or jobArn is required (documentSource is not supported by this service)")
            creation.check_document(document)
            configs.check_template(config, self._clock())
            template = JobTemplate(
                template_id, self.identity.template_arn(template_id), description, document, self._clock(), config
            )
            self._store.put_template(template)
        return template

    def describe_job_template(self, template_id: str) -> JobTemplate:
        template = self._store.get_template(template_id)
        if template is None:
            raise ResourceNotFound(f"Job template {template_id} cannot be found.")
        return template

    def list_job_templates(self, after: Cursor | None, limit: int) -> Page[JobTemplate]:
        return self._store.list_templates(after, limit)

    def delete_job_template(self, template_id: str) -> None:
        with self._store.transaction():
            self.describe_job_template(template_id)
            self._store.delete_template(template_id)

    def list_managed_job_templates(self, name: str | None, after: Cursor | None, limit: int) -> Page[ManagedTemplate]:
        """Every version of every managed template (of ``name``), in name then version order."""
        items, more = managed_templates.listing(name, after, limit)
        return Page(items, (items[-1].name, items[-1].version) if more and items else None)

    def describe_managed_job_template(self, name: str, version: str | None) -> ManagedTemplate:
        template = managed_templates.find(name, version)
        if template is None:
            # UNCONFIRMED: AWS's message (ResourceNotFoundException is modeled for the operation).
            shown = name if version is None else f"{name}:{version}"
            raise ResourceNotFound(f"Managed job template {shown} cannot be found.")
        return template
