"""The loop: an interactive prompt on a terminal, one command per line otherwise."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from .commands import Context, Quit, error_line, execute
from .completer import CommandCompleter
from .errors import IotJobsError
from .output import Printer
from .toolbar import toolbar

log = logging.getLogger(__name__)

STYLE = Style.from_dict(
    {
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "toolbar.ok": "bg:#005f00 #ffffff bold",
        "toolbar.warn": "bg:#875f00 #ffffff bold",
        "toolbar.bad": "bg:#870000 #ffffff bold",
    }
)


def run_line(ctx: Context, printer: Printer, line: str, debug: bool = False) -> bool:
    """Run one line; False when the user asked to quit. Never raises for bad input."""
    with printer.command():
        try:
            execute(ctx, line)
        except Quit:
            return False
        except IotJobsError as exc:
            printer.line(ctx.fmt.error(error_line(exc)))
            if debug and exc.__cause__ is not None:
                printer.line("".join(traceback.format_exception(exc.__cause__)).rstrip())
        except Exception as exc:  # a bug of ours must not end the session
            log.exception("unexpected error running %r", line)
            printer.line(ctx.fmt.error(f"Error: unexpected {type(exc).__name__}: {exc} (details in the log)"))
            if debug:
                printer.line(traceback.format_exc().rstrip())
    return True


def run_lines(ctx: Context, printer: Printer, lines: Iterable[str], debug: bool = False) -> int:
    """Scripted use (stdin is not a terminal): no prompt, no colour, exit 0 at EOF or ``quit``."""
    for line in lines:
        if not run_line(ctx, printer, line, debug):
            break
    return 0


def run_interactive(ctx: Context, printer: Printer, history_path: Path | None, debug: bool = False) -> int:
    history = FileHistory(str(history_path)) if history_path else InMemoryHistory()
    session: PromptSession[str] = PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=CommandCompleter(ctx.table, lambda: ctx.state.job_ids),
        complete_while_typing=True,
        bottom_toolbar=toolbar(ctx.state),
        style=STYLE,
        refresh_interval=0.5,
    )
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt("iot-jobs> ")
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line being typed
            except EOFError:
                break  # Ctrl-D
            if not run_line(ctx, printer, line, debug):
                break
    return 0
