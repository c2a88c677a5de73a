"""SQLite persistence: the schema and the queries, one module per resource. No rules live here.

The engine opens one transaction per operation (``Store.transaction``) and calls these queries
inside it.
"""

from __future__ import annotations

from .base import Cursor, Page
from .event_configs import EventConfigQueries
from .executions import ExecutionQueries
from .jobs import JobQueries
from .pacing import PacingQueries
from .registry import RegistryQueries


class Store(RegistryQueries, JobQueries, ExecutionQueries, PacingQueries, EventConfigQueries):
    """One SQLite database. Not thread-safe: the service uses it from its event loop only."""


__all__ = ["Cursor", "Page", "Store"]
