#!/usr/bin/env python3
"""A do-nothing HTTP/1.1 server: the control-plane baselines.

Run: ``python benchmarks/empty_http_server.py --port PORT [--kind raw|ceiling|aiohttp]``; prints
``ready``.

* ``raw``: an asyncio protocol that finds the end of each request (headers, ``Content-Length``)
  and writes a fixed ``200 {}``. No parsing beyond that, no signature check: what a boto3 call
  costs when the server costs (almost) nothing. boto3 parses ``{}`` as an empty output for
  CreateThing, CreateJob and DescribeJob alike.
* ``ceiling``: the same on uvloop (as the service runs), answering each operation with a body of
  the shape and size the service answers it with (the outputs of CreateThing, CreateJob and
  DescribeJob below, fixed), and the same headers. boto3 parses these as it parses the service's
  answers (timestamps, nested members), so this is the rate no server can beat with one client:
  the service's figure divided by this one is its efficiency, whatever the machine's speed.
* ``aiohttp``: one aiohttp catch-all handler returning ``{}``, with the settings the service used
  while it ran on aiohttp (no access log): the floor of that web framework.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import functools
import time

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
    b"Content-Length: 2\r\n"
    b"\r\n"
    b"{}"
)


#: (method, first path segment) -> a body like the service's answer to that operation.
_BODIES = {
    ("POST", b"things"): (
        b'{"thingName": "bench-thing-000123", "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/'
        b'bench-thing-000123", "thingId": "62beebb7-5a92-49bb-9775-42904c81753b"}'
    ),
    ("PUT", b"jobs"): (
        b'{"jobArn": "arn:aws:iot:us-east-1:123456789012:job/bench-job-000123", "jobId": "bench-job-000123"}'
    ),
    ("GET", b"jobs"): (
        b'{"job": {"jobArn": "arn:aws:iot:us-east-1:123456789012:job/bench-job-000123", "jobId": '
        b'"bench-job-000123", "targetSelection": "SNAPSHOT", "status": "IN_PROGRESS", "targets": '
        b'["arn:aws:iot:us-east-1:123456789012:thing/bench-thing-000123"], "createdAt": 1795894587.350552, '
        b'"lastUpdatedAt": 1795894587.350552, "jobProcessDetails": {"numberOfCanceledThings": 0, '
        b'"numberOfSucceededThings": 0, "numberOfFailedThings": 0, "numberOfRejectedThings": 0, '
        b'"numberOfQueuedThings": 1, "numberOfInProgressThings": 0, "numberOfRemovedThings": 0, '
        b'"numberOfTimedOutThings": 0}, "isConcurrent": false}}'
    ),
}


@functools.lru_cache(maxsize=4)
def _date(second: int) -> bytes:
    return f"Date: {email.utils.formatdate(second, usegmt=True)}\r\n".encode()


def _response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n"
        + _date(int(time.time()))
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        b"x-amzn-RequestId: 6d6de4cb-47a3-48fb-adf0-87e6e9f2fdf4\r\n"
        b"\r\n" + body
    )


class _Empty(asyncio.Protocol):
    def __init__(self, sized: bool = False) -> None:
        self._sized = sized
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self._buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            request_line = self._buffer[: self._buffer.find(b"\r\n")]
            self._buffer = self._buffer[total:]
            assert self._transport is not None
            self._transport.write(self._answer(request_line) if self._sized else _RESPONSE)

    @staticmethod
    def _answer(request_line: bytes) -> bytes:
        method, _, target = request_line.partition(b" ")
        segment = target.split(b"/", 2)[1] if target.startswith(b"/") else b""
        return _response(_BODIES.get((method.decode(), segment), b"{}"))


async def _raw(port: int, sized: bool = False) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Empty(sized), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def _aiohttp(port: int) -> None:
    from aiohttp import web

    async def empty(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="{}", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", empty)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=("raw", "ceiling", "aiohttp"), default="raw")
    args = parser.parse_args()
    if args.kind == "ceiling":
        import uvloop

        uvloop.run(_raw(args.port, sized=True))
    else:
        asyncio.run(_raw(args.port) if args.kind == "raw" else _aiohttp(args.port))


if __name__ == "__main__":
    main()
