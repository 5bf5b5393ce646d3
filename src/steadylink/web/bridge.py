"""Serving the app under granian's RSGI interface: the request bridge and the lifespan.

granian answers more requests per core through RSGI than through ASGI (a bare
redirect: 58k req/s under ASGI, 63-68k under RSGI with ``--http 1``; README,
Performance), and on the redirect that difference is most of what is left
besides the server itself. So workers run ``--interface rsgi``: ``web/redirect.py`` answers a
redirect of a cached plain link directly on the RSGI protocol, and hands
every other request to its ASGI path through ``call_asgi`` below — FastAPI
and Starlette stay unchanged.

RSGI has no lifespan protocol; granian calls ``__rsgi_init__(loop)`` before
the loop runs and ``__rsgi_del__(loop)`` after it stopped. ``Lifespan`` runs
the ASGI app's lifespan (start-up, background task, shutdown) from those two
hooks, the same code path the ASGI server and the tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Message, Scope

_ASGI = {"version": "3.0", "spec_version": "2.3"}


def asgi_scope(scope: Any) -> Scope:
    """The ASGI ``http`` scope of an RSGI request scope."""
    return {
        "type": "http",
        "asgi": _ASGI,
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,  # RSGI's path is percent-decoded, as ASGI's
        "query_string": scope.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": {},
    }


def _address(value: str) -> tuple[str, int | None] | None:
    """``"127.0.0.1:5000"`` → ``("127.0.0.1", 5000)``; a unix socket path → ``(path, None)``."""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]"), int(port)
    return value, None


# Cached: every redirect's log line asks, and peers repeat (a keep-alive connection,
# HAProxy's few); parsing costs ~0.5 µs, a hit ~0.07 µs.
@functools.lru_cache(maxsize=4096)
def peer_host(client: str) -> str:
    """The peer's address in an RSGI ``scope.client``, as ASGI's ``client[0]`` ("" if none)."""
    address = _address(client)
    return address[0] if address else ""


class _Receive:
    """ASGI ``receive`` over the RSGI body iterator: chunks, then one last empty message.

    ``body``: the whole body, read from the protocol already (``web/create.py``).
    """

    def __init__(self, protocol: Any, body: bytes | None = None) -> None:
        self._protocol = protocol
        self._chunks: Any = None
        self._done = False
        self._body = body

    async def __call__(self) -> Message:
        if self._done:
            await self._protocol.client_disconnect()
            return {"type": "http.disconnect"}
        if self._body is not None:
            self._done = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        if self._chunks is None:
            self._chunks = aiter(self._protocol)
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}


class RsgiSend:
    """ASGI ``send`` over the RSGI protocol: one ``response_bytes``, or a stream."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._status = 500
        self._headers: list[tuple[str, str]] = []
        self._stream: Any = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = message["status"]
            self._headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
            ]
        elif kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self._stream is None:
                if not more:
                    self._protocol.response_bytes(self._status, self._headers, body)
                    return
                self._stream = self._protocol.response_stream(self._status, self._headers)
            if body:
                await self._stream.send_bytes(body)


async def call_asgi(app: ASGIApp, scope: Any, protocol: Any, *, body: bytes | None = None) -> None:
    """Run an ASGI app for one RSGI HTTP request (whose ``body`` may have been read already)."""
    await app(asgi_scope(scope), _Receive(protocol, body), RsgiSend(protocol))


@contextlib.asynccontextmanager
async def run_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan around a block (RSGI workers, tests, in-process clients)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: Any) -> None:
        await from_app.put(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def run() -> None:
        await app(scope, receive, send)

    task = asyncio.create_task(run())
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"app start-up failed: {started.get('message', started)}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


class Lifespan:
    """The ASGI lifespan of ``app``, driven from granian's RSGI init and del hooks."""

    def __init__(self, app: ASGIApp) -> None:
        self._running = run_lifespan(app)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._running.__aenter__())

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._running.__aexit__(None, None, None))
