"""How lines look, by ``--output``:

- ``text`` (default): the seed's lines, ``CreateJob Response: {...}``, ``Received ... event: {...}``;
- ``pretty``: the same with the JSON indented (coloured on a terminal), also when piped;
- ``json``: nothing but JSON documents, one per line, each with its ``kind`` (response, event,
  error, status, text), for ``jq``.

Colour is used only when stdout is a terminal and ``NO_COLOR`` is not set.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from . import render
from .errors import IotJobsError

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
    #: ``--output json``: every line a JSON document with its kind.
    json_lines: bool = False

    def _json(self, value: Any) -> str:
        if not self.pretty:
            return render.dumps(value)
        text = json.dumps(value, indent=2, ensure_ascii=False)
        return colour_json(text) if self.colour else text

    def response(self, operation: str, payload: Any) -> str:
        if self.json_lines:
            return render.dumps({"kind": "response", "operation": operation, "response": payload})
        sep = "\n" if self.pretty else " "
        return f"{operation} Response:{sep}{self._json(payload)}"

    def event(self, name: str, wire: Any) -> str:
        if self.json_lines:
            return render.dumps({"kind": "event", "event": name, "payload": wire})
        sep = "\n" if self.pretty else " "
        return f"Received {name} event:{sep}{self._json(wire)}"

    def failure(self, exc: IotJobsError, line: str) -> str:
        """An error: ``line`` is its text form (``CreateJob failed: Code: message``)."""
        if self.json_lines:
            return render.dumps(
                {"kind": "error", "operation": exc.operation, "code": exc.code, "message": exc.message, "line": line}
            )
        return self.error(line)

    def error(self, line: str) -> str:
        if self.json_lines:
            return render.dumps({"kind": "error", "message": line})
        return f"{_ERROR}{line}{_RESET}" if self.colour else line

    def status(self, line: str) -> str:
        if self.json_lines:
            return render.dumps({"kind": "status", "message": line})
        return f"{_DIM}{line}{_RESET}" if self.colour else line

    def text(self, block: str) -> str:
        """Free text (help): as is, or one JSON document in json mode."""
        return render.dumps({"kind": "text", "text": block}) if self.json_lines else block
