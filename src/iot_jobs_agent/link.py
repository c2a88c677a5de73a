"""The console's ``DataPlane`` (one MQTT connection, ``IotJobsClientV2``, both event streams) seen from asyncio.

CRT callbacks arrive on CRT threads; they become items of one ``asyncio.Queue``: ``(stream name,
event)``, ``("reconnected", None)`` after a reconnection. Requests run in worker threads.

The first connection is retried with a back-off (a device booting before its network or broker),
each attempt logged in one line, unless the failure is a misconfiguration (``MISCONFIGURED``),
which ``open`` raises. Once connected, the client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from iot_jobs.connection import preflight
from iot_jobs.data_plane import DataPlane
from iot_jobs.errors import IotJobsError
from iot_jobs.settings import Settings

log = logging.getLogger("iot_jobs_agent")

#: Rejections and transport failures worth retrying (the Device Client retries the first two too).
RETRYABLE = {"RequestThrottled", "InternalError", "Timeout", "Offline", "PublishFailed", "SubscribeFailed"}
#: First-connection failures that retrying cannot fix: files, certificates, TLS trust.
MISCONFIGURED = {"FileNotFound", "FileNotReadable", "InvalidCertificate", "TlsError", "Usage"}
#: Seconds between first-connection attempts: doubling from the first to the last.
CONNECT_RETRY_S = (0.5, 15.0)


def misconfigured(exc: IotJobsError) -> bool:
    """A refused CONNACK (bad identity, not authorized) is one too; a dropped socket is not."""
    return exc.code in MISCONFIGURED or (exc.code == "ConnectFailed" and "CONNACK" in exc.message)


class Link:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mqtt = settings.mqtt
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._connections = 0
        #: Built once preflight passed (the builder itself reads the certificate files).
        self.plane: DataPlane | None = None

    def _new_plane(self) -> DataPlane:
        """A fresh client for each first-connection attempt. No client-side flow control: the agent
        sends a few requests per job, and the limiter made each job wait ~40 ms (iot_jobs.connection)."""
        self._connections = 0
        return DataPlane(self.settings, self._event, self._status, self._state, mqtt=self.mqtt, flow_control=False)

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
        """Connect and open both streams, retrying until it works; ``IotJobsError`` if misconfigured."""
        delay, attempt = CONNECT_RETRY_S[0], 1
        while True:
            try:
                await asyncio.to_thread(preflight, self.settings)  # a wrong port, file or CA as one line
                self.plane = self._new_plane()
                await asyncio.to_thread(self.plane.__enter__)
                return
            except IotJobsError as exc:
                if misconfigured(exc):
                    raise
                self.close()
                log.warning("connection: attempt %d failed: %s; retrying in %.1f s", attempt, exc.line(), delay)
            await asyncio.sleep(delay)  # back-off between attempts, not synchronisation
            delay, attempt = min(delay * 2, CONNECT_RETRY_S[1]), attempt + 1

    def close(self) -> None:
        if self.plane is not None:
            self.plane.close()
            self.plane = None

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert self.plane is not None, "not connected yet"
        return await asyncio.to_thread(getattr(self.plane, name), *args, **kwargs)


def error_code(exc: IotJobsError) -> str:
    return exc.code or "Error"
