"""``iot`` registry event settings: UpdateEventConfigurations, DescribeEventConfigurations."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from .handler import Handler


def update_event_configurations(engine: Engine, p: dict[str, Any]) -> dict[str, Any]:
    engine.update_event_configurations(p.get("eventConfigurations"))
    return {}


def describe_event_configurations(engine: Engine, _p: dict[str, Any]) -> dict[str, Any]:
    settings, created, modified = engine.describe_event_configurations()
    out: dict[str, Any] = {"eventConfigurations": {t: {"Enabled": on} for t, on in settings.items()}}
    if created is not None:
        out["creationDate"] = created
        out["lastModifiedDate"] = modified
    return out


HANDLERS: dict[str, Handler] = {
    "UpdateEventConfigurations": update_event_configurations,
    "DescribeEventConfigurations": describe_event_configurations,
}
