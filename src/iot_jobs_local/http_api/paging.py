"""Pagination on the wire: ``maxResults`` (1-250, checked from the model) and an opaque ``nextToken``.

A token is the sort key of the last item of the previous page (keyset pagination: no offsets, no
server-side state), tagged with the operation it belongs to, in URL-safe base64 JSON. A token that
does not decode, or belongs to another operation, is an InvalidRequestException.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from ..jobs.errors import InvalidRequest
from ..store import Cursor, Page

#: UNCONFIRMED: AWS's page size when ``maxResults`` is not given.
DEFAULT_MAX_RESULTS = 50

T = TypeVar("T")


def encode(operation: str, cursor: Cursor) -> str:
    raw = json.dumps([operation, *cursor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(operation: str, token: Any, size: int) -> Cursor | None:
    """The cursor (``size`` values) a ``nextToken`` carries; None when there is no token."""
    if token is None:
        return None
    try:
        padded = str(token) + "=" * (-len(str(token)) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("The nextToken is not valid") from None
    if (
        not isinstance(value, list)
        or len(value) != size + 1
        or value[0] != operation
        or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value[1:])
    ):
        raise InvalidRequest("The nextToken is not valid") from None
    return tuple(value[1:])


def limit(params: dict[str, Any]) -> int:
    return int(params.get("maxResults", DEFAULT_MAX_RESULTS))


def output(operation: str, member: str, items: list[Any], found: Page[T]) -> dict[str, Any]:
    """``{member: items}`` plus ``nextToken`` when another page follows."""
    out: dict[str, Any] = {member: items}
    if found.cursor is not None:
        out["nextToken"] = encode(operation, found.cursor)
    return out
