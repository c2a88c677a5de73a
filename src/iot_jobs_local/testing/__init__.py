"""Test your device code against iot-jobs-local: :class:`LocalService` (``with LocalService() as
svc:``), :class:`Device` (a connected ``IotJobsClientV2`` with both event streams) and a pytest
plugin (:mod:`.pytest_plugin`, registered as the ``pytest11`` entry point ``iot_jobs_local``).

May import: ``cli`` (provisioning through the running service), ``control`` (reset) and
``state_dir``. The service itself runs as a process (``python -m iot_jobs_local serve``), as users run it.
"""

from __future__ import annotations

from .device import Device
from .service import LocalService, LocalServiceError, terminate, unique_name

__all__ = ["Device", "LocalService", "LocalServiceError", "terminate", "unique_name"]
