"""Queries behind UpdateEventConfigurations and DescribeEventConfigurations."""

from __future__ import annotations

from collections.abc import Mapping

from .base import StoreBase


class EventConfigQueries(StoreBase):
    def event_configurations(self) -> tuple[dict[str, bool], float | None, float | None]:
        """The event types ever configured, and when the first and the latest change happened."""
        rows = self._db.execute("SELECT event_type, enabled, created_at, updated_at FROM event_configurations")
        settings: dict[str, bool] = {}
        created: float | None = None
        modified: float | None = None
        for event_type, enabled, created_at, updated_at in rows:
            settings[event_type] = bool(enabled)
            created = created_at if created is None else min(created, created_at)
            modified = updated_at if modified is None else max(modified, updated_at)
        return settings, created, modified

    def put_event_configurations(self, settings: Mapping[str, bool], now: float) -> None:
        self._db.executemany(
            "INSERT INTO event_configurations (event_type, enabled, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (event_type) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
            ((event_type, int(enabled), now, now) for event_type, enabled in settings.items()),
        )
