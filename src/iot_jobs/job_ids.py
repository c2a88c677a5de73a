"""Job ids for completion, from the service: the account's jobs (ListJobs) and this thing's
pending executions, cached and refreshed in the background so that Tab never waits on the network.

The console's own sightings (responses, events) are added at once through ``ConsoleState``; this
adds the jobs created elsewhere (another console, the AWS console, a script) since the last refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from .errors import IotJobsError
from .state import ConsoleState

log = logging.getLogger(__name__)

#: Seconds a fetched list stays fresh; asking for completions after that refreshes it (in the background).
TTL_S = 30.0


class JobIdCache:
    def __init__(self, state: ConsoleState, fetch: Callable[[], Iterable[str]], ttl: float = TTL_S) -> None:
        self._state = state
        self._fetch = fetch
        self._ttl = ttl
        self._fetched_at: float | None = None
        self._running = False
        self._lock = threading.Lock()
        #: Called (on the refresh thread) after new ids came in, e.g. to recompute an open menu.
        self.on_update: Callable[[], None] = lambda: None

    def refresh(self, delay: float = 0.0) -> None:
        """Start a background refresh (in ``delay`` seconds) unless one runs or the last one is fresh."""
        with self._lock:
            fresh = self._fetched_at is not None and time.monotonic() - self._fetched_at < self._ttl
            if self._running or fresh:
                return
            self._running = True
        timer = threading.Timer(delay, self._run)
        timer.name, timer.daemon = "job-ids", True
        timer.start()

    def _run(self) -> None:
        try:
            before = set(self._state.job_ids)
            self._state.remember_jobs(self._fetch())
            if set(self._state.job_ids) != before:
                self.on_update()
        except IotJobsError as exc:  # completion stays with what we know; the log says why
            log.info("job id refresh failed: %s", exc.line())
        except Exception:  # never a traceback over the prompt from a background refresh
            log.exception("job id refresh failed")
        finally:
            with self._lock:
                self._running = False
                self._fetched_at = time.monotonic()

    def ids(self) -> list[str]:
        self.refresh()
        return self._state.job_ids
