"""The jobs service layer: load state, apply the pure rules, commit, then hand events to publishers.

One module per resource; ``Engine`` puts them together. Each operation runs in one SQLite
transaction and emits its PendingChange events only after the commit.
"""

from __future__ import annotations

from .core import MAX_PENDING_LISTED, Identity, LifecycleListener, Listener, Located, PendingChange, document_object
from .devices import DeviceOps
from .event_configs import EventConfigOps
from .executions import ExecutionOps
from .firing import FiringOps
from .jobs import JobOps
from .registry import RegistryOps
from .templates import TemplateOps


class Engine(DeviceOps, RegistryOps, JobOps, FiringOps, ExecutionOps, TemplateOps, EventConfigOps):
    """Every operation of the local service, over one store, one clock and one set of listeners."""


__all__ = [
    "MAX_PENDING_LISTED",
    "Engine",
    "Identity",
    "LifecycleListener",
    "Listener",
    "Located",
    "PendingChange",
    "document_object",
]
