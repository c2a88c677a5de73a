"""Start-up as the seed describes it, then the loop: thing, MQTT, jobs client, streams, prompt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import render
from .commands import Context, build_table
from .control_plane import ControlPlane
from .data_plane import DataPlane, preflight
from .output import Printer
from .repl import run_interactive, run_lines
from .settings import Settings


def run(settings: Settings, interactive: bool, history_path: Path | None) -> int:
    printer = Printer()
    control = ControlPlane(settings)
    _arn, created = control.ensure_thing()
    if created:
        printer.line(f"Thing {settings.thing_name} did not exist; created it.")
    preflight(settings)
    known_jobs: set[str] = set()

    def on_event(name: str, event: Any) -> None:
        printer.event(render.event_line(name, event))

    with DataPlane(settings, on_event, printer.line) as data:
        ctx = Context(data=data, control=control, out=printer, table=build_table(), known_jobs=known_jobs)
        if interactive:
            printer.line(
                f"Connected to {settings.endpoint}:{settings.port} as thing {settings.thing_name}. "
                "Type 'help' for commands, Ctrl-D to quit."
            )
            return run_interactive(ctx, printer, history_path)
        code = run_lines(ctx, printer, sys.stdin)
        printer.wait_quiet()
        return code
