"""Start-up as the seed describes it, then the loop: thing, MQTT, jobs client, streams, prompt."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import pager, render
from .cli import trace
from .commands import Context, build_table
from .connection import preflight
from .data_plane import DataPlane
from .deferred_control import DeferredControlPlane
from .formatting import Formatter, colour_allowed
from .job_ids import JobIdCache
from .output import Printer
from .repl import run_interactive, run_lines
from .settings import Settings, check_files
from .state import ConsoleState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Presentation:
    #: ``--output``: text, json or pretty (see ``formatting``).
    output: str = "text"
    verbosity: str = "none"
    #: Page long output in interactive use on a terminal (``--no-pager`` turns it off).
    pager: bool = True


def _crt_logging(verbosity: str) -> None:
    if verbosity == "none":
        return
    from awscrt import io

    level = {
        "fatal": io.LogLevel.Fatal,
        "error": io.LogLevel.Error,
        "warn": io.LogLevel.Warn,
        "info": io.LogLevel.Info,
        "debug": io.LogLevel.Debug,
        "trace": io.LogLevel.Trace,
    }[verbosity]
    io.init_logging(level, "stderr")


def run(
    settings: Settings,
    presentation: Presentation,
    interactive: bool,
    history_path: Path | None,
    script: list[str] | None = None,
    stop_on_error: bool = False,
) -> int:
    """The session; its exit status (scripted: 1 when a command failed)."""
    _crt_logging(presentation.verbosity)
    debug = presentation.verbosity in ("debug", "trace")
    json_lines = presentation.output == "json"
    fmt = Formatter(
        pretty=presentation.output == "pretty",
        colour=not json_lines and colour_allowed(sys.stdout.isatty()),
        json_lines=json_lines,
    )
    paging = interactive and presentation.pager and sys.stdout.isatty()
    printer = Printer(pager=pager.command() if paging else None)
    state = ConsoleState(settings.thing_name, f"{settings.endpoint}:{settings.port}")
    check_files(settings)  # before any network call
    control = DeferredControlPlane(settings)
    if not settings.thing_provisioned:
        _arn, created = control.get().ensure_thing()
        trace("thing described")
        if created:
            printer.line(fmt.status(f"Thing {settings.thing_name} did not exist; created it."))
    preflight(settings)
    trace("TCP/TLS preflight done")

    def on_event(name: str, event: Any, arrival: int) -> None:
        wire = render.to_wire(event)
        state.observe_event(name, wire)
        printer.event(fmt.event(name, wire), arrival)

    def on_state(connection: str) -> None:
        log.info("connection %s -> %s (%s:%s)", state.connection, connection, settings.endpoint, settings.port)
        state.connection = connection

    def on_status(text: str) -> None:
        log.info("%s", text)
        printer.line(fmt.status(text))

    with DataPlane(settings, on_event, on_status, on_state, printer.release_before, mqtt=settings.mqtt) as data:
        trace("MQTT connected, streams open")
        ctx = Context(data=data, control=control, out=printer, table=build_table(), state=state, fmt=fmt)
        if interactive:
            printer.line(
                fmt.status(
                    f"Connected to {settings.endpoint}:{settings.port} as thing {settings.thing_name}. "
                    "Type 'help' for commands, Tab to complete, Ctrl-D to quit."
                )
            )

            def fetch_job_ids() -> list[str]:
                state.observe_pending(render.to_wire(data.get_pending(report=False)))
                return control.job_ids()

            cache = JobIdCache(state, fetch_job_ids)
            cache.refresh(delay=0.3)  # after the prompt is drawn: it also builds the boto3 client

            def hook(recomplete: Callable[[], None]) -> None:
                cache.on_update = recomplete

            return run_interactive(ctx, printer, history_path, debug, cache.ids, hook)
        code = run_lines(ctx, printer, sys.stdin if script is None else script, debug, stop_on_error)
        printer.wait_quiet()
        return code
