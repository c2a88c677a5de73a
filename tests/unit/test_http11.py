"""The control plane's HTTP/1.1 server, over a real loopback socket, with hand-written requests.

boto3 exercises the common path in the integration tests; these cover what it never sends:
pipelining, chunked bodies, ``Expect``, oversized and malformed requests, ``Connection: close``,
HEAD, and a reply that must wait for ``settle`` while later requests queue behind it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from iot_jobs_local.http_api.http11 import MAX_BODY, HttpServer, Reply, Request


def _echo(request: Request) -> Reply:
    body = json.dumps(
        {
            "method": request.method,
            "path": request.raw_path,
            "query": request.query(),
            "body": request.body.decode(),
            "x": request.headers.getall("X-Test"),
        }
    ).encode()
    return Reply(200, body, [("Content-Type", "application/json")], settle=request.raw_path == "/slow")


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return status, headers, body


def _run(
    scenario: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    settle: Callable[[], Awaitable[None] | None] | None = None,
    idle_timeout: float = 60.0,
) -> None:
    async def main() -> None:
        server = HttpServer(_echo, settle, idle_timeout)
        await server.start("127.0.0.1", 0)
        assert server._server is not None
        port = server._server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await scenario(reader, writer)
        finally:
            writer.close()
            await server.close()

    asyncio.run(main())


def test_pipelined_requests_are_answered_in_order() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"GET /a?x=1&y=%20z&x=2 HTTP/1.1\r\nHost: h\r\nX-Test: one\r\nx-test: two\r\n\r\n"
            b'POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n{"k":1}'
        )
        status, headers, body = await _read_reply(reader)
        assert status == 200 and "date" in headers
        assert json.loads(body) == {
            "method": "GET",
            "path": "/a",
            "query": {"x": "2", "y": " z"},
            "body": "",
            "x": ["one", "two"],
        }
        status, _, body = await _read_reply(reader)
        assert json.loads(body)["body"] == '{"k":1}'

    _run(scenario)


def test_chunked_body_and_expect_continue() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        assert json.loads((await _read_reply(reader))[2])["body"] == "abcde"
        writer.write(b"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        assert json.loads((await _read_reply(reader))[2])["body"] == "ok"

    _run(scenario)


def test_unknown_expectation_is_refused_and_the_connection_closed() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n")
        status, headers, _ = await _read_reply(reader)
        assert status == 417 and headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""

    _run(scenario)


def test_oversized_body_gets_413() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = MAX_BODY + 1
        writer.write(f"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * size)
        status, _, body = await _read_reply(reader)
        assert status == 413 and b"larger than" in body

    _run(scenario)


def test_malformed_request_gets_400_then_close() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        assert (await _read_reply(reader))[0] == 200
        status, _, body = await _read_reply(reader)
        assert status == 400 and body.startswith(b"Malformed HTTP request")
        assert await asyncio.wait_for(reader.read(), 5) == b""

    _run(scenario)


def test_connection_close_and_head() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head
        status, headers, body = await _read_reply(reader)  # the HEAD reply had no body: this is GET's
        assert status == 200 and json.loads(body)["method"] == "GET" and headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""

    _run(scenario)


def test_a_reply_waiting_for_settle_holds_back_the_ones_after_it() -> None:
    gate: asyncio.Future[None] | None = None

    def settle() -> Awaitable[None] | None:
        return gate

    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal gate
        gate = asyncio.get_running_loop().create_future()
        writer.write(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        pending = asyncio.ensure_future(_read_reply(reader))
        done, _ = await asyncio.wait([pending], timeout=0.3)
        assert not done, "a reply was sent before settle resolved"
        gate.set_result(None)
        assert json.loads((await pending)[2])["path"] == "/slow"
        assert json.loads((await _read_reply(reader))[2])["path"] == "/after"

    _run(scenario, settle)


def test_an_idle_keep_alive_connection_is_closed() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /once HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await _read_reply(reader))[0] == 200
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, not by us

    _run(scenario, idle_timeout=0.2)
