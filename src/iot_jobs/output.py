"""One place that writes to the screen, from any thread, in a sensible order.

A command's own lines come first; events that arrive while a command runs (for example the
notify events a CreateJob triggers) are held and printed right after it, as in the seed's
transcripts, except those that reached us over MQTT before the data-plane response being awaited
(``release_before``): they precede it, so they print before it. Events that arrive while the
prompt is idle print at once, above the prompt.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable

from . import pager


class Printer:
    def __init__(
        self,
        write: Callable[[str], None] | None = None,
        write_error: Callable[[str], None] | None = None,
        pager: list[str] | None = None,
    ) -> None:
        self._write = write or self._stdout
        self._write_error = write_error or self._stderr
        #: Interactive, on a terminal: a command's output is gathered and paged if it is too long.
        self._pager = pager
        self._gathered: list[str] | None = None
        self._lock = threading.RLock()
        self._busy = 0
        self._held: list[tuple[int, str]] = []
        self.last_event: str | None = None
        self._last_event_at = time.monotonic()

    @staticmethod
    def _stdout(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    @staticmethod
    def _stderr(line: str) -> None:
        sys.stdout.flush()  # what came before stays before, also when both go to one pipe
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def error(self, text: str) -> None:
        """A command's failure: on stderr, so scripts can tell it from output."""
        with self._lock:
            self._write_error(text)

    def line(self, text: str) -> None:
        """Output of the command being run (or a status line): printed now (or gathered for the pager)."""
        with self._lock:
            if self._gathered is not None:
                self._gathered.append(text)
            else:
                self._write(text)

    def event(self, text: str, arrival: int = -1) -> None:
        with self._lock:
            self.last_event = text
            self._last_event_at = time.monotonic()
            if self._busy:
                self._held.append((arrival, text))
            else:
                self._write(text)

    def release_before(self, arrival: int) -> None:
        """A response arrived as number ``arrival``: print the held events that came before it."""
        with self._lock:
            earlier = [text for number, text in self._held if 0 <= number < arrival]
            self._held = [(number, text) for number, text in self._held if not 0 <= number < arrival]
            for text in earlier:
                self.line(text)

    def command(self) -> _Running:
        return _Running(self)

    def _begin(self) -> None:
        with self._lock:
            self._busy += 1
            if self._pager is not None and self._gathered is None:
                self._gathered = []

    def _end(self) -> None:
        with self._lock:
            if self._busy > 1:
                self._busy -= 1
                return
            held, self._held = self._held, []
            gathered, self._gathered = self._gathered, None
            lines = [*(gathered or []), *(text for _number, text in held)]
            if not (gathered and self._pager is not None and self._too_long(lines)):
                self._busy = 0
                for text in lines:
                    self._write(text)
                return
        # Paging without the lock (event threads must not wait on the reader), still busy: events
        # that arrive meanwhile are held and printed once the pager quits.
        shown = pager.page("\n".join(lines), self._pager)
        with self._lock:
            self._busy = 0
            held, self._held = self._held, []
            for text in [*([] if shown else lines), *(text for _number, text in held)]:
                self._write(text)

    @staticmethod
    def _too_long(lines: list[str]) -> bool:
        size = shutil.get_terminal_size()
        return pager.rows_needed("\n".join(lines), size.columns) > size.lines - 2

    def wait_quiet(self, quiet: float = 0.3, limit: float = 2.0) -> None:
        """Before a scripted session ends: give events still in flight a moment to arrive.

        Returns once no event has arrived for ``quiet`` seconds, or after ``limit`` seconds.
        """
        end = time.monotonic() + limit
        while (now := time.monotonic()) < end:
            remaining = self._last_event_at + quiet - now
            if remaining <= 0:
                return
            time.sleep(min(remaining, end - now))


class _Running:
    def __init__(self, printer: Printer) -> None:
        self._printer = printer

    def __enter__(self) -> None:
        self._printer._begin()

    def __exit__(self, *_exc: object) -> None:
        self._printer._end()
