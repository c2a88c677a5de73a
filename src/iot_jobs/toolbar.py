"""The bottom toolbar: connection, thing, endpoint, pending counts and the last event."""

from __future__ import annotations

import time
from collections.abc import Callable

from prompt_toolkit.formatted_text import StyleAndTextTuples

from .state import ConsoleState

_CONNECTION_STYLE = {
    "connected": "class:toolbar.ok",
    "connecting": "class:toolbar.warn",
    "reconnecting": "class:toolbar.bad",
    "stopped": "class:toolbar.bad",
}


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def toolbar(state: ConsoleState) -> Callable[[], StyleAndTextTuples]:
    def tokens() -> StyleAndTextTuples:
        last = "none yet"
        if state.last_event and state.last_event_at:
            last = f"{state.last_event} {int(time.time() - state.last_event_at)}s ago"
        return [
            (_CONNECTION_STYLE.get(state.connection, ""), f" {state.connection} "),
            ("class:toolbar", f" thing {state.thing_name} @ {state.endpoint} "),
            ("class:toolbar", f"| in progress {_count(state.in_progress)}, queued {_count(state.queued)} "),
            ("class:toolbar", f"| last event: {last} "),
        ]

    return tokens
