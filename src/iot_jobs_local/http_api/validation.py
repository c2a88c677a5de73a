"""Server-side input validation from botocore's model: what AWS checks and boto3 does not.

botocore checks only ``required``, types and ``min`` before sending; AWS also rejects values over
``max``, outside an ``enum`` or not matching a ``pattern`` (and a client other than boto3 may skip
everything). Each violation becomes one line of AWS's validation message, and the request fails
with InvalidRequestException.

Model patterns are Java regular expressions matched against the whole value. Python's ``re`` lacks
Java's ``\\p{...}`` classes: the POSIX ones (ASCII in Java) become ranges, and the Unicode
categories (``\\p{C}``, ``\\p{L}``...) are matched with ``unicodedata`` for the one form the models
use them in: a single character class with a ``*`` or ``+``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from ..jobs.requests import LONG_MAX, LONG_MIN

#: Java's POSIX classes, which are ASCII-only unless UNICODE_CHARACTER_CLASS is set.
_POSIX = {
    r"\p{Upper}": "A-Z",
    r"\p{Lower}": "a-z",
    r"\p{Alpha}": "a-zA-Z",
    r"\p{Digit}": "0-9",
    r"\p{Alnum}": "a-zA-Z0-9",
    r"\p{Graph}": "!-~",
    r"\p{Print}": " -~",
    r"\p{Cntrl}": r"\x00-\x1f\x7f",
    r"\p{Space}": r" \t\n\x0b\f\r",
}
_CATEGORY_CLASS = re.compile(r"^\^?\(?\[(\^?)((?:\\p\{[A-Za-z]{1,2}\}|\\.|[^\]\\])*)\]([*+])\)?\$?$")
_CLASS_ITEM = re.compile(r"\\p\{([A-Za-z]{1,2})\}|\\(.)|(.)")

Matcher = Callable[[str], bool]


#: What AWS's (Java) deserialiser holds: a 32-bit ``integer``, a 64-bit ``long``; beyond them SQLite
#: could not store the value either.
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (LONG_MIN, LONG_MAX)}


def _category_matcher(pattern: str) -> Matcher | None:
    """``[^\\p{C}]+``, ``([\\p{L}\\p{Z}_.-]*)`` and the like: one class of categories and characters."""
    found = _CATEGORY_CLASS.match(pattern)
    if found is None:
        return None
    negated, body, quantifier = found.group(1) == "^", found.group(2), found.group(3)
    categories: list[str] = []
    chars: set[str] = set()
    for item in _CLASS_ITEM.finditer(body):
        if item.group(1):
            categories.append(item.group(1))
        else:
            chars.add(item.group(2) or item.group(3))

    def in_class(ch: str) -> bool:
        return ch in chars or unicodedata.category(ch).startswith(tuple(categories))

    def matches(value: str) -> bool:
        if quantifier == "+" and not value:
            return False
        return all(in_class(ch) != negated for ch in value)

    return matches


@functools.cache
def matcher(pattern: str) -> Matcher | None:
    """A full-match predicate for a model pattern, or None if it cannot be translated (not checked)."""
    translated = pattern
    for java, python in _POSIX.items():
        translated = translated.replace(java, python)
    if r"\p{" in translated:
        return _category_matcher(translated)
    try:
        compiled = re.compile(translated, re.ASCII)
    except re.error:
        return None
    return lambda value: compiled.fullmatch(value) is not None


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """Append what ``value`` violates of ``shape``. Runs on every request: no closures, the
    messages are only built for a failure."""
    broken = _violation(shape, value, path, problems)
    if broken is not None:
        problems.append(_problem(value, path, broken))


def _problem(value: Any, path: str, constraint: str) -> str:
    return f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must {constraint}"


def _violation(shape: Shape, value: Any, path: str, problems: list[str]) -> str | None:
    """The constraint ``value`` itself breaks, if any (a structure's members report their own)."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        if not isinstance(value, str):
            return "be a string"
        broken = _size(meta, len(value), "have length")
        if broken is not None:
            return broken
        if "enum" in meta and value not in meta["enum"]:
            return f"satisfy enum value set: [{', '.join(meta['enum'])}]"
        check = matcher(meta["pattern"]) if "pattern" in meta else None
        if check is not None and not check(value):
            return f"satisfy regular expression pattern: {meta['pattern']}"
    elif isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return "be a structure"
        for name in shape.required_members:
            if name not in value:
                problems.append(f"Value null at '{path}.{name}' failed to satisfy constraint: Member must not be null")
        for name, member in shape.members.items():  # in the model's order, as the messages list them
            item = value.get(name)
            if item is not None:
                _check(member, item, f"{path}.{name}" if path else name, problems)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            return "be a list"
        broken = _size(meta, len(value), "have size")
        if broken is not None:
            problems.append(_problem(value, path, broken))
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}.{index + 1}.member", problems)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return "be a map"
        broken = _size(meta, len(value), "have size")
        if broken is not None:
            problems.append(_problem(value, path, broken))
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{key}.key", problems)
            _check(shape.value, item, f"{path}.{key}.value", problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return "be an integer"
        low, high = INTEGER_RANGES[kind]
        if not low <= value <= high:
            return f"be between {low} and {high}"
        return _range(meta, value)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "be a number"
        return _range(meta, value)
    elif kind == "boolean" and not isinstance(value, bool):
        return "be a boolean"
    return None


def _size(meta: dict[str, Any], size: int, what: str) -> str | None:
    if "min" in meta and size < meta["min"]:
        return f"{what} greater than or equal to {meta['min']}"
    if "max" in meta and size > meta["max"]:
        return f"{what} less than or equal to {meta['max']}"
    return None


def _range(meta: dict[str, Any], number: float) -> str | None:
    if "min" in meta and number < meta["min"]:
        return f"have value greater than or equal to {meta['min']}"
    if "max" in meta and number > meta["max"]:
        return f"have value less than or equal to {meta['max']}"
    return None


def problems(shape: Shape, params: dict[str, Any]) -> list[str]:
    """Every constraint of the operation's input shape that ``params`` violates."""
    found: list[str] = []
    _check(shape, params, "", found)
    return found


def message(found: list[str]) -> str:
    count = len(found)
    return f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(found)}"
