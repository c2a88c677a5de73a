"""Executions by status over time: the points where the counts changed, in service time.

The chart and the report sample it at evenly spaced times; between two points the counts are
those of the earlier one (a step function: the counts hold until the next change is seen).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .describe import STATUS_NAMES


@dataclass(frozen=True)
class Point:
    #: Service time, epoch seconds.
    at: float
    counts: tuple[int, ...]  # in ``STATUS_NAMES`` order

    def as_dict(self) -> dict[str, int]:
        return dict(zip(STATUS_NAMES, self.counts, strict=True))

    @property
    def total(self) -> int:
        return sum(self.counts)


class Timeline:
    def __init__(self, start: float | None = None) -> None:
        #: The job's creation time: the chart's origin, with nothing notified yet.
        self.start = start
        self.points: list[Point] = []

    def add(self, at: float, counts: Mapping[str, int]) -> bool:
        """Record the counts seen at ``at``; True if they changed (only changes are kept)."""
        values = tuple(int(counts.get(name, 0)) for name in STATUS_NAMES)
        if self.points and self.points[-1].counts == values:
            return False
        if self.points and at < self.points[-1].at:
            at = self.points[-1].at  # the estimate of the service's clock is never behind a point
        self.points.append(Point(at, values))
        return True

    def at(self, when: float) -> Point | None:
        """The counts in force at ``when`` (None before the first point)."""
        found = None
        for point in self.points:
            if point.at > when:
                break
            found = point
        return found

    def notified_at(self, when: float) -> int:
        point = self.at(when)
        return point.total if point is not None else 0

    def origin(self) -> float | None:
        if self.start is not None:
            return self.start
        return self.points[0].at if self.points else None


def sample(points: Sequence[Point], start: float, end: float, columns: int) -> list[tuple[float, tuple[int, ...]]]:
    """``columns`` evenly spaced times from ``start`` to ``end`` and the counts in force at each."""
    empty = tuple(0 for _ in STATUS_NAMES)
    if columns <= 0:
        return []
    span = max(0.0, end - start)
    out = []
    index, current = 0, empty
    for i in range(columns):
        when = start + (span * i / (columns - 1) if columns > 1 else span)
        while index < len(points) and points[index].at <= when:
            current = points[index].counts
            index += 1
        out.append((when, current))
    return out
