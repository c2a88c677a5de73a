"""The bottom toolbar: connection, pending counts, thing, endpoint and the last event.

It fits the terminal's width: parts are dropped from the least useful (the last event, then the
endpoint) and the thing name shortened with "…", so an 80-column terminal never sees it cut.
"""

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


def _columns() -> int:
    try:
        from prompt_toolkit.application.current import get_app

        return get_app().output.get_size().columns
    except Exception:  # no running application (tests of the pure function)
        return 80


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def fit(state: ConsoleState, columns: int) -> StyleAndTextTuples:
    """The toolbar's tokens for a terminal ``columns`` wide (at most ``columns - 1`` characters)."""
    last = "none yet"
    if state.last_event and state.last_event_at:
        last = f"{state.last_event} {int(time.time() - state.last_event_at)}s ago"
    connection = (_CONNECTION_STYLE.get(state.connection, ""), f" {state.connection} ")
    counts = f" in progress {_count(state.in_progress)}, queued {_count(state.queued)} "
    limit = columns - 1
    for parts in (
        [f" thing {state.thing_name} @ {state.endpoint} ", f"|{counts}", f"| last event: {last} "],
        [f" thing {state.thing_name} ", f"|{counts}", f"| last: {last} "],
        [f" thing {state.thing_name} ", f"|{counts}"],
    ):
        if len(connection[1]) + sum(map(len, parts)) <= limit:
            return [connection, *(("class:toolbar", p) for p in parts)]
    room = limit - len(connection[1]) - len(counts) - len(" thing  |")
    thing = f" thing {_shorten(state.thing_name, room)} |" if room >= 4 else ""
    return [connection, ("class:toolbar", _shorten(thing + counts, limit - len(connection[1])))]


def toolbar(state: ConsoleState) -> Callable[[], StyleAndTextTuples]:
    return lambda: fit(state, _columns())
