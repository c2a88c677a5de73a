"""What an operation handler is: (engine, parsed input members) -> output members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import Engine

Handler = Callable[[Engine, dict[str, Any]], dict[str, Any]]
