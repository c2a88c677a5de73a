"""Behaviour profiles: named shares of the fleet, as data, checked on load; pure (no I/O, no clock).

A profile is a list of :class:`Share` (name, fraction of the fleet, and how its devices behave).
It comes from flags (:func:`from_flags`) or a small TOML file (:func:`parse`)::

    [[share]]
    name = "healthy"
    fraction = 0.8
    duration = "between 5 20"     # service-clock seconds: "constant 5", "between 5 20", "exponential 8", or 5
    outcome = "succeed"           # or a mix per execution: { succeed = 0.9, fail = 0.1 }

    [[share]]
    name = "flaky"
    fraction = 0.2
    outcome = { fail = 0.5, reject = 0.2, hang = 0.3 }
    step_timeout = 2              # stepTimeoutInMinutes sent on start-next (hangs then TIMED_OUT)
    progress = 2                  # IN_PROGRESS updates with statusDetails while it runs
    drop = 0.1                    # chance per execution of dropping the connection halfway
    reconnect_after = "constant 30"
    offline = "between 60 120"    # offline at start: connects this long after its ramp slot

Assignment (:func:`assign`) is exact (largest remainder) and shuffled by the seed; each device
draws per execution from a generator seeded by (seed, device index, execution count), so the same
seed replays the same run. Errors name the file's line and the reason (:class:`ProfileError`).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("succeed", "fail", "reject", "hang")
KEYS = {
    "name",
    "fraction",
    "duration",
    "outcome",
    "step_timeout",
    "progress",
    "drop",
    "reconnect_after",
    "offline",
}


class ProfileError(Exception):
    """A profile that cannot be used: ``line`` (1-based, 0 if unknown) and the reason."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line

    def describe(self, source: str) -> str:
        return f"{source}:{self.line}: {self.reason}" if self.line else f"{source}: {self.reason}"


@dataclass(frozen=True)
class Distribution:
    """Seconds on the service clock: ``constant``, ``between`` (uniform) or ``exponential`` (mean)."""

    kind: str
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random) -> float:
        if self.kind == "constant":
            return self.a
        if self.kind == "between":
            return rng.uniform(self.a, self.b)
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0

    def __str__(self) -> str:
        return f"between {self.a:g} {self.b:g}" if self.kind == "between" else f"{self.kind} {self.a:g}"


ZERO = Distribution("constant", 0.0)


@dataclass(frozen=True)
class Share:
    name: str
    fraction: float
    duration: Distribution = Distribution("constant", 1.0)
    #: (outcome, weight) pairs, weights summing to 1: drawn per execution.
    outcome: tuple[tuple[str, float], ...] = (("succeed", 1.0),)
    step_timeout: int | None = None
    progress: int = 0
    drop: float = 0.0
    reconnect_after: Distribution = Distribution("constant", 5.0)
    offline: Distribution = ZERO

    def draw_outcome(self, rng: random.Random) -> str:
        pick = rng.random()
        total = 0.0
        for name, weight in self.outcome:
            total += weight
            if pick < total:
                return name
        return self.outcome[-1][0]


@dataclass(frozen=True)
class Profile:
    shares: tuple[Share, ...]
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# parsing ---------------------------------------------------------------------------------------
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"


def parse_distribution(value: Any) -> Distribution:
    """``5``, ``"constant 5"``, ``"between 2 10"``, ``"exponential 8"`` (seconds, not negative)."""
    if isinstance(value, bool):
        raise ValueError("expected seconds or a distribution, not a boolean")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"seconds must be finite and not negative, not {value}")
        return Distribution("constant", float(value))
    if not isinstance(value, str):
        raise ValueError('expected seconds or a string like "between 2 10"')
    if re.fullmatch(rf"\s*{_NUMBER}\s*", value):
        return Distribution("constant", float(value))
    match = re.fullmatch(rf"\s*(constant|between|exponential)\s+({_NUMBER})(?:\s+({_NUMBER}))?\s*", value)
    if match is None:
        raise ValueError(f'"{value}" is not "constant S", "between MIN MAX" or "exponential MEAN"')
    kind, a, b = match.group(1), float(match.group(2)), match.group(3)
    if kind == "between":
        if b is None:
            raise ValueError(f'"{value}": between needs MIN and MAX')
        if float(b) < a:
            raise ValueError(f'"{value}": MAX is below MIN')
        return Distribution(kind, a, float(b))
    if b is not None:
        raise ValueError(f'"{value}": {kind} takes one number')
    return Distribution(kind, a)


