"""The event kinds of :class:`support.device.Device`, and plain data of SDK objects for messages."""

from __future__ import annotations

from typing import Any

#: Event kinds of :class:`Device`; the AWS names are accepted as aliases.
JOBS_CHANGED = "jobs_changed"
NEXT_CHANGED = "next_changed"
_KIND_ALIASES = {
    "JobExecutionsChanged": JOBS_CHANGED,
    "notify": JOBS_CHANGED,
    "NextJobExecutionChanged": NEXT_CHANGED,
    "notify-next": NEXT_CHANGED,
}


def modeled(value: Any) -> Any:
    """A plain-data view of an SDK modeled object (for assertion messages): dicts of its slots."""
    if isinstance(value, list):
        return [modeled(v) for v in value]
    if isinstance(value, dict):
        return {k: modeled(v) for k, v in value.items()}
    slots = getattr(type(value), "__slots__", None)
    if slots and type(value).__module__.startswith("awsiot"):
        return {s: modeled(getattr(value, s)) for s in slots if getattr(value, s, None) is not None}
    return value


def event_kind(kind: str) -> str:
    kind = _KIND_ALIASES.get(kind, kind)
    assert kind in (JOBS_CHANGED, NEXT_CHANGED), f"unknown event kind {kind!r}"
    return kind
