"""UpdateEventConfigurations and DescribeEventConfigurations: which registry events are published."""

from __future__ import annotations

from typing import Any

from ..jobs import lifecycle_events
from .core import EngineCore


class EventConfigOps(EngineCore):
    def update_event_configurations(self, value: Any) -> None:
        """Only the types named change; a missing map changes nothing."""
        settings = lifecycle_events.parse_configurations({} if value is None else value)
        if not settings:
            return
        with self._store.transaction():
            self._store.put_event_configurations(settings, self._clock())
        self._event_settings.update(settings)

    def describe_event_configurations(self) -> tuple[dict[str, bool], float | None, float | None]:
        """Every event type's setting (off unless enabled), and when they were first and last changed."""
        settings, created, modified = self._store.event_configurations()
        return {t: settings.get(t, False) for t in lifecycle_events.EVENT_TYPES}, created, modified
