"""The control plane through boto3's ``iot`` client. The only module that imports boto3.

Returns boto3's response dicts untouched; every failure becomes an ``IotJobsError`` that keeps
AWS's error code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from .errors import IotJobsError
from .settings import Settings


class ControlPlane:
    def __init__(self, settings: Settings) -> None:
        try:
            session = boto3.Session(profile_name=settings.profile)
            self._client = session.client(
                "iot",
                region_name=settings.region,
                endpoint_url=settings.control_endpoint_url,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise IotJobsError(
                f"AWS profile {exc.kwargs.get('profile')!r} not found in ~/.aws/config or ~/.aws/credentials "
                "(check --profile / AWS_PROFILE)",
                "ProfileNotFound",
            ) from exc
        except botocore.exceptions.NoRegionError as exc:
            raise IotJobsError(
                "no AWS region: pass --region, set AWS_REGION, or give the profile a region "
                "(aws configure set region <region>)",
                "NoRegion",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise IotJobsError(str(exc), type(exc).__name__) from exc
        self._thing_name = settings.thing_name
        self._thing_arn: str | None = None

    def iot_client(self) -> Any:
        """boto3's ``iot`` client itself, for the rollout view (it reads boto3's responses as they are)."""
        return self._client

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    def _call(self, operation: str, fn: Callable[..., Mapping[str, object]], **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(fn(**kwargs))
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise IotJobsError(error.get("Message") or str(exc), error.get("Code"), operation) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise IotJobsError(
                "no AWS credentials found (configure the AWS CLI, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
                "NoCredentials",
                operation,
            ) from exc
        except botocore.exceptions.EndpointConnectionError as exc:
            raise IotJobsError(
                f"cannot reach {exc.kwargs.get('endpoint_url')}", "EndpointConnectionError", operation
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise IotJobsError(str(exc), type(exc).__name__, operation) from exc

    def ensure_thing(self) -> tuple[str, bool]:
        """Describe the thing and create it if missing. Returns (thing ARN, created)."""
        try:
            found = self._call("DescribeThing", self._client.describe_thing, thingName=self._thing_name)
            self._thing_arn = str(found["thingArn"])
            return self._thing_arn, False
        except IotJobsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        created = self._call("CreateThing", self._client.create_thing, thingName=self._thing_name)
        self._thing_arn = str(created["thingArn"])
        return self._thing_arn, True

    @property
    def thing_arn(self) -> str:
        if self._thing_arn is None:
            self.ensure_thing()
        assert self._thing_arn is not None
        return self._thing_arn

    def create_job(self, job_id: str, document: Any) -> dict[str, Any]:
        return self._call(
            "CreateJob",
            self._client.create_job,
            jobId=job_id,
            targets=[self.thing_arn],
            document=json.dumps(document, separators=(",", ":")),
        )

    def delete_job(self, job_id: str, force: bool = False) -> dict[str, Any]:
        return self._call("DeleteJob", self._client.delete_job, jobId=job_id, force=force)

    def describe_job(self, job_id: str) -> dict[str, Any]:
        return self._call("DescribeJob", self._client.describe_job, jobId=job_id)

    def list_jobs(self, status: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"status": status} if status else {}
        return self._call("ListJobs", self._client.list_jobs, **kwargs)

    def job_ids(self, pages: int = 3) -> list[str]:
        """The account's job ids, newest pages first, for completion (at most ``pages`` pages)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {}
        for _ in range(pages):
            page = self._call("ListJobs", self._client.list_jobs, **kwargs)
            ids += [str(j.get("jobId", "")) for j in page.get("jobs", [])]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return ids

    def cancel_job(
        self, job_id: str, force: bool = False, comment: str | None = None, reason_code: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"jobId": job_id, "force": force}
        if comment is not None:
            kwargs["comment"] = comment
        if reason_code is not None:
            kwargs["reasonCode"] = reason_code
        return self._call("CancelJob", self._client.cancel_job, **kwargs)

    def list_executions(self, job_id: str, status: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"jobId": job_id}
        if status:
            kwargs["status"] = status
        return self._call("ListJobExecutionsForJob", self._client.list_job_executions_for_job, **kwargs)

    def create_job_from_template(self, job_id: str, template_arn: str, params: dict[str, str]) -> dict[str, Any]:
        """CreateJob from a job template's ARN; ``params`` become ``documentParameters`` (managed templates)."""
        kwargs: dict[str, Any] = {"jobId": job_id, "targets": [self.thing_arn], "jobTemplateArn": template_arn}
        if params:
            kwargs["documentParameters"] = params
        return self._call("CreateJob", self._client.create_job, **kwargs)

    def list_managed_job_templates(self, name: str | None = None) -> dict[str, Any]:
        """Every page of ListManagedJobTemplates, as one response (the last page's metadata)."""
        kwargs: dict[str, Any] = {"templateName": name} if name else {}
        templates: list[Any] = []
        while True:
            page = self._call("ListManagedJobTemplates", self._client.list_managed_job_templates, **kwargs)
            templates.extend(page.get("managedJobTemplates", []))
            token = page.pop("nextToken", None)
            if not token:
                page["managedJobTemplates"] = templates
                return page
            kwargs["nextToken"] = token

    def describe_managed_job_template(self, name: str, version: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"templateName": name}
        if version is not None:
            kwargs["templateVersion"] = version
        return self._call("DescribeManagedJobTemplate", self._client.describe_managed_job_template, **kwargs)
