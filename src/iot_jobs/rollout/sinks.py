"""Where the view goes: redrawn in place on a terminal, one line per change on a pipe, or one
JSON document per change (the console's ``--output json``)."""

from __future__ import annotations

import json
import shutil
from typing import Protocol, TextIO

from . import report, text
from .model import View
from .timeline import Timeline

HIDE_CURSOR, SHOW_CURSOR, UP, CLEAR_LINE = "\x1b[?25l", "\x1b[?25h", "\x1b[{}A", "\x1b[2K"


def width() -> int:
    """The terminal's width (80 when it cannot tell)."""
    return shutil.get_terminal_size((80, 24)).columns


def height() -> int:
    return shutil.get_terminal_size((80, 24)).lines


class Sink(Protocol):
    def show(self, view: View, changed: bool, problem: str | None) -> None: ...
    def finish(self, view: View, timeline: Timeline, end: float, note: str | None) -> None: ...


class LiveSink:
    """A frame redrawn in place: the cursor goes back up over the last frame and each line is rewritten."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._drawn = 0

    def show(self, view: View, changed: bool, problem: str | None) -> None:
        lines = text.frame(view, width())
        if problem:
            lines.append(f"  ({problem}; retrying)"[: max(20, width() - 1)])
        self._draw(lines)

    def _draw(self, lines: list[str]) -> None:
        # The cursor cannot go back above the screen's top: a frame taller than the screen is cut.
        lines = lines[: max(1, height() - 1)]
        out = [HIDE_CURSOR] if self._drawn == 0 else [UP.format(self._drawn)]
        out += [f"\r{CLEAR_LINE}{line}\n" for line in lines]
        extra = self._drawn - len(lines)
        if extra > 0:  # a shorter frame: blank what is left of the longer one, come back up
            out += [f"{CLEAR_LINE}\n"] * extra + [UP.format(extra)]
        self._drawn = len(lines)
        self._stream.write("".join(out))
        self._stream.flush()

    def finish(self, view: View, timeline: Timeline, end: float, note: str | None) -> None:
        self.show(view, True, None)
        columns = width()
        lines = ([note] if note else []) + ["", *text.summary(view, columns), "", *text.chart(timeline, end, columns)]
        self._stream.write(SHOW_CURSOR + "".join(f"{line}\n" for line in lines))
        self._stream.flush()


class LineSink:
    """One plain line per change, then the summary and the chart."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last_problem: str | None = None

    def show(self, view: View, changed: bool, problem: str | None) -> None:
        if problem and problem != self._last_problem:
            self._write([f"({problem}; retrying)"])
        self._last_problem = problem
        if changed:
            self._write([text.change_line(view)])

    def finish(self, view: View, timeline: Timeline, end: float, note: str | None) -> None:
        columns = max(80, width())
        self._write(
            ([note] if note else []) + ["", *text.summary(view, columns), "", *text.chart(timeline, end, columns)]
        )

    def _write(self, lines: list[str]) -> None:
        self._stream.write("".join(f"{line}\n" for line in lines))
        self._stream.flush()


class JsonSink:
    """One JSON document per line: ``{"kind": "rollout", ...}`` per change, ``"rollout-summary"`` at the end."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def show(self, view: View, changed: bool, problem: str | None) -> None:
        if problem:
            self._write({"kind": "status", "message": f"{problem}; retrying"})
        if changed:
            self._write({"kind": "rollout", **report.view_document(view)})

    def finish(self, view: View, timeline: Timeline, end: float, note: str | None) -> None:
        if note:
            self._write({"kind": "status", "message": note})
        self._write({"kind": "rollout-summary", **report.data(view, timeline, end)})

    def _write(self, document: dict[str, object]) -> None:
        self._stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        self._stream.flush()
