"""The console's ``DataPlane`` (one MQTT connection, ``IotJobsClientV2``, both event streams) seen from asyncio.

CRT callbacks arrive on CRT threads; they become items of one ``asyncio.Queue``: ``(stream name,
event)``, ``("reconnected", None)`` after a reconnection. Requests run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from iot_jobs.data_plane import DataPlane
from iot_jobs.errors import IotJobsError
from iot_jobs.settings import Settings

log = logging.getLogger("iot_jobs_agent")

#: Rejections and transport failures worth retrying (the Device Client retries the first two too).
RETRYABLE = {"RequestThrottled", "InternalError", "Timeout", "Offline", "PublishFailed", "SubscribeFailed"}


class Link:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._connections = 0
        self.plane = DataPlane(settings, self._event, self._status, self._state)

    def _put(self, item: tuple[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self.events.put_nowait, item)

    def _event(self, name: str, event: Any, _arrival: int) -> None:
        # The arrival number orders the console's printing; the agent's one queue keeps order already.
        self._put((name, event))

    def _status(self, text: str) -> None:
        log.info("connection: %s", text)

    def _state(self, state: str) -> None:
        if state == "connected":
            self._connections += 1
            if self._connections > 1:
                self._put(("reconnected", None))

    async def open(self) -> None:
        await asyncio.to_thread(self.plane.__enter__)

    def close(self) -> None:
        self.plane.close()

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.plane, name), *args, **kwargs)


def error_code(exc: IotJobsError) -> str:
    return exc.code or "Error"
