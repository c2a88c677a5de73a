"""The toolbar never exceeds the terminal's width and keeps the connection and counts longest."""

from __future__ import annotations

import pytest

from iot_jobs.state import ConsoleState
from iot_jobs.toolbar import fit


@pytest.mark.parametrize("columns", [40, 60, 80, 120, 200])
def test_fits(columns: int) -> None:
    state = ConsoleState("a-rather-long-thing-name-for-a-narrow-terminal-0123456789", "localhost:38883")
    state.connection = "connected"
    state.observe_pending({"inProgressJobs": [], "queuedJobs": [{"jobId": "j"}]})
    state.observe_event("JobExecutionsChanged", {"jobs": {"QUEUED": [{"jobId": "j"}]}})
    text = "".join(t for _style, t in fit(state, columns))
    assert len(text) <= columns - 1, text
    assert text.startswith(" connected ") and "queued 1" in text, text
