"""``serve --log-requests``: one log line per HTTP operation and per MQTT request, with its outcome
and how long the service took to answer it.

Subclasses of the two APIs, so that nothing is measured or formatted unless asked for: the service
uses them instead of :class:`HttpApi` and :class:`MqttApi` when the flag is given.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable

from .http_api.http11 import Reply, Request
from .http_api.server import HttpApi
from .mqtt.device_api import MqttApi, Outgoing

log = logging.getLogger("iot_jobs_local.requests")


class LoggedHttpApi(HttpApi):
    def respond(self, request: Request) -> Reply:
        started = time.perf_counter()
        reply = super().respond(request)
        if reply.later is not None:  # answered off the event loop: logged once it is made
            return dataclasses.replace(reply, later=self._logged(request, started, reply.later))
        return self._log(request, started, reply)

    async def _logged(self, request: Request, started: float, later: Awaitable[Reply]) -> Reply:
        return self._log(request, started, await later)

    def _log(self, request: Request, started: float, reply: Reply) -> Reply:
        elapsed = (time.perf_counter() - started) * 1000
        error = next((value for name, value in reply.headers if name.lower() == "x-amzn-errortype"), None)
        outcome = f"{reply.status} {error}" if error else str(reply.status)
        log.info("http %s -> %s (%.1f ms)", self.operation_name(request), outcome, elapsed)
        return reply


class LoggedMqttApi(MqttApi):
    def handle(self, topic: str, payload: bytes) -> Outgoing | None:
        started = time.perf_counter()
        reply = super().handle(topic, payload)
        elapsed = (time.perf_counter() - started) * 1000
        if reply is None:
            outcome = "no reply"
        elif reply.topic.endswith("/rejected"):
            outcome = f"rejected {reply.payload.get('code', '')}".rstrip()
        else:
            outcome = "accepted"
        log.info("mqtt %s -> %s (%.1f ms)", topic, outcome, elapsed)
        return reply
