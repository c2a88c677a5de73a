"""Names, ports and deadlines shared by the test helpers."""

from __future__ import annotations

import socket
import uuid

#: Region and account the service uses in ARNs unless told otherwise (``serve --region/--account``).
REGION = "us-east-1"
ACCOUNT = "123456789012"

READY_PREFIX = "iot-jobs-local ready:"
#: How long a service may take to print its ready line.
START_TIMEOUT = 30.0
#: Default deadline for a request's response or an expected event.
RESPONSE_TIMEOUT = 10.0
#: The longest a test may wait to assert that something does NOT happen.
MAX_ABSENCE_WAIT = 1.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind ``host:0`` and read the port back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "t") -> str:
    """A name unique to this test run, valid as a thing name and as a job id (``[a-zA-Z0-9_-]``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