def _fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{what} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _outcome(value: Any) -> tuple[tuple[str, float], ...]:
    if isinstance(value, str):
        if value not in OUTCOMES:
            raise ValueError(f'outcome "{value}" is not one of {", ".join(OUTCOMES)}')
        return ((value, 1.0),)
    if not isinstance(value, dict) or not value:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)} or a table of their shares")
    pairs = []
    for name, weight in value.items():
        if name not in OUTCOMES:
            raise ValueError(f'outcome "{name}" is not one of {", ".join(OUTCOMES)}')
        pairs.append((name, _fraction(weight, f"outcome.{name}")))
    total = sum(w for _, w in pairs)
    if abs(total - 1) > 1e-6:
        raise ValueError(f"the outcome shares add up to {total:g}, not 1")
    return tuple(pairs)


def make_share(table: Mapping[str, Any]) -> Share:
    """One ``[[share]]`` table; raises ``(key, ValueError)`` via :class:`_KeyError`."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise _KeyError(unknown[0], f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    for required in ("name", "fraction"):
        if required not in table:
            raise _KeyError(None, f"a share needs {required!r}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        try:
            values[key] = _convert(key, value)
        except ValueError as exc:
            raise _KeyError(key, f"{key}: {exc}") from None
    return Share(**values)


def _convert(key: str, value: Any) -> Any:
    if key == "name":
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value
    if key in ("fraction", "drop"):
        return _fraction(value, key)
    if key in ("duration", "reconnect_after", "offline"):
        return parse_distribution(value)
    if key == "outcome":
        return _outcome(value)
    if key == "step_timeout":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10080:
            raise ValueError(f"must be whole minutes from 1 to 10080, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"must be a whole number from 0 to 100, not {value!r}")
    return value


class _KeyError(Exception):
    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def check(shares: Sequence[Share]) -> None:
    if not shares:
        raise ProfileError("the profile has no [[share]]")
    names = [s.name for s in shares]
    for name in names:
        if names.count(name) > 1:
            raise ProfileError(f"share name {name!r} is used twice")
    total = sum(s.fraction for s in shares)
    if abs(total - 1) > 1e-6:
        raise ProfileError(f"the share fractions add up to {total:g}, not 1")
    for share in shares:
        if any(o == "hang" for o, w in share.outcome if w) and share.step_timeout is None:
            raise ProfileError(f"share {share.name!r} hangs but has no step_timeout (nothing would time it out)")


def parse(text: str, loads: Any) -> Profile:
    """A profile from TOML ``text``; ``loads`` is ``tomllib.loads`` (or tomli's)."""
    try:
        data = loads(text)
    except ValueError as exc:  # TOMLDecodeError: "... (at line 3, column 7)"
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else 0
        raise ProfileError(re.sub(r"\s*\(at line \d+, column \d+\)", "", message), line) from None
    locate = _Locator(text)
    unknown = sorted(set(data) - {"share", "seed"})
    if unknown:
        raise ProfileError(
            f"unknown top-level key {unknown[0]!r} (a profile has [[share]] tables and seed)", locate.top(unknown[0])
        )
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ProfileError("seed must be a whole number", locate.top("seed"))
    tables = data.get("share", [])
    if not isinstance(tables, list):
        raise ProfileError("share must be [[share]] tables", locate.top("share"))
    shares = []
    for index, table in enumerate(tables):
        try:
            shares.append(make_share(table))
        except _KeyError as exc:
            raise ProfileError(exc.reason, locate.key(index, exc.key)) from None
    try:
        check(shares)
    except ProfileError as exc:
        bad = next((i for i, s in enumerate(shares) if s.name in exc.reason), None)
        exc.line = locate.key(bad, None) if bad is not None else 0
        raise
    return Profile(tuple(shares), seed)


class _Locator:
    """Line numbers of ``[[share]]`` headers and the keys under them (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [n for n, line in enumerate(self.lines, 1) if re.match(r"\s*\[\[\s*share\s*\]\]", line)]

    def _find(self, start: int, end: int, key: str) -> int:
        pattern = re.compile(rf'\s*("?){re.escape(key)}\1\s*[=.]')
        for number in range(start, end):
            if pattern.match(self.lines[number - 1]):
                return number
        return 0

    def top(self, key: str) -> int:
        end = self.headers[0] if self.headers else len(self.lines) + 1
        return self._find(1, end, key) or (self.headers[0] if key == "share" and self.headers else 0)

    def key(self, index: int, key: str | None) -> int:
        if index >= len(self.headers):
            return 0
        start = self.headers[index]
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        return (self._find(start + 1, end, key) if key else 0) or start


def from_flags(
    *,
    duration: str | float = 1.0,
    fail: float = 0.0,
    reject: float = 0.0,
    hang: float = 0.0,
    drop: float = 0.0,
    offline: float = 0.0,
    offline_for: str | float = "between 10 60",
    progress: int = 0,
    step_timeout: int | None = None,
) -> Profile:
    """Shares of the fleet from the flags: fail / reject / hang / offline fractions, the rest succeed."""
    try:
        dist = parse_distribution(duration)
        late = parse_distribution(offline_for)
        for what, value in (("--fail", fail), ("--reject", reject), ("--hang", hang), ("--drop", drop)):
            _fraction(value, what)
        _fraction(offline, "--offline")
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    if hang and step_timeout is None:
        step_timeout = 1
    rest = 1 - fail - reject - hang
    if rest < -1e-9:
        raise ProfileError("--fail, --reject and --hang add up to more than 1")
    common: dict[str, Any] = {"duration": dist, "progress": progress, "drop": drop, "step_timeout": step_timeout}
    shares = [
        Share(name, fraction, outcome=((name if name != "succeed" else "succeed", 1.0),), **common)
        for name, fraction in (("succeed", rest), ("fail", fail), ("reject", reject), ("hang", hang))
        if fraction > 1e-9
    ]
    if offline:
        # The offline devices are a slice of every share, split off as "<share>-late".
        split = []
        for share in shares:
            split.append(Share(**{**share.__dict__, "fraction": share.fraction * (1 - offline)}))
            split.append(
                Share(
                    **{
                        **share.__dict__,
                        "name": f"{share.name}-late",
                        "fraction": share.fraction * offline,
                        "offline": late,
                    }
                )
            )
        shares = split
    check(shares)
    return Profile(tuple(shares))


# assignment ------------------------------------------------------------------------------------
def counts(shares: Sequence[Share], total: int) -> list[int]:
    """Devices per share, exact at every total (largest remainder; ties to the earlier share)."""
    raw = [s.fraction * total for s in shares]
    out = [math.floor(r) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def assign(shares: Sequence[Share], total: int, seed: int) -> list[int]:
    """The share index of each device 0..total-1: exact counts, order shuffled by ``seed``."""
    plan = [i for i, n in enumerate(counts(shares, total)) for _ in range(n)]
    random.Random(f"assign:{seed}").shuffle(plan)
    return plan


def execution_rng(seed: int, device: int, execution: int) -> random.Random:
    """The generator of one device's ``execution``-th run (made per run: a device keeps no state for it)."""
    return random.Random(f"{seed}:{device}:{execution}")


def start_rng(seed: int, device: int) -> random.Random:
    return random.Random(f"{seed}:{device}:start")
