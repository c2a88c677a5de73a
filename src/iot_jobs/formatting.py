"""How lines look: the seed's compact JSON lines (default) or indented, coloured JSON (``--output pretty``).

Colour is used only when stdout is a terminal and ``NO_COLOR`` is not set.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from . import render

_RESET = "\x1b[0m"
_KEY, _STRING, _NUMBER, _LITERAL, _ERROR, _DIM = "\x1b[34m", "\x1b[32m", "\x1b[36m", "\x1b[35m", "\x1b[31m", "\x1b[2m"
_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b')


def colour_allowed(is_tty: bool) -> bool:
    return is_tty and "NO_COLOR" not in os.environ


def colour_json(text: str) -> str:
    def paint(match: re.Match[str]) -> str:
        string, colon, number, literal = match.groups()
        if string is not None:
            return f"{_KEY if colon else _STRING}{string}{_RESET}{colon or ''}"
        if number is not None:
            return f"{_NUMBER}{number}{_RESET}"
        return f"{_LITERAL}{literal}{_RESET}"

    return _TOKEN.sub(paint, text)


@dataclass(frozen=True)
class Formatter:
    pretty: bool = False
    colour: bool = False

    def _json(self, value: Any) -> str:
        if not self.pretty:
            return render.dumps(value)
        text = json.dumps(value, indent=2, ensure_ascii=False)
        return colour_json(text) if self.colour else text

    def response(self, operation: str, payload: Any) -> str:
        sep = "\n" if self.pretty else " "
        return f"{operation} Response:{sep}{self._json(payload)}"

    def event(self, name: str, wire: Any) -> str:
        sep = "\n" if self.pretty else " "
        return f"Received {name} event:{sep}{self._json(wire)}"

    def error(self, line: str) -> str:
        return f"{_ERROR}{line}{_RESET}" if self.colour else line

    def status(self, line: str) -> str:
        return f"{_DIM}{line}{_RESET}" if self.colour else line
