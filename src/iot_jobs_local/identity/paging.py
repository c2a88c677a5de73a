"""Page windows for the identity listings: markers and tokens are the offset of the page they start."""

from __future__ import annotations

from .errors import InvalidRequestException


def window(marker: str | None, size: int | None, maximum: int) -> tuple[int, int]:
    """(offset, limit) of the page that ``marker`` starts, ``size`` long (default and most: ``maximum``)."""
    try:
        offset = int(marker) if marker else 0
    except ValueError:
        raise InvalidRequestException(f"Invalid marker or token: {marker}") from None
    if offset < 0:
        raise InvalidRequestException(f"Invalid marker or token: {marker}")
    limit = maximum if size is None else size
    if not 1 <= limit <= maximum:
        raise InvalidRequestException(f"The page size must be between 1 and {maximum}")
    return offset, limit


def next_marker(offset: int, limit: int, fetched: int) -> str | None:
    """The marker of the following page, given that ``limit + 1`` rows were asked for."""
    return str(offset + limit) if fetched > limit else None
