"""Strict JSON for everything a client or device sends: what RFC 8259 allows and nothing more.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, turns ``1E400`` into an infinite
float (which it then writes back as ``Infinity``, so a reply would not be JSON), guesses UTF-16 and
UTF-32 from the bytes, and recurses once per nesting level (deep input raises ``RecursionError``).
``loads`` refuses all of these with one ``ValueError``, so that each plane answers it with its own
"invalid JSON" code:

* only UTF-8, without a byte-order mark;
* at most ``MAX_DEPTH`` nested arrays and objects, checked before parsing (UNCONFIRMED: AWS's own
  limit is not documented; 64 levels is far beyond any job document or request seen);
* no NaN or infinities, and no number too large for a double.

Integers of any size parse (Python's own 4,300-digit limit aside); each API checks its ranges.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite)


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects, brackets inside strings not counted."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", data)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(data: bytes | str) -> Any:
    """Parse strict JSON; ``ValueError`` (with a short reason) for anything else."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError("a byte-order mark is not allowed")
    # Cheap test first: fewer opening brackets than the limit cannot nest deeper than it.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_depth(raw) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    try:
        return _DECODER.decode(text)
    except RecursionError:  # unreachable below MAX_DEPTH; kept so that it can never escape
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, a refused number, an integer of too many digits
        raise ValueError(getattr(exc, "msg", None) or str(exc)) from None
