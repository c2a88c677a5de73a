"""The loop: an interactive prompt on a terminal, one command per line otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from .commands import Context, Quit, error_line, execute
from .errors import IotJobsError
from .output import Printer

log = logging.getLogger(__name__)


def run_line(ctx: Context, printer: Printer, line: str) -> bool:
    """Run one line; False when the user asked to quit. Never raises for bad input."""
    with printer.command():
        try:
            execute(ctx, line)
        except Quit:
            return False
        except IotJobsError as exc:
            printer.line(error_line(exc))
        except Exception as exc:  # a bug of ours must not end the session
            log.exception("unexpected error running %r", line)
            printer.line(f"Error: unexpected {type(exc).__name__}: {exc}")
    return True


def run_lines(ctx: Context, printer: Printer, lines: Iterable[str]) -> int:
    """Scripted use (stdin is not a terminal): no prompt, no colour, exit 0 at EOF or ``quit``."""
    for line in lines:
        if not run_line(ctx, printer, line):
            break
    return 0


def run_interactive(ctx: Context, printer: Printer, history_path: Path | None) -> int:
    history = FileHistory(str(history_path)) if history_path else InMemoryHistory()
    session: PromptSession[str] = PromptSession(history=history)
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt("iot-jobs> ")
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line being typed
            except EOFError:
                break  # Ctrl-D
            if not run_line(ctx, printer, line):
                break
    return 0
