#!/usr/bin/env python3
"""A do-nothing HTTP/1.1 server answering every request with ``200 {}``: the control-plane baseline.

Run: ``python benchmarks/empty_http_server.py --port PORT [--kind raw|aiohttp]``; prints ``ready``.

* ``raw``: an asyncio protocol that finds the end of each request (headers, ``Content-Length``)
  and writes a fixed response. No parsing beyond that, no signature check: what a boto3 call
  costs when the server costs (almost) nothing.
* ``aiohttp``: one aiohttp catch-all handler returning ``{}``, with the service's settings
  (no access log): the floor of the web framework the service runs on.

boto3 parses ``{}`` as an empty output for CreateThing, CreateJob and DescribeJob alike.
"""

from __future__ import annotations

import argparse
import asyncio

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
    b"Content-Length: 2\r\n"
    b"\r\n"
    b"{}"
)


class _Empty(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

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
            self._buffer = self._buffer[total:]
            assert self._transport is not None
            self._transport.write(_RESPONSE)


async def _raw(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Empty, "127.0.0.1", port)
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
    parser.add_argument("--kind", choices=("raw", "aiohttp"), default="raw")
    args = parser.parse_args()
    asyncio.run(_raw(args.port) if args.kind == "raw" else _aiohttp(args.port))


if __name__ == "__main__":
    main()
