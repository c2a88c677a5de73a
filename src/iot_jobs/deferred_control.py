"""The control plane, built when first needed or warmed up in the background after the prompt.

Importing boto3 and loading the ``iot`` service model take about half a second, a third of the
time to the first prompt (docs/benchmarks.md). Against iot-jobs-local the thing is provisioned
before the console connects, so nothing at start-up needs the control plane: it is built in the
background once the prompt is up (the job-id completion cache's first refresh does it), or by
the first command that needs it, whichever comes first.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from .control_plane import ControlPlane


class DeferredControlPlane:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._plane: ControlPlane | None = None

    def get(self) -> ControlPlane:
        with self._lock:  # a command waits here (Ctrl-C still cancels it) while the warm-up runs
            if self._plane is None:
                from .control_plane import ControlPlane

                self._plane = ControlPlane(self._settings)
            return self._plane

    # ControlPlaneApi -----------------------------------------------------------------------------
    def create_job(self, job_id: str, document: Any) -> dict[str, Any]:
        return self.get().create_job(job_id, document)

    def delete_job(self, job_id: str, force: bool = False) -> dict[str, Any]:
        return self.get().delete_job(job_id, force)

    def describe_job(self, job_id: str) -> dict[str, Any]:
        return self.get().describe_job(job_id)

    def iot_client(self) -> Any:
        return self.get().iot_client()

    def list_jobs(self, status: str | None = None) -> dict[str, Any]:
        return self.get().list_jobs(status)

    def job_ids(self, pages: int = 3) -> list[str]:
        return self.get().job_ids(pages)

    def cancel_job(
        self, job_id: str, force: bool = False, comment: str | None = None, reason_code: str | None = None
    ) -> dict[str, Any]:
        return self.get().cancel_job(job_id, force, comment, reason_code)

    def list_executions(self, job_id: str, status: str | None = None) -> dict[str, Any]:
        return self.get().list_executions(job_id, status)

    def create_job_from_template(self, job_id: str, template_arn: str, params: dict[str, str]) -> dict[str, Any]:
        return self.get().create_job_from_template(job_id, template_arn, params)

    def list_managed_job_templates(self, name: str | None = None) -> dict[str, Any]:
        return self.get().list_managed_job_templates(name)

    def describe_managed_job_template(self, name: str, version: str | None = None) -> dict[str, Any]:
        return self.get().describe_managed_job_template(name, version)
