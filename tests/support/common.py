"""Names, ports and deadlines shared by the test helpers (the package's where it has them)."""

from __future__ import annotations

from iot_jobs_local.broker.process import free_port
from iot_jobs_local.testing import unique_name as unique
from iot_jobs_local.testing.device import MAX_ABSENCE_WAIT

__all__ = ["MAX_ABSENCE_WAIT", "READY_PREFIX", "RESPONSE_TIMEOUT", "free_port", "unique"]

#: The line ``serve`` prints once it is ready.
READY_PREFIX = "iot-jobs-local ready:"
#: Default deadline for a request's response or an expected event.
RESPONSE_TIMEOUT = 10.0
