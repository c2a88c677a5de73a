"""What the identity operations' handlers share: the identity service and the endpoints they report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..identity.keys import KeyMaker
from ..identity.service import IdentityService


@dataclass(frozen=True)
class Endpoints:
    """What DescribeEndpoint answers: the broker's host (devices add the MQTT port themselves,
    8883 on AWS, ``--mqtt-port`` here) and the HTTP API's ``host:port`` for ``iot:Jobs``."""

    data_host: str
    jobs_address: str


@dataclass(frozen=True)
class Context:
    identity: IdentityService
    endpoints: Endpoints
    #: Where CreateKeysAndCertificate's keys are made (None: on the calling thread).
    keys: KeyMaker | None = None


#: An operation answers at once, or later (an awaitable: work done off the event loop).
Operation = Callable[[Context, dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]
