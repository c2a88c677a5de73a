"""Start-up as the seed describes it, then the loop: thing, MQTT, jobs client, streams, prompt."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import render
from .commands import Context, build_table
from .connection import preflight
from .control_plane import ControlPlane
from .data_plane import DataPlane
from .formatting import Formatter, colour_allowed
from .output import Printer
from .repl import run_interactive, run_lines
from .settings import Settings
from .state import ConsoleState


@dataclass(frozen=True)
class Presentation:
    pretty: bool = False
    verbosity: str = "none"


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


def run(settings: Settings, presentation: Presentation, interactive: bool, history_path: Path | None) -> int:
    _crt_logging(presentation.verbosity)
    debug = presentation.verbosity in ("debug", "trace")
    fmt = Formatter(pretty=presentation.pretty and sys.stdout.isatty(), colour=colour_allowed(sys.stdout.isatty()))
    printer = Printer()
    state = ConsoleState(settings.thing_name, f"{settings.endpoint}:{settings.port}")
    control = ControlPlane(settings)
    _arn, created = control.ensure_thing()
    if created:
        printer.line(fmt.status(f"Thing {settings.thing_name} did not exist; created it."))
    preflight(settings)

    def on_event(name: str, event: Any) -> None:
        wire = render.to_wire(event)
        state.observe_event(name, wire)
        printer.event(fmt.event(name, wire))

    def on_state(connection: str) -> None:
        state.connection = connection

    with DataPlane(settings, on_event, lambda text: printer.line(fmt.status(text)), on_state) as data:
        ctx = Context(data=data, control=control, out=printer, table=build_table(), state=state, fmt=fmt)
        if interactive:
            printer.line(
                f"Connected to {settings.endpoint}:{settings.port} as thing {settings.thing_name}. "
                "Type 'help' for commands, Tab to complete, Ctrl-D to quit."
            )
            return run_interactive(ctx, printer, history_path, debug)
        code = run_lines(ctx, printer, sys.stdin, debug)
        printer.wait_quiet()
        return code
