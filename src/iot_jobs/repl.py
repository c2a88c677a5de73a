"""The loop: an interactive prompt on a terminal, one command per line otherwise."""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable, Iterable
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
from .terminal import between_prompts
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


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    QUIT = "quit"


def run_line(ctx: Context, printer: Printer, line: str, debug: bool = False) -> Outcome:
    """Run one line. Never raises for bad input; Ctrl-C cancels the line, not the session."""
    with printer.command():
        try:
            if line.strip():
                log.info("running %s", line.strip().split(" ", 1)[0])
            execute(ctx, line)
        except Quit:
            return Outcome.QUIT
        except IotJobsError as exc:
            text = error_line(exc)
            log.warning("%s", text)
            printer.error(ctx.fmt.failure(exc, text))
            if debug and exc.__cause__ is not None:
                printer.error("".join(traceback.format_exception(exc.__cause__)).rstrip())
            return Outcome.FAILED
        except KeyboardInterrupt:
            # The request may still reach the service; its late answer is dropped.
            name = line.strip().split(" ", 1)[0]
            log.info("canceled %r", line)
            printer.error(ctx.fmt.error(f"Canceled {name} (Ctrl-C); the service may still carry it out."))
            return Outcome.FAILED
        except Exception as exc:  # a bug of ours must not end the session
            log.exception("unexpected error running %r", line)
            printer.error(ctx.fmt.error(f"Error: unexpected {type(exc).__name__}: {exc} (details in the log)"))
            if debug:
                printer.error(traceback.format_exc().rstrip())
            return Outcome.FAILED
    return Outcome.OK


def run_lines(
    ctx: Context, printer: Printer, lines: Iterable[str], debug: bool = False, stop_on_error: bool = False
) -> int:
    """Scripted use (piped stdin or ``-c``): no prompt, no colour.

    Exit status 0 when every command succeeded, 1 when one failed (``stop_on_error``: the first
    failure ends the run).
    """
    code = 0
    for line in lines:
        outcome = run_line(ctx, printer, line, debug)
        if outcome is Outcome.QUIT:
            break
        if outcome is Outcome.FAILED:
            code = 1
            if stop_on_error:
                break
    return code


def run_interactive(
    ctx: Context,
    printer: Printer,
    history_path: Path | None,
    debug: bool = False,
    job_ids: Callable[[], Iterable[str]] | None = None,
    on_job_ids: Callable[[Callable[[], None]], None] | None = None,
) -> int:
    """The prompt loop; ``on_job_ids`` receives the function to call when new job ids arrive."""
    history = FileHistory(str(history_path)) if history_path else InMemoryHistory()
    session: PromptSession[str] = PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=CommandCompleter(ctx.table, job_ids or (lambda: ctx.state.job_ids)),
        complete_while_typing=True,
        bottom_toolbar=toolbar(ctx.state),
        style=STYLE,
        refresh_interval=0.5,
    )

    def recomplete() -> None:
        """New job ids arrived: offer them in the line being typed (called from another thread)."""
        app, buffer = session.app, session.default_buffer
        loop = app.loop
        if app.is_running and loop is not None and buffer.text:
            loop.call_soon_threadsafe(buffer.start_completion)

    if on_job_ids is not None:
        on_job_ids(recomplete)
    with between_prompts(), patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt("iot-jobs> ")
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line being typed
            except EOFError:
                break  # Ctrl-D
            if run_line(ctx, printer, line, debug) is Outcome.QUIT:
                break
    return 0
