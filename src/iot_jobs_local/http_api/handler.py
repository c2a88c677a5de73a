"""What an operation handler is: (engine, parsed input members) -> output members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..engine import Engine

Handler = Callable[[Engine, dict[str, Any]], dict[str, Any]]
#: A handler whose answer may come later: an awaitable result is awaited off the request path
#: (``HttpApi`` answers other connections meanwhile).
LaterHandler = Callable[[Engine, dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]
