"""AWS cron expressions of maintenance windows: parse, validate, find the next occurrence (UTC).

The form is AWS's six fields, ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, with
``*``, ``?``, lists, ranges, ``/`` steps, month names (JAN-DEC) and day names (SUN-SAT; numbers
1-7, 1 = Sunday). The bare six fields are accepted too. AWS's ``L``, ``W`` and ``#`` are refused:
this service cannot honour them. When both day fields are restricted, a day matching either one
matches (as in Unix cron); AWS asks for a ``?`` in one of them.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

from .errors import InvalidRequest

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_WRAPPED = re.compile(r"^cron\((.*)\)\Z", re.IGNORECASE)
#: How far ahead to look for an occurrence before deciding there is none.
_HORIZON_DAYS = 366 * 5
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, {}),
)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: any (``*`` or ``?``)
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday ... 7 = Saturday; None: any
    years: frozenset[int]

    def matches_day(self, day: datetime.date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        weekday = (day.isoweekday() % 7) + 1  # Sunday -> 1
        if self.days is None and self.weekdays is None:
            return True
        return (self.days is not None and day.day in self.days) or (
            self.weekdays is not None and weekday in self.weekdays
        )

    def next_at_or_after(self, when: float) -> float | None:
        """The first occurrence at or after ``when`` (epoch seconds), or None within five years."""
        start = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
        first_minute = start.replace(second=0, microsecond=0)
        if first_minute < start:
            first_minute += datetime.timedelta(minutes=1)
        day = first_minute.date()
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for offset in range(_HORIZON_DAYS):
            current = day + datetime.timedelta(days=offset)
            if not self.matches_day(current):
                continue
            for hour in hours:
                for minute in minutes:
                    at = datetime.datetime(
                        current.year, current.month, current.day, hour, minute, tzinfo=datetime.timezone.utc
                    )
                    if at >= first_minute:
                        return at.timestamp()
        return None


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    number = names.get(text.upper()) if names else None
    if number is None:
        if not text.isdigit():
            raise InvalidRequest(f"cron {field}: {text!r} is not a value")
        number = int(text)
    if not low <= number <= high:
        raise InvalidRequest(f"cron {field}: {number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: dict[str, int], field: str) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    for token in re.split(r"[,\-/]", text.upper()):
        if token not in names and re.search(r"[LW#]", token):
            raise InvalidRequest(f"cron {field}: {text!r} uses L, W or #, which iot-jobs-local does not support")
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _value(step_text, 1, high, {}, field) if step_text else 1
        if base in ("*", "?"):
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, low, high, names, field), _value(b, low, high, names, field)
            if first > last:
                raise InvalidRequest(f"cron {field}: range {base!r} runs backwards")
        else:
            first = _value(base, low, high, names, field)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse(expression: str) -> Cron:
    """A maintenance window's ``startTime``; InvalidRequest if it is not a cron expression we can run."""
    wrapped = _WRAPPED.match(expression.strip())
    body = wrapped.group(1) if wrapped else expression
    parts = body.split()
    if len(parts) != len(_FIELDS):
        raise InvalidRequest(f"cron expression {expression!r} must have 6 fields: minutes hours day month weekday year")
    parsed = [
        _field(text, low, high, names, name) for text, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]

    def every(values: frozenset[int] | None, low: int, high: int) -> frozenset[int]:
        return values if values is not None else frozenset(range(low, high + 1))

    return Cron(
        minutes=every(parsed[0], 0, 59),
        hours=every(parsed[1], 0, 23),
        days=parsed[2],
        months=every(parsed[3], 1, 12),
        weekdays=parsed[4],
        years=every(parsed[5], 1970, 2199),
    )
